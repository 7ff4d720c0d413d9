package engine

import (
	"net/http"

	"github.com/moby/moby/api/types/container"
)

func (s *Server) changesRoutes() {
	s.route("GET", "/containers/{name}/changes", s.containerChanges)
}

// containerChanges is docker diff: the writable layer's changes.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	c, err := s.lookupContainer(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	changes, err := s.containers.Changes(r.Context(), c.ID)
	if err != nil {
		return err
	}
	out := make([]container.FilesystemChange, len(changes))
	for i, ch := range changes {
		out[i] = container.FilesystemChange{Path: ch.Path, Kind: container.ChangeType(ch.Kind)}
	}
	return writeJSON(w, http.StatusOK, out)
}
