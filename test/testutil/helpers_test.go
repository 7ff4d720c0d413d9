package testutil

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// fsEntry is one entry of a tar stream.
type fsEntry struct {
	hdr     *tar.Header
	content string
}

// readTar reads a whole tar stream into entries in order.
func readTar(t *testing.T, r io.Reader) []fsEntry {
	t.Helper()
	var out []fsEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading tar entry %s: %v", h.Name, err)
		}
		out = append(out, fsEntry{hdr: h, content: string(b)})
	}
}

// layerEntries returns the entries of one layer.
func layerEntries(t *testing.T, l v1.Layer) []fsEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

// flatten returns the image's filesystem after applying all layers and
// whiteouts, by path without a leading slash or trailing slash.
func flatten(t *testing.T, img v1.Image) map[string]fsEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	fs := map[string]fsEntry{}
	for _, e := range readTar(t, rc) {
		fs[cleanName(e.hdr.Name)] = e
	}
	return fs
}

func cleanName(n string) string {
	return strings.TrimRight(n, "/")
}

// children lists the names directly in dir of fs.
func children(fs map[string]fsEntry, dir string) []string {
	var out []string
	for p := range fs {
		if rest, ok := strings.CutPrefix(p, dir+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

func pullImage(t *testing.T, reg *Registry, ref string, opts ...remote.Option) v1.Image {
	t.Helper()
	r := reg.parse(t, ref)
	img, err := remote.Image(r, append(reg.RemoteOptions(), opts...)...)
	if err != nil {
		t.Fatalf("pulling %s: %v", r, err)
	}
	return img
}

func hostBusybox(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(BusyboxPath(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustParse(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifyImage checks that every digest, diff id and size of img matches its
// content. validate.Image would do, but it only understands gzip layers.
func verifyImage(t *testing.T, img v1.Image) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if d := sha256Hash(raw); d != mustDigest(t, img) {
		t.Errorf("manifest digest %s, content hashes to %s", mustDigest(t, img), d)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if d := sha256Hash(rawCfg); d != m.Config.Digest || int64(len(rawCfg)) != m.Config.Size {
		t.Errorf("config descriptor %s/%d, content %s/%d", m.Config.Digest, m.Config.Size, d, len(rawCfg))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d diff ids for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for i, desc := range m.Layers {
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d := sha256Hash(blob); d != desc.Digest || int64(len(blob)) != desc.Size {
			t.Errorf("layer %d descriptor %s/%d, blob %s/%d", i, desc.Digest, desc.Size, d, len(blob))
		}
		rc, err = l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tb, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: uncompressing: %v", i, err)
		}
		if d := sha256Hash(tb); d != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d diff id %s, tar hashes to %s", i, cf.RootFS.DiffIDs[i], d)
		}
	}
}
