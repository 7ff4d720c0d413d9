package runtime

import (
	"context"
	"strings"

	"github.com/berth-runtime/berth/store"
)

// ContainerFilter selects containers for both front doors' list calls.
// Its zero value selects every container; each field set narrows it.
type ContainerFilter struct {
	// IDPrefix and SandboxIDPrefix match the start of the ids (a full
	// id matches only itself).
	IDPrefix        string
	SandboxIDPrefix string
	// State, when set, is the only state selected.
	State *State
	// Labels must all be present with these values.
	Labels map[string]string
	// Origin, when set, selects the containers that front door made
	// (the kubelet must not see, and kill, docker's).
	Origin store.Origin
	// Made leaves out containers still being made (no process yet), as
	// containerd lists a container once CreateContainer has returned.
	Made bool
}

// Matches reports whether f selects c.
func (f ContainerFilter) Matches(c store.Container) bool {
	return strings.HasPrefix(c.ID, f.IDPrefix) && strings.HasPrefix(c.SandboxID, f.SandboxIDPrefix) &&
		(f.State == nil || StateOf(c) == *f.State) && store.LabelsMatch(c.Labels, f.Labels) &&
		(f.Origin == "" || c.Origin == f.Origin) && (!f.Made || StateOf(c) != Unknown)
}

// Match returns the containers f selects, in id order.
func (m *Manager) Match(ctx context.Context, f ContainerFilter) ([]store.Container, error) {
	var out []store.Container
	err := m.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Containers, func(_ string, c store.Container) error {
			if f.Matches(c) {
				out = append(out, c)
			}
			return nil
		})
	})
	return out, err
}
