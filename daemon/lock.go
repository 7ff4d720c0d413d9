package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrRunning means another berthd holds the root or state directory.
var ErrRunning = errors.New("another berthd is running")

// lockDirs takes an exclusive lock file in each directory, so a second
// daemon on the same root or state stops at once with a clear error
// instead of sharing files. The kernel drops the locks when the process
// dies, so a kill -9 leaves nothing stale.
func lockDirs(dirs ...string) (unlock func(), err error) {
	var files []*os.File
	unlock = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, "berthd.lock")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			unlock()
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			pid, _ := os.ReadFile(path)
			f.Close()
			unlock()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w on %s (pid %s)", ErrRunning, dir, bytes.TrimSpace(pid))
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		files = append(files, f)
	}
	return unlock, nil
}
