package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/store"
)

// newRecord is the container's record as the request describes it, in
// neutral terms both front doors read back; create fills in the image,
// directories and, later, the process.
func newRecord(id string, req CreateRequest) store.Container {
	c := store.Container{
		ID: id, SandboxID: req.Sandbox.ID, Name: req.Name, Attempt: req.Attempt, Key: req.Key(),
		Origin: req.Origin, Labels: req.Labels, Annotations: req.Annotations,
		Process: store.Process{
			Command: req.Command, Args: req.Args, Env: req.Env, WorkingDir: req.WorkingDir,
			TTY: req.TTY, Stdin: req.Stdin, StdinOnce: req.StdinOnce,
		},
		User: store.User{
			UID: req.User.UID, Username: req.User.Username, GID: req.User.GID,
			SupplementalGroups: req.User.SupplementalGroups, StrictGroups: req.User.StrictGroups,
		},
		Resources: req.Resources, OOMScoreAdj: req.OOMScoreAdj,
		Security: store.Security{
			Privileged: req.Privileged, ReadonlyRootfs: req.ReadonlyRootfs, NoNewPrivileges: req.NoNewPrivileges,
			CapAdd: req.CapAdd, CapDrop: req.CapDrop, MaskedPaths: req.MaskedPaths, ReadonlyPaths: req.ROPaths,
			SeccompProfile: req.SeccompProfile, SeccompPath: req.SeccompPath,
		},
		PIDMode: req.PIDMode, HostIPC: req.HostIPC,
		Image: req.Image, RuntimeHandler: req.Sandbox.RuntimeHandler, LogPath: req.LogPath,
		CreatedAt: time.Now().UTC(),

		RestartPolicy: req.Docker.RestartPolicy, AutoRemove: req.Docker.AutoRemove,
		Healthcheck: req.Docker.Healthcheck, Entrypoint: req.Docker.Entrypoint, Cmd: req.Docker.Cmd,
		ExposedPorts: req.Docker.ExposedPorts, StopTimeout: req.Docker.StopTimeout,
		Domainname: req.Docker.Domainname, Init: req.Init != "", Tmpfs: req.Docker.Tmpfs,
		Rlimits: req.Rlimits,
	}
	if c.PIDMode == "" {
		c.PIDMode = store.NamespaceContainer
	}
	if c.PIDMode == store.NamespaceTarget {
		c.PIDTarget = req.PIDTarget
	}
	for _, m := range req.Mounts {
		if m.Type != "" && m.Type != "bind" {
			continue // tmpfs: Tmpfs records them
		}
		c.Mounts = append(c.Mounts, store.Mount{
			Destination: m.Destination, Source: m.Source, ReadOnly: m.ReadOnly, Volume: req.Docker.Volumes[m.Destination],
			RecursiveReadOnly: m.RecursiveReadOnly, Propagation: m.Propagation,
		})
	}
	for _, m := range req.ImageMounts {
		c.Mounts = append(c.Mounts, store.Mount{Destination: m.Destination, Image: m.Image, ImageSubPath: m.SubPath, ReadOnly: true})
	}
	for _, d := range req.Devices {
		c.Devices = append(c.Devices, store.Device{HostPath: d.HostPath, ContainerPath: d.ContainerPath, Permissions: d.Permissions})
	}
	return c
}

// prepareBindSources returns mounts with each bind source made ready: a
// host path that does not exist is created as a directory (what the
// kubelet's DirectoryOrCreate and docker's -v expect), and symlinks in it
// are resolved so the runtime mounts what the path names now.
func prepareBindSources(mounts []oci.Mount) ([]oci.Mount, error) {
	isBind := func(m oci.Mount) bool { return m.Type == "" || m.Type == "bind" }
	// Checked first, so that a bad request creates nothing.
	for _, m := range mounts {
		if isBind(m) && !filepath.IsAbs(m.Source) {
			return nil, fmt.Errorf("mount of %s: host path %q must be absolute: %w", m.Destination, m.Source, errdefs.ErrInvalidArgument)
		}
	}
	out := make([]oci.Mount, len(mounts))
	for i, m := range mounts {
		out[i] = m
		if !isBind(m) {
			continue
		}
		if _, err := os.Stat(m.Source); os.IsNotExist(err) {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return nil, fmt.Errorf("mount of %s: creating %s: %w", m.Destination, m.Source, err)
			}
		}
		if resolved, err := filepath.EvalSymlinks(m.Source); err == nil {
			out[i].Source = resolved
		}
	}
	return out, nil
}
