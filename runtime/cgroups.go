package runtime

import (
	"path"
	"strings"
)

// CgroupsPath is the OCI linux.cgroupsPath for id under parent, for the
// cgroupfs ("/parent/id") or systemd ("slice:berth:id") driver. Each
// container's cgroup is named after its id, as the kubelet expects.
func CgroupsPath(systemd bool, parent, id string) string {
	if systemd {
		if parent == "" {
			parent = "system.slice"
		}
		return path.Base(parent) + ":berth:" + id
	}
	if parent == "" {
		parent = "/berth"
	}
	if !strings.HasPrefix(parent, "/") {
		parent = "/" + parent
	}
	return path.Join(parent, id)
}
