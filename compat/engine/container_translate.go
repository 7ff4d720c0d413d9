package engine

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/store"
)

// createPlan is a docker create request translated into the services'
// terms: the sandbox to run (unless the container joins another's
// network namespace, JoinContainer) and the container to create in it.
type createPlan struct {
	Sandbox   sandbox.RunRequest
	Container runtime.CreateRequest
	// NetworkMode is the request's ("bridge" when it gave none); Network
	// the network name to resolve for the sandbox ("" for host, none and
	// container:X).
	NetworkMode string
	Network     string
	// JoinContainer is X of --network container:X.
	JoinContainer string
	// Volumes are the named and anonymous volumes to mount: the volume
	// service makes (or finds) them, then they are binds of their
	// directories.
	Volumes []volumeMount
	// VolumesFrom are --volumes-from's containers ("name[:ro|:rw]").
	VolumesFrom []string
	// Links are --link's containers ("name[:alias]").
	Links []string
}

// volumeMount is a volume the request mounts; an empty Name is an
// anonymous volume.
type volumeMount struct {
	Name, Destination string
	ReadOnly, NoCopy  bool
}

// translateEnv is what translateCreate needs besides the request: the
// container's id and name, the image's config, and the host facts.
type translateEnv struct {
	ID, Name string
	Image    *v1.ConfigFile
	// FreePort picks a free host port for a published port without one.
	FreePort func(proto string) (int32, error)
	// InitBinary is the host's init for --init ("" if there is none).
	InitBinary string
}

// logName is the file name of a docker container's log, in its directory.
const logName = "container.log"

// translateCreate turns a docker create request into the sandbox and
// container requests, validating as dockerd does. It is pure: no service
// is called, nothing is made.
func translateCreate(req container.CreateRequest, env translateEnv) (createPlan, error) {
	cfg := req.Config
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	img := env.Image
	if img == nil {
		img = &v1.ConfigFile{}
	}
	var p createPlan
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return p, errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return p, errorf(errdefs.ErrInvalidArgument, "can't create 'AutoRemove' container with restart policy")
	}

	// The network.
	mode := string(hc.NetworkMode)
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	p.NetworkMode = mode
	sb := sandbox.RunRequest{
		Name: env.Name, Namespace: "docker", UID: env.ID, UniqueName: env.ID,
		Origin: store.OriginDocker, Hostname: cmp.Or(cfg.Hostname, env.ID[:12]),
		Annotations: maps.Clone(hc.Annotations), Domainname: cfg.Domainname, ShmSize: hc.ShmSize,
	}
	switch {
	case mode == "host":
		sb.HostNetwork = true
		sb.Hostname = ""
		if cfg.Hostname != "" {
			return p, errorf(errdefs.ErrInvalidArgument, "conflicting options: hostname and the network mode")
		}
	case mode == "none":
		sb.NoNetwork = true
	case strings.HasPrefix(mode, "container:"):
		p.JoinContainer = strings.TrimPrefix(mode, "container:")
		if p.JoinContainer == "" {
			return p, errorf(errdefs.ErrInvalidArgument, "invalid network mode: %s", mode)
		}
		if cfg.Hostname != "" {
			return p, errorf(errdefs.ErrInvalidArgument, "conflicting options: hostname and the network mode")
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return p, errorf(errdefs.ErrInvalidArgument, "conflicting options: port publishing and the container type network mode")
		}
		if len(hc.DNS) > 0 || len(hc.ExtraHosts) > 0 {
			return p, errorf(errdefs.ErrInvalidArgument, "conflicting options: dns and the network mode")
		}
	default:
		p.Network = mode
	}
	if hc.DNS != nil || hc.DNSSearch != nil || hc.DNSOptions != nil {
		dns := &podfiles.DNS{Searches: hc.DNSSearch, Options: hc.DNSOptions}
		for _, a := range hc.DNS {
			dns.Servers = append(dns.Servers, a.String())
		}
		sb.DNS = dns
	}
	if _, err := podfiles.ExtraHosts(hc.ExtraHosts); err != nil {
		return p, errorf(errdefs.ErrInvalidArgument, "%s", strings.TrimSuffix(err.Error(), ": "+errdefs.ErrInvalidArgument.Error()))
	}
	sb.ExtraHosts = hc.ExtraHosts
	if len(hc.Sysctls) > 0 {
		sb.Sysctls = hc.Sysctls
	}

	// Ports: the exposed ones (image and request), the published ones.
	exposed := map[network.Port]struct{}{}
	for k := range img.Config.ExposedPorts {
		if port, err := network.ParsePort(k); err == nil {
			exposed[port] = struct{}{}
		}
	}
	for port := range cfg.ExposedPorts {
		exposed[port] = struct{}{}
	}
	bindings := network.PortMap{}
	for port, bs := range hc.PortBindings {
		exposed[port] = struct{}{}
		bindings[port] = bs
	}
	if hc.PublishAllPorts {
		for port := range exposed {
			if _, ok := bindings[port]; !ok {
				bindings[port] = []network.PortBinding{{}}
			}
		}
	}
	if len(bindings) > 0 && (sb.HostNetwork || sb.NoNetwork) {
		bindings = network.PortMap{} // docker ignores them there
	}
	ports := slices.SortedFunc(maps.Keys(bindings), func(a, b network.Port) int { return cmp.Compare(a.String(), b.String()) })
	for _, port := range ports {
		for _, b := range bindings[port] {
			hostPort := int32(0)
			if hp := strings.TrimSpace(b.HostPort); hp != "" {
				start, _, _ := strings.Cut(hp, "-")
				n, err := strconv.ParseUint(start, 10, 16)
				if err != nil {
					return p, errorf(errdefs.ErrInvalidArgument, "invalid port specification: %q", b.HostPort)
				}
				hostPort = int32(n)
			}
			if hostPort == 0 {
				if env.FreePort == nil {
					return p, errorf(errdefs.ErrInvalidArgument, "no free host port for %s", port)
				}
				n, err := env.FreePort(string(port.Proto()))
				if err != nil {
					return p, err
				}
				hostPort = n
			}
			pm := cni.PortMapping{HostPort: hostPort, ContainerPort: int32(port.Num()), Protocol: string(port.Proto())}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				pm.HostIP = b.HostIP.String()
			}
			sb.PortMappings = append(sb.PortMappings, pm)
		}
	}
	var exposedList []string
	for port := range exposed {
		exposedList = append(exposedList, port.String())
	}
	sort.Strings(exposedList)

	// The process.
	ep, cmd := img.Config.Entrypoint, img.Config.Cmd
	if len(cfg.Entrypoint) > 0 {
		ep, cmd = cfg.Entrypoint, nil
		if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
			ep = nil // --entrypoint "": none
		}
	}
	if len(cfg.Cmd) > 0 {
		cmd = cfg.Cmd
	}
	if len(ep) == 0 && len(cmd) == 0 {
		return p, errorf(errdefs.ErrInvalidArgument, "no command specified")
	}
	labels := maps.Clone(img.Config.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, cfg.Labels)

	// Env and working directory as docker records them: the image's
	// merged with the request's.
	_, envOut, _, _ := oci.MergeProcess(oci.ProcessSources{
		Image:   oci.ProcessConfig{Env: img.Config.Env, Cmd: []string{"-"}},
		Request: oci.ProcessConfig{Env: cfg.Env},
	})
	c := runtime.CreateRequest{
		ID: env.ID, Name: env.Name, UniqueName: env.Name, Origin: store.OriginDocker,
		Labels: labels, Annotations: maps.Clone(hc.Annotations), Image: cfg.Image,
		// Entrypoint and Cmd as docker resolved them: the image's are
		// already folded in, so none of them applies twice.
		Command: ep, Args: cmd, Env: envOut, WorkingDir: cmp.Or(cfg.WorkingDir, img.Config.WorkingDir),
		TTY: cfg.Tty, Stdin: cfg.OpenStdin, StdinOnce: cfg.StdinOnce,
		LogName:    logName,
		Privileged: hc.Privileged, ReadonlyRootfs: hc.ReadonlyRootfs,
		CapAdd: hc.CapAdd, CapDrop: hc.CapDrop, PIDMode: store.NamespaceContainer,
		StopSignal: cfg.StopSignal, ShmSize: hc.ShmSize,
		SeccompProfile: runtime.SeccompRuntimeDefault,
		MaskedPaths:    hc.MaskedPaths, ROPaths: hc.ReadonlyPaths,
		Docker: runtime.DockerFields{
			RestartPolicy: store.RestartPolicy{Name: string(hc.RestartPolicy.Name), MaximumRetryCount: hc.RestartPolicy.MaximumRetryCount},
			AutoRemove:    hc.AutoRemove, Entrypoint: ep, Cmd: cmd, ExposedPorts: exposedList,
			StopTimeout: cfg.StopTimeout, Domainname: cfg.Domainname,
		},
	}
	if len(ep) == 0 {
		// No entrypoint: Cmd is the whole argv. (An empty Command would
		// bring the image's entrypoint back.)
		c.Command, c.Args = cmd, nil
	}
	if cfg.User != "" {
		c.User.Username = cfg.User
	}
	for _, g := range hc.GroupAdd {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return p, errorf(errdefs.ErrInvalidArgument, "group-add: only numeric groups are supported: %q", g)
		}
		c.User.SupplementalGroups = append(c.User.SupplementalGroups, n)
	}
	switch hc.PidMode {
	case "":
	case "host":
		c.PIDMode = store.NamespaceHost
	default:
		return p, errorf(errdefs.ErrInvalidArgument, "--pid=%s is not supported", hc.PidMode)
	}
	switch hc.IpcMode {
	case "", "private", "shareable":
	case "host":
		c.HostIPC = true
		sb.HostIPC = true
	default:
		return p, errorf(errdefs.ErrInvalidArgument, "--ipc=%s is not supported", hc.IpcMode)
	}
	if hc.OomScoreAdj != 0 {
		if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
			return p, errorf(errdefs.ErrInvalidArgument, "Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
		}
		adj := hc.OomScoreAdj
		c.OOMScoreAdj = &adj
	}
	if err := securityOpts(hc.SecurityOpt, &c); err != nil {
		return p, err
	}
	if hc.Init != nil && *hc.Init {
		if env.InitBinary == "" {
			return p, errorf(errdefs.ErrFailedPrecondition, "--init: no init binary (docker-init or a static tini) was found on the host")
		}
		c.Init = env.InitBinary
	}

	// Health check: the request's, else the image's; NONE disables it.
	hcfg := cfg.Healthcheck
	if hcfg == nil || len(hcfg.Test) == 0 && hcfg.Interval == 0 && hcfg.Timeout == 0 && hcfg.Retries == 0 {
		if ih := img.Config.Healthcheck; ih != nil {
			merged := container.HealthConfig{Test: ih.Test, Interval: ih.Interval, Timeout: ih.Timeout, StartPeriod: ih.StartPeriod, Retries: ih.Retries}
			if hcfg != nil {
				merged.Interval = cmp.Or(hcfg.Interval, merged.Interval)
				merged.Timeout = cmp.Or(hcfg.Timeout, merged.Timeout)
				merged.Retries = cmp.Or(hcfg.Retries, merged.Retries)
				merged.StartPeriod = cmp.Or(hcfg.StartPeriod, merged.StartPeriod)
			}
			hcfg = &merged
		}
	}
	if hcfg != nil && len(hcfg.Test) > 0 && hcfg.Test[0] != "NONE" {
		for _, d := range []time.Duration{hcfg.Interval, hcfg.Timeout, hcfg.StartPeriod, hcfg.StartInterval} {
			if d != 0 && d < container.MinimumDuration {
				return p, errorf(errdefs.ErrInvalidArgument, "Interval in Healthcheck cannot be less than %s", container.MinimumDuration)
			}
		}
		if hcfg.Retries < 0 {
			return p, errorf(errdefs.ErrInvalidArgument, "Retries in Healthcheck cannot be negative")
		}
		c.Docker.Healthcheck = &store.Healthcheck{
			Test: hcfg.Test, Interval: hcfg.Interval, Timeout: hcfg.Timeout,
			StartPeriod: hcfg.StartPeriod, StartInterval: hcfg.StartInterval, Retries: hcfg.Retries,
		}
	}

	// Resources.
	res, err := resources(hc.Resources)
	if err != nil {
		return p, err
	}
	c.Resources = res
	for _, u := range hc.Ulimits {
		if u == nil {
			continue
		}
		c.Rlimits = append(c.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	for _, d := range hc.Devices {
		c.Devices = append(c.Devices, oci.Device{HostPath: d.PathOnHost, ContainerPath: d.PathInContainer, Permissions: d.CgroupPermissions})
	}

	// Mounts.
	if err := mounts(cfg, hc, img, &c, &p); err != nil {
		return p, err
	}
	p.VolumesFrom, p.Links = hc.VolumesFrom, hc.Links
	p.Sandbox, p.Container = sb, c
	return p, nil
}

// securityOpts applies --security-opt: no-new-privileges, seccomp
// unconfined; labels and apparmor are accepted and ignored (no SELinux or
// AppArmor here).
func securityOpts(opts []string, c *runtime.CreateRequest) error {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		switch k {
		case "no-new-privileges":
			on := true
			if ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errorf(errdefs.ErrInvalidArgument, "invalid --security-opt 2: %q", o)
				}
				on = b
			}
			c.NoNewPrivileges = on
		case "seccomp":
			switch v {
			case "unconfined":
				c.SeccompProfile = runtime.SeccompUnconfined
			case "builtin", "":
				c.SeccompProfile = runtime.SeccompRuntimeDefault
			default:
				return errorf(errdefs.ErrNotImplemented, "custom seccomp profiles are not supported; use seccomp=unconfined or the default")
			}
		case "label", "apparmor", "systempaths":
			if k == "systempaths" && v == "unconfined" {
				c.MaskedPaths, c.ROPaths = []string{}, []string{}
			}
		default:
			return errorf(errdefs.ErrInvalidArgument, "invalid --security-opt 1: %q", o)
		}
	}
	return nil
}

// resources turns docker's limits into the OCI resources (nil: none).
func resources(r container.Resources) (*specs.LinuxResources, error) {
	var out specs.LinuxResources
	set := false
	if r.NanoCPUs != 0 && (r.CPUPeriod != 0 || r.CPUQuota != 0) {
		return nil, errorf(errdefs.ErrInvalidArgument, "Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs < 0 || r.Memory < 0 || r.CPUShares < 0 {
		return nil, errorf(errdefs.ErrInvalidArgument, "invalid resource limits: negative value")
	}
	if r.Memory > 0 && r.Memory < 6*1024*1024 {
		return nil, errorf(errdefs.ErrInvalidArgument, "Minimum memory limit allowed is 6MB")
	}
	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = &r.Memory
		set = true
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = &r.MemoryReservation
		set = true
	}
	if r.MemorySwap != 0 {
		if r.MemorySwap > 0 && r.Memory > 0 && r.MemorySwap < r.Memory {
			return nil, errorf(errdefs.ErrInvalidArgument, "Minimum memoryswap limit should be larger than memory limit, see usage")
		}
		mem.Swap = &r.MemorySwap
		set = true
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		sw := uint64(*r.MemorySwappiness)
		mem.Swappiness = &sw
		set = true
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		mem.DisableOOMKiller = r.OomKillDisable
		set = true
	}
	if mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil || mem.Swappiness != nil || mem.DisableOOMKiller != nil {
		out.Memory = mem
	}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares > 0 {
		sh := uint64(r.CPUShares)
		cpu.Shares = &sh
	}
	if r.NanoCPUs > 0 {
		period := uint64(100000)
		quota := r.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	}
	if r.CPUPeriod > 0 {
		period := uint64(r.CPUPeriod)
		cpu.Period = &period
	}
	if r.CPUQuota > 0 {
		q := r.CPUQuota
		cpu.Quota = &q
	}
	if cpu.Shares != nil || cpu.Period != nil || cpu.Quota != nil || cpu.Cpus != "" || cpu.Mems != "" {
		out.CPU = cpu
		set = true
	}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		limit := *r.PidsLimit
		out.Pids = &specs.LinuxPids{Limit: &limit}
		set = true
	}
	if r.BlkioWeight > 0 {
		w := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		set = true
	}
	if !set {
		return nil, nil
	}
	return &out, nil
}

// mounts translates -v binds, --mount and --tmpfs; named and anonymous
// volumes (and the image's VOLUMEs) go to p.Volumes for the volume
// service.
func mounts(cfg *container.Config, hc *container.HostConfig, img *v1.ConfigFile, c *runtime.CreateRequest, p *createPlan) error {
	taken := map[string]bool{}
	claim := func(dst string) error {
		dst = path.Clean(dst)
		if taken[dst] {
			return errorf(errdefs.ErrInvalidArgument, "Duplicate mount point: %s", dst)
		}
		taken[dst] = true
		return nil
	}
	for _, b := range hc.Binds {
		src, dst, opts, err := parseBind(b)
		if err != nil {
			return err
		}
		if err := claim(dst); err != nil {
			return err
		}
		ro := slices.Contains(opts, "ro")
		prop := ""
		for _, o := range opts {
			switch o {
			case "rprivate", "private", "rshared", "shared", "rslave", "slave":
				prop = o
			}
		}
		if path.IsAbs(src) {
			c.Mounts = append(c.Mounts, oci.Mount{Source: src, Destination: dst, ReadOnly: ro, Propagation: prop})
		} else {
			p.Volumes = append(p.Volumes, volumeMount{Name: src, Destination: dst, ReadOnly: ro, NoCopy: slices.Contains(opts, "nocopy")})
		}
	}
	for _, m := range hc.Mounts {
		if m.Target == "" || !path.IsAbs(m.Target) {
			return errorf(errdefs.ErrInvalidArgument, "invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Target)
		}
		if err := claim(m.Target); err != nil {
			return err
		}
		switch m.Type {
		case mount.TypeBind:
			if !path.IsAbs(m.Source) {
				return errorf(errdefs.ErrInvalidArgument, "invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
			}
			om := oci.Mount{Source: m.Source, Destination: m.Target, ReadOnly: m.ReadOnly}
			if m.BindOptions != nil {
				om.Propagation = string(m.BindOptions.Propagation)
			}
			c.Mounts = append(c.Mounts, om)
		case mount.TypeVolume:
			p.Volumes = append(p.Volumes, volumeMount{Name: m.Source, Destination: path.Clean(m.Target), ReadOnly: m.ReadOnly, NoCopy: m.VolumeOptions != nil && m.VolumeOptions.NoCopy})
		case mount.TypeTmpfs:
			var opts []string
			if t := m.TmpfsOptions; t != nil {
				if t.SizeBytes > 0 {
					opts = append(opts, "size="+strconv.FormatInt(t.SizeBytes, 10))
				}
				if t.Mode != 0 {
					opts = append(opts, fmt.Sprintf("mode=%o", t.Mode))
				}
			}
			addTmpfs(c, m.Target, strings.Join(opts, ","))
		default:
			return errorf(errdefs.ErrInvalidArgument, "mount type %q is not supported", m.Type)
		}
	}
	for dst, opts := range hc.Tmpfs {
		if !path.IsAbs(dst) {
			return errorf(errdefs.ErrInvalidArgument, "invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", dst)
		}
		if err := claim(dst); err != nil {
			return err
		}
		addTmpfs(c, dst, opts)
	}
	// Anonymous volumes for the request's and the image's VOLUMEs not
	// mounted otherwise.
	vols := slices.Sorted(maps.Keys(img.Config.Volumes))
	vols = append(vols, slices.Sorted(maps.Keys(cfg.Volumes))...)
	for _, dst := range vols {
		if !path.IsAbs(dst) || taken[path.Clean(dst)] {
			continue
		}
		taken[path.Clean(dst)] = true
		p.Volumes = append(p.Volumes, volumeMount{Destination: path.Clean(dst)})
	}
	return nil
}

// addTmpfs mounts a tmpfs at dst with docker's default options.
func addTmpfs(c *runtime.CreateRequest, dst, opts string) {
	o := []string{"nosuid", "nodev", "noexec"}
	for _, x := range strings.Split(opts, ",") {
		if x = strings.TrimSpace(x); x != "" {
			o = append(o, x)
		}
	}
	c.Mounts = append(c.Mounts, oci.Mount{Type: "tmpfs", Source: "tmpfs", Destination: dst, Options: o})
	if c.Docker.Tmpfs == nil {
		c.Docker.Tmpfs = map[string]string{}
	}
	c.Docker.Tmpfs[dst] = opts
}

// parseBind splits a -v spec: "/host:/ctr[:opts]", "name:/ctr[:opts]" or
// "/ctr" (an anonymous volume: src is "").
func parseBind(spec string) (src, dst string, opts []string, err error) {
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if path.IsAbs(parts[0]) && !path.IsAbs(parts[1]) {
			dst, opts = parts[0], strings.Split(parts[1], ",")
		} else {
			src, dst = parts[0], parts[1]
		}
	case 3:
		src, dst, opts = parts[0], parts[1], strings.Split(parts[2], ",")
	default:
		return "", "", nil, errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s'", spec)
	}
	if dst == "" || !path.IsAbs(dst) {
		return "", "", nil, errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s': invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", spec, dst)
	}
	if dst == "/" {
		return "", "", nil, errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s': invalid mount config for type \"bind\": invalid specification: destination can't be '/'", spec)
	}
	for _, o := range opts {
		switch o {
		case "ro", "rw", "z", "Z", "nocopy", "rprivate", "private", "rshared", "shared", "rslave", "slave", "consistent", "cached", "delegated":
		default:
			return "", "", nil, errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s': invalid mode: %s", spec, o)
		}
	}
	return src, path.Clean(dst), opts, nil
}
