package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

// TestPodWaitsForNetwork: a pod created while the CNI config is broken
// waits, and starts once a valid config appears.
func TestPodWaitsForNetwork(t *testing.T) {
	reg := testutil.NewRegistry(t)
	reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	confDir := t.TempDir()
	conf := filepath.Join(confDir, "10-net.conflist")
	os.WriteFile(conf, []byte("{broken"), 0o644)
	bridge, subnet := testNetwork(t)
	d := newDaemon(t, fmt.Sprintf("[cni]\nconf_dir = %q\n", confDir))
	done := make(chan error, 1)
	go func() {
		_, err := d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig(t, "waiter")})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("RunPodSandbox returned before the network was ready: %v", err)
	case <-time.After(time.Second):
	}
	valid := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"late","plugins":[{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,
"ipam":{"type":"host-local","subnet":%q,"dataDir":%q}}]}`, bridge, subnet, filepath.Join(t.TempDir(), "ipam"))
	if err := os.WriteFile(conf, []byte(valid), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunPodSandbox after the network became ready: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("RunPodSandbox still waits after the network became ready")
	}
}

// TestPortMappingsDNSSysctls: a hostPort reaches the container from the
// host (on 127.0.0.1 and on the host's own address); DNS config, hostname
// and namespaced sysctls reach the pod; a non-namespaced sysctl is refused
// clearly and leaves nothing.
func TestPortMappingsDNSSysctls(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "ports")
	pod.Hostname = "my-host"
	pod.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: 12080}}
	pod.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}}
	pod.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}
	podID := runPod(t, d, pod)
	cid := createContainer(t, d, podID, pod, containerConfig("web", img,
		`while true; do printf 'HTTP/1.0 200 OK\r\n\r\nmapped\n' | nc -l -p 8080; done`))
	startContainer(t, d, cid)
	addrs := []string{"127.0.0.1:12080"}
	if ip := hostIP(); ip != "" {
		addrs = append(addrs, net.JoinHostPort(ip, "12080"))
	}
	for _, addr := range addrs {
		if body := httpGet(t, addr); !strings.Contains(body, "mapped") {
			t.Errorf("GET %s = %q", addr, body)
		}
	}
	res, err := d.RT.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"sh", "-c",
		"cat /etc/resolv.conf; hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced; grep my-host /etc/hosts"}})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Stdout)
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local", "options ndots:5", "my-host\n0\n1\n", "\tmy-host"} {
		if !strings.Contains(out, want) {
			t.Errorf("pod files/sysctls lack %q:\n%s", want, out)
		}
	}
	bad := podConfig(t, "badsysctl")
	bad.Linux.Sysctls = map[string]string{"vm.swappiness": "10"}
	_, err = d.RT.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: bad})
	if err == nil || !strings.Contains(err.Error(), "vm.swappiness") {
		t.Errorf("a non-namespaced sysctl = %v", err)
	}
	pods, _ := d.RT.ListPodSandbox(ctxT(t), &runtimeapi.ListPodSandboxRequest{})
	if len(pods.Items) != 1 {
		t.Errorf("the refused pod left a record: %d pods", len(pods.Items))
	}
}

// hostIP is one of this host's non-loopback IPv4 addresses, if any.
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !strings.HasPrefix(n.IP.String(), "10.21") {
			return n.IP.String()
		}
	}
	return ""
}
