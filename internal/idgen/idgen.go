// Package idgen makes the random ids of berth's objects.
package idgen

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random id of 64 lowercase hex digits, the form docker and
// containerd give containers and sandboxes (and crictl shortens to 13).
func New() string { return Hex(32) }

// Hex returns n random bytes as 2n lowercase hex digits.
func Hex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// Valid reports whether id has New's form: 64 lowercase hex digits.
func Valid(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
