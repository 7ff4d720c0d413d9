package reference

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// An image ID is the digest of the image's config blob, "sha256:<64 hex>",
// as docker and the CRI report it. Users also type it bare or shortened.

const (
	idHexLen = 64
	// MinIDPrefix is the shortest hex prefix IsIDPrefix accepts.
	MinIDPrefix = 3
)

// ParseID accepts a full image ID, "sha256:<64 hex>" or the bare 64 hex
// digits, and returns it as a digest. Upper-case hex is not an ID.
func ParseID(s string) (digest.Digest, bool) {
	hex := strings.TrimPrefix(s, digest.SHA256.String()+":")
	if len(hex) != idHexLen || !isLowerHex(hex) {
		return "", false
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex), true
}

// IsIDPrefix reports whether s can be a (short) image ID as docker accepts
// it: at least MinIDPrefix and at most 64 lower-case hex digits, optionally
// after "sha256:". A string like "abc" is also a valid name; callers look it
// up as a name first, as docker does.
func IsIDPrefix(s string) bool {
	hex := strings.TrimPrefix(s, digest.SHA256.String()+":")
	return len(hex) >= MinIDPrefix && len(hex) <= idHexLen && isLowerHex(hex)
}

// isDigest reports whether s looks like "<algorithm>:<hex>" for an OCI
// registered algorithm. digest.Parse would only know the algorithms whose
// hash is linked into the binary.
func isDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || !isLowerHex(hex) {
		return false
	}
	switch digest.Algorithm(alg) {
	case digest.SHA256:
		return len(hex) == 64
	case digest.SHA384:
		return len(hex) == 96
	case digest.SHA512:
		return len(hex) == 128
	}
	return false
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
