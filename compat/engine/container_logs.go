package engine

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/logs"
)

// timestampFormat is how docker prints log timestamps (fixed width).
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// getContainerLogs is GET /containers/{id}/logs: the container's log,
// framed per stream unless it has a TTY.
func (s *Server) getContainerLogs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	wantOut, wantErr := boolValue(r, "stdout"), boolValue(r, "stderr")
	if !wantOut && !wantErr {
		return errorf(errdefs.ErrInvalidArgument, "You must choose at least one stream")
	}
	opts := runtime.LogOptions{Follow: boolValue(r, "follow"), Tail: -1}
	if v := r.URL.Query().Get("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errorf(errdefs.ErrInvalidArgument, "invalid value for tail: %q", v)
		}
		opts.Tail = max(n, -1)
	}
	if opts.Since, err = unixTime(r.URL.Query().Get("since")); err != nil {
		return err
	}
	if opts.Until, err = unixTime(r.URL.Query().Get("until")); err != nil {
		return err
	}
	timestamps := boolValue(r, "timestamps")
	tty := c.Process.TTY
	if tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	fw.rc.Flush()
	stdout, stderr := streamWriters(fw, tty)
	var buf []byte
	err = s.containers.Logs(ctx, c.ID, opts, func(l logs.Line) error {
		var out io.Writer = stdout
		if l.Stream == logs.Stderr {
			if !wantErr {
				return nil
			}
			out = stderr
		} else if !wantOut {
			return nil
		}
		buf = buf[:0]
		if timestamps {
			buf = l.Time.UTC().AppendFormat(buf, timestampFormat)
			buf = append(buf, ' ')
		}
		buf = append(append(buf, l.Content...), '\n')
		_, err := out.Write(buf)
		return err
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("reading container logs", "container", c.ID, "error", err)
	}
	return nil
}

// unixTime reads docker's since/until: seconds since the epoch with an
// optional fraction ("1700000000.5"); "" or "0" is no bound.
func unixTime(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, perr := time.Parse(time.RFC3339Nano, v); perr == nil {
			return t, nil
		}
		return time.Time{}, errorf(errdefs.ErrInvalidArgument, "invalid timestamp: %q", v)
	}
	var ns int64
	if frac != "" {
		f, err := strconv.ParseFloat("0."+frac, 64)
		if err != nil {
			return time.Time{}, errorf(errdefs.ErrInvalidArgument, "invalid timestamp: %q", v)
		}
		ns = int64(math.Round(f * 1e9))
	}
	return time.Unix(s, ns), nil
}
