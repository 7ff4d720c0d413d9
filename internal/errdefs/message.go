package errdefs

import "fmt"

// Message returns an error whose text is exactly the formatted message
// (a client's own wording, such as docker's "conflict: unable to delete
// ..."), of the kind of sentinel kind: errors.Is(err, kind) holds, but
// the sentinel's name is not appended to the text.
func Message(kind error, format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), kind: kind}
}

type messageError struct {
	msg  string
	kind error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.kind }
