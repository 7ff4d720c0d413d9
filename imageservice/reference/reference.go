// Package reference parses image names the way docker users write them and
// keeps them in one normalised, fully qualified form.
//
// It is a thin layer over github.com/distribution/reference (the parser
// docker itself uses): "busybox" becomes "docker.io/library/busybox:latest",
// "foo/bar:1" becomes "docker.io/foo/bar:1", and other registries keep their
// host. Names stored by berth and shown on the CRI side are always the
// normalised form (String); the docker side shows Familiar.
//
// go-containerregistry spells Docker Hub "index.docker.io"; that spelling never
// leaves imageservice/remote, so the names users see come from this package.
package reference

import (
	"errors"
	"fmt"
	"strings"

	distref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const (
	// DefaultDomain is the registry of names without a host: Docker Hub.
	DefaultDomain = "docker.io"
	// DefaultTag is added to names that have neither a tag nor a digest.
	DefaultTag = "latest"

	officialPrefix = "library/"
)

// Ref is a normalised, fully qualified image reference: a registry host, a
// repository path, and a tag, a digest, or both. The zero Ref is not a valid
// reference (IsZero reports it). Refs are comparable values; two Refs are
// equal exactly when their String forms are.
type Ref struct {
	domain string
	path   string
	tag    string
	digest digest.Digest
}

// Parse parses an image name as docker does and normalises it:
//
//	busybox                  → docker.io/library/busybox:latest
//	foo/bar:1                → docker.io/foo/bar:1
//	127.0.0.1:5000/x         → 127.0.0.1:5000/x:latest
//	name@sha256:…            → docker.io/library/name@sha256:… (no tag added)
//	name:tag@sha256:…        → docker.io/library/name:tag@sha256:… (both kept)
//
// Rejected, with an error wrapping errdefs.ErrInvalidArgument that quotes the
// input: the empty string, malformed names, upper case anywhere in the name
// (host included, unlike docker, so that one image has one name), and image
// IDs ("<64 hex>" or "sha256:<64 hex>"), which are IDs rather than names; see
// ParseID.
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, invalid(s, errors.New("empty name"))
	}
	if _, ok := ParseID(s); ok {
		return Ref{}, invalid(s, errors.New("this is an image ID, not a name"))
	}
	if isDigest(s) {
		return Ref{}, invalid(s, errors.New("this is a digest, not a name"))
	}
	named, err := distref.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, invalid(s, err)
	}
	if name := named.Name(); strings.ToLower(name) != name {
		return Ref{}, invalid(s, fmt.Errorf("name %s must be lowercase", name))
	}
	r := Ref{domain: distref.Domain(named), path: distref.Path(named)}
	if t, ok := named.(distref.Tagged); ok {
		r.tag = t.Tag()
	}
	if d, ok := named.(distref.Digested); ok {
		r.digest = d.Digest()
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

func invalid(s string, cause error) error {
	return fmt.Errorf("image reference %q: %w (%w)", s, cause, errdefs.ErrInvalidArgument)
}

// IsZero reports whether r is the zero Ref, which Parse never returns.
func (r Ref) IsZero() bool { return r == Ref{} }

// String is the normalised form: "docker.io/library/busybox:latest",
// "docker.io/library/busybox@sha256:…" or "host/path:tag@sha256:…".
func (r Ref) String() string {
	if r.IsZero() {
		return ""
	}
	s := r.Repository()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// Domain is the registry host, with its port if any: "docker.io",
// "127.0.0.1:5000".
func (r Ref) Domain() string { return r.domain }

// Path is the repository path inside the registry: "library/busybox".
func (r Ref) Path() string { return r.path }

// Repository is the name without tag or digest: "docker.io/library/busybox".
func (r Ref) Repository() string {
	if r.IsZero() {
		return ""
	}
	return r.domain + "/" + r.path
}

// Tag is the tag, or "" for a reference by digest only.
func (r Ref) Tag() string { return r.tag }

// Digest is the manifest digest, or "" for a reference by tag.
func (r Ref) Digest() digest.Digest { return r.digest }

// WithDigest returns repository@d without the tag: the RepoDigests form that
// records which manifest a pull resolved to.
func (r Ref) WithDigest(d digest.Digest) Ref {
	return Ref{domain: r.domain, path: r.path, digest: d}
}

// Familiar is docker's short form, used on the docker side: Docker Hub's host
// and the "library/" namespace of official images are left out
// ("busybox:latest", "foo/bar:1"); other registries keep their host.
func (r Ref) Familiar() string {
	if r.IsZero() {
		return ""
	}
	name := r.Repository()
	if r.domain == DefaultDomain {
		name = r.path
		if rest, ok := strings.CutPrefix(r.path, officialPrefix); ok && !strings.Contains(rest, "/") {
			name = rest
		}
	}
	if r.tag != "" {
		name += ":" + r.tag
	}
	if r.digest != "" {
		name += "@" + r.digest.String()
	}
	return name
}
