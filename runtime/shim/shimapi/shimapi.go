// Package shimapi is what berthd and berth-shim share: the shim's config,
// the exit file, the start-up sync messages and the control-socket
// protocol. It imports no berth package and nothing heavy, because it is
// linked into the shim, whose resident memory is part of the product.
//
// # Control socket protocol
//
// The shim serves a unix socket (Config.Socket, mode 0600) for its whole
// life. A client connects and sends one request as a JSON object on one
// line; the shim answers with one JSON Response line:
//
//	{"op":"wait"}                        → {"exit":{…}} once the container has exited
//	{"op":"reopen-log"}                  → {} after the log file was reopened
//	{"op":"resize","width":80,"height":24} → {} (terminal containers only)
//	{"op":"attach","stdin":true,"stdout":true,"stderr":true} → {} then frames
//
// A failed request gets {"error":"text"}. wait blocks until the exit; the
// connection may stay open for the whole life of the container (berthd keeps
// one per container) and a closed connection costs the shim nothing.
// When the shim is gone (exited after writing the exit file, or killed) the
// connection breaks or the socket is absent: the client then reads the exit
// file, or asks the runtime.
//
// After an attach reply the connection carries frames in both directions:
// a 5-byte header (stream byte, big-endian uint32 payload length) and the
// payload. Streams: StreamStdin (client → shim; an empty frame closes the
// attacher's stdin), StreamStdout and StreamStderr (shim → client; a
// terminal's output is all StreamStdout), StreamExit (shim → client: the
// ExitStatus as JSON, the last frame). An attacher that does not keep up is
// disconnected; the container is never blocked by one.
package shimapi

import (
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/berth-runtime/berth/runtime/shim/internal/wire"
)

// Config is the shim's whole input, written by berthd as JSON and passed as
// the shim's only argument.
type Config struct {
	ID          string `json:"id"`
	Bundle      string `json:"bundle"`
	Runtime     string `json:"runtime"`     // binary path of runc/crun
	RuntimeRoot string `json:"runtimeRoot"` // its --root
	// SystemdCgroup passes --systemd-cgroup to the runtime.
	SystemdCgroup bool   `json:"systemdCgroup,omitempty"`
	LogPath       string `json:"logPath"`  // CRI log file; "" discards output
	ExitFile      string `json:"exitFile"` // the exit status, written atomically
	Socket        string `json:"socket"`   // control socket path
	PidFile       string `json:"pidFile"`  // the init pid, written by the runtime
	Terminal      bool   `json:"terminal,omitempty"`
	Stdin         bool   `json:"stdin,omitempty"`     // keep a stdin open for attach
	StdinOnce     bool   `json:"stdinOnce,omitempty"` // close it when the first attacher detaches
	MaxLineSize   int    `json:"maxLineSize,omitempty"`
}

// ExitStatus is the content of the exit file and of wait replies.
type ExitStatus struct {
	ExitCode  int       `json:"exitCode"` // 128+signal when killed by a signal
	ExitedAt  time.Time `json:"exitedAt"`
	Signal    int       `json:"signal"` // 0 unless killed by a signal
	OOMKilled bool      `json:"oomKilled"`
}

// ReadExit reads an exit file. ok is false (and err nil) if it does not
// exist: the container has not exited, or its shim died before writing it.
func ReadExit(path string) (ExitStatus, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ExitStatus{}, false, nil
	}
	if err != nil {
		return ExitStatus{}, false, err
	}
	s, err := ParseExitStatus(b)
	if err != nil {
		return ExitStatus{}, false, errors.New("parsing exit file " + path + ": " + err.Error())
	}
	return s, true, nil
}

// ParseExitStatus decodes an ExitStatus as json.Unmarshal does, without
// linking encoding/json into the shim.
func ParseExitStatus(b []byte) (ExitStatus, error) {
	var s ExitStatus
	err := wire.ParseObject(b, func(k string, v wire.Value) error {
		var err error
		switch {
		case wire.KeyIs(k, "exitCode"):
			s.ExitCode, err = intField(v, s.ExitCode)
		case wire.KeyIs(k, "signal"):
			s.Signal, err = intField(v, s.Signal)
		case wire.KeyIs(k, "oomKilled"):
			b, ok, e := v.Bool()
			if ok {
				s.OOMKilled = b
			}
			err = e
		case wire.KeyIs(k, "exitedAt"):
			if v.Kind == wire.Null {
				return nil
			}
			if v.Kind != wire.String {
				return wire.ErrType
			}
			err = s.ExitedAt.UnmarshalJSON(v.Raw)
		}
		return err
	})
	return s, err
}

func intField(v wire.Value, old int) (int, error) {
	n, ok, err := v.Int(strconv.IntSize)
	if !ok {
		return old, err
	}
	return int(n), nil
}

// AppendExitStatus appends s as JSON, byte for byte as json.Marshal writes
// it. ExitedAt must be representable in RFC 3339 (years 0 to 9999).
func AppendExitStatus(b []byte, s ExitStatus) []byte {
	b = append(b, `{"exitCode":`...)
	b = strconv.AppendInt(b, int64(s.ExitCode), 10)
	b = append(b, `,"exitedAt":`...)
	t, _ := s.ExitedAt.MarshalText()
	b = append(b, '"')
	b = append(b, t...)
	b = append(b, `","signal":`...)
	b = strconv.AppendInt(b, int64(s.Signal), 10)
	b = append(b, `,"oomKilled":`...)
	b = wire.AppendBool(b, s.OOMKilled)
	return append(b, '}')
}

// SyncMsg is one JSON line on the start-up sync pipe (fd 3 of the shim),
// from the shim to berthd: first {"shimPid":N} from the first stage, then
// {"pid":N} after `runtime create` succeeded or {"error":"…"} with the
// runtime's message.
type SyncMsg struct {
	ShimPid int    `json:"shimPid,omitempty"`
	Pid     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Ops of the control protocol.
const (
	OpWait      = "wait"
	OpReopenLog = "reopen-log"
	OpResize    = "resize"
	OpAttach    = "attach"
)

// Request is one control request.
type Request struct {
	Op     string `json:"op"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
}

// Response answers a Request.
type Response struct {
	Error string      `json:"error,omitempty"`
	Exit  *ExitStatus `json:"exit,omitempty"`
}

// Attach streams.
const (
	StreamStdin  byte = 0
	StreamStdout byte = 1
	StreamStderr byte = 2
	StreamExit   byte = 3
)

// MaxFrame bounds a frame's payload; larger frames are a protocol error.
const MaxFrame = 1 << 20

// AppendFrame appends one attach frame, header and payload, to b. The
// payload must not exceed MaxFrame.
func AppendFrame(b []byte, stream byte, p []byte) []byte {
	n := uint32(len(p))
	b = append(b, stream, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, p...)
}

// WriteFrame writes one attach frame with a single Write.
func WriteFrame(w io.Writer, stream byte, p []byte) error {
	if len(p) > MaxFrame {
		return errors.New("attach frame too large")
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, 5+len(p)), stream, p))
	return err
}

// ReadFrame reads one attach frame. buf is reused when large enough.
func ReadFrame(r io.Reader, buf []byte) (stream byte, p []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint32(h[1])<<24 | uint32(h[2])<<16 | uint32(h[3])<<8 | uint32(h[4])
	if n > MaxFrame {
		return 0, nil, errors.New("attach frame too large")
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	p = buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return h[0], p, nil
}
