package imageservice

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/testutil"
)

// A mirror that is down and a registry without the image: the pull fails
// with the registry's answer (not found) alone, the mirror's failure only
// in the message.
func TestPullRegistryAnswerWins(t *testing.T) {
	reg := testutil.NewRegistry(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mirror := l.Addr().String()
	l.Close()
	s := newTestServiceWith(t, remote.Config{Mirrors: map[string][]string{reg.Host: {"http://" + mirror}}})

	_, err = s.Pull(context.Background(), reg.Ref("a/x:1"), PullOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Pull = %v, want the registry's ErrNotFound only", err)
	}
	if !strings.Contains(err.Error(), mirror) {
		t.Errorf("error %q does not mention the mirror", err)
	}
}
