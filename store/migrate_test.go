package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// v1Sandbox and v1Container are the record shapes schema 1 wrote (a
// frozen copy of the fields that matter here), with the CRI config as
// protobuf bytes.
type v1SandboxRecord struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	UID         string            `json:"uid"`
	Key         string            `json:"key"`
	Labels      map[string]string `json:"labels,omitempty"`
	Config      []byte            `json:"config"`
	Dir         string            `json:"dir"`
	NetNS       string            `json:"netns,omitempty"`
	HostNetwork bool              `json:"hostNetwork,omitempty"`
	IPs         []string          `json:"ips,omitempty"`
	InfraPid    int               `json:"infraPid,omitempty"`
	ShimPid     int               `json:"shimPid,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
	ReadyAt     time.Time         `json:"readyAt,omitzero"`
}

type v1ContainerRecord struct {
	ID         string    `json:"id"`
	SandboxID  string    `json:"sandboxID"`
	Name       string    `json:"name"`
	Key        string    `json:"key"`
	Config     []byte    `json:"config"`
	Image      string    `json:"image"`
	LogPath    string    `json:"logPath,omitempty"`
	StopSignal string    `json:"stopSignal,omitempty"`
	Bundle     string    `json:"bundle"`
	Pid        int       `json:"pid,omitempty"`
	ShimPid    int       `json:"shimPid,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
}

// writeV1 makes a database as schema-1 berth left it.
func writeV1(t *testing.T, path string, sandboxes []v1SandboxRecord, containers []v1ContainerRecord) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"meta", "images", "image-names", "snapshots", "sandboxes", "containers"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1")); err != nil {
			return err
		}
		for _, sb := range sandboxes {
			data, _ := json.Marshal(sb)
			if err := tx.Bucket([]byte("sandboxes")).Put([]byte(sb.ID), data); err != nil {
				return err
			}
		}
		for _, c := range containers {
			data, _ := json.Marshal(c)
			if err := tx.Bucket([]byte("containers")).Put([]byte(c.ID), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMigrateV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	now := time.Now().UTC().Truncate(time.Second)
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"},
		Hostname:     "web-host",
		LogDirectory: "/var/log/pods/ns_web_u1",
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"ns.svc"}, Options: []string{"ndots:5"}},
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"}},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_NODE,
			}},
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 512},
		},
	}
	ctrCfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "app"},
		Image:      &runtimeapi.ImageSpec{Image: "busybox"},
		Command:    []string{"/bin/sh"},
		Args:       []string{"-c", "sleep 1000"},
		WorkingDir: "/work",
		Envs:       []*runtimeapi.KeyValue{{Key: "A", Value: []byte("b")}},
		Tty:        true,
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/data", HostPath: "/srv/data", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			{ContainerPath: "/img", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "docker.io/library/alpine:3"}, ImageSubPath: "etc"},
		},
		Devices: []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuQuota: 50000, CpuPeriod: 100000, OomScoreAdj: 100},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Capabilities:     &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}},
				ReadonlyRootfs:   true,
				RunAsUser:        &runtimeapi.Int64Value{Value: 1000},
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
	sbID, cID := "aa11", "bb22"
	writeV1(t, path,
		[]v1SandboxRecord{{
			ID: sbID, Name: "web", Namespace: "ns", UID: "u1", Key: "web_ns_u1_0", Config: mustMarshal(t, podCfg),
			Dir: "/run/berth/sandboxes/aa11", NetNS: "/run/berth/netns/aa11", IPs: []string{"10.88.0.2"},
			InfraPid: 100, ShimPid: 99, CreatedAt: now, ReadyAt: now,
		}},
		[]v1ContainerRecord{{
			ID: cID, SandboxID: sbID, Name: "app", Key: "app_aa11_0", Config: mustMarshal(t, ctrCfg), Image: "busybox",
			LogPath: "/var/log/pods/ns_web_u1/app/0.log", StopSignal: "SIGUSR1", Bundle: "/run/berth/containers/bb22",
			Pid: 200, ShimPid: 199, CreatedAt: now, StartedAt: now,
		}})

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		if v := string(tx.tx.Bucket([]byte(bucketMeta)).Get([]byte("schema"))); v != "2" {
			t.Errorf("schema after migration = %q", v)
		}
		for _, b := range []Bucket{Sandboxes, Containers} {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(tx.tx.Bucket([]byte(b)).Get([]byte(map[Bucket]string{Sandboxes: sbID, Containers: cID}[b])), &raw); err != nil {
				return err
			}
			if _, ok := raw["config"]; ok {
				t.Errorf("%s record still has the CRI config", b)
			}
		}

		sb, err := Lookup[Sandbox](tx, Sandboxes, SandboxNames, "web_ns_u1_0")
		if err != nil {
			return err
		}
		cpuShares := uint64(512)
		wantSB := Sandbox{
			ID: sbID, Name: "web", Namespace: "ns", UID: "u1", Key: "web_ns_u1_0", Origin: OriginCRI,
			Hostname: "web-host", LogDirectory: "/var/log/pods/ns_web_u1",
			DNS:          &DNS{Servers: []string{"10.0.0.10"}, Searches: []string{"ns.svc"}, Options: []string{"ndots:5"}},
			PortMappings: []PortMapping{{HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"}},
			Dir:          "/run/berth/sandboxes/aa11", NetNS: "/run/berth/netns/aa11", HostIPC: true,
			Sysctls:   map[string]string{"net.ipv4.ip_forward": "1"},
			Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &cpuShares}, Memory: &specs.LinuxMemory{}},
			IPs:       []string{"10.88.0.2"}, InfraPid: 100, ShimPid: 99, CreatedAt: now, ReadyAt: now,
		}
		if diff := cmp.Diff(wantSB, sb); diff != "" {
			t.Errorf("sandbox (-want +got):\n%s", diff)
		}

		c, err := Lookup[Container](tx, Containers, ContainerNames, "app_aa11_0")
		if err != nil {
			return err
		}
		uid, limit, quota, period, adj := int64(1000), int64(128<<20), int64(50000), uint64(100000), 100
		wantC := Container{
			ID: cID, SandboxID: sbID, Name: "app", Key: "app_aa11_0", Origin: OriginCRI,
			Process: Process{Command: []string{"/bin/sh"}, Args: []string{"-c", "sleep 1000"}, Env: []string{"A=b"}, WorkingDir: "/work", TTY: true},
			User:    User{UID: &uid},
			Mounts: []Mount{
				{Destination: "/data", Source: "/srv/data", ReadOnly: true, Propagation: "rslave"},
				{Destination: "/img", Image: "docker.io/library/alpine:3", ImageSubPath: "etc", ReadOnly: true},
			},
			Devices:     []Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}},
			Resources:   &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}, Memory: &specs.LinuxMemory{Limit: &limit}},
			OOMScoreAdj: &adj,
			Security:    Security{ReadonlyRootfs: true, CapAdd: []string{"NET_ADMIN"}, SeccompProfile: "runtime/default"},
			PIDMode:     NamespacePod,
			Image:       "busybox", LogPath: "/var/log/pods/ns_web_u1/app/0.log", StopSignal: "SIGUSR1",
			Bundle: "/run/berth/containers/bb22", Pid: 200, ShimPid: 199, CreatedAt: now, StartedAt: now,
		}
		if diff := cmp.Diff(wantC, c); diff != "" {
			t.Errorf("container (-want +got):\n%s", diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The migrated names are held: a second object cannot take them.
	err = db.Update(func(tx *Tx) error { return ReserveName(tx, ContainerNames, "app_aa11_0", "other") })
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("reserving a migrated name = %v, want ErrAlreadyExists", err)
	}
}

// A record whose config does not decode fails the open and leaves the
// database as it was, for an older berth or a person to look at.
func TestMigrateV1BadRecordChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	writeV1(t, path,
		[]v1SandboxRecord{{ID: "good", Key: "g_ns_u_0", Config: mustMarshal(t, &runtimeapi.PodSandboxConfig{Hostname: "h"})}},
		[]v1ContainerRecord{{ID: "bad", Key: "c_good_0", Config: []byte{0xff, 0xff, 0xff}}})
	if _, err := Open(path); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("Open with an undecodable record = %v, want ErrDataLoss", err)
	}
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); v != "1" {
			t.Errorf("schema after a failed migration = %q, want 1", v)
		}
		if tx.Bucket([]byte(SandboxNames)) != nil {
			t.Error("a failed migration left the name index")
		}
		var raw map[string]json.RawMessage
		json.Unmarshal(tx.Bucket([]byte("sandboxes")).Get([]byte("good")), &raw)
		if _, ok := raw["config"]; !ok {
			t.Error("a failed migration rewrote a record")
		}
		return nil
	})
}

func TestNameIndex(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put := func(id, name string) error {
		return db.Update(func(tx *Tx) error {
			if err := ReserveName(tx, ContainerNames, name, id); err != nil {
				return err
			}
			return Put(tx, Containers, id, Container{ID: id, Key: name})
		})
	}
	if err := put("abc123", "web"); err != nil {
		t.Fatal(err)
	}
	// The name and the record go together: a conflict writes neither.
	if err := put("def456", "web"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second web = %v, want ErrAlreadyExists", err)
	}
	if err := put("abd999", "abc"); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if Has(tx, Containers, "def456") {
			t.Error("a refused name left its record")
		}
		for ref, want := range map[string]string{"web": "abc123", "abc123": "abc123", "abd": "abd999", "abc": "abd999"} {
			c, err := Lookup[Container](tx, Containers, ContainerNames, ref)
			if err != nil || c.ID != want {
				t.Errorf("Lookup(%q) = %q, %v; want %q", ref, c.ID, err, want)
			}
		}
		if _, err := Lookup[Container](tx, Containers, ContainerNames, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Lookup(nosuch) = %v, want ErrNotFound", err)
		}
		return nil
	})
	// Released only by its holder.
	db.Update(func(tx *Tx) error {
		ReleaseName(tx, ContainerNames, "web", "someone-else")
		return nil
	})
	if err := put("def456", "web"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("web after a stranger's release = %v, want ErrAlreadyExists", err)
	}
	db.Update(func(tx *Tx) error { return ReleaseName(tx, ContainerNames, "web", "abc123") })
	if err := put("def456", "web"); err != nil {
		t.Fatalf("web after release = %v", err)
	}
}

// Two schema-1 records with one name (schema 1 held names in memory
// only) do not block the open: the first keeps the name, the other is
// found by id.
func TestMigrateV1DuplicateName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	cfg := mustMarshal(t, &runtimeapi.ContainerConfig{})
	writeV1(t, path, nil, []v1ContainerRecord{{ID: "a1", Key: "same", Config: cfg}, {ID: "b2", Key: "same", Config: cfg}})
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *Tx) error {
		if c, err := Lookup[Container](tx, Containers, ContainerNames, "same"); err != nil || c.ID != "a1" {
			t.Errorf("Lookup(same) = %q, %v", c.ID, err)
		}
		if c, err := Lookup[Container](tx, Containers, ContainerNames, "b2"); err != nil || c.Origin != OriginCRI {
			t.Errorf("Lookup(b2) = %+v, %v", c, err)
		}
		return nil
	})
}
