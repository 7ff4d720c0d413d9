package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// limitTimes is one sample of the limit: what berth cannot avoid doing
// for a pod, done directly.
// addFull and delFull, outside total, are berth's whole pod network
// (bridge, portmap, firewall) for comparison.
type limitTimes struct{ run, state, add, del, total, addFull, delFull time.Duration }

// limitBench times, n times after one untimed: `runc run -d` of a prepared
// bundle of the busybox image, `runc state` until it says running, then
// one CNI ADD and one DEL of the container's network namespace with the
// bridge and host-local plugins configured as berth's pod network.
func limitBench(e *podEnv, berthConflist []byte, n int) ([]limitTimes, error) {
	dir := filepath.Join(e.base, "limit")
	rootfs := filepath.Join(dir, "rootfs")
	if err := extractImage(e.bbImage, rootfs); err != nil {
		return nil, fmt.Errorf("extracting the image: %w", err)
	}
	spec, err := runcSpec(filepath.Join(dir, "template"))
	if err != nil {
		return nil, err
	}
	spec.Process.Args = []string{"sleep", "100000"}
	spec.Process.Terminal = false
	spec.Process.OOMScoreAdj = nil // this host refuses lowering it
	spec.Root = &specs.Root{Path: rootfs, Readonly: true}
	spec.Hostname = "limit"

	list, err := limitConflist(berthConflist, filepath.Join(dir, "ipam"), false)
	if err != nil {
		return nil, err
	}
	full, err := limitConflist(berthConflist, filepath.Join(dir, "ipam-full"), true)
	if err != nil {
		return nil, err
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{"/usr/lib/cni", "/opt/cni/bin"}, filepath.Join(dir, "cni-cache"), nil)
	runcRoot := filepath.Join(dir, "runc")
	errLog, err := os.Create(filepath.Join(dir, "runc.log"))
	if err != nil {
		return nil, err
	}
	defer errLog.Close()
	runc := func(args ...string) *exec.Cmd {
		cmd := exec.Command("runc", append([]string{"--root", runcRoot}, args...)...)
		// Not a pipe: the detached container would hold it open.
		cmd.Stderr = errLog
		return cmd
	}

	var out []limitTimes
	for i := 0; i <= n; i++ {
		id := fmt.Sprintf("limit-%d", i)
		bundle := filepath.Join(dir, "bundles", id)
		spec.Linux.CgroupsPath = cgroupParent + "/" + id
		if err := writeJSON(filepath.Join(bundle, "config.json"), spec); err != nil {
			return nil, err
		}
		t, err := limitOnce(cni, list, full, runc, bundle, id)
		runc("delete", "-f", id).Run()
		os.RemoveAll(bundle)
		if err != nil {
			b, _ := os.ReadFile(errLog.Name())
			return nil, fmt.Errorf("%w (runc: %s)", err, lastLines(string(b), 3))
		}
		if i > 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

func limitOnce(cni *libcni.CNIConfig, list, full *libcni.NetworkConfigList, runc func(...string) *exec.Cmd, bundle, id string) (limitTimes, error) {
	var t limitTimes
	t0 := time.Now()
	if err := runc("run", "-d", "--bundle", bundle, id).Run(); err != nil {
		return t, fmt.Errorf("runc run: %w", err)
	}
	t1 := time.Now()
	var pid int
	for {
		b, err := runc("state", id).Output()
		if err != nil {
			return t, fmt.Errorf("runc state: %w", err)
		}
		var st specs.State
		if err := json.Unmarshal(b, &st); err != nil {
			return t, fmt.Errorf("runc state: %w", err)
		}
		if st.Status == specs.StateRunning {
			pid = st.Pid
			break
		}
		if time.Since(t1) > 30*time.Second {
			return t, fmt.Errorf("container %s is %s after 30 s", id, st.Status)
		}
		time.Sleep(time.Millisecond)
	}
	t2 := time.Now()
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: fmt.Sprintf("/proc/%d/ns/net", pid), IfName: "eth0"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
		return t, fmt.Errorf("CNI ADD: %w", err)
	}
	t3 := time.Now()
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		return t, fmt.Errorf("CNI DEL: %w", err)
	}
	t4 := time.Now()
	t = limitTimes{run: t1.Sub(t0), state: t2.Sub(t1), add: t3.Sub(t2), del: t4.Sub(t3), total: t4.Sub(t0)}
	rt.ContainerID = id + "-full"
	if _, err := cni.AddNetworkList(ctx, full, rt); err != nil {
		return t, fmt.Errorf("CNI ADD (berth's whole network): %w", err)
	}
	t5 := time.Now()
	if err := cni.DelNetworkList(ctx, full, rt); err != nil {
		return t, fmt.Errorf("CNI DEL (berth's whole network): %w", err)
	}
	t.addFull, t.delFull = t5.Sub(t4), time.Since(t5)
	return t, nil
}

// jsonObj is a JSON object of a CNI config, rewritten in place.
type jsonObj = map[string]any

// podNetwork parses berth's pod network (the conflist berthd wrote) and
// returns it with its first plugin, the bridge, and the bridge's IPAM
// section.
func podNetwork(berth []byte) (conf, bridge, ipam jsonObj, err error) {
	if err := json.Unmarshal(berth, &conf); err != nil {
		return nil, nil, nil, fmt.Errorf("berth's pod network: %w", err)
	}
	plugins, _ := conf["plugins"].([]any)
	if len(plugins) == 0 {
		return nil, nil, nil, fmt.Errorf("berth's pod network has no plugins")
	}
	bridge, _ = plugins[0].(jsonObj)
	ipam, _ = bridge["ipam"].(jsonObj)
	if bridge["type"] != "bridge" || ipam == nil {
		return nil, nil, nil, fmt.Errorf("berth's pod network does not start with a bridge: %s", berth)
	}
	return conf, bridge, ipam, nil
}

// pluginChain names the plugins of berth's pod network, for the report:
// "bridge+portmap+firewall".
func pluginChain(berth []byte) string {
	var conf struct{ Plugins []struct{ Type string } }
	json.Unmarshal(berth, &conf)
	var types []string
	for _, p := range conf.Plugins {
		types = append(types, p.Type)
	}
	return strings.Join(types, "+")
}

// limitConflist is berth's pod network reduced to its bridge plugin (with
// host-local IPAM), or whole, leases in its own directory.
func limitConflist(berth []byte, ipamDir string, whole bool) (*libcni.NetworkConfigList, error) {
	conf, bridge, ipam, err := podNetwork(berth)
	if err != nil {
		return nil, err
	}
	ipam["dataDir"] = ipamDir
	conf["name"] = "bench-limit"
	if whole {
		conf["name"] = "bench-limit-full"
	} else {
		conf["plugins"] = []any{bridge}
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(data)
}

// runcSpec is `runc spec`'s default config.
func runcSpec(dir string) (*specs.Spec, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(dir, "config.json"))
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func writeJSON(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// extractImage writes the image's flattened file system into dir. The
// image is our own: no defence against hostile entries beyond staying in
// dir.
func extractImage(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, mode); err != nil {
				return err
			}
			os.Chmod(p, mode)
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
			os.Chmod(p, os.FileMode(h.Mode)&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
		case tar.TypeSymlink:
			os.Remove(p)
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			os.Remove(p)
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), p); err != nil {
				return err
			}
		default:
			continue
		}
		os.Lchown(p, h.Uid, h.Gid)
	}
}

func limitSummary(ts []limitTimes, chain string) (med, p90 time.Duration, steps string) {
	tot := pick(ts, func(t limitTimes) time.Duration { return t.total })
	steps = fmt.Sprintf("runc run -d %s, runc state %s, CNI ADD %s, CNI DEL %s; berth's whole network (%s): ADD %s, DEL %s",
		ms(quantile(pick(ts, func(t limitTimes) time.Duration { return t.run }), 0.5)),
		ms(quantile(pick(ts, func(t limitTimes) time.Duration { return t.state }), 0.5)),
		ms(quantile(pick(ts, func(t limitTimes) time.Duration { return t.add }), 0.5)),
		ms(quantile(pick(ts, func(t limitTimes) time.Duration { return t.del }), 0.5)),
		chain,
		ms(quantile(pick(ts, func(t limitTimes) time.Duration { return t.addFull }), 0.5)),
		ms(quantile(pick(ts, func(t limitTimes) time.Duration { return t.delFull }), 0.5)))
	return quantile(tot, 0.5), quantile(tot, 0.9), steps
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}
