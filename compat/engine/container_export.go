package engine

import (
	"io"
	"net/http"
)

func (s *Server) exportRoutes() {
	s.route("GET", "/containers/{name}/export", s.containerExport)
}

// containerExport is docker export: a tar of the container's merged root
// file system, without its volumes.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	c, err := s.lookupContainer(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	tr, err := s.containers.Export(r.Context(), c.ID)
	if err != nil {
		return err
	}
	defer tr.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, tr); err != nil {
		s.log.Warn("exporting a container", "container", c.ID[:12], "error", err)
		return nil
	}
	s.emitContainer(c, "export", nil)
	return nil
}
