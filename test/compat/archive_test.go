package compat

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tarEntries lists the names and contents of a tar stream.
func tarEntries(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading the tar: %v", err)
		}
		data, _ := io.ReadAll(tr)
		out[hdr.Name] = string(data)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCopy(t *testing.T) {
	e := newExecEngine(t)
	host := t.TempDir()
	vol := t.TempDir()
	e.docker("run", "-d", "--name", "ctr", "-v", vol+":/data", e.Busybox, "sleep", "1000")

	// A file in, under its own name and under a new one.
	src := filepath.Join(host, "in.txt")
	os.WriteFile(src, []byte("into the container\n"), 0o644)
	e.docker("cp", src, "ctr:/tmp/")
	e.docker("cp", src, "ctr:/tmp/renamed.txt")
	if got := e.docker("exec", "ctr", "cat", "/tmp/in.txt", "/tmp/renamed.txt"); got != "into the container\ninto the container" {
		t.Errorf("files copied in: %q", got)
	}
	// A directory in, then out again under a new name.
	os.MkdirAll(filepath.Join(host, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(host, "tree/sub/f"), []byte("deep"), 0o644)
	e.docker("cp", filepath.Join(host, "tree"), "ctr:/tmp")
	if got := e.docker("exec", "ctr", "cat", "/tmp/tree/sub/f"); got != "deep" {
		t.Errorf("directory copied in: %q", got)
	}
	// Into a name that does not exist yet: the directory takes it.
	e.docker("cp", filepath.Join(host, "tree"), "ctr:/newtree")
	if got := e.docker("exec", "ctr", "cat", "/newtree/sub/f"); got != "deep" {
		t.Errorf("directory copied in under a new name: %q", got)
	}
	e.docker("cp", "ctr:/tmp/tree", filepath.Join(host, "back"))
	if got := readFile(t, filepath.Join(host, "back/sub/f")); got != "deep" {
		t.Errorf("directory copied out: %q", got)
	}
	// A file out, from the image.
	e.docker("cp", "ctr:/etc/passwd", filepath.Join(host, "passwd"))
	if got := readFile(t, filepath.Join(host, "passwd")); !strings.HasPrefix(got, "root:") {
		t.Errorf("/etc/passwd copied out: %q", got)
	}

	// -a gives the files the container's user.
	e.docker("run", "-d", "--name", "asuser", "-u", "1234:5678", e.Busybox, "sleep", "1000")
	e.docker("cp", "-a", src, "asuser:/tmp/owned.txt")
	e.docker("cp", src, "asuser:/tmp/plain.txt")
	if got := e.docker("exec", "asuser", "stat", "-c", "%u:%g", "/tmp/owned.txt"); got != "1234:5678" {
		t.Errorf("cp -a: owner %q, want the container's user", got)
	}
	if got := e.docker("exec", "asuser", "stat", "-c", "%u", "/tmp/plain.txt"); got == "1234" {
		t.Errorf("cp without -a: owner %q", got)
	}

	// Tar streams both ways.
	out := e.docker("cp", "ctr:/tmp/tree/sub", "-")
	if got := tarEntries(t, []byte(out+"\n")); got["sub/f"] != "deep" {
		t.Errorf("docker cp ctr:/tmp/tree/sub -: entries %v", got)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "streamed/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "streamed/s.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("tared"))
	tw.Close()
	e.dockerIn(buf.String(), "cp", "-", "ctr:/tmp")
	if got := e.docker("exec", "ctr", "cat", "/tmp/streamed/s.txt"); got != "tared" {
		t.Errorf("docker cp - ctr:/tmp: %q", got)
	}

	// A bind mount: copies reach its source on the host.
	e.docker("cp", src, "ctr:/data/via-cp.txt")
	if got := readFile(t, filepath.Join(vol, "via-cp.txt")); got != "into the container\n" {
		t.Errorf("copy into a bind mount: host sees %q", got)
	}
	os.WriteFile(filepath.Join(vol, "from-host.txt"), []byte("host side"), 0o644)
	e.docker("cp", "ctr:/data/from-host.txt", filepath.Join(host, "from-host.txt"))
	if got := readFile(t, filepath.Join(host, "from-host.txt")); got != "host side" {
		t.Errorf("copy out of a bind mount: %q", got)
	}

	// Missing paths.
	if msg := e.dockerFails("cp", "ctr:/no/such/file", host); !strings.Contains(msg, "Could not find the file /no/such/file in container ctr") {
		t.Errorf("cp of a missing path: %q", msg)
	}
	if msg := e.dockerFails("cp", src, "ctr:/no/such/dir/"); msg == "" {
		t.Errorf("cp into a missing directory: no error")
	}
	if msg := e.dockerFails("cp", src, "nosuch:/tmp"); !strings.Contains(msg, "No such container") {
		t.Errorf("cp into an unknown container: %q", msg)
	}

	// Read-only roots and volumes refuse copies in, with docker's words.
	rovol := t.TempDir()
	e.docker("run", "-d", "--read-only", "--name", "ro", "-v", rovol+":/data:ro", e.Busybox, "sleep", "1000")
	if msg := e.dockerFails("cp", src, "ro:/tmp/"); !strings.Contains(msg, "Error response from daemon: container rootfs is marked read-only\n") {
		t.Errorf("cp into a read-only rootfs: %q", msg)
	}
	if msg := e.dockerFails("cp", src, "ro:/data/"); !strings.Contains(msg, "Error response from daemon: mounted volume is marked read-only\n") {
		t.Errorf("cp into a read-only volume: %q", msg)
	}
	e.docker("cp", "ro:/etc/passwd", filepath.Join(host, "ro-passwd"))

	// A stopped container still has its files.
	e.docker("stop", "-t", "0", "ctr")
	e.docker("cp", "ctr:/tmp/renamed.txt", filepath.Join(host, "after-stop.txt"))
	if got := readFile(t, filepath.Join(host, "after-stop.txt")); got != "into the container\n" {
		t.Errorf("copy out of a stopped container: %q", got)
	}
	e.docker("cp", src, "ctr:/tmp/while-stopped.txt")
	e.docker("start", "ctr")
	if got := e.docker("exec", "ctr", "cat", "/tmp/while-stopped.txt"); got != "into the container" {
		t.Errorf("copy into a stopped container: %q", got)
	}
}

// TestCopySymlinkEscape: symlinks in the container that point out of it
// (absolute, or climbing with ../) are resolved inside the container, so
// docker cp neither reads nor writes the host's files through them.
func TestCopySymlinkEscape(t *testing.T) {
	e := newExecEngine(t)
	secretDir := t.TempDir()
	os.WriteFile(filepath.Join(secretDir, "secret"), []byte("host secret"), 0o600)
	e.docker("run", "-d", "--name", "ctr", e.Busybox, "sleep", "1000")
	climb := strings.Repeat("../", 30) + strings.TrimPrefix(secretDir, "/")
	e.docker("exec", "ctr", "sh", "-c", "ln -s "+secretDir+" /abs && ln -s "+climb+" /tmp/climb && ln -s /etc /etclink")

	host := t.TempDir()
	for _, link := range []string{"/abs", "/tmp/climb"} {
		// Reading through the link: the container has no such file.
		if msg := e.dockerFails("cp", "ctr:"+link+"/secret", filepath.Join(host, "stolen")); !strings.Contains(msg, "Could not find the file") {
			t.Errorf("cp ctr:%s/secret: %q", link, msg)
		}
		if _, err := os.Stat(filepath.Join(host, "stolen")); err == nil {
			t.Errorf("cp ctr:%s/secret copied the host's file", link)
		}
		// Following the link itself (-L): still the container's view.
		if msg := e.dockerFails("cp", "-L", "ctr:"+link, filepath.Join(host, "stolen-dir")); !strings.Contains(msg, "Could not find the file") {
			t.Errorf("cp -L ctr:%s: %q", link, msg)
		}
		// Writing through the link lands inside the container.
		src := filepath.Join(host, "planted")
		os.WriteFile(src, []byte("planted"), 0o644)
		e.Run("", e.cli, "cp", src, "ctr:"+link+"/")
		if _, err := os.Stat(filepath.Join(secretDir, "planted")); err == nil {
			t.Fatalf("cp through ctr:%s wrote into the host directory", link)
		}
	}
	// A tar stream whose entries climb out is refused or kept inside.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../../../../../../../../" + strings.TrimPrefix(secretDir, "/") + "/evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("evil"))
	tw.Close()
	e.Run(buf.String(), e.cli, "cp", "-", "ctr:/tmp")
	if _, err := os.Stat(filepath.Join(secretDir, "evil")); err == nil {
		t.Fatal("a tar entry with ../ wrote into the host directory")
	}
	// A symlink inside the container still works inside it.
	e.docker("cp", "-L", "ctr:/etclink/passwd", filepath.Join(host, "passwd"))
	if got := readFile(t, filepath.Join(host, "passwd")); !strings.HasPrefix(got, "root:") {
		t.Errorf("cp through an in-container symlink: %q", got)
	}
	if got := readFile(t, filepath.Join(secretDir, "secret")); got != "host secret" {
		t.Errorf("the host's file changed: %q", got)
	}
}

func TestDiffAndExport(t *testing.T) {
	e := newExecEngine(t)
	e.docker("run", "-d", "--name", "ctr", e.Busybox, "sleep", "1000")
	e.docker("exec", "ctr", "sh", "-c", "touch /newfile && mkdir -p /newdir/sub && echo x >> /etc/passwd && rm /etc/group")
	diff := strings.Split(e.docker("diff", "ctr"), "\n")
	for _, want := range []string{"A /newfile", "A /newdir", "A /newdir/sub", "C /etc", "C /etc/passwd", "D /etc/group"} {
		if !slices.Contains(diff, want) {
			t.Errorf("docker diff: no %q in %q", want, diff)
		}
	}
	for _, line := range diff {
		if strings.HasSuffix(line, " /etc/hosts") || strings.HasSuffix(line, " /etc/resolv.conf") {
			t.Errorf("docker diff shows the runtime's mount point: %q", line)
		}
	}

	cmd := exec.Command(e.cli, "export", "ctr")
	cmd.Env = e.Env()
	exported, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker export: %v", err)
	}
	tt := exec.Command("tar", "t")
	tt.Stdin = bytes.NewReader(exported)
	list, err := tt.Output()
	if err != nil {
		t.Fatalf("tar t of the export: %v", err)
	}
	names := strings.Split(string(list), "\n")
	for _, want := range []string{"bin/sh", "newfile", "etc/passwd", "newdir/sub/"} {
		if !slices.Contains(names, want) {
			t.Errorf("export: no %q among %d entries", want, len(names))
		}
	}
	if slices.Contains(names, "etc/group") {
		t.Errorf("export holds the removed /etc/group")
	}
	out := filepath.Join(t.TempDir(), "ctr.tar")
	e.docker("export", "-o", out, "ctr")
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Errorf("docker export -o: %v", err)
	}
}
