#!/usr/bin/env bash
# Builds berthd and berth-shim of an earlier commit into DIR, for the
# upgrade test (test/e2e/upgrade_test.go, BERTH_OLD_BIN): a store written by
# that version must open, migrated, under this one. Prints DIR on success;
# prints nothing (the test then skips) when the commit is not in this clone,
# e.g. a shallow one.
#   hack/build-old.sh COMMIT DIR
set -euo pipefail
commit=$1 out=$2
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
git cat-file -e "$commit^{commit}" 2>/dev/null || { echo "build-old: $commit is not in this clone; the upgrade test skips" >&2; exit 0; }
if [ -x "$out/berthd" ] && [ -x "$out/berth-shim" ] && [ "$(cat "$out/.commit" 2>/dev/null)" = "$commit" ]; then
	echo "$out"
	exit 0
fi
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git archive "$commit" | tar -x -C "$src"
mkdir -p "$out"
(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/berth-runtime/berth/internal/version.Version=$commit" -o "$out/" ./cmd/...) >&2
echo "$commit" >"$out/.commit"
echo "$out"
