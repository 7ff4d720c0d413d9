#!/usr/bin/env bash
# make critest: run cri-tools' CRI validation suite (critest) against a
# private berthd, with the offline critest harness in ../shared/critest.
#
# What it does:
#   1. starts bin/berthd (run `make build` first; the make target does) with
#      test/critest/config.toml: root, state and socket under
#      /var/tmp/berth-harness/berth, CNI bridge berthct0 10.88.60.0/24,
#      registry.k8s.io, k8s.gcr.io, gcr.io, public.ecr.aws and docker.io
#      mirrored to the loopback registry 127.0.0.1:5055;
#   2. runs $CRITEST_HARNESS/run-critest.sh -e unix://<socket> -n berth [ARGS...]
#      (results under /var/tmp/berth-harness/results/berth-<time>/: critest.log,
#      report.json, summary.txt, specs.tsv);
#   3. removes the pods left behind (with crictl, if on PATH), stops berthd
#      with SIGTERM (SIGKILL after 30 s), deletes the idle berthct0 bridge;
#   4. exits with run-critest.sh's status (0 all passed, 1 failures, 2 harness error).
#
# Prerequisites (harness, not part of this repository):
#   * root; Debian packages runc, containernetworking-plugins, jq, iproute2;
#   * the harness scripts in ../shared/critest (or CRITEST_HARNESS=DIR);
#   * its loopback registry with the stand-in images:
#       ../shared/critest/start-registry.sh && ../shared/critest/build-images.sh
#     (needs Debian's docker-registry and skopeo packages, gcc);
#   * `critest` (and, for the clean-up, `crictl`) on PATH, built by hand from
#     cri-tools; /var/tmp/berth-harness/bin is appended to PATH. See
#     critest_help below for how to get them.
#
# Extra arguments go to run-critest.sh, e.g.
#   make critest CRITEST_ARGS='-f Streaming'
#   hack/critest.sh --benchmark
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

HARNESS_DIR=${HARNESS_DIR:-/var/tmp/berth-harness}
CRITEST_HARNESS=${CRITEST_HARNESS:-$REPO/../shared/critest}
CONFIG=${BERTH_CRITEST_CONFIG:-$REPO/test/critest/config.toml}
BIN=${BERTH_BIN:-$REPO/bin}
REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5055}
export PATH=$PATH:$HARNESS_DIR/bin:/usr/local/go/bin

log() { printf '[critest %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

critest_help() {
	cat >&2 <<'EOF'
critest is not on PATH (nor in /var/tmp/berth-harness/bin). Build it by hand,
outside this repository (cri-tools is not vendored or scripted here):
  - get the cri-tools sources (github.com/kubernetes-sigs/cri-tools; the harness's
    reference figures used commit ba03eabc14500ba95be34f9cb7149c0f7de6ce33) into
    e.g. /var/tmp/berth-harness/src/cri-tools;
  - there, with its vendored dependencies (GOFLAGS=-mod=vendor, CGO_ENABLED=0),
    build the test binary of ./cmd/critest with `go test -c` and the crictl
    command ./cmd/crictl with `go build` (or use its Makefile's `make critest crictl`);
  - put both binaries in /var/tmp/berth-harness/bin (or anywhere on PATH).
Then run `make critest` again.
EOF
}

[ "$(id -u)" -eq 0 ] || { log "needs root (berthd mounts, namespaces, CNI)"; exit 2; }
command -v critest >/dev/null || { critest_help; exit 2; }
[ -x "$CRITEST_HARNESS/run-critest.sh" ] || {
	log "no critest harness at $CRITEST_HARNESS (set CRITEST_HARNESS=DIR)"
	exit 2
}
[ -x "$BIN/berthd" ] || { log "no $BIN/berthd: run make build"; exit 2; }
if ! curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/e2e-test-images/busybox/manifests/1.29-2" \
	-H 'Accept: application/vnd.oci.image.index.v1+json' 2>/dev/null; then
	log "the harness registry on $REGISTRY_ADDR is not up or lacks the stand-in images; run:"
	log "  $CRITEST_HARNESS/start-registry.sh && $CRITEST_HARNESS/build-images.sh"
	exit 2
fi

# Paths from the config (one `key = "value"` per line there).
conf_get() { sed -n "s/^$1 *= *\"\\(.*\\)\"/\\1/p" "$CONFIG" | head -1; }
ENDPOINT=$(conf_get listen)
STATE=$(conf_get state)
ROOT=$(conf_get root)
CNI_DIR=$(conf_get conf_dir)
BRIDGE=$(conf_get default_bridge)
SOCK=${ENDPOINT#unix://}
[ -n "$SOCK" ] && [ -n "$STATE" ] || { log "cannot read listen/state from $CONFIG"; exit 2; }
DIR=$(dirname "$SOCK")
PIDFILE=$DIR/berthd.pid
LOGFILE=$DIR/berthd.log
mkdir -p "$DIR" "$ROOT" "$STATE" "$CNI_DIR"

crictl_() { crictl --runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" --timeout 60s "$@"; }

remove_pods() {
	command -v crictl >/dev/null || { log "crictl not on PATH: pods left to berthd's shutdown"; return 0; }
	local pods
	pods=$(crictl_ pods -q 2>/dev/null) || return 0
	[ -n "$pods" ] || return 0
	log "removing $(echo "$pods" | wc -l) pod(s) left behind"
	for p in $pods; do
		crictl_ stopp "$p" >/dev/null 2>&1 || log "stopp $p failed"
		crictl_ rmp -f "$p" >/dev/null 2>&1 || log "rmp $p failed"
	done
}

stop_berthd() {
	[ -s "$PIDFILE" ] || return 0
	local pid
	pid=$(cat "$PIDFILE")
	if kill -0 "$pid" 2>/dev/null; then
		remove_pods
		log "stopping berthd (pid $pid)"
		kill -TERM "$pid"
		for _ in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "berthd still alive after 30 s: SIGKILL"
			kill -KILL "$pid"
		fi
	fi
	rm -f "$PIDFILE"
	# berthd bind-mounts <state>/netns and <state>/userns onto themselves to
	# pin pods' namespaces there and leaves those mounts at shutdown; drop
	# them once nothing is pinned.
	for pins in "$STATE/netns" "$STATE/userns"; do
		if mountpoint -q "$pins" 2>/dev/null && [ -z "$(ls -A "$pins")" ]; then
			umount "$pins" && log "unmounted $pins"
		fi
	done
	# Our private bridge, once no pod uses it (the bridge plugin leaves it behind).
	if [ -n "$BRIDGE" ] && ip link show "$BRIDGE" >/dev/null 2>&1; then
		if [ -z "$(ls "/sys/class/net/$BRIDGE/brif" 2>/dev/null)" ]; then
			ip link del "$BRIDGE" && log "deleted idle bridge $BRIDGE"
		else
			log "bridge $BRIDGE still has ports: $(ls "/sys/class/net/$BRIDGE/brif" | tr '\n' ' ')"
		fi
	fi
}

if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	log "a berthd from an earlier run is still up (pid $(cat "$PIDFILE")): stopping it first"
	stop_berthd
fi

trap stop_berthd EXIT
trap 'exit 130' INT TERM

log "starting $BIN/berthd --config $CONFIG (log: $LOGFILE)"
echo "=== $(date -u +%FT%TZ) berthd $("$BIN/berthd" --version 2>/dev/null)" >>"$LOGFILE"
rm -f "$PIDFILE"
setsid sh -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" "$BIN/berthd" --config "$CONFIG" >>"$LOGFILE" 2>&1 </dev/null &
up=0
for _ in $(seq 1 100); do
	if [ -S "$SOCK" ] && [ -s "$PIDFILE" ] && { ! command -v crictl >/dev/null || crictl_ version >/dev/null 2>&1; }; then
		up=1
		break
	fi
	[ -s "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null && break
	sleep 0.2
done
if [ $up = 0 ]; then
	log "berthd did not come up; last lines of $LOGFILE:"
	tail -20 "$LOGFILE" >&2
	exit 2
fi
log "berthd up (pid $(cat "$PIDFILE")) on $ENDPOINT"

"$CRITEST_HARNESS/run-critest.sh" -e "$ENDPOINT" -n berth "$@"
rc=$?
log "berthd log: $LOGFILE"
exit $rc
