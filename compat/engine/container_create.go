package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
	"github.com/berth-runtime/berth/volume"
)

// postContainersCreate is POST /containers/create: a sandbox (its own
// network namespace, unless the container uses the host's or joins
// another container's) and one container in it.
func (s *Server) postContainersCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return errorf(errdefs.ErrInvalidArgument, "config cannot be empty in order to create a container")
	}
	ctx := r.Context()
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if name != "" {
		if !validName.MatchString(name) {
			return errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
		if holder := s.nameHolder(ctx, name); holder != "" {
			return nameConflict(name, holder)
		}
	} else {
		name = generateName(func(n string) bool { return s.nameHolder(ctx, n) != "" })
	}
	if req.Config.Image == "" {
		return errorf(errdefs.ErrInvalidArgument, "config.Image cannot be empty")
	}
	img, err := s.images.Get(ctx, req.Config.Image)
	if errdefs.IsNotFound(err) || errors.Is(err, errdefs.ErrInvalidArgument) {
		return errorf(errdefs.ErrNotFound, "No such image: %s", req.Config.Image)
	}
	if err != nil {
		return err
	}
	imgCfg, err := s.images.Config(img)
	if err != nil {
		return err
	}
	id := idgen.New()
	plan, err := translateCreate(req, translateEnv{ID: id, Name: name, Image: imgCfg, FreePort: freePort, InitBinary: initBinary()})
	if err != nil {
		return err
	}
	if err := s.planNetwork(&plan, req.NetworkingConfig); err != nil {
		return err
	}
	id, err = s.create(ctx, plan)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: []string{}})
}

// create runs the plan's sandbox and creates its container; a failure
// leaves nothing behind.
func (s *Server) create(ctx context.Context, plan createPlan) (id string, err error) {
	var sb store.Sandbox
	if plan.JoinContainer != "" {
		other, err := s.lookupContainer(ctx, plan.JoinContainer)
		if err != nil {
			return "", err
		}
		if runtime.StateOf(other) != runtime.Running {
			return "", errorf(errdefs.ErrConflict, "cannot join network namespace of a non running container: %s", other.ID)
		}
		if sb, err = s.pods.Get(ctx, other.SandboxID); err != nil {
			return "", err
		}
	} else {
		if err := s.links(ctx, &plan); err != nil {
			return "", err
		}
		if plan.Network != "" {
			net, err := s.cniNetwork(plan.Network)
			if errdefs.IsNotFound(err) {
				return "", errorf(errdefs.ErrNotFound, "network %s not found", plan.Network)
			}
			if err != nil {
				return "", err
			}
			plan.Sandbox.Network = net
		}
		sbID, err := s.pods.Run(ctx, plan.Sandbox)
		if err != nil {
			return "", err
		}
		defer func() {
			if err != nil {
				if rerr := s.pods.Remove(context.WithoutCancel(ctx), sbID); rerr != nil {
					s.log.Error("removing the sandbox of a container that could not be created", "sandbox", sbID, "error", rerr)
				}
			}
		}()
		if sb, err = s.pods.Get(ctx, sbID); err != nil {
			return "", err
		}
	}
	if err := s.volumesFrom(ctx, &plan); err != nil {
		return "", err
	}
	undoVolumes, err := s.mountVolumes(ctx, &plan)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			undoVolumes()
		}
	}()
	plan.Container.Sandbox = sb
	id, err = s.containers.Create(ctx, plan.Container)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return "", nameConflict(plan.Container.UniqueName, s.nameHolder(ctx, plan.Container.UniqueName))
	}
	if errdefs.IsNotFound(err) {
		return "", errorf(errdefs.ErrNotFound, "No such image: %s", plan.Container.Image)
	}
	return id, err
}

// links turns --link name[:alias] into /etc/hosts entries for the
// linked container's address (docker's legacy links on the default
// bridge).
func (s *Server) links(ctx context.Context, plan *createPlan) error {
	for _, l := range plan.Links {
		ref, alias, _ := strings.Cut(l, ":")
		other, err := s.lookupContainer(ctx, ref)
		if err != nil {
			return errorf(errdefs.ErrInvalidArgument, "could not get container for %s", ref)
		}
		if runtime.StateOf(other) != runtime.Running {
			return errorf(errdefs.ErrInvalidArgument, "cannot link to a non running container: /%s AS /%s/%s", s.dockerName(ctx, other), plan.Container.UniqueName, cmpOr(alias, ref))
		}
		sb, err := s.pods.Get(ctx, other.SandboxID)
		if err != nil {
			return err
		}
		for _, ip := range sb.IPs {
			names := []string{strings.TrimPrefix(ref, "/"), other.ID[:12], s.dockerName(ctx, other)}
			if alias != "" {
				names = append([]string{alias}, names...)
			}
			for _, n := range names {
				plan.Sandbox.ExtraHosts = append(plan.Sandbox.ExtraHosts, n+":"+ip)
			}
			break
		}
	}
	return nil
}

// volumesFrom adds the binds and volumes of the --volumes-from
// containers ("name[:ro|:rw]") at the destinations the plan leaves free.
func (s *Server) volumesFrom(ctx context.Context, plan *createPlan) error {
	taken := map[string]bool{}
	for _, m := range plan.Container.Mounts {
		taken[m.Destination] = true
	}
	for _, v := range plan.Volumes {
		taken[v.Destination] = true
	}
	for _, spec := range plan.VolumesFrom {
		ref, mode, _ := strings.Cut(spec, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return errorf(errdefs.ErrInvalidArgument, "invalid mode for volumes-from: %s", mode)
		}
		other, err := s.lookupContainer(ctx, ref)
		if err != nil {
			return err
		}
		for _, m := range other.Mounts {
			if taken[m.Destination] || m.Image != "" || m.Source == "" {
				continue
			}
			taken[m.Destination] = true
			ro := m.ReadOnly
			if mode != "" {
				ro = mode == "ro"
			}
			if m.Volume != "" {
				plan.Volumes = append(plan.Volumes, volumeMount{Name: m.Volume, Destination: m.Destination, ReadOnly: ro, NoCopy: true})
				continue
			}
			plan.Container.Mounts = append(plan.Container.Mounts, oci.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: ro, Propagation: m.Propagation})
		}
	}
	return nil
}

// mountVolumes makes (or finds) the plan's volumes and adds them as
// binds of their directories; the ones it made are removed again should
// the container not be made (the caller's undo).
func (s *Server) mountVolumes(ctx context.Context, plan *createPlan) (undo func(), err error) {
	var made []string
	undo = func() {
		for _, name := range made {
			if err := s.volumes.Remove(context.WithoutCancel(ctx), name, true); err != nil {
				s.log.Warn("removing a volume made for a container that could not be made", "volume", name, "error", err)
			}
		}
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	if len(plan.Volumes) == 0 {
		return func() {}, nil
	}
	if s.volumes == nil {
		return nil, errorf(errdefs.ErrNotImplemented, "volumes are not available")
	}
	c := &plan.Container
	c.Docker.Volumes = map[string]string{}
	for _, v := range plan.Volumes {
		name := v.Name
		if _, gerr := s.volumes.Get(ctx, name); name == "" || errdefs.IsNotFound(gerr) {
			vol, err := s.volumes.Create(ctx, volume.CreateRequest{Name: name, Anonymous: name == ""})
			if err != nil {
				return nil, err
			}
			name = vol.Name
			made = append(made, name)
		} else if gerr != nil {
			return nil, gerr
		}
		src, err := s.volumes.Mount(ctx, name)
		if err != nil {
			return nil, err
		}
		c.Mounts = append(c.Mounts, oci.Mount{Source: src, Destination: v.Destination, ReadOnly: v.ReadOnly})
		c.Docker.Volumes[v.Destination] = name
		if !v.NoCopy {
			c.Docker.CopyUp = append(c.Docker.CopyUp, v.Destination)
		}
	}
	return undo, nil
}

// mountContainerVolumes readies the volumes of c before it starts (a
// volume with a file system of its own is mounted while used).
func (s *Server) mountContainerVolumes(ctx context.Context, c store.Container) error {
	for _, m := range c.Mounts {
		if m.Volume == "" || s.volumes == nil {
			continue
		}
		if _, err := s.volumes.Mount(ctx, m.Volume); err != nil {
			return err
		}
	}
	return nil
}

// releaseVolumes lets go of the volumes of a container that exited.
func (s *Server) releaseVolumes(ctx context.Context, c store.Container) {
	for _, m := range c.Mounts {
		if m.Volume == "" || s.volumes == nil {
			continue
		}
		if err := s.volumes.Unmount(ctx, m.Volume, c.ID); err != nil {
			s.log.Warn("releasing a volume of an exited container", "volume", m.Volume, "container", c.ID, "error", err)
		}
	}
}

// removeAnonymousVolumes removes the anonymous volumes c mounted (docker
// rm -v, and --rm containers).
func (s *Server) removeAnonymousVolumes(ctx context.Context, c store.Container) {
	for _, m := range c.Mounts {
		if m.Volume == "" || s.volumes == nil {
			continue
		}
		v, err := s.volumes.Get(ctx, m.Volume)
		if err != nil || !v.Anonymous {
			continue
		}
		if err := s.volumes.Remove(ctx, m.Volume, false); err != nil && !errdefs.IsNotFound(err) {
			s.log.Warn("removing an anonymous volume", "volume", m.Volume, "error", err)
		}
	}
}

func nameConflict(name, holder string) error {
	return errorf(errdefs.ErrConflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, holder)
}

// freePort is a host port that is free now, for a published port
// without one (docker takes one from the ephemeral range).
func freePort(proto string) (int32, error) {
	if proto == "udp" {
		c, err := net.ListenPacket("udp", ":0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return int32(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port), nil
}

// initBinary is the host's init for --init: docker-init, else a static
// tini ("" if there is none).
func initBinary() string {
	for _, name := range []string{"docker-init", "tini-static"} {
		if p, err := exec.LookPath(name); err == nil {
			if resolved, err := filepath.EvalSymlinks(p); err == nil {
				return resolved
			}
			return p
		}
	}
	return ""
}
