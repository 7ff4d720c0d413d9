package engine

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
)

// docker cp: the CLI stats the path (HEAD), then reads a tar of it (GET)
// or sends one to extract into a directory (PUT). Paths are the
// container's, resolved inside its root file system and volumes by
// runtime; nothing here opens a file.

func (s *Server) archiveRoutes() {
	s.route("HEAD", "/containers/{name}/archive", s.archiveStat)
	s.route("GET", "/containers/{name}/archive", s.archiveGet)
	s.route("PUT", "/containers/{name}/archive", s.archivePut)
	s.changesRoutes()
	s.exportRoutes()
	s.topRoutes()
	s.statsRoutes()
}

// archivePath is the request's path parameter, which docker requires.
func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errorf(errdefs.ErrInvalidArgument, "path cannot be empty")
	}
	return p, nil
}

// archiveError turns a missing container path into docker's message.
func archiveError(err error, p, name string) error {
	switch {
	case errors.Is(err, runtime.ErrPathNotFound):
		return errorf(errdefs.ErrNotFound, "Could not find the file %s in container %s", p, name)
	case errors.Is(err, runtime.ErrNotDirectory):
		return errorf(errdefs.ErrInvalidArgument, "%s: not a directory", p)
	}
	return err
}

// setPathStat sends the stat in docker's header: base64 of its JSON.
func setPathStat(w http.ResponseWriter, st runtime.PathStat) error {
	b, err := json.Marshal(container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget})
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) archiveStat(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), name)
	if err != nil {
		return err
	}
	st, err := s.containers.StatPath(r.Context(), c.ID, p)
	if err != nil {
		return archiveError(err, p, name)
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), name)
	if err != nil {
		return err
	}
	tr, st, err := s.containers.ArchivePath(r.Context(), c.ID, p)
	if err != nil {
		return archiveError(err, p, name)
	}
	defer tr.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, tr); err != nil {
		s.log.Warn("sending a container archive", "container", c.ID[:12], "path", p, "error", err)
	}
	s.emitContainer(c, "archive-path", nil)
	return nil
}

func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	c, err := s.lookupContainer(r.Context(), name)
	if err != nil {
		return err
	}
	err = s.containers.ExtractToDir(r.Context(), c.ID, p, r.Body, runtime.ExtractOptions{
		NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"),
		CopyUIDGID:           boolValue(r, "copyUIDGID"),
	})
	if err != nil {
		return archiveError(err, p, name)
	}
	s.emitContainer(c, "extract-to-dir", nil)
	w.WriteHeader(http.StatusOK)
	return nil
}
