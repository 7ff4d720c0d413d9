package engine

import (
	"errors"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
)

func (s *Server) topRoutes() {
	s.route("GET", "/containers/{name}/top", s.containerTop)
}

// containerTop is docker top: the host's ps rows of the container's
// processes.
func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	c, err := s.lookupContainer(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if runtime.StateOf(c) != runtime.Running {
		return errorf(errdefs.ErrConflict, "container %s is not running", c.ID)
	}
	res, err := s.containers.Top(r.Context(), c.ID, r.URL.Query().Get("ps_args"))
	if errors.Is(err, errdefs.ErrConflict) {
		return errorf(errdefs.ErrConflict, "container %s is not running", c.ID)
	}
	if err != nil {
		return err
	}
	s.emitContainer(c, "top", nil)
	return writeJSON(w, http.StatusOK, container.TopResponse{Titles: res.Titles, Processes: res.Processes})
}
