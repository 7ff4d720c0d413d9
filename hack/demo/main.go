// Command demo is `make demo`: it serves the offline busybox image from a
// registry on loopback, starts berthd with docker.io mirrored to that
// registry, and drives it through the CRI socket as the kubelet would,
// printing what it does. With --keep it leaves berthd running.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testutil"
)

func main() {
	bin := flag.String("bin", "bin", "directory with berthd")
	dir := flag.String("dir", "/var/tmp/berth-demo", "demo root (berthd's root, state and socket go here)")
	keep := flag.Bool("keep", false, "keep berthd and the registry running until Ctrl-C")
	flag.Parse()

	step("serving the offline busybox image on a loopback registry")
	img, err := testutil.NewBusyboxImage(testutil.WithCmd("sh", "-c", "echo hello from berth"))
	check(err)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.ParseReference(host + "/library/busybox:latest")
	check(gremote.Write(ref, img))
	fmt.Printf("   %s\n", ref)

	step("starting berthd, with docker.io mirrored to that registry")
	os.RemoveAll(*dir)
	check(os.MkdirAll(*dir, 0o700))
	cfgPath := filepath.Join(*dir, "config.toml")
	check(os.WriteFile(cfgPath, []byte(fmt.Sprintf(`root = %q
state = %q
[registry.mirrors]
"docker.io" = ["http://%s"]
`, filepath.Join(*dir, "root"), filepath.Join(*dir, "state"), host)), 0o600))
	logFile, err := os.Create(filepath.Join(*dir, "berthd.log"))
	check(err)
	daemon := exec.Command(filepath.Join(*bin, "berthd"), "--config", cfgPath)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	check(daemon.Start())
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
	}()
	sock := filepath.Join(*dir, "state", "berth.sock")
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	rt, is := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{}, grpc.WaitForReady(true))
	check(err)
	fmt.Printf("   %s %s (CRI %s) on unix://%s, log %s\n", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion, sock, logFile.Name())
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	check(err)
	for _, c := range st.Status.Conditions {
		fmt.Printf("   %-14s %-5v %s\n", c.Type, c.Status, c.Message)
	}

	step("PullImage busybox (normalised to docker.io/library/busybox:latest, fetched from the mirror)")
	start := time.Now()
	pulled, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	check(err)
	fmt.Printf("   image %s in %s\n", pulled.ImageRef, time.Since(start).Round(time.Millisecond))

	step("ListImages")
	list, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	check(err)
	fmt.Printf("   %-40s %-22s %s\n", "REPO TAGS", "IMAGE ID", "SIZE")
	for _, im := range list.Images {
		fmt.Printf("   %-40s %-22s %.1f MB\n", strings.Join(im.RepoTags, ","), im.Id[:19], float64(im.Size)/1e6)
	}
	fs, err := is.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	check(err)
	u := fs.ImageFilesystems[0]
	fmt.Printf("   image fs %s: %.1f MB, %d inodes\n", u.FsId.Mountpoint, float64(u.UsedBytes.Value)/1e6, u.InodesUsed.Value)

	if *keep {
		step("berthd keeps running; try: CONTAINER_RUNTIME_ENDPOINT=unix://" + sock + " crictl images. Ctrl-C stops it.")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	step("stopping berthd")
}

func step(s string) { fmt.Printf("==> %s\n", s) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
