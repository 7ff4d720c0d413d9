package daemon

import (
	"errors"
	"testing"
)

func TestLockDirs(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	unlock, err := lockDirs(root, state)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second open in this
	// process conflicts just as another daemon would.
	if _, err := lockDirs(t.TempDir(), state); !errors.Is(err, ErrRunning) {
		t.Errorf("second lock on the same state = %v, want ErrRunning", err)
	}
	unlock()
	unlock2, err := lockDirs(root, state)
	if err != nil {
		t.Fatalf("relock after unlock: %v", err)
	}
	unlock2()
}
