package oci

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// validateSysctls accepts only sysctls that belong to a namespace the
// container has of its own, as runc checks (runc's error would be obscure):
// net.* need a network namespace that is not the host's; kernel.shm*,
// kernel.msg*, kernel.sem and fs.mqueue.* an IPC namespace that is not the
// host's. Everything else would change the host and is refused. Keys may use
// "/" as separator, as the kubelet allows.
func validateSysctls(sysctls map[string]string, ns Namespaces) error {
	for _, key := range slices.Sorted(maps.Keys(sysctls)) {
		k := strings.ReplaceAll(key, "/", ".")
		switch {
		case strings.HasPrefix(k, "net."):
			if ns.Network == NamespaceHost {
				return fmt.Errorf("sysctl %q is not allowed in the host's network namespace: %w", key, errdefs.ErrInvalidArgument)
			}
		case k == "kernel.sem", strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "kernel.msg"), strings.HasPrefix(k, "fs.mqueue."):
			if ns.IPC == NamespaceHost {
				return fmt.Errorf("sysctl %q is not allowed in the host's IPC namespace: %w", key, errdefs.ErrInvalidArgument)
			}
		default:
			return fmt.Errorf("sysctl %q is not namespaced: %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
