package imageservice

import (
	"context"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/imageservice/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/store"
)

// DeleteResult says what Untag or Delete did, for docker's
// "Untagged: …" / "Deleted: …" lines.
type DeleteResult struct {
	// Untagged are the names removed, in normalised form.
	Untagged []string
	// Deleted is the ID of the image removed; empty when the image stays.
	Deleted digest.Digest
}

// Untag removes the name name (docker's "rmi NAME"). When the name was a
// tag and its repository keeps no other tag on the image, the image's
// digest names in that repository go too, as in docker, so that pulling
// and then removing "busybox" leaves nothing behind. When no name is left,
// the image is removed and its layers collected, unless containers were
// made from it: then Untag fails with errdefs.ErrConflict and changes
// nothing, or with force removes the names and keeps the image, dangling.
//
// name must be a name, not an ID (errdefs.ErrInvalidArgument); an unknown
// name wraps errdefs.ErrNotFound.
func (s *Service) Untag(ctx context.Context, name string, force bool) (DeleteResult, error) {
	ref, err := reference.Parse(name)
	if err != nil {
		return DeleteResult{}, err
	}
	return s.delete(ctx, func(tx *store.Tx) (DeleteResult, error) {
		id, err := store.Get[string](tx, store.ImageNames, nameKey(ref))
		if errdefs.IsNotFound(err) {
			return DeleteResult{}, fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
		}
		if err != nil {
			return DeleteResult{}, err
		}
		img, err := store.Get[store.Image](tx, store.Images, id)
		if err != nil {
			return DeleteResult{}, err
		}
		return s.untag(tx, img, ref, force)
	})
}

// Delete is docker's image remove ("rmi REF"). A name is untagged as Untag
// does. An ID or unique ID prefix removes the image with all its names;
// without force it fails with errdefs.ErrConflict when containers were made
// from the image or when its names span more than one repository (docker
// asks for force then, so that one "rmi ID" does not silently drop
// several unrelated names). Forced, an image in use is removed too: its
// containers keep running, as their layers stay GC roots.
//
// A name is treated as an ID when it is a prefix of the ID of the image it
// finds, as in docker. Unknown images wrap errdefs.ErrNotFound.
func (s *Service) Delete(ctx context.Context, name string, force bool) (DeleteResult, error) {
	return s.delete(ctx, func(tx *store.Tx) (DeleteResult, error) {
		img, err := lookup(tx, name)
		if err != nil {
			return DeleteResult{}, err
		}
		if !isIDPrefixOf(name, img.ID) {
			ref, err := reference.Parse(name)
			if err != nil {
				return DeleteResult{}, err
			}
			return s.untag(tx, img, ref, force)
		}
		names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
		if !force {
			if repos := repositories(names); len(repos) > 1 {
				return DeleteResult{}, fmt.Errorf("image %s is referenced in %d repositories (%s), remove it by name or force: %w",
					short(img.ID), len(repos), strings.Join(repos, ", "), errdefs.ErrConflict)
			}
			if err := s.refuseInUse(tx, img); err != nil {
				return DeleteResult{}, err
			}
		}
		for _, n := range names {
			if err := store.Delete(tx, store.ImageNames, n); err != nil {
				return DeleteResult{}, err
			}
		}
		if err := store.Delete(tx, store.Images, img.ID.String()); err != nil {
			return DeleteResult{}, err
		}
		return DeleteResult{Untagged: names, Deleted: img.ID}, nil
	})
}

// InUse counts, per image ID, the containers made from it: docker's
// "Containers" of an image, and what image prune keeps.
func (s *Service) InUse(ctx context.Context) (map[digest.Digest]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var used map[digest.Digest]int
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		used, err = s.users(tx)
		return err
	})
	return used, err
}

// delete runs fn in one transaction, serialised with pulls and GC, then
// collects the layers of an image it removed. A failing collection is
// logged, not returned: the image is gone, and the next one retries.
func (s *Service) delete(ctx context.Context, fn func(tx *store.Tx) (DeleteResult, error)) (DeleteResult, error) {
	var res DeleteResult
	s.mu.Lock()
	err := s.db.Update(func(tx *store.Tx) error {
		var err error
		res, err = fn(tx)
		return err
	})
	s.mu.Unlock()
	if err != nil {
		return DeleteResult{}, err
	}
	if res.Deleted != "" {
		if _, err := s.GC(ctx); err != nil {
			s.log.Warn("collecting the layers of a removed image", "image", res.Deleted, "error", err)
		}
	}
	return res, nil
}

// untag removes ref's name from img, and the digest names that docker
// drops with it (see Untag), in tx.
func (s *Service) untag(tx *store.Tx, img store.Image, ref reference.Ref, force bool) (DeleteResult, error) {
	key := nameKey(ref)
	drop := []string{key}
	if ref.Digest() == "" {
		repo := ref.Repository()
		lastTag := true
		for _, t := range img.RepoTags {
			if t != key && repository(t) == repo {
				lastTag = false
			}
		}
		for _, d := range img.RepoDigests {
			if lastTag && repository(d) == repo {
				drop = append(drop, d)
			}
		}
	}
	for _, n := range drop {
		img.RepoTags = without(img.RepoTags, n)
		img.RepoDigests = without(img.RepoDigests, n)
	}
	inUse := false
	dangling := len(img.RepoTags) == 0 && len(img.RepoDigests) == 0
	if dangling {
		used, err := s.users(tx)
		if err != nil {
			return DeleteResult{}, err
		}
		if n := used[img.ID]; n > 0 && !force {
			return DeleteResult{}, fmt.Errorf("removing %s, the last name of image %s, in use by %d container(s): %w",
				ref, short(img.ID), n, errdefs.ErrConflict)
		}
		inUse = used[img.ID] > 0
	}
	for _, n := range drop {
		if err := store.Delete(tx, store.ImageNames, n); err != nil {
			return DeleteResult{}, err
		}
	}
	res := DeleteResult{Untagged: drop}
	if !dangling || inUse {
		// Forced when in use: the containers keep their image, unnamed.
		return res, store.Put(tx, store.Images, img.ID.String(), img)
	}
	res.Deleted = img.ID
	return res, store.Delete(tx, store.Images, img.ID.String())
}

// refuseInUse fails with errdefs.ErrConflict when containers were made
// from img.
func (s *Service) refuseInUse(tx *store.Tx, img store.Image) error {
	used, err := s.users(tx)
	if err != nil {
		return err
	}
	if n := used[img.ID]; n > 0 {
		return fmt.Errorf("image %s is in use by %d container(s): %w", short(img.ID), n, errdefs.ErrConflict)
	}
	return nil
}

// users counts the containers made from each image, from the registered
// roots, in tx. The caller holds s.mu.
func (s *Service) users(tx *store.Tx) (map[digest.Digest]int, error) {
	used := map[digest.Digest]int{}
	for _, roots := range s.roots {
		r, err := roots(tx)
		if err != nil {
			return nil, fmt.Errorf("listing the users of images: %w", err)
		}
		for _, id := range r.Images {
			used[id]++
		}
	}
	return used, nil
}

// isIDPrefixOf reports whether s, as typed, is id or a prefix of it
// ("sha256:" optional): docker then treats it as an ID, not a name.
func isIDPrefixOf(s string, id digest.Digest) bool {
	if !reference.IsIDPrefix(s) {
		return false
	}
	return strings.HasPrefix(id.Encoded(), strings.TrimPrefix(s, digest.SHA256.String()+":"))
}

// repository is the repository of a stored (normalised) name.
func repository(name string) string {
	ref, err := reference.Parse(name)
	if err != nil {
		return name
	}
	return ref.Repository()
}

// repositories lists the distinct repositories of names, in order.
func repositories(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if r := repository(n); !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// short is docker's 12-hex form of an ID, for messages.
func short(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
