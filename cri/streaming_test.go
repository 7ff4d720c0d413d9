package cri

import (
	"errors"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestValidateStreams(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		stdin, stdout, stderr, tty bool
		ok                         bool
	}{
		{"stdout", false, true, false, false, true},
		{"all", true, true, true, false, true},
		{"stdin only", true, false, false, false, true},
		{"tty", true, true, false, true, true},
		{"none", false, false, false, false, false},
		{"none with tty", false, false, false, true, false},
		{"tty and stderr", false, true, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateStreams(tc.stdin, tc.stdout, tc.stderr, tc.tty)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
				t.Errorf("validateStreams = %v", err)
			}
		})
	}
}
