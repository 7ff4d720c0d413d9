package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/internal/netns"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/sandbox/userns"
	"github.com/berth-runtime/berth/store"
)

// InfraUID is the user the infra process runs as (the pause image's).
const InfraUID = 65535

// RunRequest describes a pod sandbox.
type RunRequest struct {
	Name, Namespace, UID string
	Attempt              uint32
	Labels, Annotations  map[string]string
	// Origin is the front door that asks.
	Origin store.Origin
	// UniqueName is the sandbox's entry in the name index; empty: the
	// CRI's key (see Key).
	UniqueName     string
	RuntimeHandler string
	// Hostname is the pod's host name; empty: the node's, as containerd
	// and CRI-O do (the kubelet always sends one, cut to 63 bytes).
	Hostname string
	// LogDirectory is where the pod's containers log (recorded only).
	LogDirectory string
	DNS          *podfiles.DNS
	PortMappings []cni.PortMapping
	// Network names the network the pod is made on (cni.Manager.Network);
	// empty: the default pod network.
	Network string
	// Aliases are the pod's further names on Network (docker's
	// --network-alias); IP the address it asks for there (--ip).
	Aliases      []string
	IP           string
	CgroupParent string
	// HostNetwork, HostIPC, HostPID share the host's namespaces.
	HostNetwork, HostIPC, HostPID bool
	// SharedPID records that the pod's containers share one PID
	// namespace (each container's own request decides).
	SharedPID bool
	Sysctls   map[string]string
	// UIDMap and GIDMap, when set, give the pod a user namespace with
	// these mappings (see userns.Validate), shared by its containers.
	UIDMap, GIDMap []specs.LinuxIDMapping
	// Resources and Overhead are the pod-level resources the
	// orchestrator applies to the pod's cgroup (recorded only).
	Resources, Overhead *specs.LinuxResources
	// ExtraHosts are further /etc/hosts entries, "name:ip" (docker's
	// --add-host).
	ExtraHosts []string
	// ShmSize is the size in bytes of the pod's /dev/shm (0: 64 MiB).
	ShmSize int64
	// Domainname is the pod's NIS domain name (docker's --domainname).
	Domainname string
	// NoNetwork gives the pod a network namespace of its own with only
	// its loopback, attached to no network (docker's --network none).
	NoNetwork bool
}

// Key is the sandbox's entry in the name index: UniqueName, else the
// CRI's unique pod name.
func (r RunRequest) Key() string {
	if r.UniqueName != "" {
		return r.UniqueName
	}
	return fmt.Sprintf("%s_%s_%s_%d", r.Name, r.Namespace, r.UID, r.Attempt)
}

// Run creates and starts a sandbox and returns its id. A CRI retry of a
// Run that is still in progress gets the same sandbox (see namereg); a
// name in use otherwise wraps errdefs.ErrAlreadyExists.
func (m *Manager) Run(ctx context.Context, req RunRequest) (string, error) {
	if req.Name == "" || req.Namespace == "" || req.UID == "" {
		return "", fmt.Errorf("sandbox metadata needs name, namespace and uid: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := m.launcher.Runtime(req.RuntimeHandler); err != nil {
		return "", err
	}
	if req.Hostname == "" {
		req.Hostname, _ = os.Hostname()
	}
	if len(req.Hostname) > 64 {
		return "", fmt.Errorf("hostname %q is longer than 64 bytes: %w", req.Hostname, errdefs.ErrInvalidArgument)
	}
	if req.UIDMap != nil || req.GIDMap != nil {
		if err := userns.Validate(req.UIDMap, req.GIDMap); err != nil {
			return "", err
		}
		if req.HostNetwork || req.HostIPC || req.HostPID {
			return "", fmt.Errorf("a pod with a user namespace cannot share the host's network, IPC or PID namespace: %w", errdefs.ErrInvalidArgument)
		}
	}
	if _, err := podfiles.ExtraHosts(req.ExtraHosts); err != nil {
		return "", err
	}
	if req.Origin == store.OriginDocker {
		// A name in use is a conflict, never a retry to join.
		return m.run(ctx, req)
	}
	return m.names.Create(ctx, req.Key(), func(ctx context.Context) (string, error) {
		return m.run(ctx, req)
	})
}

func (m *Manager) run(ctx context.Context, req RunRequest) (id string, err error) {
	if req.NoNetwork && (req.HostNetwork || req.Network != "" || len(req.PortMappings) > 0) {
		return "", fmt.Errorf("a pod without a network cannot use the host's, join a network or publish ports: %w", errdefs.ErrInvalidArgument)
	}
	if !req.HostNetwork && !req.NoNetwork {
		if err := m.waitNetwork(ctx); err != nil {
			return "", err
		}
	}
	id = idgen.New()
	log := m.log.With("sandbox", id[:12], "pod", req.Namespace+"/"+req.Name)
	sb := newRecord(id, req)
	sb.Dir = filepath.Join(m.dir, id)
	// The record goes first, with its name: if berthd dies half way,
	// recovery finds it without ReadyAt and undoes whatever was done.
	if err := m.db.Update(func(tx *store.Tx) error {
		if err := store.ReserveName(tx, store.SandboxNames, sb.Key, id); err != nil {
			return err
		}
		return store.Put(tx, store.Sandboxes, id, sb)
	}); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			log.Warn("sandbox creation failed; cleaning up", "error", err)
			if cerr := m.teardown(context.WithoutCancel(ctx), id, true); cerr != nil {
				log.Error("cleaning up a failed sandbox", "error", cerr)
			}
		}
	}()
	if err := os.MkdirAll(sb.Dir, 0o711); err != nil {
		return id, err
	}
	hostname := req.Hostname
	if req.HostNetwork {
		hostname, _ = os.Hostname()
	}
	if err := podfiles.WriteHostname(filepath.Join(sb.Dir, "hostname"), hostname); err != nil {
		return id, err
	}
	if err := podfiles.WriteResolvConf(filepath.Join(sb.Dir, "resolv.conf"), req.DNS, m.hostResolv); err != nil {
		return id, err
	}

	if !req.HostIPC {
		// One /dev/shm for the pod, as its containers share IPC.
		shm := filepath.Join(sb.Dir, "shm")
		if err := os.MkdirAll(shm, 0o1777); err != nil {
			return id, err
		}
		size := req.ShmSize
		if size <= 0 {
			size = 64 << 20
		}
		if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
			return id, fmt.Errorf("mounting the pod's /dev/shm: %w", err)
		}
	}
	// The network and the infra process only meet in the netns: once it
	// exists, CNI ADD runs while the infra process is created and started.
	netDone := make(chan error, 1)
	var ips []string
	if req.HostNetwork {
		netDone <- nil
	} else if req.NoNetwork {
		ns, err := m.newNetNS(&sb, req)
		if err != nil {
			return id, err
		}
		if sb, err = m.update(id, func(s *store.Sandbox) { s.NetNS = ns }); err != nil {
			return id, err
		}
		netDone <- cni.LoopbackUp(ns)
	} else {
		ns, err := m.newNetNS(&sb, req)
		if err != nil {
			return id, err
		}
		// Recorded before ADD: a crash during ADD still gets its DEL.
		if sb, err = m.update(id, func(s *store.Sandbox) { s.NetNS = ns; s.NetworkAttached = true }); err != nil {
			return id, err
		}
		go func(sb store.Sandbox) {
			pod := podNetwork(sb, req.PortMappings)
			pod.IP = req.IP
			res, err := m.net.Setup(ctx, pod)
			for _, ip := range res.IPs {
				ips = append(ips, ip.String())
			}
			netDone <- err
		}(sb)
	}
	infraErr := m.startInfra(ctx, &sb, req, hostname)
	if err := <-netDone; err != nil {
		return id, fmt.Errorf("setting up the pod network: %w", err)
	}
	if infraErr != nil {
		return id, infraErr
	}
	if req.HostNetwork {
		// The host's own /etc/hosts, as the kubelet gives host-network pods.
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			extra, _ := podfiles.ExtraHosts(req.ExtraHosts)
			if err := os.WriteFile(filepath.Join(sb.Dir, "hosts"), append(b, extra...), 0o644); err != nil {
				return id, err
			}
		}
	} else if err := podfiles.WriteHosts(filepath.Join(sb.Dir, "hosts"), hostname, ips, req.ExtraHosts...); err != nil {
		return id, err
	}
	sb.IPs = ips
	if _, err := m.update(id, func(s *store.Sandbox) { s.IPs, s.ReadyAt = ips, time.Now().UTC() }); err != nil {
		return id, err
	}
	m.publish(events.Created, sb)
	m.publish(events.Started, sb)
	log.Info("sandbox ready", "ips", sb.IPs, "infra", sb.InfraPid)
	return id, nil
}

// newRecord is the sandbox's record as the request describes it, in
// neutral terms both front doors read back.
func newRecord(id string, req RunRequest) store.Sandbox {
	sb := store.Sandbox{
		ID: id, Name: req.Name, Namespace: req.Namespace, UID: req.UID, Attempt: req.Attempt,
		Key: req.Key(), Origin: req.Origin, Labels: req.Labels, Annotations: req.Annotations,
		Hostname: req.Hostname, LogDirectory: req.LogDirectory, Network: req.Network, Aliases: req.Aliases,
		RuntimeHandler: req.RuntimeHandler, CgroupParent: req.CgroupParent,
		HostNetwork: req.HostNetwork, HostIPC: req.HostIPC, HostPID: req.HostPID, SharedPID: req.SharedPID,
		Sysctls: req.Sysctls, ExtraHosts: req.ExtraHosts, NoNetwork: req.NoNetwork,
		Resources: req.Resources, Overhead: req.Overhead,
		CreatedAt: time.Now().UTC(),
	}
	if d := req.DNS; d != nil {
		sb.DNS = &store.DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	for _, p := range req.PortMappings {
		sb.PortMappings = append(sb.PortMappings, store.PortMapping{
			HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP,
		})
	}
	return sb
}

// newNetNS creates and pins the pod's network namespace, inside a user
// namespace of its own when the pod has one, and returns its path.
func (m *Manager) newNetNS(sb *store.Sandbox, req RunRequest) (string, error) {
	if req.UIDMap == nil {
		ns, err := netns.New(m.netnsDir, sb.ID)
		if err != nil {
			return "", fmt.Errorf("creating the network namespace: %w", err)
		}
		return ns, nil
	}
	// Recorded before it exists, so that a crash leaves nothing unowned.
	s, err := m.update(sb.ID, func(s *store.Sandbox) {
		s.UserNS, s.UIDMap, s.GIDMap = filepath.Join(m.usernsDir, s.ID), req.UIDMap, req.GIDMap
	})
	if err != nil {
		return "", err
	}
	*sb = s
	pod, err := userns.New(m.holder, req.UIDMap, req.GIDMap, m.usernsDir, m.netnsDir, sb.ID)
	if err != nil {
		return "", fmt.Errorf("creating the pod's user and network namespaces: %w", err)
	}
	return pod.Net, nil
}

// startInfra creates and starts the pod's infra process, recording its
// pids in the sandbox record and in *sb.
func (m *Manager) startInfra(ctx context.Context, sb *store.Sandbox, req RunRequest, hostname string) error {
	spec, err := oci.Generate(m.infraContainer(*sb, req, hostname), m.host)
	if err != nil {
		return err
	}
	if !req.HostNetwork {
		spec.Domainname = req.Domainname
	}
	launched, err := m.launcher.Launch(ctx, runtime.LaunchRequest{
		ID: sb.ID, Handler: req.RuntimeHandler, Bundle: filepath.Join(sb.Dir, "infra"), Spec: spec,
	})
	if err != nil {
		return fmt.Errorf("creating the infra process: %w", err)
	}
	sb.InfraPid, sb.ShimPid = launched.Pid, launched.ShimPid
	if _, err := m.update(sb.ID, func(s *store.Sandbox) { s.InfraPid, s.ShimPid = launched.Pid, launched.ShimPid }); err != nil {
		return err
	}
	if err := m.launcher.Start(ctx, req.RuntimeHandler, sb.ID); err != nil {
		return fmt.Errorf("starting the infra process: %w", err)
	}
	return nil
}

// infraContainer is the pod's pause process: it creates (or joins the
// host's) namespaces that the pod's containers will join.
func (m *Manager) infraContainer(sb store.Sandbox, req RunRequest, hostname string) oci.Container {
	ns := oci.Namespaces{Network: sb.NetNS}
	if req.HostNetwork {
		ns.Network = oci.NamespaceHost
		ns.UTS = oci.NamespaceHost
		hostname = ""
	}
	if req.HostIPC {
		ns.IPC = oci.NamespaceHost
	}
	if req.HostPID {
		ns.PID = oci.NamespaceHost
	}
	user := oci.User{UID: InfraUID, GID: InfraUID}
	if sb.UserNS != "" {
		ns.User = sb.UserNS
		if sb.UIDMap[0].Size <= InfraUID || sb.GIDMap[0].Size <= InfraUID {
			user = oci.User{} // the namespace's root: 65535 is not mapped
		}
	}
	minOOM := -998
	return oci.Container{
		ID:              sb.ID,
		Rootfs:          m.pauseRootfs,
		Args:            []string{"/pause"},
		User:            user,
		UIDMappings:     sb.UIDMap,
		GIDMappings:     sb.GIDMap,
		Hostname:        hostname,
		Namespaces:      ns,
		CgroupsPath:     runtime.CgroupsPath(m.systemd, sb.CgroupParent, sb.ID),
		ReadonlyRootfs:  true,
		NoNewPrivileges: true,
		CapDrop:         []string{"ALL"},
		OOMScoreAdj:     &minOOM,
		Sysctls:         req.Sysctls,
		Annotations:     map[string]string{"io.kubernetes.cri.container-type": "sandbox"},
	}
}

func podNetwork(sb store.Sandbox, ports []cni.PortMapping) cni.PodNetwork {
	return cni.PodNetwork{ID: sb.ID, Network: sb.Network, Name: sb.Name, Namespace: sb.Namespace, UID: sb.UID, NetNS: sb.NetNS, PortMappings: ports}
}

// waitNetwork waits for the pod network to be ready, so that a pod
// created while the CNI config is still being installed starts once it is
// there instead of failing obscurely.
func (m *Manager) waitNetwork(ctx context.Context) error {
	err := m.net.Ready()
	if err == nil {
		return nil
	}
	m.log.Info("waiting for the pod network", "reason", err)
	deadline := time.NewTimer(NetworkWait)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err = m.net.Ready(); err == nil {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("the pod network is not ready after %s: %v: %w", NetworkWait, err, errdefs.ErrFailedPrecondition)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the pod network (%v): %w", err, ctx.Err())
		}
	}
}
