#!/usr/bin/env bash
# Keeps DESIGN.md's direction of dependencies: cmd → daemon → cri, compat →
# services (sandbox, runtime, imageservice, cni, streaming) → store, config →
# internal. Checked with `go list`; fails naming the offending import.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/berth-runtime/berth

layer() {
  case "$1" in
    $mod/cmd/*) echo 5 ;;
    $mod/daemon*) echo 4 ;;
    $mod/cri*|$mod/compat*) echo 3 ;;
    $mod/sandbox*|$mod/runtime*|$mod/imageservice*|$mod/cni*|$mod/streaming*) echo 2 ;;
    $mod/store*|$mod/config*) echo 1 ;;
    $mod/internal*) echo 0 ;;
    $mod/test/*|$mod/hack/*) echo 9 ;;
    *) echo 9 ;;
  esac
}

# Not a process substitution: a failing go list must fail the check, not
# leave it nothing to check.
pkgs=$(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
fail=0
while read -r pkg imports; do
  pl=$(layer "$pkg")
  for imp in $imports; do
    case "$imp" in $mod/*) ;; *) continue ;; esac
    il=$(layer "$imp")
    # internal imports no other berth package; others import strictly lower layers or
    # sub-packages of their own tree.
    if [ "$pl" = 0 ] && [ "$il" != 0 ]; then
      echo "verify-imports: $pkg (internal) imports $imp"; fail=1
    elif [ "$il" -ge "$pl" ] && [ "$pl" != 9 ] && [ "$pl" != 2 ] && [ "$pl" != 0 ]; then
      echo "verify-imports: $pkg imports $imp (same or higher layer)"; fail=1
    elif [ "$il" = 9 ] && [ "$pl" != 9 ]; then
      echo "verify-imports: $pkg imports test/hack package $imp"; fail=1
    fi
  done
done <<<"$pkgs"
exit $fail
