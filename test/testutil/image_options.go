package testutil

import (
	"errors"
	"maps"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultPath is the PATH in the default image environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultEnv returns the default image environment:
// PATH=DefaultPath and BERTH_TEST=1.
func DefaultEnv() []string {
	return []string{"PATH=" + DefaultPath, "BERTH_TEST=1"}
}

// DefaultLabels returns the default image labels.
func DefaultLabels() map[string]string {
	return map[string]string{"io.berth.test.image": "busybox"}
}

// ImageOption configures the images built by BusyboxImage, WhiteoutImage,
// HostileImage, MultiPlatformIndex and MultiPlatformManifestList.
type ImageOption func(*imageOptions)

type imageOptions struct {
	oci          bool
	zstd         bool
	uncompressed bool
	xattr        bool
	config       v1.Config
	configFuncs  []func(*v1.Config)
}

// defaultImageOptions holds every default in one place.
func defaultImageOptions() imageOptions {
	return imageOptions{
		config: v1.Config{
			Cmd:        []string{"sh"},
			Env:        DefaultEnv(),
			WorkingDir: "/",
			Labels:     DefaultLabels(),
		},
	}
}

func newImageOptions(opts []ImageOption) (imageOptions, error) {
	o := defaultImageOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.zstd && o.uncompressed {
		return o, errors.New("image options WithZstd and WithUncompressed contradict each other")
	}
	if o.zstd {
		// There is no Docker schema 2 media type for zstd layers.
		o.oci = true
	}
	for _, f := range o.configFuncs {
		f(&o.config)
	}
	return o, nil
}

func (o imageOptions) compression() compression {
	switch {
	case o.zstd:
		return zstdCompression
	case o.uncompressed:
		return noCompression
	default:
		return gzipCompression
	}
}

// WithOCI builds OCI media types (manifest, config, layers, and for
// MultiPlatformIndex the index) instead of the default Docker schema 2.
func WithOCI() ImageOption { return func(o *imageOptions) { o.oci = true } }

// WithZstd compresses layers with zstd. It implies WithOCI, since zstd layers
// need the OCI media type application/vnd.oci.image.layer.v1.tar+zstd.
// It cannot be combined with WithUncompressed.
func WithZstd() ImageOption { return func(o *imageOptions) { o.zstd = true } }

// WithUncompressed stores layers as plain tar
// (application/vnd.docker.image.rootfs.diff.tar or
// application/vnd.oci.image.layer.v1.tar). It cannot be combined with
// WithZstd.
func WithUncompressed() ImageOption { return func(o *imageOptions) { o.uncompressed = true } }

// WithXattrFile adds /data/xattr.txt carrying the extended attribute
// user.berth.test=hello (as a PAX SCHILY.xattr record) to the data layer.
// It is off by default because not every filesystem accepts user xattrs.
func WithXattrFile() ImageOption { return func(o *imageOptions) { o.xattr = true } }

// WithEntrypoint sets the image Entrypoint (default: none).
func WithEntrypoint(args ...string) ImageOption {
	return func(o *imageOptions) { o.config.Entrypoint = slices.Clone(args) }
}

// WithCmd sets the image Cmd (default: ["sh"]). WithCmd() removes it.
func WithCmd(args ...string) ImageOption {
	return func(o *imageOptions) { o.config.Cmd = slices.Clone(args) }
}

// WithEnv replaces the image environment (default: DefaultEnv()).
func WithEnv(env ...string) ImageOption {
	return func(o *imageOptions) { o.config.Env = slices.Clone(env) }
}

// WithUser sets the image User, e.g. "berth", "1000:1000" or "65534"
// (default: empty, which runtimes treat as root).
func WithUser(user string) ImageOption {
	return func(o *imageOptions) { o.config.User = user }
}

// WithWorkdir sets the image WorkingDir (default: "/").
func WithWorkdir(dir string) ImageOption {
	return func(o *imageOptions) { o.config.WorkingDir = dir }
}

// WithLabels replaces the image labels (default: DefaultLabels()).
func WithLabels(labels map[string]string) ImageOption {
	return func(o *imageOptions) { o.config.Labels = maps.Clone(labels) }
}

// WithStopSignal sets the image StopSignal, e.g. "SIGINT" (default: none).
func WithStopSignal(sig string) ImageOption {
	return func(o *imageOptions) { o.config.StopSignal = sig }
}

// WithConfig edits the image config after all other options have been
// applied, for fields without a dedicated option (ExposedPorts, Volumes,
// Healthcheck, ...).
func WithConfig(f func(*v1.Config)) ImageOption {
	return func(o *imageOptions) { o.configFuncs = append(o.configFuncs, f) }
}
