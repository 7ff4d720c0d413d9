#!/usr/bin/env bash
# Builds a real kubelet from the Go module proxy, for the kubelet e2e test
# (make kubelet-e2e) and make bench. The binary is cached outside the
# repository, so a machine builds it once:
#   $BERTH_KUBELET_CACHE/kubelet-$KUBELET_VERSION (default /var/tmp/berth-kubelet)
# Prints the binary's path on stdout; everything else goes to stderr.
#
# How: k8s.io/kubernetes is not meant to be imported, and its go.mod replaces
# its 33 k8s.io/* staging modules with ./staging paths that a module download
# does not have. A scratch module takes that go.mod as its own, points each
# staging module at its published v0.X.Y version and requires
# k8s.io/kubernetes itself, then builds k8s.io/kubernetes/cmd/kubelet.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH

version=${KUBELET_VERSION:-v1.36.3}
cache=${BERTH_KUBELET_CACHE:-/var/tmp/berth-kubelet}
out=$cache/kubelet-$version
if [ -x "$out" ] && "$out" --version >/dev/null 2>&1; then
	echo "$out"
	exit 0
fi
staging=v0.${version#v1.}
minor=${staging#v0.}; minor=${minor%%.*}

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" |
	sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || { echo "build-kubelet: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }

# Module name, staging replaces → published versions, require kubernetes.
sed -e 's|^module k8s.io/kubernetes$|module berth.local/kubelet-build|' \
	-e "s|^\([[:space:]]*k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$|\1 => \1 $staging|" \
	"$gomod" >"$work/go.mod"
if grep -q '=> ./staging' "$work/go.mod"; then
	echo "build-kubelet: staging replaces left in go.mod" >&2
	exit 1
fi
printf '\nrequire k8s.io/kubernetes %s\n' "$version" >>"$work/go.mod"
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
GO

echo "build-kubelet: building kubelet $version (takes 10-30 min on 2 cores)" >&2
cd "$work"
GOFLAGS=-mod=mod go mod download >&2
start=$(date +%s)
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags=selinux,notest,grpcnotrace \
	-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
	-o "$work/kubelet" k8s.io/kubernetes/cmd/kubelet >&2
echo "build-kubelet: built in $(($(date +%s) - start)) s" >&2
mv "$work/kubelet" "$out"
echo "$out"
