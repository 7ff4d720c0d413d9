package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestReopenContainerLog rotates the log of a container that writes
// continuously, as the kubelet does (rename, then ReopenContainerLog), a
// few times: every line lands in exactly one file, whole, in order.
func TestReopenContainerLog(t *testing.T) {
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "rotate")
	podID := runPod(t, d, pod)
	c := containerConfig("writer", img, `i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); [ $((i % 2000)) = 0 ] && sleep 0.1; done; echo done`)
	cid := createContainer(t, d, podID, pod, c)
	path := logPath(pod, c)
	startContainer(t, d, cid)
	var files []string
	for r := 0; r < 5; r++ {
		if !waitLogOrExit(t, d, cid, path, "line") {
			break
		}
		rotated := fmt.Sprintf("%s.%d", path, r)
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		files = append(files, rotated)
		_, err := d.RT.ReopenContainerLog(ctxT(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: cid})
		if status.Code(err) == codes.FailedPrecondition {
			break // it finished writing: nothing more to rotate
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitState(t, d, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	files = append(files, path)
	next := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			_, rest, _ := strings.Cut(l, " ")
			if rest == "stdout F done" {
				next = -1
				continue
			}
			if want := fmt.Sprintf("stdout F line %d", next); rest != want {
				t.Fatalf("%s: %q, want %q", f, rest, want)
			}
			next++
		}
	}
	if next != -1 {
		t.Errorf("log ended at line %d without the last record", next)
	}
	if len(files) < 3 {
		t.Errorf("only %d rotations happened while the container wrote", len(files)-1)
	}
	if _, err := d.RT.ReopenContainerLog(ctxT(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: cid}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("reopening the log of an exited container = %v", err)
	}
}

// waitLogOrExit waits until path contains want (true) or the container
// has exited (false).
func waitLogOrExit(t *testing.T, d *daemon, id, path, want string) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return true
		}
		if containerStatus(t, d, id).State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never got %q", path, want)
	return false
}
