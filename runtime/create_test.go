package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/oci"
	"github.com/berth-runtime/berth/runtime/runtimetest"
	"github.com/berth-runtime/berth/store"
)

func ptr[T any](v T) *T { return &v }

// Create turns a request and the image's config into the process the
// runtime is asked to create, and records the container as created.
func TestCreate(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name     string
		req      func(*runtime.CreateRequest)
		wantArgs []string
		wantEnv  []string
		wantCwd  string
		wantUser specs.User
		// wantStopSignal is the record's: what Stop sends first.
		wantStopSignal string
	}{
		{
			name:     "image defaults",
			wantArgs: []string{"/bin/app", "serve"}, wantEnv: imageEnv, wantCwd: imageWorkdir,
			wantUser:       specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}},
			wantStopSignal: imageStopSignal,
		},
		{
			name: "request overrides the image",
			req: func(r *runtime.CreateRequest) {
				r.Command, r.Args, r.Env = []string{"/bin/sh"}, []string{"-c", "true"}, []string{"A=2", "B=3"}
				r.WorkingDir, r.StopSignal = "/work/dir", "SIGINT"
			},
			wantArgs: []string{"/bin/sh", "-c", "true"}, wantEnv: []string{"PATH=/bin", "A=2", "B=3"}, wantCwd: "/work/dir",
			wantUser:       specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}},
			wantStopSignal: "SIGINT",
		},
		{
			name:     "args replace the image's cmd only",
			req:      func(r *runtime.CreateRequest) { r.Args = []string{"check"} },
			wantArgs: []string{"/bin/app", "check"}, wantEnv: imageEnv, wantCwd: imageWorkdir,
			wantUser:       specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}},
			wantStopSignal: imageStopSignal,
		},
		{
			name:     "user by name, with the image's groups",
			req:      func(r *runtime.CreateRequest) { r.User = runtime.UserRequest{Username: "app"} },
			wantArgs: []string{"/bin/app", "serve"}, wantEnv: imageEnv, wantCwd: imageWorkdir,
			wantUser:       specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 2000}},
			wantStopSignal: imageStopSignal,
		},
		{
			name: "uid and strict groups ignore /etc/group",
			req: func(r *runtime.CreateRequest) {
				r.User = runtime.UserRequest{UID: ptr[int64](1000), GID: ptr[int64](1000), SupplementalGroups: []int64{3000}, StrictGroups: true}
			},
			wantArgs: []string{"/bin/app", "serve"}, wantEnv: imageEnv, wantCwd: imageWorkdir,
			wantUser:       specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 3000}},
			wantStopSignal: imageStopSignal,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := e.bus.Subscribe()
			defer sub.Close()
			req := e.request("c-" + t.Name()[len("TestCreate/"):])
			if tc.req != nil {
				tc.req(&req)
			}
			id := e.create(t, req)
			c := e.get(t, id)
			if st := runtime.StateOf(c); st != runtime.Created {
				t.Errorf("state = %v, want Created", st)
			}
			if c.Pid == 0 || c.ShimPid == 0 {
				t.Errorf("pid %d, shim pid %d: want both recorded", c.Pid, c.ShimPid)
			}
			if c.StopSignal != tc.wantStopSignal {
				t.Errorf("stop signal = %q, want %q", c.StopSignal, tc.wantStopSignal)
			}
			wantGroups := make([]int64, len(tc.wantUser.AdditionalGids))
			for i, g := range tc.wantUser.AdditionalGids {
				wantGroups[i] = int64(g)
			}
			if diff := cmp.Diff([]int64{int64(tc.wantUser.UID), int64(tc.wantUser.GID)}, []int64{c.UID, c.GID}); diff != "" {
				t.Errorf("recorded uid, gid (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantGroups, c.Groups); diff != "" {
				t.Errorf("recorded groups (-want +got):\n%s", diff)
			}

			lr, ok := e.procs.Request(id)
			if !ok {
				t.Fatal("no process launched")
			}
			if lr.Bundle != c.Bundle || lr.Spec == nil || lr.Spec.Process == nil {
				t.Fatalf("launch request %+v for bundle %s", lr, c.Bundle)
			}
			p := lr.Spec.Process
			if diff := cmp.Diff(tc.wantArgs, p.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEnv, p.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if p.Cwd != tc.wantCwd {
				t.Errorf("cwd = %q, want %q", p.Cwd, tc.wantCwd)
			}
			if diff := cmp.Diff(tc.wantUser, p.User); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			// The working directory is made in the rootfs if missing.
			if st, err := os.Stat(filepath.Join(lr.Spec.Root.Path, tc.wantCwd)); err != nil || !st.IsDir() {
				t.Errorf("working directory in the rootfs: %v", err)
			}
			// The rootfs is an overlay of the image's layers at the
			// spec's root.
			lowers, err := e.images.SnapshotDirs(context.Background(), mustImage(t, e))
			if err != nil {
				t.Fatal(err)
			}
			want := runtimetest.Mount{Op: runtimetest.OpMount, Target: lr.Spec.Root.Path, Lowers: lowers}
			if !slices.ContainsFunc(e.mounts.Mounts(), func(m runtimetest.Mount) bool { return cmp.Equal(m, want) }) {
				t.Errorf("mounts %+v lack the rootfs %+v", e.mounts.Mounts(), want)
			}
			awaitEvent(t, sub, events.Created, id)
		})
	}
}

func mustImage(t *testing.T, e *env) store.Image {
	t.Helper()
	img, err := e.images.Get(context.Background(), e.image)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The container's mounts: the pod's files, the request's binds (which
// take the place of a pod file at the same destination), and images as
// read-only volumes, whole or a sub path of one.
func TestCreateMounts(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	hosts := filepath.Join(t.TempDir(), "hosts")
	req := e.request("mounts")
	req.Mounts = []oci.Mount{
		{Source: data, Destination: "/data"},
		{Source: hosts, Destination: "/etc/hosts", ReadOnly: true},
	}
	req.ImageMounts = []runtime.ImageMount{
		{Image: e.image, Destination: "/img"},
		{Image: e.image, Destination: "/img-etc", SubPath: "etc"},
	}
	id := e.create(t, req)
	c := e.get(t, id)
	lr, _ := e.procs.Request(id)
	got := map[string]specs.Mount{}
	for _, m := range lr.Spec.Mounts {
		if _, dup := got[m.Destination]; dup {
			t.Errorf("two mounts at %s", m.Destination)
		}
		got[m.Destination] = m
	}
	vol := filepath.Join(c.Bundle, "volumes")
	for dst, src := range map[string]string{
		"/etc/hostname":    filepath.Join(e.sb.Dir, "hostname"),
		"/etc/resolv.conf": filepath.Join(e.sb.Dir, "resolv.conf"),
		"/etc/hosts":       hosts,
		"/data":            data,
		"/img":             filepath.Join(vol, "0"),
		"/img-etc":         filepath.Join(vol, "1-sub"),
	} {
		if got[dst].Source != src {
			t.Errorf("mount at %s from %q, want %q", dst, got[dst].Source, src)
		}
	}
	for _, dst := range []string{"/img", "/img-etc", "/etc/hosts"} {
		if !slices.Contains(got[dst].Options, "ro") {
			t.Errorf("mount at %s is not read-only: %v", dst, got[dst].Options)
		}
	}
	lowers, err := e.images.SnapshotDirs(context.Background(), mustImage(t, e))
	if err != nil {
		t.Fatal(err)
	}
	want := []runtimetest.Mount{
		{Op: runtimetest.OpMount, Target: lr.Spec.Root.Path, Lowers: lowers},
		{Op: runtimetest.OpMountReadOnly, Target: filepath.Join(vol, "0"), Lowers: lowers, ReadOnly: true},
		{Op: runtimetest.OpMountReadOnly, Target: filepath.Join(vol, "1"), Lowers: lowers, ReadOnly: true},
		{Op: runtimetest.OpBindBeneath, Target: filepath.Join(vol, "1-sub"), Source: filepath.Join(vol, "1", "etc"), ReadOnly: true},
	}
	if diff := cmp.Diff(want, e.mounts.Mounts()); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{string(c.ChainID), string(c.ChainID)}, digestStrings(c.VolumeChainIDs)); diff != "" {
		t.Errorf("volume GC roots (-want +got):\n%s", diff)
	}
}

func digestStrings[T ~string](ds []T) []string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d))
	}
	return out
}

// A create that fails at any step leaves nothing behind: no record, no
// mount, no process, no directory; and the name is free again.
func TestCreateFailureLeavesNothing(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		req     func(*runtime.CreateRequest)
		fail    func(*env)
		wantErr error
		// launched: the process was created before the failure, so it
		// must have been killed and deleted.
		launched bool
	}{
		{name: "no name", req: func(r *runtime.CreateRequest) { r.Name = "" }, wantErr: errdefs.ErrInvalidArgument},
		{name: "sandbox not ready", req: func(r *runtime.CreateRequest) {
			r.Sandbox.ReadyAt = r.Sandbox.CreatedAt.AddDate(-1, 0, 0)
			r.Sandbox.StoppedAt = r.Sandbox.CreatedAt
		}, wantErr: errdefs.ErrFailedPrecondition},
		{name: "unknown image", req: func(r *runtime.CreateRequest) { r.Image = "example.invalid/nosuch:1" }, wantErr: errdefs.ErrNotFound},
		{name: "rootfs mount fails", fail: func(e *env) { e.mounts.Fail(runtimetest.OpMount, errBoom) }, wantErr: errBoom},
		{
			name: "image volume fails",
			req: func(r *runtime.CreateRequest) {
				r.ImageMounts = []runtime.ImageMount{{Image: r.Image, Destination: "/img"}}
			},
			fail:    func(e *env) { e.mounts.Fail(runtimetest.OpMountReadOnly, errBoom) },
			wantErr: errBoom,
		},
		{
			name: "image volume sub path leaves the image",
			req: func(r *runtime.CreateRequest) {
				r.ImageMounts = []runtime.ImageMount{{Image: r.Image, Destination: "/img", SubPath: "../x"}}
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{name: "unknown user", req: func(r *runtime.CreateRequest) { r.User.Username = "nobody-here" }, wantErr: errdefs.ErrInvalidArgument},
		{
			name:    "PID namespace target missing",
			req:     func(r *runtime.CreateRequest) { r.PIDMode, r.PIDTarget = runtime.PIDTarget, "0123456789ab" },
			wantErr: errdefs.ErrNotFound,
		},
		{name: "unknown seccomp profile", req: func(r *runtime.CreateRequest) { r.SeccompProfile = "strict" }, wantErr: errdefs.ErrInvalidArgument},
		{name: "relative mount destination", req: func(r *runtime.CreateRequest) { r.Mounts = []oci.Mount{{Source: "/tmp", Destination: "data"}} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "launch fails", fail: func(e *env) { e.procs.Fail(runtimetest.OpLaunch, errBoom) }, wantErr: errBoom},
		{
			// Staged binds (recursive read-only) are unmounted after the
			// launch: a failure there must undo the launched process too.
			name: "unmounting a staged bind fails",
			req: func(r *runtime.CreateRequest) {
				r.Mounts = []oci.Mount{{Source: "/tmp", Destination: "/data", ReadOnly: true, RecursiveReadOnly: true}}
			},
			fail:     func(e *env) { e.mounts.Fail(runtimetest.OpUnmount, errBoom) },
			wantErr:  errBoom,
			launched: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			req := e.request("c")
			if tc.req != nil {
				tc.req(&req)
			}
			if tc.fail != nil {
				tc.fail(e)
			}
			_, err := e.m.Create(context.Background(), req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Create = %v, want %v", err, tc.wantErr)
			}
			e.assertGone(t)
			kills := e.procs.Calls(runtimetest.OpKill, runtimetest.OpDelete)
			if tc.launched {
				id := e.procs.Calls(runtimetest.OpLaunch)[0].ID
				want := []runtimetest.Call{
					{Op: runtimetest.OpKill, ID: id, Signal: 9, All: true},
					{Op: runtimetest.OpDelete, ID: id},
				}
				if diff := cmp.Diff(want, kills); diff != "" {
					t.Errorf("undoing the launch (-want +got):\n%s", diff)
				}
			}

			// Without the failure, the same name can be created.
			e.mounts.Fail(runtimetest.OpMount, nil)
			e.mounts.Fail(runtimetest.OpMountReadOnly, nil)
			e.mounts.Fail(runtimetest.OpUnmount, nil)
			e.procs.Fail(runtimetest.OpLaunch, nil)
			e.create(t, e.request("c"))
		})
	}
}
