"""The Python docker SDK (docker-py 5, Debian's python3-docker) against an
Engine API, unmodified: test/compat's pysdk_test.go runs it with
DOCKER_HOST set. Every step checks what docker does and raises on a
difference; the output is one line per step, "ok <step>", so that the Go
test can tell how far it got.

usage: pysdk_smoke.py PREFIX REGISTRY_REPO TAG
"""
import sys
import time

import docker
from docker import errors

prefix, repo, tag = sys.argv[1], sys.argv[2], sys.argv[3]


def ok(step, detail=""):
    print("ok", step, detail, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def until(what, f, seconds=30):
    """Polls f until it returns something true (containers start and log
    asynchronously); raises after seconds."""
    deadline = time.time() + seconds
    while True:
        v = f()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


client = docker.from_env()
ok("from_env", client.api.api_version)

v = client.version()
check(v.get("ApiVersion"), "version: no ApiVersion in %r" % v)
check(client.ping() is True, "ping did not answer OK")
ok("version+ping", v["ApiVersion"])

# Images: pull from the registry (the stream of progress), get by name.
img = client.images.pull(repo, tag=tag)
check(any(t == "%s:%s" % (repo, tag) for t in img.tags), "pulled image tags %r" % img.tags)
bb = client.images.get("busybox:latest")
check(bb.id == img.id, "busybox:latest is %s, the pulled image %s" % (bb.id, img.id))
check("busybox:latest" in bb.tags, "busybox tags %r" % bb.tags)
try:
    client.images.get("%s-no-such-image:latest" % prefix)
    raise AssertionError("images.get of a missing image succeeded")
except errors.ImageNotFound:
    pass
ok("images")

# A foreground run: create, start, wait, logs, remove.
out = client.containers.run("busybox:latest", ["echo", "hello", "foreground"], remove=True)
check(out == b"hello foreground\n", "run output %r" % out)
try:
    client.containers.run("busybox:latest", ["sh", "-c", "echo failing >&2; exit 3"], remove=True)
    raise AssertionError("a run that exits 3 did not raise")
except errors.ContainerError as e:
    check(e.exit_status == 3, "ContainerError exit status %r" % e.exit_status)
ok("run")

# A detached container: logs by stream, exec, stop, wait, remove.
name = prefix + "-c"
c = client.containers.run(
    "busybox:latest",
    ["sh", "-c", "echo out-line; echo err-line >&2; exec sleep 300"],
    detach=True, name=name, labels={"berth.test": prefix},
    environment={"GREETING": "hi there"}, working_dir="/tmp")
c.reload()
check(c.status == "running", "status %r after run -d" % c.status)
check(c.name == name, "name %r, want %r" % (c.name, name))
check(c.labels.get("berth.test") == prefix, "labels %r" % c.labels)
check(client.containers.get(name).id == c.id, "get by name")
listed = client.containers.list(filters={"label": "berth.test=" + prefix})
check([x.id for x in listed] == [c.id], "list by label: %r" % listed)
until("the logs", lambda: b"err-line" in c.logs())
check(c.logs(stdout=True, stderr=False) == b"out-line\n", "stdout logs %r" % c.logs(stdout=True, stderr=False))
check(c.logs(stdout=False, stderr=True) == b"err-line\n", "stderr logs %r" % c.logs(stdout=False, stderr=True))
ok("run detach+logs", c.short_id)

code, out = c.exec_run(["sh", "-c", "echo $GREETING from $(pwd); exit 4"])
check(code == 4, "exec exit code %r" % code)
check(out == b"hi there from /tmp\n", "exec output %r" % out)
code, (so, se) = c.exec_run(["sh", "-c", "echo to-out; echo to-err >&2"], demux=True, environment={"X": "1"}, workdir="/")
check(code == 0 and so == b"to-out\n" and se == b"to-err\n", "exec demux %r %r %r" % (code, so, se))
code, out = c.exec_run("id -u", user="65534")
check(code == 0 and out.strip() == b"65534", "exec as user: %r %r" % (code, out))
ok("exec_run")

c.stop(timeout=1)
res = c.wait(timeout=60)
check(res["StatusCode"] == 137, "wait after stop: %r (sleep as PID 1 ignores SIGTERM)" % res)
c.reload()
check(c.status == "exited", "status %r after stop" % c.status)
c.remove()
try:
    client.containers.get(name)
    raise AssertionError("the removed container is still there")
except errors.NotFound:
    pass
ok("stop+wait+remove")

# Volumes: create with labels, list, used by two containers in turn, remove.
vname = prefix + "-vol"
vol = client.volumes.create(name=vname, driver="local", labels={"berth.test": prefix})
check(vol.name == vname, "volume name %r" % vol.name)
check(vname in [x.name for x in client.volumes.list(filters={"label": "berth.test=" + prefix})], "volume not listed")
check(client.volumes.get(vname).attrs["Driver"] == "local", "volume driver")
client.containers.run("busybox:latest", ["sh", "-c", "echo kept > /data/f"], volumes={vname: {"bind": "/data", "mode": "rw"}}, remove=True)
out = client.containers.run("busybox:latest", ["cat", "/data/f"], volumes=[vname + ":/data:ro"], remove=True)
check(out == b"kept\n", "volume content %r" % out)
vol.remove()
try:
    client.volumes.get(vname)
    raise AssertionError("the removed volume is still there")
except errors.NotFound:
    pass
ok("volumes")

# Networks: create, list, a container on it, remove.
nname = prefix + "-net"
net = client.networks.create(nname, driver="bridge", labels={"berth.test": prefix})
check([x.id for x in client.networks.list(names=[nname])] == [net.id], "network not listed by name")
net.reload()
check(net.attrs["Driver"] == "bridge", "network driver %r" % net.attrs.get("Driver"))
out = client.containers.run("busybox:latest", ["sh", "-c", "ip -4 -o addr show eth0 | wc -l"], network=nname, remove=True)
check(out == b"1\n", "no eth0 address on the network: %r" % out)
net.remove()
try:
    client.networks.get(nname)
    raise AssertionError("the removed network is still there")
except errors.NotFound:
    pass
ok("networks")
print("PASS", flush=True)
