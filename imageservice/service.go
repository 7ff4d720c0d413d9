// Package imageservice owns images: pulling them from registries, the
// blobs that describe them, the unpacked layers they run from, the names
// they are known by, and the garbage collection of what nothing uses.
//
// Storage, under Options.Root:
//
//	content/blobs/sha256/<hex>   manifests, indexes, configs, layer blobs (verified, atomic)
//	snapshots/<n>/fs             an unpacked layer, one overlay lower dir
//	snapshots/tmp/               layers being unpacked
//
// and records in the metadata store: store.Images, store.ImageNames and
// store.Snapshots. A layer is unpacked while it downloads, verified against
// both its blob digest and its diff ID, synced, renamed into place, and only
// then recorded; an image is recorded only when all its layers are. So a pull
// killed at any point leaves nothing half visible: start-up removes
// unrecorded directories, and the layers it had finished are reused by the
// next pull of the same image.
package imageservice

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-runtime/berth/imageservice/content"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/imageservice/snapshot"
	"github.com/berth-runtime/berth/store"
)

// Options configure a Service. Root, DB and Resolver are required.
type Options struct {
	// Root is the directory for content/ and snapshots/.
	Root string
	// DB is the metadata store.
	DB *store.DB
	// Resolver says where and how to fetch a reference.
	Resolver *remote.Resolver
	// MaxConcurrentDownloads bounds the layers fetched at once per pull (default 4).
	MaxConcurrentDownloads int
	// SyncLayers flushes each layer to disk before recording it.
	SyncLayers bool
	// Platform is the platform picked from indexes (default: this host's).
	Platform *v1.Platform
	// Metrics registers the pull metrics when set.
	Metrics prometheus.Registerer
	// Logger is the service's logger (default slog.Default()).
	Logger *slog.Logger
}

// Service is the image service shared by the CRI and the docker side.
type Service struct {
	root       string
	db         *store.DB
	content    *content.Store
	snaps      *snapshot.Dirs
	resolver   *remote.Resolver
	platform   v1.Platform
	downloads  int
	syncLayers bool
	log        *slog.Logger
	metrics    *metrics

	pulls  flights[store.Image] // whole pulls, by reference and credentials
	layers flights[struct{}]    // layer unpacks, by chain ID, shared across images

	// mu guards leases and serialises garbage collection against the
	// recording of new images and snapshots.
	mu     sync.Mutex
	leases map[digest.Digest]int // chain IDs in use by pulls under way
	// ingests counts blobs being written outside pulls (load, import,
	// commit): GC leaves the blob store alone meanwhile.
	ingests int
	roots   []RootsFunc
}

// Roots is what something besides images holds: containers run on layers
// and were made from images.
type Roots struct {
	// ChainIDs are layers in use (containers' root file systems, images
	// mounted as volumes). GC keeps them and their parents, even when no
	// image names them any more.
	ChainIDs []digest.Digest
	// Images are the IDs of images that containers were made from, once
	// per container: such an image is in use, and Untag and Delete refuse
	// to remove it unless forced, as docker does.
	Images []digest.Digest
	// Users, when the RootsFunc knows them, name the containers behind
	// Images, for docker's conflict messages ("image is being used by
	// running container <id>"): one per container, with Images still
	// listing their image IDs.
	Users []ImageUser
}

// ImageUser is a container made from an image.
type ImageUser struct {
	Image     digest.Digest
	Container string
	// Running containers hold their image even against a forced delete.
	Running bool
}

// RootsFunc reports the Roots of one kind of user (the container manager
// registers one). It reads in the caller's transaction, so that what it
// reports cannot change before the caller acts on it.
type RootsFunc func(tx *store.Tx) (Roots, error)

// New opens the image service and cleans up what a crash left behind.
func New(opts Options) (*Service, error) {
	if opts.Root == "" || opts.DB == nil || opts.Resolver == nil {
		return nil, fmt.Errorf("imageservice: Root, DB and Resolver are required")
	}
	cs, err := content.New(filepath.Join(opts.Root, "content"))
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.New(filepath.Join(opts.Root, "snapshots"))
	if err != nil {
		return nil, err
	}
	s := &Service{
		root:       opts.Root,
		db:         opts.DB,
		content:    cs,
		snaps:      snaps,
		resolver:   opts.Resolver,
		platform:   v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		downloads:  opts.MaxConcurrentDownloads,
		syncLayers: opts.SyncLayers,
		log:        opts.Logger,
		metrics:    newMetrics(opts.Metrics),
		leases:     map[digest.Digest]int{},
	}
	if opts.Platform != nil {
		s.platform = *opts.Platform
	}
	if s.downloads < 1 {
		s.downloads = 4
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("recovering image store: %w", err)
	}
	return s, nil
}

// AddRoots registers more GC roots and image users.
func (s *Service) AddRoots(f RootsFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roots = append(s.roots, f)
}

// recover removes unpack leftovers and snapshot directories that no record
// names. Recorded snapshots that no image uses are kept: they are the
// finished layers of an interrupted pull, and the next GC decides.
func (s *Service) recover() error {
	keep := map[uint64]bool{}
	err := s.db.View(func(tx *store.Tx) error {
		return store.ForEach(tx, store.Snapshots, func(_ string, sn store.Snapshot) error {
			keep[sn.Dir] = true
			return nil
		})
	})
	if err != nil {
		return err
	}
	// Archives being loaded when the daemon stopped.
	if err := os.RemoveAll(filepath.Join(s.root, "tmp")); err != nil {
		return err
	}
	removed, err := s.snaps.Clean(keep)
	for _, p := range removed {
		s.log.Info("removed unfinished layer", "path", p)
	}
	return err
}

func (s *Service) lease(ids []digest.Digest) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.leases[id]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, id := range ids {
			if s.leases[id]--; s.leases[id] <= 0 {
				delete(s.leases, id)
			}
		}
	}
}

// ingest marks a blob write under way until the returned func is called.
func (s *Service) ingest() (end func()) {
	s.mu.Lock()
	s.ingests++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.ingests--
			s.mu.Unlock()
		})
	}
}

// SnapshotDirs returns the directories of the image's layers, top first,
// as overlayfs's lowerdir wants them.
func (s *Service) SnapshotDirs(ctx context.Context, img store.Image) ([]string, error) {
	dirs := make([]string, 0, len(img.ChainIDs))
	err := s.db.View(func(tx *store.Tx) error {
		for i := len(img.ChainIDs) - 1; i >= 0; i-- {
			sn, err := store.Get[store.Snapshot](tx, store.Snapshots, img.ChainIDs[i].String())
			if err != nil {
				return fmt.Errorf("image %s: %w", img.ID, err)
			}
			dirs = append(dirs, s.snaps.Path(sn.Dir))
		}
		return nil
	})
	return dirs, err
}

// Config returns the image's OCI/Docker config.
func (s *Service) Config(img store.Image) (*v1.ConfigFile, error) {
	raw, err := s.content.Get(img.ID)
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(raw))
}

// Platform is the platform the service pulls and makes images for.
func (s *Service) Platform() v1.Platform { return s.platform }
