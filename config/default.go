package config

// DefaultTOML is the documented default configuration: the one place where
// every key, its default and its meaning are written down. A test checks
// that it decodes to exactly Default().
const DefaultTOML = `# berthd configuration (/etc/berth/config.toml). Every key is optional;
# the values below are the defaults. Flags (--root, --state, --listen)
# override the file.

# Persistent state: metadata (meta.db), content (blobs), snapshots (layers).
root = "/var/lib/berth"

# Runtime state that dies with the machine: sockets, bundles, exit files.
state = "/run/berth"

# The CRI gRPC endpoint. Empty means unix://<state>/berth.sock.
listen = ""

# Group owning the sockets (mode 0660). Empty means root.
socket_group = ""

# debug, info, warn or error. Pull progress is logged at debug.
log_level = "info"

# host:port to serve Prometheus metrics on (/metrics). Empty: off.
metrics_address = ""

# cgroupfs or systemd. Reported to the kubelet by RuntimeConfig.
cgroup_driver = "cgroupfs"

# The runtime handler used when a request names none.
default_runtime = "runc"

# The berth-shim binary (per-container monitor and pod infra process).
# Empty means beside berthd, else found in PATH.
shim_path = ""

# OCI runtimes by CRI runtime handler name. A bare path is looked up in PATH.
[runtimes.runc]
path = "runc"

[runtimes.crun]
path = "crun"

[image]
# Layers fetched (and unpacked, as they stream in) at once per pull.
max_concurrent_downloads = 4
# Flush each unpacked layer to disk before recording it.
sync_layers = true

[registry]
# docker-style config.json with credentials. Empty means
# $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
config_path = ""
# Hosts reached over plain HTTP or with unverified TLS certificates.
# Registries on loopback (localhost, 127.0.0.0/8, ::1) may always use HTTP.
insecure = []

# Mirrors, tried in order before the registry itself; repository paths are
# kept. Example:
#   [registry.mirrors]
#   "docker.io" = ["http://127.0.0.1:5000"]
[registry.mirrors]

[cni]
# Network conflists; the first file by name is the pod network.
conf_dir = "/etc/cni/net.d"
# Where plugin binaries are looked for.
bin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]
# When conf_dir holds no network config, berthd writes 10-berth.conflist:
# this bridge and subnet, host-local IPAM (leases under <state>/cni), the
# portmap and firewall plugins.
default_bridge = "berth0"
default_subnet = "10.89.0.0/16"

[streaming]
# host:port of the HTTP server behind the URLs that Exec, Attach and
# PortForward return (SPDY and WebSocket, as kubectl and crictl speak them).
# Port 0 picks a free port. The URLs' one-time tokens are its only access
# control: keep it on loopback (the kubelet, which proxies the streams,
# runs on this node) unless the network is trusted.
address = "127.0.0.1:0"

[docker]
# The Docker Engine API endpoint (docker CLI, docker-compose, SDKs: set
# DOCKER_HOST to it). Empty means unix://<state>/docker.sock.
listen = ""
# An extra TCP endpoint, e.g. "127.0.0.1:2375". It has no TLS, so only
# loopback addresses are accepted. Empty: none.
tcp = ""
# docker's default "bridge" network: its Linux bridge and subnet, apart
# from the CRI pod network's.
bridge = "berth-docker0"
subnet = "10.90.0.0/16"
`
