package streaming

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// WebSocket v5.channel.k8s.io, the only protocol today's WebSocket clients
// offer (client-go's WebSocket executor, as in kubectl and crictl
// --transport=websocket), is v4.channel.k8s.io plus a CLOSE signal: a
// message {255, channel} half-closes that channel (stdin: the process
// reads EOF). cri-streaming v0.37.2 negotiates WebSocket only up to v4, so
// berth serves v5 exec and attach itself, on k8s.io/streaming's wsstream
// connection (which implements the CLOSE signal for v5), with the same
// bridge calls and the same error-channel status as cri-streaming's v4.
const v5Protocol = remotecommand.StreamProtocolV5Name

// Channel numbers of the channel.k8s.io protocols.
const (
	stdinChannel = iota
	stdoutChannel
	stderrChannel
	errorChannel
	resizeChannel
)

// session is an exec or attach request served over WebSocket v5.
type session struct {
	exec                       bool
	container                  string
	cmd                        []string
	stdin, stdout, stderr, tty bool
}

func execSession(r *runtimeapi.ExecRequest) session {
	return session{exec: true, container: r.ContainerId, cmd: r.Cmd, stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, tty: r.Tty}
}

func attachSession(r *runtimeapi.AttachRequest) session {
	return session{container: r.ContainerId, stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, tty: r.Tty}
}

// serveV5 upgrades the request to WebSocket v5.channel.k8s.io, runs the
// session and writes its status on the error channel.
func (s *Server) serveV5(w http.ResponseWriter, r *http.Request, se session) {
	channels := []wsstream.ChannelType{
		stdinChannel:  readChannel(se.stdin),
		stdoutChannel: writeChannel(se.stdout),
		stderrChannel: writeChannel(se.stderr && !se.tty),
		errorChannel:  wsstream.WriteChannel,
		// Resizes are read only for a TTY: a channel that is read must be
		// drained, or its messages would stall the connection's reader.
		resizeChannel: readChannel(se.tty),
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		v5Protocol: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(s.idleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "path", r.URL.Path, "err", err)
		return
	}
	defer conn.Close()

	// An empty message on the first output channel tells the client the
	// session is established, as cri-streaming does for v4.
	switch {
	case se.stdout:
		streams[stdoutChannel].Write(nil)
	case se.stderr && !se.tty:
		streams[stderrChannel].Write(nil)
	default:
		streams[errorChannel].Write(nil)
	}

	// Streams not asked for are nil, as on the SPDY path.
	var in io.Reader
	var out, errw io.WriteCloser
	if se.stdin {
		in = streams[stdinChannel]
	}
	if se.stdout {
		out = streams[stdoutChannel]
	}
	if se.stderr && !se.tty {
		errw = streams[stderrChannel]
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var resize chan remotecommand.TerminalSize
	if se.tty {
		resize = make(chan remotecommand.TerminalSize)
		go readSizes(ctx, streams[resizeChannel], resize)
	}

	var st streamStatus
	if se.exec {
		err = s.bridge.Exec(ctx, se.container, se.cmd, in, out, errw, se.tty, resize)
		st = execStatus(err)
	} else {
		err = s.bridge.Attach(ctx, se.container, in, out, errw, se.tty, resize)
		st = attachStatus(err)
	}
	if st.Reason == reasonInternalError {
		s.log.Debug("websocket session failed", "container", short(se.container), "err", err)
	}
	b, err := json.Marshal(st)
	if err == nil {
		streams[errorChannel].Write(b)
	}
}

func readChannel(real bool) wsstream.ChannelType {
	if real {
		return wsstream.ReadChannel
	}
	return wsstream.IgnoreChannel
}

func writeChannel(real bool) wsstream.ChannelType {
	if real {
		return wsstream.WriteChannel
	}
	return wsstream.IgnoreChannel
}

// readSizes decodes the resize channel's JSON terminal sizes until it
// ends or ctx does.
func readSizes(ctx context.Context, r io.Reader, out chan<- remotecommand.TerminalSize) {
	defer close(out)
	dec := json.NewDecoder(r)
	for {
		var sz remotecommand.TerminalSize
		if err := dec.Decode(&sz); err != nil {
			return
		}
		select {
		case out <- sz:
		case <-ctx.Done():
			return
		}
	}
}

// streamStatus is the error channel's message, a metav1.Status, in the
// format of cri-streaming's v4 status writer.
type streamStatus struct {
	Status  string         `json:"status,omitempty"`
	Message string         `json:"message,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Details *statusDetails `json:"details,omitempty"`
	Code    int32          `json:"code,omitempty"`
}

type statusDetails struct {
	Causes []statusCause `json:"causes,omitempty"`
}

type statusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

const (
	statusSuccess       = "Success"
	statusFailure       = "Failure"
	reasonInternalError = "InternalError"
)

// execStatus is cri-streaming's ServeExec status for the bridge's result.
func execStatus(err error) streamStatus {
	if err == nil {
		return streamStatus{Status: statusSuccess}
	}
	if exitErr, ok := err.(utilexec.ExitError); ok && exitErr.Exited() {
		return streamStatus{
			Status: statusFailure,
			Reason: remotecommand.NonZeroExitCodeReason,
			Details: &statusDetails{Causes: []statusCause{{
				Type:    remotecommand.ExitCodeCauseType,
				Message: fmt.Sprintf("%d", exitErr.ExitStatus()),
			}}},
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
		}
	}
	return internalError(fmt.Errorf("error executing command in container: %v", err))
}

// attachStatus is cri-streaming's ServeAttach status for the bridge's
// result.
func attachStatus(err error) streamStatus {
	if err == nil {
		return streamStatus{Status: statusSuccess}
	}
	return internalError(fmt.Errorf("error attaching to container: %v", err))
}

func internalError(err error) streamStatus {
	return streamStatus{
		Status:  statusFailure,
		Reason:  reasonInternalError,
		Message: fmt.Sprintf("Internal error occurred: %v", err),
		Code:    http.StatusInternalServerError,
	}
}
