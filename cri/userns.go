package cri

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// podUserNS translates a pod's UsernsOptions: NODE is the host's user
// namespace; POD is one user namespace for the whole pod with the
// request's single UID and GID mapping; CONTAINER and TARGET are refused,
// as the CRI asks of runtimes that do not have them. No options at all
// (older kubelets) is the host's too: the CRI's "POD mode must be assumed"
// for them comes with no mappings, i.e. what pods always had.
func (s *Server) podUserNS(o *runtimeapi.UserNamespace) (uids, gids []specs.LinuxIDMapping, err error) {
	if o == nil {
		return nil, nil, nil
	}
	switch o.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil, nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, nil, fmt.Errorf("user namespace mode %s is not supported (only POD and NODE): %w", o.GetMode(), errdefs.ErrInvalidArgument)
	}
	if s.userns != nil {
		return nil, nil, fmt.Errorf("pods cannot have user namespaces on this host: %v: %w", s.userns, errdefs.ErrFailedPrecondition)
	}
	uids, gids = idMappings(o.GetUids()), idMappings(o.GetGids())
	if uids == nil || gids == nil {
		return nil, nil, fmt.Errorf("user namespace mode POD needs uid and gid mappings: %w", errdefs.ErrInvalidArgument)
	}
	return uids, gids, nil
}

func idMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	var out []specs.LinuxIDMapping
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}

// checkContainerUserNS refuses a container whose UsernsOptions contradict
// its pod's: the pod's containers share its user namespace. Options left
// out mean the pod's.
func checkContainerUserNS(o *runtimeapi.UserNamespace, sb store.Sandbox) error {
	if o == nil {
		return nil
	}
	switch o.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if sb.UserNS != "" {
			return fmt.Errorf("the container asks for the host's user namespace but its pod has its own: %w", errdefs.ErrInvalidArgument)
		}
	case runtimeapi.NamespaceMode_POD:
		if sb.UserNS == "" {
			return fmt.Errorf("the container asks for the pod's user namespace but its pod has none: %w", errdefs.ErrInvalidArgument)
		}
		if !slices.Equal(idMappings(o.GetUids()), sb.UIDMap) || !slices.Equal(idMappings(o.GetGids()), sb.GIDMap) {
			return fmt.Errorf("the container's user namespace mappings differ from its pod's: %w", errdefs.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("user namespace mode %s is not supported (only POD and NODE): %w", o.GetMode(), errdefs.ErrInvalidArgument)
	}
	return nil
}

// criIDMappings is the reverse of idMappings.
func criIDMappings(in []specs.LinuxIDMapping) []*runtimeapi.IDMapping {
	var out []*runtimeapi.IDMapping
	for _, m := range in {
		out = append(out, &runtimeapi.IDMapping{ContainerId: m.ContainerID, HostId: m.HostID, Length: m.Size})
	}
	return out
}
