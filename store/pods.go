package store

import (
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Records keep berth's own neutral terms, never one front door's wire
// format: the CRI adapter and the docker side both build their views (CRI
// status, docker inspect) from these fields, and both can make objects
// the other shows.

// Origin is the front door that made a sandbox or container.
type Origin string

// The front doors.
const (
	OriginCRI    Origin = "cri"
	OriginDocker Origin = "docker"
)

// NamespaceMode says whose namespace a container's process joins.
type NamespaceMode string

// Namespace modes. The zero value is NamespaceContainer.
const (
	// NamespaceContainer is the container's own.
	NamespaceContainer NamespaceMode = "container"
	// NamespacePod is the pod's, held by its infra process.
	NamespacePod NamespaceMode = "pod"
	// NamespaceHost is the host's.
	NamespaceHost NamespaceMode = "host"
	// NamespaceTarget is another container's (Container.PIDTarget).
	NamespaceTarget NamespaceMode = "target"
)

// DNS is a pod's resolver configuration; nil in a record means the
// host's resolv.conf.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// PortMapping publishes a pod's port on the host.
type PortMapping struct {
	HostPort      int32 `json:"hostPort"`
	ContainerPort int32 `json:"containerPort"`
	// Protocol is "tcp", "udp" or "sctp" (lower case).
	Protocol string `json:"protocol"`
	// HostIP limits the mapping to one host address; empty: all.
	HostIP string `json:"hostIP,omitempty"`
}

// Sandbox is a pod sandbox. Its state is derived from its timestamps:
//
//	            ReadyAt set            StoppedAt set
//	(created) ───────────────▶ ready ───────────────▶ not ready ──▶ (removed)
//	    │                                                 ▲
//	    └─────────────── StoppedAt set ───────────────────┘
//
// A record with neither ReadyAt nor StoppedAt found at start-up belongs to
// a RunPodSandbox that a crash interrupted: recovery tears it down.
type Sandbox struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	Attempt   uint32 `json:"attempt"`
	// Key is the sandbox's entry in the name index (SandboxNames): for
	// the CRI the unique name_namespace_uid_attempt it forbids twice.
	Key         string            `json:"key"`
	Origin      Origin            `json:"origin"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Hostname is the pod's host name as asked for (host-network pods
	// get the node's).
	Hostname string `json:"hostname,omitempty"`
	// LogDirectory is where the pod's containers' logs go; a container's
	// relative log path is joined to it.
	LogDirectory   string        `json:"logDirectory,omitempty"`
	DNS            *DNS          `json:"dns,omitempty"`
	PortMappings   []PortMapping `json:"portMappings,omitempty"`
	RuntimeHandler string        `json:"runtimeHandler,omitempty"`
	// Dir holds the pod's files (hostname, hosts, resolv.conf) and bundle.
	Dir string `json:"dir"`
	// NetNS is the pinned network namespace; empty for host network.
	NetNS string `json:"netns,omitempty"`
	// HostNetwork, HostIPC and HostPID: the pod uses the host's
	// namespace. SharedPID: its containers share one PID namespace by
	// default (the CRI's POD mode for the pod).
	HostNetwork bool              `json:"hostNetwork,omitempty"`
	HostIPC     bool              `json:"hostIPC,omitempty"`
	HostPID     bool              `json:"hostPID,omitempty"`
	SharedPID   bool              `json:"sharedPID,omitempty"`
	Sysctls     map[string]string `json:"sysctls,omitempty"`
	IPs         []string          `json:"ips,omitempty"`
	// Network is the named network the pod was made on (its eth0, IPs);
	// empty: the default pod network.
	Network string `json:"network,omitempty"`
	// Aliases are the pod's further names on Network (docker's
	// --network-alias), for its DNS.
	Aliases []string `json:"aliases,omitempty"`
	// NetworkDetached: the pod was taken off Network (docker's network
	// disconnect); its eth0 is gone until Connect puts it back.
	NetworkDetached bool `json:"networkDetached,omitempty"`
	// NetworkAttached says CNI ADD may have run, so DEL must.
	NetworkAttached bool `json:"networkAttached,omitempty"`
	// Networks are the further networks attached to the running pod
	// (docker's "network connect"), in the order they were attached.
	Networks []NetworkAttachment `json:"networks,omitempty"`
	// NoNetwork: the pod has a network namespace of its own with only
	// its loopback (docker's --network none).
	NoNetwork bool `json:"noNetwork,omitempty"`
	// ExtraHosts are further /etc/hosts entries ("name:ip", docker's
	// --add-host).
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// UserNS is the pinned user namespace of a pod with one (the CRI's
	// NamespaceMode_POD), which owns NetNS; UIDMap and GIDMap are its ID
	// mappings. Empty: the host's.
	UserNS       string                 `json:"userns,omitempty"`
	UIDMap       []specs.LinuxIDMapping `json:"uidMap,omitempty"`
	GIDMap       []specs.LinuxIDMapping `json:"gidMap,omitempty"`
	CgroupParent string                 `json:"cgroupParent,omitempty"`
	// Resources and Overhead are the pod-level resources the orchestrator
	// applied to the pod's cgroup (recorded, not enforced by berth).
	Resources *specs.LinuxResources `json:"resources,omitempty"`
	Overhead  *specs.LinuxResources `json:"overhead,omitempty"`
	// InfraPid is the pod's infra (pause) process; ShimPid its monitor.
	InfraPid  int       `json:"infraPid,omitempty"`
	ShimPid   int       `json:"shimPid,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ReadyAt   time.Time `json:"readyAt,omitzero"`
	StoppedAt time.Time `json:"stoppedAt,omitzero"`
}

// NetworkAttachment is a network a pod was attached to after it started.
type NetworkAttachment struct {
	Network   string   `json:"network"`
	Interface string   `json:"interface"`
	IPs       []string `json:"ips,omitempty"`
	// Aliases are the pod's further names on the network (for its DNS).
	Aliases []string `json:"aliases,omitempty"`
}

// Ready reports whether the sandbox is in the ready state.
func (s Sandbox) Ready() bool { return !s.ReadyAt.IsZero() && s.StoppedAt.IsZero() }

// Process is what a container runs, as requested (before it is merged
// with the image's entrypoint, cmd, env and working directory).
type Process struct {
	// Command replaces the image's entrypoint, Args its cmd.
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Env (KEY=value) is added to the image's.
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	TTY        bool     `json:"tty,omitempty"`
	Stdin      bool     `json:"stdin,omitempty"`
	StdinOnce  bool     `json:"stdinOnce,omitempty"`
}

// Mount is a container's mount as requested: a host path, or an image
// (or a path inside one) mounted read-only.
type Mount struct {
	Destination string `json:"destination"`
	// Source is the host path of a bind mount, as given (symlinks are
	// resolved when the container is created, not here).
	Source string `json:"source,omitempty"`
	// Volume names the docker volume (store.Volume) whose directory
	// Source is, so that the volume counts as in use while the container
	// exists.
	Volume string `json:"volume,omitempty"`
	// Image and ImageSubPath name an image volume instead.
	Image        string `json:"image,omitempty"`
	ImageSubPath string `json:"imageSubPath,omitempty"`
	ReadOnly     bool   `json:"readOnly,omitempty"`
	// RecursiveReadOnly makes every mount below Source read-only too.
	RecursiveReadOnly bool `json:"recursiveReadOnly,omitempty"`
	// Propagation is "rprivate" (the default when empty), "rslave" or
	// "rshared".
	Propagation string `json:"propagation,omitempty"`
}

// Device is a host device given to a container.
type Device struct {
	HostPath      string `json:"hostPath"`
	ContainerPath string `json:"containerPath"`
	// Permissions: some of "rwm".
	Permissions string `json:"permissions,omitempty"`
}

// User is who a container's process was asked to run as: a uid (and
// gid), a user name, or with neither the image's USER. The resolved
// identity is Container.UID/GID/Groups.
type User struct {
	UID                *int64  `json:"uid,omitempty"`
	Username           string  `json:"username,omitempty"`
	GID                *int64  `json:"gid,omitempty"`
	SupplementalGroups []int64 `json:"supplementalGroups,omitempty"`
	// StrictGroups: only GID and SupplementalGroups, not the image's
	// /etc/group membership.
	StrictGroups bool `json:"strictGroups,omitempty"`
}

// Security is a container's security settings as requested.
type Security struct {
	Privileged      bool     `json:"privileged,omitempty"`
	ReadonlyRootfs  bool     `json:"readonlyRootfs,omitempty"`
	NoNewPrivileges bool     `json:"noNewPrivileges,omitempty"`
	CapAdd          []string `json:"capAdd,omitempty"`
	CapDrop         []string `json:"capDrop,omitempty"`
	// MaskedPaths and ReadonlyPaths: nil means berth's defaults, empty
	// means none (so no omitempty).
	MaskedPaths   []string `json:"maskedPaths"`
	ReadonlyPaths []string `json:"readonlyPaths"`
	// SeccompProfile is "", "unconfined", "runtime/default" or
	// "localhost" with SeccompPath naming the profile file.
	SeccompProfile string `json:"seccompProfile,omitempty"`
	SeccompPath    string `json:"seccompPath,omitempty"`
}

// Container is a container of a sandbox. Its state is derived from its
// timestamps: created (CreatedAt only), running (StartedAt), exited
// (FinishedAt).
type Container struct {
	ID        string `json:"id"`
	SandboxID string `json:"sandboxID"`
	Name      string `json:"name"`
	Attempt   uint32 `json:"attempt"`
	// Key is the container's entry in the name index (ContainerNames):
	// for the CRI the unique name_sandboxid_attempt.
	Key         string            `json:"key"`
	Origin      Origin            `json:"origin"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Process     Process           `json:"process"`
	User        User              `json:"user"`
	Mounts      []Mount           `json:"mounts,omitempty"`
	Devices     []Device          `json:"devices,omitempty"`
	// Resources are the cgroup limits in force (as created, then as
	// last updated); nil: none asked for.
	Resources   *specs.LinuxResources `json:"resources,omitempty"`
	OOMScoreAdj *int                  `json:"oomScoreAdj,omitempty"`
	Security    Security              `json:"security"`
	// PIDMode is whose PID namespace the container uses; PIDTarget the
	// container whose namespace it joins in NamespaceTarget mode.
	// HostIPC: the host's IPC namespace instead of the pod's.
	PIDMode   NamespaceMode `json:"pidMode,omitempty"`
	PIDTarget string        `json:"pidTarget,omitempty"`
	HostIPC   bool          `json:"hostIPC,omitempty"`
	// Image is the name the request gave; ImageID the resolved image;
	// ImageRef the repo digest reported back (or the ID).
	Image    string        `json:"image"`
	ImageID  digest.Digest `json:"imageID"`
	ImageRef string        `json:"imageRef"`
	// ChainID is the image layer the writable layer sits on (a GC root).
	ChainID digest.Digest `json:"chainID"`
	// VolumeChainIDs are the images mounted as volumes (GC roots too).
	VolumeChainIDs []digest.Digest `json:"volumeChainIDs,omitempty"`
	RuntimeHandler string          `json:"runtimeHandler,omitempty"`
	// LogPath is the absolute path of the container's log ("": none).
	LogPath string `json:"logPath,omitempty"`
	// StopSignal is what Stop sends first: the request's, else the
	// image's STOPSIGNAL; empty means SIGTERM.
	StopSignal string `json:"stopSignal,omitempty"`
	// Dir holds upper/ and work/ (persistent); Bundle the OCI bundle and
	// rootfs mount point (state).
	Dir    string `json:"dir"`
	Bundle string `json:"bundle"`
	// UID, GID and Groups are the resolved identity of the process.
	UID        int64     `json:"uid"`
	GID        int64     `json:"gid"`
	Groups     []int64   `json:"groups,omitempty"`
	Pid        int       `json:"pid,omitempty"`
	ShimPid    int       `json:"shimPid,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	ExitCode   int32     `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`

	// The fields below are the docker side's (zero for CRI containers);
	// berthd's restart-policy and health-check loops read and write them.

	// RestartPolicy is what berthd does when the container exits (docker's
	// --restart); zero: "no".
	RestartPolicy RestartPolicy `json:"restartPolicy,omitzero"`
	// RestartCount counts the restarts berthd made under RestartPolicy
	// since the container was last started by a user (docker resets it
	// on "docker start"/"restart").
	RestartCount int `json:"restartCount,omitempty"`
	// StoppedByUser is set when a user stopped (or killed) the container
	// and cleared when a user starts it: "always" and "unless-stopped"
	// do not restart such a container until berthd restarts ("always")
	// or ever ("unless-stopped"), as docker's HasBeenManuallyStopped.
	StoppedByUser bool `json:"stoppedByUser,omitempty"`
	// AutoRemove: remove the container (and its sandbox) once it exits
	// (docker's --rm).
	AutoRemove bool `json:"autoRemove,omitempty"`
	// Healthcheck is the check berthd runs in the container (the
	// request's, else the image's HEALTHCHECK); nil: none.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// Health is the check's current state; nil while there is no check.
	Health *Health `json:"health,omitempty"`
	// Paused: the container's processes are frozen (cgroup freezer).
	Paused bool `json:"paused,omitempty"`
	// Entrypoint and Cmd are the process as docker shows it in inspect
	// (the request's, else the image's); Process keeps the request.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	// ExposedPorts are the container's exposed ports ("80/tcp"): the
	// image's EXPOSE and the request's.
	ExposedPorts []string `json:"exposedPorts,omitempty"`
	// StopTimeout is the grace period of a stop in seconds (nil: 10).
	StopTimeout *int `json:"stopTimeout,omitempty"`
	// Domainname is the container's NIS domain name (docker's --domainname).
	Domainname string `json:"domainname,omitempty"`
	// Init: the process runs under an init (docker's --init).
	Init bool `json:"init,omitempty"`
	// Tmpfs are the container's tmpfs mounts: path → mount options.
	Tmpfs map[string]string `json:"tmpfs,omitempty"`
	// Rlimits are the process's resource limits (docker's --ulimit).
	Rlimits []specs.POSIXRlimit `json:"rlimits,omitempty"`
}

// RestartPolicy is a docker restart policy.
type RestartPolicy struct {
	// Name is "", "no", "always", "on-failure" or "unless-stopped".
	Name string `json:"name,omitempty"`
	// MaximumRetryCount bounds the restarts of "on-failure" (0: no bound).
	MaximumRetryCount int `json:"maximumRetryCount,omitempty"`
}

// Healthcheck is a container's health check (docker's HEALTHCHECK).
type Healthcheck struct {
	// Test is ["CMD", args...], ["CMD-SHELL", command] or ["NONE"].
	Test []string `json:"test,omitempty"`
	// Interval, Timeout, StartPeriod and StartInterval: 0 means docker's
	// defaults (30s, 30s, 0s, 5s).
	Interval      time.Duration `json:"interval,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	StartPeriod   time.Duration `json:"startPeriod,omitempty"`
	StartInterval time.Duration `json:"startInterval,omitempty"`
	// Retries is the number of consecutive failures that make the
	// container unhealthy (0: 3).
	Retries int `json:"retries,omitempty"`
}

// Health is the state of a container's health check.
type Health struct {
	// Status is "starting", "healthy" or "unhealthy".
	Status        string `json:"status"`
	FailingStreak int    `json:"failingStreak,omitempty"`
	// Log holds the last results (docker keeps 5), oldest first.
	Log []HealthResult `json:"log,omitempty"`
}

// HealthResult is one run of a health check.
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"`
}

// LabelsMatch reports whether labels include every label of selector
// (an empty selector matches all), the list filters' label rule.
func LabelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
