package engine

import (
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// legacyNetworkSettings is NetworkSettings with the top-level fields of
// the default network that API 1.52 dropped, which older clients (docker
// CLI 28 speaks 1.50, docker-py 1.41) read: {{.NetworkSettings.IPAddress}}.
type legacyNetworkSettings struct {
	container.NetworkSettings
	Bridge                 string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

// inspectResponse is InspectResponse with the legacy network settings.
type inspectResponse struct {
	container.InspectResponse
	NetworkSettings any
}

// getContainerJSON is GET /containers/{id}/json.
func (s *Server) getContainerJSON(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.lookupContainer(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	v := s.inspect(ctx, c)
	if boolValue(r, "size") {
		rw, rootfs := s.containerSize(ctx, c)
		v.SizeRw, v.SizeRootFs = &rw, &rootfs
	}
	// The fields API 1.52 dropped go to every version: docker-py 5 and
	// docker-compose 1.29 negotiate the server's newest version and
	// still read NetworkSettings.IPAddress.
	resp := inspectResponse{InspectResponse: v, NetworkSettings: legacySettings(v.NetworkSettings)}
	return writeJSON(w, http.StatusOK, resp)
}

func legacySettings(ns *container.NetworkSettings) legacyNetworkSettings {
	l := legacyNetworkSettings{NetworkSettings: *ns}
	// The first network, "bridge" preferred, as docker's default network
	// was the one these fields described.
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range ns.Networks {
			if !yield(k) {
				return
			}
		}
	})
	if i := slices.Index(names, "bridge"); i > 0 {
		names[0], names[i] = names[i], names[0]
	}
	if len(names) > 0 {
		ep := ns.Networks[names[0]]
		if ep.IPAddress.IsValid() {
			l.IPAddress = ep.IPAddress.String()
		}
		if ep.Gateway.IsValid() {
			l.Gateway = ep.Gateway.String()
		}
		l.IPPrefixLen, l.EndpointID = ep.IPPrefixLen, ep.EndpointID
		if len(ep.MacAddress) > 0 {
			l.MacAddress = ep.MacAddress.String()
		}
	}
	return l
}

// dockerTime is a time as docker prints it in inspect (zero as
// "0001-01-01T00:00:00Z").
func dockerTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// dockerState is docker's state of c.
func dockerState(c store.Container) container.ContainerState {
	switch runtime.StateOf(c) {
	case runtime.Running:
		if c.Paused {
			return container.StatePaused
		}
		return container.StateRunning
	case runtime.Exited:
		return container.StateExited
	case runtime.Created:
		return container.StateCreated
	}
	return container.StateDead
}

// argv is the container's process as docker shows it.
func argv(c store.Container) []string {
	if c.Entrypoint != nil || c.Cmd != nil {
		return append(slices.Clone(c.Entrypoint), c.Cmd...)
	}
	return append(slices.Clone(c.Process.Command), c.Process.Args...)
}

func (s *Server) inspect(ctx context.Context, c store.Container) container.InspectResponse {
	sb, _ := s.pods.Get(ctx, c.SandboxID)
	args := argv(c)
	v := container.InspectResponse{
		ID: c.ID, Created: dockerTime(c.CreatedAt), Image: c.ImageID.String(),
		Name: "/" + s.dockerName(ctx, c), RestartCount: c.RestartCount, Driver: "overlay2", Platform: "linux",
		LogPath: c.LogPath, ExecIDs: nil,
	}
	if len(args) > 0 {
		v.Path, v.Args = args[0], args[1:]
	} else {
		v.Args = []string{}
	}
	if sb.Dir != "" {
		v.ResolvConfPath = filepath.Join(sb.Dir, "resolv.conf")
		v.HostnamePath = filepath.Join(sb.Dir, "hostname")
		v.HostsPath = filepath.Join(sb.Dir, "hosts")
	}
	st := runtime.StateOf(c)
	v.State = &container.State{
		Status: dockerState(c), Running: st == runtime.Running, Paused: c.Paused,
		OOMKilled: c.Reason == "OOMKilled", Dead: st == runtime.Unknown,
		ExitCode: int(c.ExitCode), Error: c.Message,
		StartedAt: dockerTime(c.StartedAt), FinishedAt: dockerTime(c.FinishedAt),
	}
	if st == runtime.Running {
		v.State.Pid = c.Pid
	}
	if h := c.Health; h != nil {
		v.State.Health = &container.Health{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak, Log: []*container.HealthcheckResult{}}
		for _, l := range h.Log {
			v.State.Health.Log = append(v.State.Health.Log, &container.HealthcheckResult{Start: l.Start, End: l.End, ExitCode: l.ExitCode, Output: l.Output})
		}
	}
	v.HostConfig = s.hostConfig(ctx, c, sb)
	v.Config = s.containerConfig(ctx, c, sb)
	v.Mounts = mountPoints(c)
	v.NetworkSettings = s.networkSettings(ctx, c, sb)
	return v
}

// anonymousVolume reports whether name is an anonymous volume.
func (s *Server) anonymousVolume(ctx context.Context, name string) bool {
	if name == "" || s.volumes == nil {
		return false
	}
	v, err := s.volumes.Get(ctx, name)
	return err == nil && v.Anonymous
}

func (s *Server) containerConfig(ctx context.Context, c store.Container, sb store.Sandbox) *container.Config {
	cfg := &container.Config{
		Hostname: sb.Hostname, Domainname: c.Domainname, User: c.User.Username,
		Tty: c.Process.TTY, OpenStdin: c.Process.Stdin, StdinOnce: c.Process.StdinOnce,
		Env: c.Process.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, Image: c.Image,
		WorkingDir: c.Process.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal, StopTimeout: c.StopTimeout,
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if cfg.User == "" && c.User.UID != nil {
		cfg.User = strconv.FormatInt(*c.User.UID, 10)
	}
	if len(c.ExposedPorts) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		for _, p := range c.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	for _, m := range c.Mounts {
		if s.anonymousVolume(ctx, m.Volume) {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[m.Destination] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	return cfg
}

// networkMode is docker's NetworkMode of a container in sandbox sb.
func networkMode(c store.Container, sb store.Sandbox) string {
	switch {
	case sb.HostNetwork:
		return "host"
	case sb.NoNetwork:
		return "none"
	case c.Origin == store.OriginDocker && sb.UID != "" && sb.UID != c.ID:
		return "container:" + sb.UID
	}
	return dockerNetworkName(sb.Network)
}

func (s *Server) hostConfig(ctx context.Context, c store.Container, sb store.Sandbox) *container.HostConfig {
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(networkMode(c, sb)),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(c.RestartPolicy.Name), MaximumRetryCount: c.RestartPolicy.MaximumRetryCount},
		AutoRemove:    c.AutoRemove, Privileged: c.Security.Privileged, ReadonlyRootfs: c.Security.ReadonlyRootfs,
		CapAdd: c.Security.CapAdd, CapDrop: c.Security.CapDrop, ExtraHosts: sb.ExtraHosts,
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{}},
		Tmpfs:     c.Tmpfs, Annotations: c.Annotations, PortBindings: network.PortMap{},
		IpcMode: "private", Cgroup: "", UTSMode: "", UsernsMode: "", CgroupnsMode: "private",
		MaskedPaths: c.Security.MaskedPaths, ReadonlyPaths: c.Security.ReadonlyPaths,
		ConsoleSize: [2]uint{0, 0},
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if c.HostIPC {
		hc.IpcMode = "host"
	}
	if c.PIDMode == store.NamespaceHost {
		hc.PidMode = "host"
	}
	if c.Init {
		on := true
		hc.Init = &on
	}
	if c.OOMScoreAdj != nil {
		hc.OomScoreAdj = *c.OOMScoreAdj
	}
	if c.Security.NoNewPrivileges {
		hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
	}
	if c.Security.SeccompProfile == runtime.SeccompUnconfined {
		hc.SecurityOpt = append(hc.SecurityOpt, "seccomp=unconfined")
	}
	if d := sb.DNS; d != nil {
		for _, a := range d.Servers {
			if ip, err := netip.ParseAddr(a); err == nil {
				hc.DNS = append(hc.DNS, ip)
			}
		}
		hc.DNSSearch, hc.DNSOptions = d.Searches, d.Options
	}
	for _, m := range c.Mounts {
		src := m.Source
		switch {
		case m.Volume != "" && s.anonymousVolume(ctx, m.Volume):
			continue
		case m.Volume != "":
			src = m.Volume
		case m.Source == "":
			continue
		}
		b := src + ":" + m.Destination
		if m.ReadOnly {
			b += ":ro"
		}
		hc.Binds = append(hc.Binds, b)
	}
	for _, pm := range sb.PortMappings {
		port, ok := network.PortFrom(uint16(pm.ContainerPort), network.IPProtocol(pm.Protocol))
		if !ok {
			continue
		}
		b := network.PortBinding{HostPort: strconv.Itoa(int(pm.HostPort))}
		if ip, err := netip.ParseAddr(pm.HostIP); err == nil {
			b.HostIP = ip
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	for _, d := range c.Devices {
		hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: d.Permissions})
	}
	for _, rl := range c.Rlimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: strings.ToLower(strings.TrimPrefix(rl.Type, "RLIMIT_")), Soft: int64(rl.Soft), Hard: int64(rl.Hard)})
	}
	if res := c.Resources; res != nil {
		if m := res.Memory; m != nil {
			if m.Limit != nil {
				hc.Memory = *m.Limit
			}
			if m.Reservation != nil {
				hc.MemoryReservation = *m.Reservation
			}
			if m.Swap != nil {
				hc.MemorySwap = *m.Swap
			}
			if m.Swappiness != nil {
				sw := int64(*m.Swappiness)
				hc.MemorySwappiness = &sw
			}
			hc.OomKillDisable = m.DisableOOMKiller
		}
		if cpu := res.CPU; cpu != nil {
			if cpu.Shares != nil {
				hc.CPUShares = int64(*cpu.Shares)
			}
			hc.CpusetCpus, hc.CpusetMems = cpu.Cpus, cpu.Mems
			switch {
			case cpu.Quota != nil && cpu.Period != nil && *cpu.Period == 100000:
				// --cpus: docker's NanoCpus at its fixed period.
				hc.NanoCPUs = *cpu.Quota * 1e9 / 100000
			default:
				if cpu.Quota != nil {
					hc.CPUQuota = *cpu.Quota
				}
				if cpu.Period != nil {
					hc.CPUPeriod = int64(*cpu.Period)
				}
			}
		}
		if res.Pids != nil && res.Pids.Limit != nil {
			l := *res.Pids.Limit
			hc.PidsLimit = &l
		}
		if res.BlockIO != nil && res.BlockIO.Weight != nil {
			hc.BlkioWeight = *res.BlockIO.Weight
		}
	}
	return hc
}

// mountPoints are docker's Mounts: binds, volumes and tmpfs.
func mountPoints(c store.Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.Mounts {
		if m.Source == "" {
			continue
		}
		mp := container.MountPoint{Type: mount.TypeBind, Source: m.Source, Destination: m.Destination, RW: !m.ReadOnly, Propagation: mount.Propagation(cmpOr(m.Propagation, "rprivate"))}
		if m.Volume != "" {
			mp.Type, mp.Name, mp.Driver, mp.Propagation = mount.TypeVolume, m.Volume, "local", ""
		}
		if m.ReadOnly {
			mp.Mode = "ro"
		}
		out = append(out, mp)
	}
	for dst := range c.Tmpfs {
		out = append(out, container.MountPoint{Type: mount.TypeTmpfs, Destination: dst, RW: true})
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// networkSettings are the container's networks (its sandbox's) and
// published ports.
func (s *Server) networkSettings(ctx context.Context, c store.Container, sb store.Sandbox) *container.NetworkSettings {
	ns := &container.NetworkSettings{SandboxID: sb.ID, SandboxKey: sb.NetNS, Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{}}
	for _, p := range c.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			ns.Ports[port] = nil
		}
	}
	for _, pm := range sb.PortMappings {
		port, ok := network.PortFrom(uint16(pm.ContainerPort), network.IPProtocol(pm.Protocol))
		if !ok {
			continue
		}
		ip := netip.IPv4Unspecified()
		if a, err := netip.ParseAddr(pm.HostIP); err == nil {
			ip = a
		}
		ns.Ports[port] = append(ns.Ports[port], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(pm.HostPort))})
	}
	mode := networkMode(c, sb)
	switch {
	case mode == "host" || mode == "none":
		ns.Networks[mode] = &network.EndpointSettings{}
		return ns
	case strings.HasPrefix(mode, "container:"):
		return ns
	}
	ips := sb.IPs
	if runtime.StateOf(c) != runtime.Running || !sb.Ready() {
		// docker takes a stopped container's addresses back
		ips = nil
	}
	ep := s.endpointSettings(ctx, sb, sb.Network, ips, sb.Aliases)
	ep.DNSNames = append([]string{s.dockerName(ctx, c), c.ID[:12]}, sb.Aliases...)
	ns.Networks[mode] = ep
	for _, a := range sb.Networks {
		aips := a.IPs
		if ips == nil {
			aips = nil
		}
		e := s.endpointSettings(ctx, sb, a.Network, aips, a.Aliases)
		e.DNSNames = append([]string{s.dockerName(ctx, c), c.ID[:12]}, a.Aliases...)
		ns.Networks[dockerNetworkName(a.Network)] = e
	}
	return ns
}

// endpointSettings describe the sandbox's attachment to the cni
// network cniName, as network inspect shows it too.
func (s *Server) endpointSettings(ctx context.Context, sb store.Sandbox, cniName string, ips, aliases []string) *network.EndpointSettings {
	ep := &network.EndpointSettings{EndpointID: endpointID(endpoint{Sandbox: sb, Network: cniName}), Aliases: aliases}
	if n, err := s.findNetwork(ctx, dockerNetworkName(cniName)); err == nil {
		ep.NetworkID, ep.Gateway = n.ID, n.Gateway
		if n.Subnet.IsValid() {
			ep.IPPrefixLen = n.Subnet.Bits()
		}
	}
	for _, a := range ips {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
			ep.IPAddress = ip
			break
		}
	}
	return ep
}

// statusString is docker ps's STATUS column: "Up 3 seconds (healthy)",
// "Exited (0) 2 seconds ago", "Created".
func statusString(c store.Container, now time.Time) string {
	switch dockerState(c) {
	case container.StateRunning, container.StatePaused:
		s := "Up " + units.HumanDuration(now.Sub(c.StartedAt))
		switch {
		case c.Paused:
			s += " (Paused)"
		case c.Health != nil && c.Health.Status == "starting":
			s += " (health: starting)"
		case c.Health != nil && c.Health.Status != "":
			s += " (" + c.Health.Status + ")"
		}
		return s
	case container.StateExited:
		return "Exited (" + strconv.Itoa(int(c.ExitCode)) + ") " + units.HumanDuration(now.Sub(c.FinishedAt)) + " ago"
	case container.StateCreated:
		return "Created"
	}
	return "Dead"
}
