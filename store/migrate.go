package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// migrations[v] turns a database of schema version v into version v+1,
// inside the transaction that opens it.
var migrations = map[int]func(*Tx) error{
	1: migrateV1,
}

// migrateV1 replaces the CRI request protobuf that schema 1 kept in
// sandbox and container records ("config") with the neutral fields,
// decoding each once, and fills the name indexes from the records' keys.
// This is the only place the store reads CRI protobuf, and only the
// frozen shape schema 1 wrote; a record that does not decode fails the
// migration (and the open) rather than losing its settings.
func migrateV1(tx *Tx) error {
	if err := migrateRecords(tx, Sandboxes, SandboxNames, func(data []byte) (string, string, any, error) {
		var old struct {
			Sandbox
			Config []byte `json:"config"`
		}
		if err := json.Unmarshal(data, &old); err != nil {
			return "", "", nil, err
		}
		cfg := &runtimeapi.PodSandboxConfig{}
		if err := proto.Unmarshal(old.Config, cfg); err != nil {
			return "", "", nil, fmt.Errorf("its CRI config: %w", err)
		}
		sb := old.Sandbox
		v1Sandbox(&sb, cfg)
		return sb.ID, sb.Key, sb, nil
	}); err != nil {
		return err
	}
	return migrateRecords(tx, Containers, ContainerNames, func(data []byte) (string, string, any, error) {
		var old struct {
			Container
			Config []byte `json:"config"`
		}
		if err := json.Unmarshal(data, &old); err != nil {
			return "", "", nil, err
		}
		cfg := &runtimeapi.ContainerConfig{}
		if err := proto.Unmarshal(old.Config, cfg); err != nil {
			return "", "", nil, fmt.Errorf("its CRI config: %w", err)
		}
		c := old.Container
		v1Container(&c, cfg)
		return c.ID, c.Key, c, nil
	})
}

// migrateRecords rewrites every record of b with convert and indexes its
// name in names.
func migrateRecords(tx *Tx, b, names Bucket, convert func([]byte) (id, name string, rec any, err error)) error {
	type rewrite struct {
		key  string
		data []byte
	}
	var out []rewrite
	bk := tx.tx.Bucket([]byte(b))
	err := bk.ForEach(func(k, data []byte) error {
		id, name, rec, err := convert(data)
		if err != nil {
			return fmt.Errorf("%s %q: %v: %w", b, k, err, errdefs.ErrDataLoss)
		}
		if id != string(k) {
			return fmt.Errorf("%s %q holds the record of %q: %w", b, k, id, errdefs.ErrDataLoss)
		}
		// Schema 1 held names in memory only; should two records share
		// one, the first keeps it and the other stays reachable by id.
		if name != "" {
			if err := ReserveName(tx, names, name, id); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
				return err
			}
		}
		data, err = json.Marshal(rec)
		if err != nil {
			return err
		}
		out = append(out, rewrite{string(k), data})
		return nil
	})
	if err != nil {
		return err
	}
	// Not inside ForEach: bbolt forbids changing a bucket it iterates.
	for _, r := range out {
		if err := bk.Put([]byte(r.key), r.data); err != nil {
			return err
		}
	}
	return nil
}

func v1Sandbox(sb *Sandbox, cfg *runtimeapi.PodSandboxConfig) {
	sb.Origin = OriginCRI
	sb.Hostname = cfg.Hostname
	sb.LogDirectory = cfg.LogDirectory
	if d := cfg.DnsConfig; d != nil {
		sb.DNS = &DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	for _, p := range cfg.PortMappings {
		sb.PortMappings = append(sb.PortMappings, PortMapping{
			HostPort: p.HostPort, ContainerPort: p.ContainerPort, HostIP: p.HostIp,
			Protocol: strings.ToLower(p.Protocol.String()),
		})
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	sb.HostIPC = ns.GetIpc() == runtimeapi.NamespaceMode_NODE
	sb.HostPID = ns.GetPid() == runtimeapi.NamespaceMode_NODE
	sb.SharedPID = ns.GetPid() == runtimeapi.NamespaceMode_POD
	sb.Sysctls = cfg.GetLinux().GetSysctls()
	sb.Resources = v1Resources(cfg.GetLinux().GetResources())
	sb.Overhead = v1Resources(cfg.GetLinux().GetOverhead())
}

func v1Container(c *Container, cfg *runtimeapi.ContainerConfig) {
	c.Origin = OriginCRI
	c.Process = Process{
		Command: cfg.Command, Args: cfg.Args, WorkingDir: cfg.WorkingDir,
		TTY: cfg.Tty, Stdin: cfg.Stdin, StdinOnce: cfg.StdinOnce,
	}
	for _, kv := range cfg.Envs {
		c.Process.Env = append(c.Process.Env, kv.Key+"="+string(kv.Value))
	}
	sec := cfg.GetLinux().GetSecurityContext()
	c.User = User{
		Username:           sec.GetRunAsUsername(),
		SupplementalGroups: sec.GetSupplementalGroups(),
		StrictGroups:       sec.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict,
	}
	if sec.GetRunAsUser() != nil {
		c.User.UID = &sec.RunAsUser.Value
	}
	if sec.GetRunAsGroup() != nil {
		c.User.GID = &sec.RunAsGroup.Value
	}
	for _, m := range cfg.Mounts {
		mnt := Mount{
			Destination: m.ContainerPath, Source: m.HostPath, ReadOnly: m.Readonly, RecursiveReadOnly: m.RecursiveReadOnly,
			Image: m.GetImage().GetImage(), ImageSubPath: m.ImageSubPath,
		}
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			mnt.Propagation = "rslave"
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			mnt.Propagation = "rshared"
		}
		c.Mounts = append(c.Mounts, mnt)
	}
	for _, d := range cfg.Devices {
		c.Devices = append(c.Devices, Device{HostPath: d.HostPath, ContainerPath: d.ContainerPath, Permissions: d.Permissions})
	}
	if res := cfg.GetLinux().GetResources(); res != nil {
		c.Resources = v1Resources(res)
		if res.OomScoreAdj != 0 {
			adj := int(res.OomScoreAdj)
			c.OOMScoreAdj = &adj
		}
	}
	c.Security = Security{
		Privileged: sec.GetPrivileged(), ReadonlyRootfs: sec.GetReadonlyRootfs(), NoNewPrivileges: sec.GetNoNewPrivs(),
		CapAdd: sec.GetCapabilities().GetAddCapabilities(), CapDrop: sec.GetCapabilities().GetDropCapabilities(),
		MaskedPaths: sec.GetMaskedPaths(), ReadonlyPaths: sec.GetReadonlyPaths(),
	}
	if p := sec.GetSeccomp(); p != nil {
		switch p.ProfileType {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			c.Security.SeccompProfile = "runtime/default"
		case runtimeapi.SecurityProfile_Unconfined:
			c.Security.SeccompProfile = "unconfined"
		case runtimeapi.SecurityProfile_Localhost:
			c.Security.SeccompProfile, c.Security.SeccompPath = "localhost", p.LocalhostRef
		}
	} else {
		switch old := sec.GetSeccompProfilePath(); {
		case old == "runtime/default" || old == "docker/default":
			c.Security.SeccompProfile = "runtime/default"
		case old == "unconfined":
			c.Security.SeccompProfile = "unconfined"
		case strings.HasPrefix(old, "localhost/"):
			c.Security.SeccompProfile, c.Security.SeccompPath = "localhost", strings.TrimPrefix(old, "localhost/")
		}
	}
	ns := sec.GetNamespaceOptions()
	c.HostIPC = ns.GetIpc() == runtimeapi.NamespaceMode_NODE
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		c.PIDMode = NamespacePod
	case runtimeapi.NamespaceMode_NODE:
		c.PIDMode = NamespaceHost
	case runtimeapi.NamespaceMode_TARGET:
		c.PIDMode, c.PIDTarget = NamespaceTarget, ns.GetTargetId()
	default:
		c.PIDMode = NamespaceContainer
	}
}

// v1Resources is the CRI → OCI translation schema-1 berth applied.
func v1Resources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	if r == nil {
		return nil
	}
	out := &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}, Memory: &specs.LinuxMemory{}}
	if r.CpuShares != 0 {
		shares := uint64(r.CpuShares)
		out.CPU.Shares = &shares
	}
	if r.CpuQuota != 0 {
		out.CPU.Quota = &r.CpuQuota
	}
	if r.CpuPeriod != 0 {
		period := uint64(r.CpuPeriod)
		out.CPU.Period = &period
	}
	if r.MemoryLimitInBytes != 0 {
		out.Memory.Limit = &r.MemoryLimitInBytes
	}
	if r.MemorySwapLimitInBytes != 0 {
		out.Memory.Swap = &r.MemorySwapLimitInBytes
	}
	for _, h := range r.HugepageLimits {
		out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.PageSize, Limit: h.Limit})
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
	return out
}
