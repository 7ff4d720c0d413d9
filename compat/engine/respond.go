package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// apiError is an error whose message is docker's own ("No such container:
// x"), shown to the user as is, with the status its sentinel implies.
type apiError struct {
	msg string
	err error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

// errorf makes an error with docker's message and the status of the
// sentinel kind (an errdefs.Err*).
func errorf(kind error, format string, args ...any) error {
	return &apiError{msg: fmt.Sprintf(format, args...), err: kind}
}

// writeError sends err as docker does: {"message": "..."} with the status
// its sentinel maps to (errdefs.HTTPStatus). A service error that wraps a
// sentinel keeps its full text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := errdefs.HTTPStatus(err)
	if status >= http.StatusInternalServerError {
		s.log.Error("engine api", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeMessage(w, status, err.Error())
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, map[string]string{"message": msg})
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// readJSON decodes the request body into v. An empty body leaves v as is;
// malformed JSON is the client's error (400), as docker says it.
func readJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	err := json.NewDecoder(r.Body).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return errorf(errdefs.ErrInvalidArgument, "invalid JSON: %v", err)
}

// boolValue reads a query flag as docker does: absent, "", "0", "no",
// "false" and "none" are false, in any case and around spaces
// (docker-py sends Python's "False").
func boolValue(r *http.Request, key string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// intValue reads an integer query parameter; absent or empty is dflt.
func intValue(r *http.Request, key string, dflt int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return dflt, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errorf(errdefs.ErrInvalidArgument, "invalid value for %s: %q", key, v)
	}
	return n, nil
}
