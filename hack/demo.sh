#!/usr/bin/env bash
# make demo: build, then run the demo program as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: berthd needs root; run: sudo make demo" >&2
  exit 1
fi
go run ./hack/demo --bin bin "$@"
