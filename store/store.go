// Package store is berth's persisted metadata: typed records in bbolt
// buckets, each state change one transaction. Records are JSON so that a
// later schema can add fields without a migration; SchemaVersion changes only
// when a record's meaning changes, and a database written by a newer berth is
// refused rather than misread.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// SchemaVersion is the version of the records this berth writes. Version
// 1 kept the CRI's request protobuf in sandbox and container records;
// version 2 keeps neutral fields and the name indexes (migrate.go).
const SchemaVersion = 2

// Bucket names one kind of record.
type Bucket string

// The buckets. Keys are given per bucket.
const (
	bucketMeta Bucket = "meta"
	// Images: image ID (config digest) → Image.
	Images Bucket = "images"
	// ImageNames: a name (repo:tag or repo@digest) → image ID.
	ImageNames Bucket = "image-names"
	// Snapshots: chain ID → Snapshot.
	Snapshots Bucket = "snapshots"
	// Sandboxes: sandbox ID → Sandbox.
	Sandboxes Bucket = "sandboxes"
	// Containers: container ID → Container.
	Containers Bucket = "containers"
	// SandboxNames and ContainerNames are the name indexes of both front
	// doors: a unique name (Sandbox.Key, Container.Key) → ID, written in
	// the same transaction as the record.
	SandboxNames   Bucket = "sandbox-names"
	ContainerNames Bucket = "container-names"
	// Volumes: volume name → Volume.
	Volumes Bucket = "volumes"
)

var allBuckets = []Bucket{bucketMeta, Images, ImageNames, Snapshots, Sandboxes, Containers, SandboxNames, ContainerNames, Volumes}

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("metadata database is in use by another process")

// DB is the metadata database.
type DB struct {
	bolt *bolt.DB
}

// Open opens (creating if needed) the database at path. A database held by
// another process fails with ErrLocked after a short wait.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db := &DB{bolt: b}
	if err := db.init(); err != nil {
		b.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

func (db *DB) init() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		v := meta.Get([]byte("schema"))
		if v == nil {
			return meta.Put([]byte("schema"), []byte(fmt.Sprint(SchemaVersion)))
		}
		var have int
		if _, err := fmt.Sscan(string(v), &have); err != nil {
			return fmt.Errorf("schema version %q: %w", v, errdefs.ErrDataLoss)
		}
		if have > SchemaVersion {
			return fmt.Errorf("schema version %d was written by a newer berth (this one knows %d): %w",
				have, SchemaVersion, errdefs.ErrFailedPrecondition)
		}
		if have == SchemaVersion {
			return nil
		}
		// Every step in this one transaction: a crash or an error leaves
		// the database as the older berth wrote it.
		t := &Tx{tx}
		for v := have; v < SchemaVersion; v++ {
			step, ok := migrations[v]
			if !ok {
				return fmt.Errorf("no migration from schema version %d: %w", v, errdefs.ErrFailedPrecondition)
			}
			if err := step(t); err != nil {
				return fmt.Errorf("migrating the records from schema version %d to %d: %w", v, v+1, err)
			}
		}
		return meta.Put([]byte("schema"), []byte(fmt.Sprint(SchemaVersion)))
	})
}

// Close closes the database.
func (db *DB) Close() error { return db.bolt.Close() }

// Tx is a read or read-write transaction.
type Tx struct{ tx *bolt.Tx }

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// Update runs fn in a read-write transaction, committed only if fn returns
// nil and durable (fsynced) when Update returns.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// NextID returns a new unique number for bucket b (never reused).
func (tx *Tx) NextID(b Bucket) (uint64, error) {
	return tx.tx.Bucket([]byte(b)).NextSequence()
}

// Get decodes the record at key. A missing key wraps errdefs.ErrNotFound.
func Get[T any](tx *Tx, b Bucket, key string) (T, error) {
	var v T
	data := tx.tx.Bucket([]byte(b)).Get([]byte(key))
	if data == nil {
		return v, fmt.Errorf("%s %q: %w", b, key, errdefs.ErrNotFound)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decoding %s %q: %w", b, key, err)
	}
	return v, nil
}

// Has reports whether key exists in b.
func Has(tx *Tx, b Bucket, key string) bool {
	return tx.tx.Bucket([]byte(b)).Get([]byte(key)) != nil
}

// Put stores v at key.
func Put[T any](tx *Tx, b Bucket, key string, v T) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s %q: %w", b, key, err)
	}
	return tx.tx.Bucket([]byte(b)).Put([]byte(key), data)
}

// Delete removes key; a missing key is not an error.
func Delete(tx *Tx, b Bucket, key string) error {
	return tx.tx.Bucket([]byte(b)).Delete([]byte(key))
}

// ForEach calls fn for every record of b in key order. fn must not modify b.
func ForEach[T any](tx *Tx, b Bucket, fn func(key string, v T) error) error {
	return tx.tx.Bucket([]byte(b)).ForEach(func(k, data []byte) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decoding %s %q: %w", b, k, err)
		}
		return fn(string(k), v)
	})
}

// KeysWithPrefix lists, in order, the keys of b that start with prefix
// (every key for ""). It seeks to the prefix instead of reading the
// whole bucket.
func KeysWithPrefix(tx *Tx, b Bucket, prefix string) []string {
	var keys []string
	c := tx.tx.Bucket([]byte(b)).Cursor()
	for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
		keys = append(keys, string(k))
	}
	return keys
}

// GetByPrefix decodes the record whose key is id or, failing that, the
// only one whose key starts with id, as docker and crictl accept short
// ids. None wraps errdefs.ErrNotFound; several, or an empty id, wrap
// errdefs.ErrInvalidArgument.
func GetByPrefix[T any](tx *Tx, b Bucket, id string) (T, error) {
	var zero T
	if id == "" {
		return zero, fmt.Errorf("empty %s id: %w", b, errdefs.ErrInvalidArgument)
	}
	switch keys := KeysWithPrefix(tx, b, id); {
	case len(keys) == 0:
		return zero, fmt.Errorf("%s %q: %w", b, id, errdefs.ErrNotFound)
	case keys[0] == id || len(keys) == 1:
		// Keys are sorted: an exact match comes first.
		return Get[T](tx, b, keys[0])
	default:
		return zero, fmt.Errorf("%s id prefix %q is ambiguous: %w", b, id, errdefs.ErrInvalidArgument)
	}
}

// ReserveName records in the name index b that name belongs to id, in
// the caller's transaction (so the name and its record are written, or
// not, together). A name held by another id wraps errdefs.ErrAlreadyExists.
func ReserveName(tx *Tx, b Bucket, name, id string) error {
	if name == "" {
		return fmt.Errorf("empty name in %s: %w", b, errdefs.ErrInvalidArgument)
	}
	bk := tx.tx.Bucket([]byte(b))
	if holder := bk.Get([]byte(name)); holder != nil && string(holder) != id {
		return fmt.Errorf("name %q is already in use by %s: %w", name, holder, errdefs.ErrAlreadyExists)
	}
	return bk.Put([]byte(name), []byte(id))
}

// ReleaseName frees name in the name index b if id holds it.
func ReleaseName(tx *Tx, b Bucket, name, id string) error {
	bk := tx.tx.Bucket([]byte(b))
	if holder := bk.Get([]byte(name)); holder != nil && string(holder) == id {
		return bk.Delete([]byte(name))
	}
	return nil
}

// Lookup decodes the record of bucket records that ref names, as docker
// resolves names: a full id, else a name in the name index names, else a
// unique id prefix (see GetByPrefix).
func Lookup[T any](tx *Tx, records, names Bucket, ref string) (T, error) {
	if ref != "" && Has(tx, records, ref) {
		return Get[T](tx, records, ref)
	}
	if id := tx.tx.Bucket([]byte(names)).Get([]byte(ref)); ref != "" && id != nil {
		return Get[T](tx, records, string(id))
	}
	return GetByPrefix[T](tx, records, ref)
}
