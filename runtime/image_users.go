package runtime

import (
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/store"
)

// ImageUser is a container made from an image, as the image service's
// docker-style delete needs it: a running container's image is never
// removed, a stopped one's only when forced.
type ImageUser struct {
	Image     digest.Digest
	Container string
	Running   bool
}

// ImageUsers lists every container with its image, in tx (the image
// service's transaction, so the answer holds while it acts on it).
func (m *Manager) ImageUsers(tx *store.Tx) ([]ImageUser, error) {
	var out []ImageUser
	err := store.ForEach(tx, store.Containers, func(_ string, c store.Container) error {
		out = append(out, ImageUser{Image: c.ImageID, Container: c.ID, Running: StateOf(c) == Running})
		return nil
	})
	return out, err
}
