package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	berthlog "github.com/berth-runtime/berth/internal/log"
	"github.com/berth-runtime/berth/runtime"
)

// seccompProfile translates the CRI's seccomp field (or its deprecated
// path form: "runtime/default", "docker/default", "unconfined",
// "localhost/<path>") into the runtime's terms. No profile means
// unconfined, as containerd does.
func seccompProfile(sec *runtimeapi.LinuxContainerSecurityContext) (kind, path string, err error) {
	if p := sec.GetSeccomp(); p != nil {
		switch p.ProfileType {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			return runtime.SeccompRuntimeDefault, "", nil
		case runtimeapi.SecurityProfile_Unconfined:
			return runtime.SeccompUnconfined, "", nil
		case runtimeapi.SecurityProfile_Localhost:
			if !filepath.IsAbs(p.LocalhostRef) {
				return "", "", fmt.Errorf("seccomp localhost profile %q must be an absolute path: %w", p.LocalhostRef, errdefs.ErrInvalidArgument)
			}
			return runtime.SeccompLocalhost, p.LocalhostRef, nil
		}
	}
	switch old := sec.GetSeccompProfilePath(); {
	case old == "":
		return "", "", nil
	case old == "runtime/default" || old == "docker/default":
		return runtime.SeccompRuntimeDefault, "", nil
	case old == "unconfined":
		return runtime.SeccompUnconfined, "", nil
	case strings.HasPrefix(old, "localhost/"):
		return runtime.SeccompLocalhost, strings.TrimPrefix(old, "localhost/"), nil
	}
	return "", "", fmt.Errorf("seccomp profile %q: %w", sec.GetSeccompProfilePath(), errdefs.ErrInvalidArgument)
}

// checkLSMs accepts AppArmor and SELinux options. berth applies neither
// yet: where the host enforces one and a confining profile is asked for,
// that is an error rather than a silent downgrade; where the host has
// none, the options cannot mean anything and are ignored with a warning,
// as the kubelet's own admission does.
func checkLSMs(ctx context.Context, sec *runtimeapi.LinuxContainerSecurityContext, host runtime.LSMs) error {
	aa := sec.GetApparmor()
	wantsAA := (aa != nil && aa.ProfileType != runtimeapi.SecurityProfile_Unconfined) ||
		(sec.GetApparmorProfile() != "" && sec.GetApparmorProfile() != "unconfined")
	if wantsAA {
		if host.AppArmor {
			return fmt.Errorf("AppArmor profiles are not supported by berth yet: %w", errdefs.ErrNotImplemented)
		}
		berthlog.From(ctx).Warn("AppArmor profile requested but the host has no AppArmor; ignored")
	}
	if se := sec.GetSelinuxOptions(); se != nil && (se.User != "" || se.Role != "" || se.Type != "" || se.Level != "") {
		if host.SELinux {
			return fmt.Errorf("SELinux labels are not supported by berth yet: %w", errdefs.ErrNotImplemented)
		}
		berthlog.From(ctx).Warn("SELinux options given but the host has no SELinux; ignored")
	}
	return nil
}
