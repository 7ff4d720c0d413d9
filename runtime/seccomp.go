package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/oci"
)

// seccompFor picks the container's seccomp filter. It runs after the spec
// is generated because the default profile depends on the container's
// final capabilities. Privileged containers get none, as in docker and
// containerd.
func seccompFor(req CreateRequest, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	if req.Privileged {
		return nil, nil
	}
	var caps []string
	if spec.Process != nil && spec.Process.Capabilities != nil {
		caps = spec.Process.Capabilities.Bounding
	}
	switch req.SeccompProfile {
	case "", SeccompUnconfined:
		return nil, nil
	case SeccompRuntimeDefault:
		return oci.DefaultSeccomp(caps, goruntime.GOARCH), nil
	case SeccompLocalhost:
		data, err := os.ReadFile(req.SeccompPath)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile %s: %v: %w", req.SeccompPath, err, errdefs.ErrInvalidArgument)
		}
		return oci.LoadSeccompProfile(data, caps, goruntime.GOARCH)
	}
	return nil, fmt.Errorf("unknown seccomp profile %q: %w", req.SeccompProfile, errdefs.ErrInvalidArgument)
}
