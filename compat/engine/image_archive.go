package engine

import (
	"net/http"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// imageSave is docker save of one image: GET /images/{name}/get.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, name string) error {
	return s.save(w, r, []string{name})
}

// imageSaveNames is docker save of several: GET /images/get?names=a&names=b.
func (s *Server) imageSaveNames(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return errorf(errdefs.ErrInvalidArgument, "no images to save: give names")
	}
	return s.save(w, r, names)
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	for _, n := range names {
		if _, err := s.findImage(r.Context(), n); err != nil {
			return err
		}
	}
	hw := &lazyHeader{w: w}
	if err := s.images.Save(r.Context(), hw, names); err != nil {
		if !hw.started {
			return err
		}
		// The archive is cut short; the client's tar reader sees it.
		s.log.Error("saving images", "images", names, "error", err)
		return nil
	}
	hw.start()
	seen := map[string]bool{}
	for _, n := range names {
		if img, err := s.images.Get(r.Context(), n); err == nil && !seen[img.ID.String()] {
			seen[img.ID.String()] = true
			s.emit("image", "save", img.ID.String(), map[string]string{"name": img.ID.String()})
		}
	}
	return nil
}

// lazyHeader sends the tar reply's status with its first byte, so that an
// error found before (an unknown name) is still docker's JSON error.
type lazyHeader struct {
	w       http.ResponseWriter
	started bool
}

func (h *lazyHeader) start() {
	if !h.started {
		h.started = true
		h.w.Header().Set("Content-Type", "application/x-tar")
		h.w.WriteHeader(http.StatusOK)
	}
}

func (h *lazyHeader) Write(p []byte) (int, error) {
	h.start()
	return h.w.Write(p)
}

// imageLoad is docker load: a docker-archive, plain or gzip, of one or
// more images; each is reported as docker does ("Loaded image: x").
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	out := newProgressStream(w)
	_, err := s.images.Load(r.Context(), r.Body, func(res imageservice.LoadResult) {
		s.loaded(out, res)
	})
	// Whatever went wrong after the first image is reported in the stream.
	return out.finish(err)
}

func (s *Server) loaded(out *progressStream, res imageservice.LoadResult) {
	if len(res.Names) == 0 {
		out.send(streamMessage{Message: jsonstream.Message{Stream: "Loaded image ID: " + res.ID.String() + "\n"}})
	}
	for _, n := range res.Names {
		out.send(streamMessage{Message: jsonstream.Message{Stream: "Loaded image: " + n + "\n"}})
	}
	s.emit("image", "load", res.ID.String(), map[string]string{"name": res.ID.String()})
}
