package engine

import (
	"bytes"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
)

func TestStreamWritersFrameWhatStdCopySplits(t *testing.T) {
	var buf bytes.Buffer
	stdout, stderr := streamWriters(&buf, false)
	stdout.Write([]byte("out 1\n"))
	stderr.Write([]byte("err 1\n"))
	stdout.Write([]byte("out 2\n"))
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, &buf); err != nil {
		t.Fatal(err)
	}
	if o.String() != "out 1\nout 2\n" || e.String() != "err 1\n" {
		t.Errorf("stdout %q stderr %q", o.String(), e.String())
	}

	buf.Reset()
	stdout, stderr = streamWriters(&buf, true)
	stdout.Write([]byte("a"))
	stderr.Write([]byte("b"))
	if buf.String() != "ab" {
		t.Errorf("tty stream %q, want the raw bytes", buf.String())
	}
}
