package store

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	godigest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	img := Image{ID: "sha256:aa", RepoTags: []string{"docker.io/library/busybox:latest"}, ChainIDs: []godigest.Digest{"sha256:bb"}}
	if err := db.Update(func(tx *Tx) error { return Put(tx, Images, string(img.ID), img) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		got, err := Get[Image](tx, Images, "sha256:aa")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(img, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if _, err := Get[Image](tx, Images, "sha256:zz"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("missing key: %v, want ErrNotFound", err)
		}
		n := 0
		ForEach(tx, Images, func(string, Image) error { n++; return nil })
		if n != 1 {
			t.Errorf("ForEach saw %d records", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFailedUpdateChangesNothing(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		Put(tx, Images, "sha256:aa", Image{ID: "sha256:aa"})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	db.View(func(tx *Tx) error {
		if Has(tx, Images, "sha256:aa") {
			t.Error("a failed transaction left a record")
		}
		return nil
	})
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte("schema"), []byte("99"))
	})
	db.Close()
	if _, err := Open(path); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Open of a newer schema = %v", err)
	}
}

func TestGetByPrefix(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// "ab12" is a prefix of "ab123"; "ac" sorts between them and "b".
	ids := []string{"ab12", "ab123", "ac9", "b00"}
	if err := db.Update(func(tx *Tx) error {
		for _, id := range ids {
			if err := Put(tx, Sandboxes, id, Sandbox{ID: id}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		for prefix, want := range map[string]string{"ab12": "ab12", "ab123": "ab123", "ac": "ac9", "b": "b00", "ab1234": "", "c": "", "a": "", "": ""} {
			sb, err := GetByPrefix[Sandbox](tx, Sandboxes, prefix)
			switch {
			case want != "" && (err != nil || sb.ID != want):
				t.Errorf("GetByPrefix(%q) = %q, %v; want %q", prefix, sb.ID, err, want)
			case want == "" && prefix == "a" && !errors.Is(err, errdefs.ErrInvalidArgument):
				t.Errorf("GetByPrefix(a) = %v, want ambiguous", err)
			case want == "" && prefix == "" && !errors.Is(err, errdefs.ErrInvalidArgument):
				t.Errorf("GetByPrefix(\"\") = %v, want invalid", err)
			case want == "" && (prefix == "c" || prefix == "ab1234") && !errors.Is(err, errdefs.ErrNotFound):
				t.Errorf("GetByPrefix(%q) = %v, want not found", prefix, err)
			}
		}
		if got := KeysWithPrefix(tx, Sandboxes, "ab"); len(got) != 2 {
			t.Errorf("KeysWithPrefix(ab) = %v", got)
		}
		return nil
	})
}
