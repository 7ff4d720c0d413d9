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
	"github.com/berth-runtime/berth/store"
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
	if err := s.mountVolumes(ctx, &plan); err != nil {
		return "", err
	}
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

// mountVolumes resolves the plan's volumes into bind mounts.
func (s *Server) mountVolumes(ctx context.Context, plan *createPlan) error {
	for _, v := range plan.Volumes {
		if v.Anonymous {
			// Until volumes exist, what the image has at the path stays
			// in the container's own layer.
			continue
		}
		return errorf(errdefs.ErrNotImplemented, "named volumes are not supported yet (%s)", v.Name)
	}
	return nil
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
