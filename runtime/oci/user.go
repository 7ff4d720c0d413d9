package oci

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// ResolveUser resolves user against the image's /etc/passwd and /etc/group,
// read from rootfs (pass a file system confined to the rootfs, such as
// os.Root.FS, so that absolute symlinks in the image do not reach the host).
//
// user is "" (root), "name", "uid", or either followed by ":group" or
// ":gid". A name must be in /etc/passwd (a group name in /etc/group), else
// the error wraps errdefs.ErrInvalidArgument; a numeric uid need not be, and
// then its primary group is 0 unless one is given.
//
// AdditionalGids are, in order and without duplicates: the primary GID,
// the groups of /etc/group that list the user's name as a member (the name
// is found from the uid when the user is numeric), then extraGroups. This is
// containerd's and the kubelet's "Merge" supplemental groups policy; the
// primary GID is in the list so that setgroups(2) cannot drop it.
func ResolveUser(rootfs fs.FS, user string, extraGroups []uint32) (User, error) {
	userPart, groupPart, explicitGroup := strings.Cut(user, ":")
	if explicitGroup && groupPart == "" || userPart == "" && explicitGroup {
		return User{}, fmt.Errorf("user %q: want user[:group]: %w", user, errdefs.ErrInvalidArgument)
	}
	if userPart == "" {
		userPart = "0"
	}

	passwd, err := readColonFile(rootfs, "etc/passwd", 7)
	if err != nil {
		return User{}, err
	}
	var (
		u    User
		name string
	)
	if uid, isNum := parseID(userPart); isNum {
		u.UID = uid
		for _, e := range passwd {
			if id, ok := parseID(e[2]); ok && id == uid {
				name = e[0]
				u.GID, _ = parseID(e[3])
				break
			}
		}
	} else {
		found := false
		for _, e := range passwd {
			if e[0] == userPart {
				uid, ok1 := parseID(e[2])
				gid, ok2 := parseID(e[3])
				if !ok1 || !ok2 {
					return User{}, fmt.Errorf("user %s: bad /etc/passwd entry in the image: %w", userPart, errdefs.ErrInvalidArgument)
				}
				u.UID, u.GID, name, found = uid, gid, e[0], true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("user %s not found in the image: %w", userPart, errdefs.ErrInvalidArgument)
		}
	}

	group, err := readColonFile(rootfs, "etc/group", 4)
	if err != nil {
		return User{}, err
	}
	if explicitGroup {
		if gid, isNum := parseID(groupPart); isNum {
			u.GID = gid
		} else {
			found := false
			for _, e := range group {
				if gid, ok := parseID(e[2]); ok && e[0] == groupPart {
					u.GID, found = gid, true
					break
				}
			}
			if !found {
				return User{}, fmt.Errorf("group %s not found in the image: %w", groupPart, errdefs.ErrInvalidArgument)
			}
		}
	}

	u.AdditionalGids = []uint32{u.GID}
	add := func(gid uint32) {
		if !slices.Contains(u.AdditionalGids, gid) {
			u.AdditionalGids = append(u.AdditionalGids, gid)
		}
	}
	if name != "" {
		for _, e := range group {
			gid, ok := parseID(e[2])
			if ok && slices.Contains(strings.Split(e[3], ","), name) {
				add(gid)
			}
		}
	}
	for _, gid := range extraGroups {
		add(gid)
	}
	return u, nil
}

// parseID parses a uid or gid; ok is false for anything that is not a
// number in [0, 2^32-2] (2^32-1 is the kernel's "no id").
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

// readColonFile reads a passwd/group style file: lines of at least minFields
// colon-separated fields, comments and short lines skipped. A missing file is
// empty (images such as scratch have none).
func readColonFile(fsys fs.FS, name string, minFields int) ([][]string, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading /%s of the image: %w", name, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < minFields {
			continue
		}
		out = append(out, fields)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /%s of the image: %w", name, err)
	}
	return out, nil
}
