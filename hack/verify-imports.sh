#!/usr/bin/env bash
# Keeps DESIGN.md's direction of dependencies: cmd → daemon → cri, compat →
# services (sandbox, runtime, imageservice, cni, streaming) → store, config →
# internal. Checked with `go list` on every package's non-test imports;
# fails naming the offending import:
#   - a package imports only lower layers, its own tree (the top-level
#     directory: runtime/oci is in runtime's tree), or a same-layer tree on
#     the allow-list below;
#   - internal/ imports no other berth package; nothing but test/ and hack/
#     imports test/ or hack/;
#   - the trees' import graph has no cycle (a back-edge: runtime importing
#     sandbox's tree while sandbox imports runtime's), whatever the list says;
#   - every allow-list entry is still used, so the list stays the truth.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/berth-runtime/berth

# Same-layer edges that are allowed, one a line: the importing tree or
# package, the imported package (it and its sub-packages), and why.
# Anything else within a layer is an error.
allowed='
sandbox    runtime                the infra process starts through runtime.Launcher, its OCI spec and mounts; pod stats ask runtime for the containers
sandbox    cni                    a pod netns is attached to the network through cni.PodNetwork and cni.Result
streaming  runtime                exec, attach and port-forward streams are bridged to the containers
runtime    imageservice/snapshot  a writable layer is measured with the same Usage as the image layers
'

layer() {
  case "$1" in
    $mod/cmd/*) echo 5 ;;
    $mod/daemon|$mod/daemon/*) echo 4 ;;
    $mod/cri|$mod/cri/*|$mod/compat|$mod/compat/*) echo 3 ;;
    $mod/volume|$mod/volume/*|$mod/sandbox|$mod/sandbox/*|$mod/runtime|$mod/runtime/*|$mod/imageservice|$mod/imageservice/*|$mod/cni|$mod/cni/*|$mod/streaming|$mod/streaming/*) echo 2 ;;
    $mod/store|$mod/store/*|$mod/config|$mod/config/*) echo 1 ;;
    $mod/internal/*) echo 0 ;;
    *) echo 9 ;; # test/, hack/ and anything new: not checked as importers
  esac
}

# tree is the top-level directory of a berth package.
tree() { local rel=${1#"$mod"/}; echo "${rel%%/*}"; }

# under reports whether package rel is p or below it.
under() { [ "$1" = "$2" ] || [ "${1#"$2"/}" != "$1" ]; }

# allowedEdge prints the allow-list entry that lets pkg import imp, if any.
allowedEdge() {
  local rel=${1#"$mod"/} irel=${2#"$mod"/} from to why
  while read -r from to why; do
    [ -n "$from" ] || continue
    if under "$rel" "$from" && under "$irel" "$to"; then
      echo "$from $to"
      return 0
    fi
  done <<<"$allowed"
  return 1
}

# Not a process substitution: a failing go list must fail the check, not
# leave it nothing to check.
pkgs=$(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
fail=0
declare -A used=()
treeEdges=""
while read -r pkg imports; do
  pl=$(layer "$pkg")
  for imp in $imports; do
    case "$imp" in $mod/*) ;; *) continue ;; esac
    il=$(layer "$imp")
    pt=$(tree "$pkg")
    it=$(tree "$imp")
    if [ "$pl" != 9 ] && [ "$il" != 9 ] && [ "$pt" != "$it" ]; then
      treeEdges+="$pt $it"$'\n'
    fi
    if [ "$pl" = 9 ]; then
      continue
    elif [ "$il" = 9 ]; then
      echo "verify-imports: $pkg imports test/hack package $imp"; fail=1
    elif [ "$pl" = 0 ] && [ "$il" != 0 ]; then
      echo "verify-imports: $pkg (internal) imports $imp"; fail=1
    elif [ "$il" -gt "$pl" ]; then
      echo "verify-imports: $pkg imports $imp (higher layer)"; fail=1
    elif [ "$il" = "$pl" ] && [ "$pt" != "$it" ] && [ "$pl" != 0 ]; then
      if entry=$(allowedEdge "$pkg" "$imp"); then
        used[$entry]=1
      else
        echo "verify-imports: $pkg imports $imp (same layer, not on the allow-list in $0)"; fail=1
      fi
    fi
  done
done <<<"$pkgs"

while read -r from to why; do
  [ -n "$from" ] || continue
  if [ -z "${used["$from $to"]:-}" ]; then
    echo "verify-imports: allow-list entry \"$from -> $to\" is not used any more; remove it"; fail=1
  fi
done <<<"$allowed"

# tsort reports a loop in the graph of trees: a back-edge.
if ! loop=$(printf '%s' "$treeEdges" | sort -u | tsort 2>&1 >/dev/null) || [ -n "$loop" ]; then
  echo "verify-imports: the package trees import each other in a cycle (a back-edge):"
  printf '%s\n' "$loop" | sed 's/^/  /'
  fail=1
fi
exit $fail
