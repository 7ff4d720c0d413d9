package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/rootfs"
	"github.com/berth-runtime/berth/store"
)

// PID namespace modes of a container.
const (
	PIDContainer = store.NamespaceContainer // its own
	PIDPod       = store.NamespacePod       // the pod's (the infra process's)
	PIDHost      = store.NamespaceHost
	PIDTarget    = store.NamespaceTarget // another container's, CreateRequest.PIDTarget
)

// CreateRequest describes a container, already translated from the CRI
// (or the docker side) into neutral terms.
type CreateRequest struct {
	Name                string
	Attempt             uint32
	Labels, Annotations map[string]string
	// Origin is the front door that asks.
	Origin store.Origin
	// UniqueName is the container's entry in the name index (docker's
	// --name); empty: the CRI's key (see Key).
	UniqueName string
	Image      string
	Sandbox    store.Sandbox
	// Command replaces the image's entrypoint, Args its cmd; Env (KEY=value)
	// is added to the image's.
	Command, Args, Env []string
	WorkingDir         string
	// Mounts are bind mounts; a host path that does not exist is made a
	// directory, and symlinks in it are resolved at create.
	Mounts  []oci.Mount
	Devices []oci.Device
	// LogPath is the absolute CRI log path ("" for none).
	LogPath               string
	TTY, Stdin, StdinOnce bool
	User                  UserRequest
	Privileged            bool
	ReadonlyRootfs        bool
	NoNewPrivileges       bool
	CapAdd, CapDrop       []string
	PIDMode               store.NamespaceMode
	OOMScoreAdj           *int
	Resources             *specs.LinuxResources
	MaskedPaths, ROPaths  []string
	HostIPC               bool
	// PIDTarget is the container whose PID namespace to join (the CRI's
	// TARGET mode).
	PIDTarget string
	// ImageMounts are images mounted read-only into the container.
	ImageMounts []ImageMount
	// SeccompProfile is "" or SeccompUnconfined (none),
	// SeccompRuntimeDefault (berth's default profile, docker's), or
	// SeccompLocalhost with SeccompPath naming a profile file.
	SeccompProfile string
	SeccompPath    string
	// StopSignal is the signal Stop sends first ("": the image's
	// STOPSIGNAL, else SIGTERM).
	StopSignal string

	// ID, when set (64 hex digits, see idgen), is the container's id;
	// the docker side picks it first, as the container's host name is
	// its beginning. Empty: a new one.
	ID string
	// LogName, when LogPath is empty, puts the log in the container's own
	// directory (<root>/containers/<id>/<LogName>), removed with it: the
	// docker side's logs.
	LogName string
	// Rlimits are the process's resource limits (nil: berth's default
	// RLIMIT_NOFILE); ShmSize the size of a /dev/shm of the container's
	// own (0: the default).
	Rlimits []specs.POSIXRlimit
	ShmSize int64
	// Init is the host path of an init binary (tini, docker-init) that
	// runs as the container's PID 1 with the process as its child:
	// docker's --init. It is mounted read-only at InitPath.
	Init string
	// Docker holds the docker side's fields of the record (restart
	// policy, health check, ...), recorded as given.
	Docker DockerFields
}

// InitPath is where Init is mounted in the container, as docker does.
const InitPath = "/sbin/docker-init"

// DockerFields are the fields of store.Container that only the docker
// side sets at create (see store.Container for their meaning).
type DockerFields struct {
	RestartPolicy   store.RestartPolicy
	AutoRemove      bool
	Healthcheck     *store.Healthcheck
	Entrypoint, Cmd []string
	ExposedPorts    []string
	StopTimeout     *int
	Domainname      string
	Tmpfs           map[string]string
	// Volumes name the docker volume mounted at a destination (one of
	// Mounts): recorded as store.Mount.Volume.
	Volumes map[string]string
	// CopyUp are destinations of Mounts whose source, when empty, is
	// first filled with what the image has there (docker's copy-up of
	// image content into a new volume).
	CopyUp []string
}

// Seccomp profile kinds.
const (
	SeccompUnconfined     = "unconfined"
	SeccompRuntimeDefault = "runtime/default"
	SeccompLocalhost      = "localhost"
)

// ImageMount is an image (or a path inside it) mounted as a volume.
type ImageMount struct {
	Image, Destination, SubPath string
}

// UserRequest is who the process runs as: an explicit uid (and gid), a
// user name, or, with neither, the image's USER.
type UserRequest struct {
	UID                *int64
	Username           string
	GID                *int64
	SupplementalGroups []int64
	// StrictGroups uses only the primary group and SupplementalGroups,
	// not the image's /etc/group membership (the CRI's Strict policy).
	StrictGroups bool
}

// Key is the container's entry in the name index: UniqueName, else the
// CRI's unique container name within its sandbox.
func (r CreateRequest) Key() string {
	if r.UniqueName != "" {
		return r.UniqueName
	}
	return fmt.Sprintf("%s_%s_%d", r.Name, r.Sandbox.ID, r.Attempt)
}

// Create creates a container (its process waits for Start) and returns its
// id. A CRI retry of a Create still in progress gets the same container;
// a name in use otherwise wraps errdefs.ErrAlreadyExists.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (string, error) {
	if req.Name == "" {
		return "", fmt.Errorf("container metadata needs a name: %w", errdefs.ErrInvalidArgument)
	}
	if !req.Sandbox.Ready() {
		return "", fmt.Errorf("sandbox %s is not ready: %w", req.Sandbox.ID, errdefs.ErrFailedPrecondition)
	}
	if req.Origin == store.OriginDocker {
		// A name in use is a conflict (the store's name index says so),
		// never a retry to join: that is the kubelet's contract only.
		return m.create(ctx, req)
	}
	return m.names.Create(ctx, req.Key(), func(ctx context.Context) (string, error) {
		return m.create(ctx, req)
	})
}

func (m *Manager) create(ctx context.Context, req CreateRequest) (id string, err error) {
	img, err := m.images.Get(ctx, req.Image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", req.Image, err)
	}
	imgCfg, err := m.images.Config(img)
	if err != nil {
		return "", err
	}
	lowers, err := m.images.SnapshotDirs(ctx, img)
	if err != nil {
		return "", err
	}
	imageRef := img.ID.String()
	if len(img.RepoDigests) > 0 {
		imageRef = img.RepoDigests[0]
	}
	id = idgen.New()
	if req.ID != "" {
		if !idgen.Valid(req.ID) {
			return "", fmt.Errorf("container id %q is not 64 hex digits: %w", req.ID, errdefs.ErrInvalidArgument)
		}
		id = req.ID
	}
	c := newRecord(id, req)
	c.ImageID, c.ImageRef, c.ChainID = img.ID, imageRef, img.ChainIDs[len(img.ChainIDs)-1]
	c.StopSignal = cmp.Or(req.StopSignal, imgCfg.Config.StopSignal)
	c.Dir, c.Bundle = filepath.Join(m.rootDir, id), filepath.Join(m.stateDir, id)
	if req.LogPath == "" && req.LogName != "" {
		req.LogPath = filepath.Join(c.Dir, filepath.Base(req.LogName))
		c.LogPath = req.LogPath
	}
	log := m.log.With("container", id[:12], "name", req.Name, "sandbox", req.Sandbox.ID[:12])
	// Recorded first (and a GC root from now on), with its name; Pid
	// stays 0 until the runtime created the process, which tells
	// recovery what to undo.
	if err := m.db.Update(func(tx *store.Tx) error {
		if err := store.ReserveName(tx, store.ContainerNames, c.Key, id); err != nil {
			return err
		}
		return store.Put(tx, store.Containers, id, c)
	}); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			log.Warn("container creation failed; cleaning up", "error", err)
			if cerr := m.destroy(context.WithoutCancel(ctx), c); cerr != nil {
				log.Error("cleaning up a failed container", "error", cerr)
			}
		}
	}()
	idmap, err := podIDMap(req.Sandbox)
	if err != nil {
		return id, err
	}
	if idmap != nil {
		defer idmap.UserNS.Close()
	}
	if err := m.mounts.Mount(m.rootfs(c), lowers, filepath.Join(c.Dir, "upper"), filepath.Join(c.Dir, "work"), idmap); err != nil {
		return id, err
	}
	if req.Mounts, err = prepareBindSources(req.Mounts); err != nil {
		return id, err
	}
	if err := copyUps(m.rootfs(c), req.Mounts, req.Docker.CopyUp); err != nil {
		return id, err
	}
	// The request's mounts win over the pod's own files at the same path:
	// the kubelet manages /etc/hosts itself and passes it as a mount.
	req.Mounts = append(podMountsFor(req, rootfs.Mounted), req.Mounts...)
	for i, mnt := range req.Mounts {
		if !mnt.RecursiveReadOnly && idmap == nil || mnt.Type != "" && mnt.Type != "bind" {
			continue
		}
		staged := filepath.Join(c.Bundle, "staged", strconv.Itoa(i))
		if err := m.mounts.Stage(mnt.Source, staged, rootfs.StageOptions{ReadOnly: mnt.RecursiveReadOnly, IDMap: idmap}); err != nil {
			return id, fmt.Errorf("mount %s: %w", mnt.Destination, err)
		}
		req.Mounts[i].Source = staged
	}
	if len(req.ImageMounts) > 0 {
		mounts, err := m.mountImages(ctx, c, req.ImageMounts, idmap)
		if err != nil {
			return id, err
		}
		req.Mounts = append(req.Mounts, mounts...)
	}
	user, err := m.resolveUser(m.rootfs(c), req.User, imgCfg.Config.User)
	if err != nil {
		return id, err
	}
	if req.PIDMode == PIDTarget {
		target, err := m.Get(ctx, req.PIDTarget)
		if err != nil {
			return id, fmt.Errorf("PID namespace target: %w", err)
		}
		if StateOf(target) != Running {
			return id, fmt.Errorf("PID namespace target %s is not running: %w", target.ID, errdefs.ErrFailedPrecondition)
		}
		req.PIDTarget = "/proc/" + strconv.Itoa(target.Pid) + "/ns/pid"
	}
	if req.Init != "" {
		req.Mounts = append(req.Mounts, oci.Mount{Source: req.Init, Destination: InitPath, ReadOnly: true})
	}
	argv, env, cwd, err := oci.MergeProcess(oci.ProcessSources{
		Image:   oci.ProcessConfig{Entrypoint: imgCfg.Config.Entrypoint, Cmd: imgCfg.Config.Cmd, Env: imgCfg.Config.Env, WorkingDir: imgCfg.Config.WorkingDir},
		Request: oci.ProcessConfig{Entrypoint: req.Command, Cmd: req.Args, Env: req.Env, WorkingDir: req.WorkingDir},
	})
	if err != nil {
		return id, err
	}
	if req.Init != "" {
		argv = append([]string{InitPath, "--"}, argv...)
	}
	if cwd != "" && cwd != "/" {
		// The image's or request's working directory may not exist yet.
		mkdirOwned(m.rootfs(c), cwd, idmap)
	}
	if req.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(req.LogPath), 0o755); err != nil {
			return id, err
		}
	}
	spec, err := oci.Generate(m.containerSpec(c, req, argv, env, cwd, user), m.host)
	if err != nil {
		return id, err
	}
	if spec.Linux.Seccomp, err = seccompFor(req, spec); err != nil {
		return id, err
	}
	launched, err := m.launcher.Launch(ctx, LaunchRequest{
		ID: id, Handler: c.RuntimeHandler, Bundle: c.Bundle, Spec: spec,
		LogPath: req.LogPath, Stdin: req.Stdin, StdinOnce: req.StdinOnce,
	})
	if err != nil {
		return id, err
	}
	// From here on, undoing the create must kill the process and wait
	// for its shim.
	c.Pid, c.ShimPid = launched.Pid, launched.ShimPid
	// The container's mount namespace has its own copies of the staged
	// trees now. Left attached here, they would keep the host path's
	// submounts busy: Linux refuses to remove a directory that is a mount
	// point in the caller's own namespace.
	staged, _ := filepath.Glob(filepath.Join(c.Bundle, "staged", "*"))
	for _, dir := range staged {
		if err := m.mounts.Unmount(dir); err != nil {
			return id, err
		}
	}
	groups := make([]int64, len(user.AdditionalGids))
	for i, g := range user.AdditionalGids {
		groups[i] = int64(g)
	}
	if _, err := m.update(id, func(c *store.Container) {
		c.Pid, c.ShimPid = launched.Pid, launched.ShimPid
		c.UID, c.GID, c.Groups = int64(user.UID), int64(user.GID), groups
	}); err != nil {
		return id, err
	}
	m.publish(events.Created, c)
	log.Info("container created", "pid", launched.Pid)
	return id, nil
}

func (m *Manager) containerSpec(c store.Container, req CreateRequest, argv, env []string, cwd string, user oci.User) oci.Container {
	sb := req.Sandbox
	infra := "/proc/" + strconv.Itoa(sb.InfraPid) + "/ns/"
	ns := oci.Namespaces{Network: sb.NetNS, IPC: infra + "ipc", UTS: infra + "uts", User: sb.UserNS}
	if sb.HostNetwork {
		ns.Network, ns.UTS = oci.NamespaceHost, oci.NamespaceHost
	}
	if req.HostIPC {
		ns.IPC = oci.NamespaceHost
	}
	switch req.PIDMode {
	case PIDPod:
		ns.PID = infra + "pid"
	case PIDHost:
		ns.PID = oci.NamespaceHost
	case PIDTarget:
		ns.PID = req.PIDTarget
	}
	annotations := map[string]string{
		"io.kubernetes.cri.container-type": "container",
		"io.kubernetes.cri.sandbox-id":     sb.ID,
	}
	for k, v := range req.Annotations {
		annotations[k] = v
	}
	return oci.Container{
		ID: c.ID, Rootfs: m.rootfs(c), Args: argv, Env: env, Cwd: cwd, User: user,
		Terminal: req.TTY, Mounts: req.Mounts, Devices: req.Devices, Namespaces: ns,
		CgroupsPath: CgroupsPath(m.systemd, sb.CgroupParent, c.ID),
		Privileged:  req.Privileged, ReadonlyRootfs: req.ReadonlyRootfs, NoNewPrivileges: req.NoNewPrivileges,
		CapAdd: req.CapAdd, CapDrop: req.CapDrop, OOMScoreAdj: req.OOMScoreAdj, Resources: m.supportedResources(req.Resources),
		Annotations: annotations, MaskedPaths: req.MaskedPaths, ReadonlyPaths: req.ROPaths,
		UIDMappings: sb.UIDMap, GIDMappings: sb.GIDMap,
		Rlimits: req.Rlimits, ShmSize: req.ShmSize,
	}
}

// podMountsFor returns the pod's own files (hostname, hosts, resolv.conf
// and, unless the container shares the host's IPC, the pod's /dev/shm when
// mounted says it is) that the request does not mount itself: a mount or
// image volume of the request at the same container path replaces the
// pod's, as in containerd and CRI-O. A request naming one path twice is
// still refused later, by oci.Generate.
func podMountsFor(req CreateRequest, mounted func(string) bool) []oci.Mount {
	sb := req.Sandbox
	own := []oci.Mount{
		{Source: filepath.Join(sb.Dir, "hostname"), Destination: "/etc/hostname"},
		{Source: filepath.Join(sb.Dir, "hosts"), Destination: "/etc/hosts"},
		{Source: filepath.Join(sb.Dir, "resolv.conf"), Destination: "/etc/resolv.conf"},
	}
	if shm := filepath.Join(sb.Dir, "shm"); !req.HostIPC && mounted(shm) {
		own = append(own, oci.Mount{Source: shm, Destination: "/dev/shm"})
	}
	taken := map[string]bool{}
	for _, m := range req.Mounts {
		taken[path.Clean(m.Destination)] = true
	}
	for _, im := range req.ImageMounts {
		taken[path.Clean(im.Destination)] = true
	}
	return slices.DeleteFunc(own, func(m oci.Mount) bool { return taken[m.Destination] })
}

// podIDMap opens the pod's user namespace, if it has one, for idmapped
// mounts; the caller closes it.
func podIDMap(sb store.Sandbox) (*rootfs.IDMap, error) {
	if sb.UserNS == "" {
		return nil, nil
	}
	if len(sb.UIDMap) == 0 || len(sb.GIDMap) == 0 {
		return nil, fmt.Errorf("sandbox %s has a user namespace without mappings: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	f, err := os.Open(sb.UserNS)
	if err != nil {
		return nil, fmt.Errorf("the pod's user namespace: %w", err)
	}
	return &rootfs.IDMap{UserNS: f, HostUID: int(sb.UIDMap[0].HostID), HostGID: int(sb.GIDMap[0].HostID)}, nil
}

// mkdirOwned creates dir (absolute, inside root) and its missing parents;
// with idmap they belong to the container's root, as if it had made them.
// Errors are ignored: the runtime reports a working directory it cannot
// enter.
func mkdirOwned(root, dir string, idmap *rootfs.IDMap) {
	var missing []string
	for d := filepath.Clean(dir); d != "/"; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(root, d)); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if os.MkdirAll(filepath.Join(root, dir), 0o755) != nil || idmap == nil {
		return
	}
	for _, d := range missing {
		os.Lchown(filepath.Join(root, d), idmap.HostUID, idmap.HostGID)
	}
}

// resolveUser picks the process's user: the request's uid or name, else
// the image's USER, resolved against the image's /etc/passwd and
// /etc/group.
func (m *Manager) resolveUser(root string, u UserRequest, imageUser string) (oci.User, error) {
	spec := imageUser
	switch {
	case u.UID != nil:
		spec = strconv.FormatInt(*u.UID, 10)
	case u.Username != "":
		spec = u.Username
	}
	if u.GID != nil {
		name, _, _ := strings.Cut(spec, ":")
		spec = name + ":" + strconv.FormatInt(*u.GID, 10)
	}
	var extra []uint32
	for _, g := range u.SupplementalGroups {
		extra = append(extra, uint32(g))
	}
	// os.Root keeps an image's absolute symlinks (/etc/passwd -> /x)
	// inside its own root file system.
	r, err := os.OpenRoot(root)
	if err != nil {
		return oci.User{}, err
	}
	defer r.Close()
	user, err := oci.ResolveUser(r.FS(), spec, extra)
	if err != nil {
		return user, err
	}
	if u.StrictGroups {
		// Only what the request says, never the image's /etc/group.
		user.AdditionalGids = []uint32{user.GID}
		for _, g := range extra {
			if g != user.GID {
				user.AdditionalGids = append(user.AdditionalGids, g)
			}
		}
	}
	return user, nil
}

// destroy removes every trace of a container: its process, runtime state,
// mount, directories and record. Each step is safe to repeat.
func (m *Manager) destroy(ctx context.Context, c store.Container) error {
	var errs []error
	if c.Pid != 0 || c.ShimPid != 0 {
		m.launcher.Kill(ctx, c.RuntimeHandler, c.ID, 9, true)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := m.launcher.Wait(wctx, c.RuntimeHandler, c.ID, c.Bundle); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if err := m.launcher.Delete(ctx, c.RuntimeHandler, c.ID); err != nil {
		errs = append(errs, err)
	}
	// Everything mounted in the bundle: the rootfs, staged binds, image
	// volumes, and the idmapped layers of a create that a crash cut short.
	if err := m.mounts.UnmountAll(c.Bundle); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	errs = append(errs, os.RemoveAll(c.Bundle), os.RemoveAll(c.Dir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := m.db.Update(func(tx *store.Tx) error {
		if err := store.ReleaseName(tx, store.ContainerNames, c.Key, c.ID); err != nil {
			return err
		}
		return store.Delete(tx, store.Containers, c.ID)
	}); err != nil {
		return err
	}
	m.names.Release(c.Key, c.ID)
	m.locks.Delete(c.ID)
	m.changed(c.ID)
	return nil
}
