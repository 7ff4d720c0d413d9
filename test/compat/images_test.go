package compat

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	gremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-runtime/berth/test/testutil"
)

// Pull prints docker's progress and status lines; the images list,
// inspect and history show what docker shows.
func TestImagePullListInspectHistory(t *testing.T) {
	e := newEngine(t, "")
	out := e.docker("pull", e.Busybox)
	for _, want := range []string{"latest: Pulling from busybox", "Digest: sha256:", "Status: Image is up to date for " + e.Busybox} {
		if !strings.Contains(out, want) {
			t.Errorf("pull again: no %q in\n%s", want, out)
		}
	}
	other := e.reg.Ref("tools/other:1")
	e.reg.Push(t, "tools/other:1", testutil.BusyboxImage(t, testutil.WithLabels(map[string]string{"role": "other"}), testutil.WithCmd("true")))
	out = e.docker("pull", other)
	for _, want := range []string{"1: Pulling from tools/other", "Already exists", "Digest: sha256:", "Status: Downloaded newer image for " + other} {
		if !strings.Contains(out, want) {
			t.Errorf("pull: no %q in\n%s", want, out)
		}
	}
	list := e.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, want := range []string{"busybox:latest", e.Busybox, other} {
		if !strings.Contains(list+"\n", want+"\n") {
			t.Errorf("images: no %s in\n%s", want, list)
		}
	}
	if strings.Contains(list, "docker.io") || strings.Contains(list, "localhost/") {
		t.Errorf("images shows long names:\n%s", list)
	}
	if got := e.docker("images", "--filter", "reference=busybox", "--format", "{{.Repository}}:{{.Tag}}"); got != "busybox:latest" {
		t.Errorf("images reference=busybox: %q", got)
	}
	if got := e.docker("images", "--filter", "label=role=other", "--format", "{{.Repository}}"); got != e.reg.Host+"/tools/other" {
		t.Errorf("images label=role=other: %q", got)
	}
	if got := e.docker("images", "-q", "--filter", "dangling=true"); got != "" {
		t.Errorf("dangling images: %q", got)
	}
	id := e.docker("image", "inspect", "--format", "{{.Id}}", "busybox")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("inspect Id = %q", id)
	}
	if got := e.docker("image", "inspect", "--format", "{{.Os}} {{json .RepoTags}} {{json .Config.Cmd}} {{len .RootFS.Layers}}", other); got != `linux ["`+other+`"] ["true"] 3` {
		t.Errorf("inspect other = %q", got)
	}
	if got := e.docker("images", "-q", "busybox"); !strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), got) || got == "" {
		t.Errorf("images -q busybox = %q, id %s", got, id)
	}
	if errOut := e.dockerFails("image", "inspect", "nosuch"); !strings.Contains(errOut, "No such image") {
		t.Errorf("inspect nosuch: %s", errOut)
	}
	hist := e.docker("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "busybox")
	lines := strings.Split(hist, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], id+"|") || !strings.Contains(lines[len(lines)-1], "<missing>") {
		t.Errorf("history:\n%s", hist)
	}
	if errOut := e.dockerFails("pull", e.reg.Ref("nosuch:1")); !strings.Contains(errOut, "not found") {
		t.Errorf("pull nosuch: %s", errOut)
	}
}

// Tag and rmi: untag versus delete, docker's conflicts, and a running
// container's image that even force does not remove.
func TestImageTagAndRemove(t *testing.T) {
	e := newEngine(t, "")
	id := e.docker("image", "inspect", "--format", "{{.Id}}", "busybox")
	since := strconv.FormatInt(time.Now().Unix()-1, 10) // may include newEngine's tag
	e.docker("tag", "busybox", "mine:1")
	e.docker("tag", "busybox:latest", "example.com/team/mine")
	if got := e.docker("image", "inspect", "--format", "{{.Id}}", "example.com/team/mine:latest"); got != id {
		t.Errorf("tagged image is %s, want %s", got, id)
	}
	if got := e.docker("rmi", "mine:1"); got != "Untagged: mine:1" {
		t.Errorf("rmi mine:1 = %q", got)
	}
	events := e.docker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "type=image",
		"--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
	if want := "tag " + id + " mine:1\ntag " + id + " example.com/team/mine:latest\nuntag " + id + " " + id; !strings.HasSuffix(events, want) {
		t.Errorf("image events:\n%s\nwant:\n%s", events, want)
	}
	if errOut := e.dockerFails("rmi", id[7:19]); !strings.Contains(errOut, "conflict: unable to delete "+id[7:19]+" (must be forced) - image is referenced in multiple repositories") {
		t.Errorf("rmi by id: %s", errOut)
	}
	if errOut := e.dockerFails("rmi", "nosuch:2"); !strings.Contains(errOut, "No such image: nosuch:2") {
		t.Errorf("rmi nosuch: %s", errOut)
	}
	if errOut := e.dockerFails("tag", "busybox", "Bad:Name"); errOut == "" {
		t.Error("tag with an invalid name succeeded")
	}

	// A stopped container holds its image unless forced; a running one
	// always.
	e.docker("rmi", "example.com/team/mine")
	e.docker("rmi", e.Busybox)
	cid := e.docker("create", "busybox", "true")
	errOut := e.dockerFails("rmi", "busybox")
	if !strings.Contains(errOut, `conflict: unable to remove repository reference "busybox" (must force) - container `+cid[:12]+" is using its referenced image "+id[7:19]) {
		t.Errorf("rmi busybox with a container: %s", errOut)
	}
	e.docker("rm", cid)
	run := e.docker("run", "-d", "busybox", "sleep", "300")
	if errOut := e.dockerFails("rmi", "-f", id); !strings.Contains(errOut, "conflict: unable to delete "+id[7:19]+" (cannot be forced) - image is being used by running container "+run[:12]) {
		t.Errorf("rmi -f of a running container's image: %s", errOut)
	}
	// Forced by name: the name goes, the image stays for the container.
	if got := e.docker("rmi", "-f", "busybox"); got != "Untagged: busybox:latest" {
		t.Errorf("rmi -f busybox = %q", got)
	}
	if got := e.docker("images", "-q", "--filter", "dangling=true"); !strings.HasPrefix(id[7:], got) || got == "" {
		t.Errorf("dangling after rmi -f: %q", got)
	}
	e.docker("rm", "-f", run)
	out := e.docker("rmi", id)
	if !strings.Contains(out, "Deleted: "+id) {
		t.Errorf("rmi id = %q", out)
	}
	if got := e.docker("images", "-q"); got != "" {
		t.Errorf("images left: %q", got)
	}
}

// save and load: several images in one archive, plain or gzip; load
// refuses a hostile archive and records nothing of it.
func TestImageSaveLoad(t *testing.T) {
	e := newEngine(t, "")
	dir := t.TempDir()
	e.docker("tag", "busybox", "second:v2")
	id := e.docker("image", "inspect", "--format", "{{.Id}}", "busybox")
	archive := filepath.Join(dir, "images.tar")
	e.docker("save", "-o", archive, "busybox", "second:v2")
	e.docker("rmi", "busybox", "second:v2", e.Busybox)
	if got := e.docker("images", "-q"); got != "" {
		t.Fatalf("images left before load: %q", got)
	}
	out := e.docker("load", "-i", archive)
	for _, want := range []string{"Loaded image: busybox:latest", "Loaded image: second:v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("load: no %q in\n%s", want, out)
		}
	}
	if got := e.docker("image", "inspect", "--format", "{{.Id}}", "second:v2"); got != id {
		t.Errorf("loaded image is %s, saved %s", got, id)
	}
	if got := e.docker("run", "--rm", "second:v2", "echo", "ran"); got != "ran" {
		t.Errorf("run loaded image: %q", got)
	}

	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	e.docker("rmi", "second:v2")
	if out := e.dockerIn(gz.String(), "load", "-q"); !strings.Contains(out, "Loaded image: second:v2") {
		t.Errorf("load gzip: %s", out)
	}
	if out := e.docker("save", "busybox"); len(out) < 1024 {
		t.Errorf("save to stdout gave %d bytes", len(out))
	}
	if errOut := e.dockerFails("save", "-o", filepath.Join(dir, "x.tar"), "nosuch"); !strings.Contains(errOut, "No such image") {
		t.Errorf("save nosuch: %s", errOut)
	}

	os.MkdirAll(testutil.EscapeDir, 0o755)
	os.Remove(filepath.Join(testutil.EscapeDir, "file"))
	for _, kind := range []testutil.HostileKind{testutil.DotDot, testutil.SymlinkEscape, testutil.HardlinkEscape} {
		tag, _ := name.NewTag("hostile:" + strings.ToLower(kind.String()))
		var buf bytes.Buffer
		if err := tarball.Write(tag, testutil.HostileImage(t, kind), &buf); err != nil {
			t.Fatal(err)
		}
		before := e.docker("images", "-q")
		if _, errOut, err := e.Run(buf.String(), e.cli, "load"); err == nil {
			t.Errorf("load of a %s archive succeeded", kind)
		} else if errOut == "" {
			t.Errorf("load of a %s archive failed without a message", kind)
		}
		if after := e.docker("images", "-q"); after != before {
			t.Errorf("%s archive changed the images: %q → %q", kind, before, after)
		}
		if _, err := os.Stat(filepath.Join(testutil.EscapeDir, "file")); err == nil {
			t.Errorf("%s archive wrote outside the store", kind)
		}
	}
}

// import with changes, commit with a message and changes, push to a
// registry, login, prune, and search's error.
func TestImageImportCommitPushPrune(t *testing.T) {
	e := newEngine(t, "")
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs.tar")
	layers, err := testutil.BusyboxImage(t).Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed() // busybox and its applets
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || os.WriteFile(rootfs, data, 0o644) != nil {
		t.Fatal(err)
	}
	out := e.docker("import", "--change", `CMD ["echo", "imported"]`, "--change", "ENV GREETING=hi", "-m", "from a tar", rootfs, "imported:1")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(out) {
		t.Errorf("import printed %q", out)
	}
	if got := e.docker("run", "--rm", "imported:1"); got != "imported" {
		t.Errorf("run imported = %q", got)
	}
	if got := e.docker("image", "inspect", "--format", "{{.Comment}} {{json .Config.Env}}", "imported:1"); got != `from a tar ["GREETING=hi"]` {
		t.Errorf("imported config = %q", got)
	}
	if errOut := e.dockerFails("import", "--change", "RUN true", rootfs); !strings.Contains(errOut, "RUN is not a valid change command") {
		t.Errorf("import with RUN: %s", errOut)
	}

	cid := e.docker("run", "-d", "busybox", "sh", "-c", "echo committed > /etc/note; echo ready; sleep 300")
	e.waitLogs(cid, "ready")
	e.docker("commit", "-m", "a note", "-a", "tester", "-c", `CMD ["cat", "/etc/note"]`, cid, "noted:1")
	if got := e.docker("run", "--rm", "noted:1"); got != "committed" {
		t.Errorf("run committed image = %q", got)
	}
	if got := e.docker("image", "inspect", "--format", "{{.Author}}|{{.Comment}}", "noted:1"); got != "tester|a note" {
		t.Errorf("committed image = %q", got)
	}
	if got := e.docker("history", "--format", "{{.Comment}}", "noted:1"); !strings.HasPrefix(got, "a note") {
		t.Errorf("history of the committed image: %q", got)
	}

	// Push to a registry that wants a login.
	reg := testutil.NewRegistry(t, testutil.WithBasicAuth("pusher", "s3cret"))
	if errOut := e.dockerFails("login", "-u", "pusher", "-p", "wrong", reg.Host); !strings.Contains(errOut, "401") {
		t.Errorf("login with a wrong password: %s", errOut)
	}
	if out := e.dockerIn("s3cret\n", "login", "-u", "pusher", "--password-stdin", reg.Host); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login: %s", out)
	}
	target := reg.Ref("team/noted:1")
	e.docker("tag", "noted:1", target)
	out = e.docker("push", target)
	for _, want := range []string{"The push refers to repository [" + reg.Host + "/team/noted]", "Pushed", "1: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("push: no %q in\n%s", want, out)
		}
	}
	e.docker("tag", "noted:1", reg.Ref("team/noted:2"))
	out = e.docker("push", "--all-tags", reg.Host+"/team/noted")
	for _, want := range []string{"1: digest: sha256:", "2: digest: sha256:", "Layer already exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("push --all-tags: no %q in\n%s", want, out)
		}
	}
	ref, _ := name.ParseReference(target, name.Insecure)
	var desc *v1.Descriptor
	desc, err = gremote.Head(ref, reg.RemoteOptions()...)
	if err != nil || !strings.Contains(out, desc.Digest.String()) {
		t.Errorf("registry has %v (%v); push said\n%s", desc, err, out)
	}

	// The first imported:1 is dangling after a second import takes the name.
	e.docker("import", "--change", `CMD ["true"]`, rootfs, "imported:1")
	dangling := e.docker("images", "-q", "--filter", "dangling=true")
	if dangling == "" {
		t.Fatal("no dangling image after re-import")
	}
	out = e.docker("image", "prune", "-f")
	if !strings.Contains(out, "deleted: sha256:"+dangling) || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune: %s", out)
	}
	if got := e.docker("images", "-q", "--filter", "dangling=true"); got != "" {
		t.Errorf("dangling after prune: %q", got)
	}

	if errOut := e.dockerFails("search", "busybox"); !strings.Contains(errOut, "does not implement image search") {
		t.Errorf("search: %s", errOut)
	}
}
