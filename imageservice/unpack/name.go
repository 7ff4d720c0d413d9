package unpack

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Limits on hostile input. archive/tar already caps a single PAX or GNU long
// name/link record at 1 MiB.
const (
	maxNameLen      = 4096 // PATH_MAX
	maxComponentLen = 255  // NAME_MAX
	maxEntries      = 1_000_000
	maxPAXBytes     = 1 << 20
)

// OCI whiteout names.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaque     = ".wh..wh..opq"
)

// invalid returns an error wrapping errdefs.ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// cleanName turns a tar member name (or hard link target) into a clean,
// slash-separated path relative to the layer root. "" is the root itself.
// Leading slashes are stripped; a name that escapes the root through ".."
// after cleaning is refused.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", invalid("empty name")
	case len(name) > maxNameLen:
		return "", invalid("name is %d bytes long, more than %d", len(name), maxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return "", invalid("name contains a NUL byte")
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == "." {
		return "", nil
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", invalid("name escapes the layer root")
	}
	for c := range strings.SplitSeq(rel, "/") {
		if len(c) > maxComponentLen {
			return "", invalid("name has a component of %d bytes, more than %d", len(c), maxComponentLen)
		}
	}
	return rel, nil
}

// splitRel splits a path from cleanName into its parent ("" for the root) and
// last component.
func splitRel(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// quoteName quotes a name for an error message, shortening very long ones.
func quoteName(name string) string {
	const maxShown = 256
	if len(name) > maxShown {
		return fmt.Sprintf("%q...", name[:maxShown])
	}
	return fmt.Sprintf("%q", name)
}

// checkPAX refuses a PAX record set larger than maxPAXBytes.
func checkPAX(records map[string]string) error {
	n := 0
	for k, v := range records {
		n += len(k) + len(v)
		if n > maxPAXBytes {
			return invalid("PAX records exceed %d bytes", maxPAXBytes)
		}
	}
	return nil
}
