package shimapi

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	frames := []struct {
		stream byte
		p      string
	}{{StreamStdin, "hello"}, {StreamStdout, ""}, {StreamStderr, "x\ny"}, {StreamExit, `{"exitCode":1}`}}
	for _, f := range frames {
		if err := WriteFrame(&b, f.stream, []byte(f.p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Bytes()[:5]; !bytes.Equal(got, []byte{0, 0, 0, 0, 5}) {
		t.Errorf("header = %v", got)
	}
	for _, f := range frames {
		s, p, err := ReadFrame(&b, nil)
		if err != nil || s != f.stream || string(p) != f.p {
			t.Errorf("ReadFrame = %d %q %v, want %d %q", s, p, err, f.stream, f.p)
		}
	}
	if _, _, err := ReadFrame(&b, nil); err != io.EOF {
		t.Errorf("at end: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0xff, 0, 0, 0}), nil); err == nil {
		t.Error("oversized frame accepted")
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0, 0, 0, 9, 'a'}), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("short frame: %v", err)
	}
}

func TestReadExit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "exit.json")
	if _, ok, err := ReadExit(p); ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	os.WriteFile(p, []byte(`{"exitCode":137,"exitedAt":"2024-01-02T03:04:05.000000006Z","signal":9,"oomKilled":true}`), 0o644)
	st, ok, err := ReadExit(p)
	want := ExitStatus{ExitCode: 137, Signal: 9, OOMKilled: true, ExitedAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}
	if !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	os.WriteFile(p, []byte(`{`), 0o644)
	if _, _, err := ReadExit(p); err == nil {
		t.Error("corrupt exit file accepted")
	}
}
