package store

import (
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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
	// Key is the unique name (name_namespace_uid_attempt) the CRI forbids
	// twice.
	Key         string            `json:"key"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Config is the CRI PodSandboxConfig as protobuf bytes.
	Config         []byte `json:"config"`
	RuntimeHandler string `json:"runtimeHandler,omitempty"`
	// Dir holds the pod's files (hostname, hosts, resolv.conf) and bundle.
	Dir string `json:"dir"`
	// NetNS is the pinned network namespace; empty for host network.
	NetNS       string   `json:"netns,omitempty"`
	HostNetwork bool     `json:"hostNetwork,omitempty"`
	IPs         []string `json:"ips,omitempty"`
	// NetworkAttached says CNI ADD may have run, so DEL must.
	NetworkAttached bool `json:"networkAttached,omitempty"`
	// UserNS is the pinned user namespace of a pod with one (the CRI's
	// NamespaceMode_POD), which owns NetNS; UIDMap and GIDMap are its ID
	// mappings. Empty: the host's.
	UserNS       string                 `json:"userns,omitempty"`
	UIDMap       []specs.LinuxIDMapping `json:"uidMap,omitempty"`
	GIDMap       []specs.LinuxIDMapping `json:"gidMap,omitempty"`
	CgroupParent string                 `json:"cgroupParent,omitempty"`
	// InfraPid is the pod's infra (pause) process; ShimPid its monitor.
	InfraPid  int       `json:"infraPid,omitempty"`
	ShimPid   int       `json:"shimPid,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ReadyAt   time.Time `json:"readyAt,omitzero"`
	StoppedAt time.Time `json:"stoppedAt,omitzero"`
}

// Ready reports whether the sandbox is in the ready state.
func (s Sandbox) Ready() bool { return !s.ReadyAt.IsZero() && s.StoppedAt.IsZero() }

// Container is a container of a sandbox. Its state is derived from its
// timestamps: created (CreatedAt only), running (StartedAt), exited
// (FinishedAt).
type Container struct {
	ID        string `json:"id"`
	SandboxID string `json:"sandboxID"`
	Name      string `json:"name"`
	Attempt   uint32 `json:"attempt"`
	// Key is the unique name (name_sandboxkey_attempt).
	Key         string            `json:"key"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Config is the CRI ContainerConfig as protobuf bytes.
	Config []byte `json:"config"`
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
	LogPath        string          `json:"logPath,omitempty"`
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
}
