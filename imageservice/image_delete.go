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
	// Reclaimed is the bytes of the layers collected after the delete.
	Reclaimed int64
}

// Untag removes the name name: Delete given a name, which it must be (an
// ID wraps errdefs.ErrInvalidArgument).
func (s *Service) Untag(ctx context.Context, name string, force bool) (DeleteResult, error) {
	if _, err := reference.Parse(name); err != nil {
		return DeleteResult{}, err
	}
	return s.Delete(ctx, name, force)
}

// Delete is docker's image remove ("rmi REF"), with docker's rules and
// messages (daemon/images/image_delete.go):
//
//   - A name removes that name. When it was the repository's last tag on
//     the image, the repository's digest names go too, so that pulling and
//     removing "busybox" leaves nothing behind. If containers use the image
//     and the name is its only reference, it fails unless forced ("unable
//     to remove repository reference ... (must force)"). When no name is
//     left, the image is deleted as well, unless a container still uses it
//     (forced, or only a digest name was left): then it stays, dangling.
//   - An ID or unique ID prefix deletes the image with its names. Without
//     force it fails when names span several repositories or a stopped
//     container uses it ("(must be forced)"); a running container's image
//     is never deleted ("(cannot be forced)").
//
// Containers keep their layers either way: they are GC roots. Conflicts
// wrap errdefs.ErrConflict, unknown images errdefs.ErrNotFound; a refused
// delete changes nothing.
func (s *Service) Delete(ctx context.Context, name string, force bool) (DeleteResult, error) {
	return s.delete(ctx, func(tx *store.Tx) (DeleteResult, error) {
		img, err := lookup(tx, name)
		if err != nil {
			return DeleteResult{}, err
		}
		users, err := s.imageUsers(tx, img.ID)
		if err != nil {
			return DeleteResult{}, err
		}
		names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
		if !isIDPrefixOf(name, img.ID) {
			ref, err := reference.Parse(name)
			if err != nil {
				return DeleteResult{}, err
			}
			if !force && isSingleReference(names) && len(users) > 0 {
				return DeleteResult{}, errdefs.Message(errdefs.ErrConflict, "conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
					name, shortID(users[0].Container), short(img.ID))
			}
			res, err := s.untag(tx, &img, ref)
			if err != nil || len(img.RepoTags)+len(img.RepoDigests) > 0 {
				return res, err
			}
			// Dangling now: deleted unless a container holds it (docker
			// keeps it quietly then).
			if c := deleteConflict(img, users, force, false); c != nil {
				return res, store.Put(tx, store.Images, img.ID.String(), img)
			}
			res.Deleted = img.ID
			return res, store.Delete(tx, store.Images, img.ID.String())
		}
		if isSingleReference(names) {
			if err := deleteConflict(img, users, force, false); err != nil {
				return DeleteResult{}, err
			}
		} else if err := deleteConflict(img, users, force, !force && len(names) > 0); err != nil {
			return DeleteResult{}, err
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

// deleteConflict is docker's checkImageDeleteConflict: a running
// container is a hard conflict, force or not; names left in other
// repositories (multiRepo) and stopped containers are soft ones, which
// force overrides.
func deleteConflict(img store.Image, users []ImageUser, force, multiRepo bool) error {
	for _, u := range users {
		if u.Running {
			return errdefs.Message(errdefs.ErrConflict, "conflict: unable to delete %s (cannot be forced) - image is being used by running container %s",
				short(img.ID), shortID(u.Container))
		}
	}
	if force {
		return nil
	}
	if multiRepo {
		return errdefs.Message(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories",
			short(img.ID))
	}
	if len(users) > 0 {
		return errdefs.Message(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is being used by stopped container %s",
			short(img.ID), shortID(users[0].Container))
	}
	return nil
}

// isSingleReference is docker's: the names are at most one tag plus
// digest names of that tag's repository (or digests of one repository).
func isSingleReference(names []string) bool {
	if len(names) <= 1 {
		return len(names) == 1
	}
	tag := ""
	digestRepos := map[string]bool{}
	for _, n := range names {
		if strings.Contains(n, "@") {
			digestRepos[repository(n)] = true
		} else if tag == "" {
			tag = n
		} else {
			return false
		}
	}
	if tag == "" {
		tag = names[0]
	}
	return len(digestRepos) == 1 && digestRepos[repository(tag)]
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
		gc, err := s.GC(ctx)
		if err != nil {
			s.log.Warn("collecting the layers of a removed image", "image", res.Deleted, "error", err)
		}
		res.Reclaimed = gc.Bytes
	}
	return res, nil
}

// untag removes ref's name from img, and the digest names that docker
// drops with it (see Delete), in tx; the caller stores or deletes img.
func (s *Service) untag(tx *store.Tx, img *store.Image, ref reference.Ref) (DeleteResult, error) {
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
		if err := store.Delete(tx, store.ImageNames, n); err != nil {
			return DeleteResult{}, err
		}
	}
	res := DeleteResult{Untagged: drop}
	if len(img.RepoTags)+len(img.RepoDigests) > 0 {
		return res, store.Put(tx, store.Images, img.ID.String(), *img)
	}
	return res, nil
}

// imageUsers lists the containers made from image id, in tx. Roots that
// give only image IDs count as stopped containers of unknown ID.
func (s *Service) imageUsers(tx *store.Tx, id digest.Digest) ([]ImageUser, error) {
	var out []ImageUser
	for _, roots := range s.roots {
		r, err := roots(tx)
		if err != nil {
			return nil, fmt.Errorf("listing the users of images: %w", err)
		}
		if len(r.Users) > 0 {
			for _, u := range r.Users {
				if u.Image == id {
					out = append(out, u)
				}
			}
			continue
		}
		for _, img := range r.Images {
			if img == id {
				out = append(out, ImageUser{Image: id})
			}
		}
	}
	return out, nil
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

// shortID is docker's 12-character form of a container ID.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// short is docker's 12-hex form of an ID, for messages.
func short(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
