#!/usr/bin/env bash
# Installs every Debian package berth and its tests need. Idempotent: only
# what is missing is installed, so it is cheap to run before every build.
set -euo pipefail

packages=(
  runc                         # default OCI runtime
  crun                         # alternative OCI runtime (RuntimeHandler "crun")
  containernetworking-plugins  # bridge, host-local, loopback, portmap, firewall in /usr/lib/cni
  iptables                     # used by the portmap and bridge plugins
  busybox-static               # /bin/busybox: the offline test images are built from it
  gzip                         # the benchmark's decompression reference (gzip -dc)
  iproute2 util-linux          # ip netns, nsenter, mount
  ca-certificates
  docker-compose               # 1.29: test/compat drives berthd's Engine API with it
  python3-docker               # 5.0.3, the Python docker SDK: test/compat's SDK smoke test
)
# dockerd 20.10 is only the benchmark's local comparison (make bench skips
# it when absent): BERTH_DEPS_DOCKERD=1 adds it, CI stays lean.
if [ "${BERTH_DEPS_DOCKERD:-0}" = 1 ]; then
  packages+=(docker.io)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "install-deps: go is at /usr/local/go/bin; add it to PATH"
  else
    echo "install-deps: Go 1.26 or newer is required (https://go.dev/dl/)" >&2
    exit 1
  fi
fi
echo "install-deps: all present"
