package imageservice

import (
	"context"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/store"
)

// SnapshotSizes is the size on disk of every unpacked layer, by chain
// ID: docker's "system df" sums them to an image's size and finds the
// part it shares with other images.
func (s *Service) SnapshotSizes(ctx context.Context) (map[digest.Digest]int64, error) {
	sizes := map[digest.Digest]int64{}
	err := s.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Snapshots, func(_ string, sn store.Snapshot) error {
			sizes[sn.ChainID] = sn.Size
			return nil
		})
	})
	return sizes, err
}
