package runtime_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/runtime/runtimetest"
	"github.com/berth-runtime/berth/store"
)

var stateNames = map[runtime.State]string{runtime.Created: "created", runtime.Running: "running", runtime.Exited: "exited", runtime.Unknown: "unknown"}

func TestStart(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name string
		// setup runs on a created container; started makes it start
		// first.
		started bool
		setup   func(e *env, id string)
		wantErr error
		want    runtime.State
		// wantReason and wantMessage are checked when the container exited.
		wantReason, wantMessage string
	}{
		{name: "created", want: runtime.Running},
		{name: "started twice", started: true, wantErr: errdefs.ErrFailedPrecondition, want: runtime.Running},
		{
			name:    "runtime fails, process alive",
			setup:   func(e *env, id string) { e.procs.Fail(runtimetest.OpStart, errBoom) },
			wantErr: errBoom, want: runtime.Created,
		},
		{
			// The process died before it could start: the container
			// exited, with the runtime's error as its message.
			name: "runtime fails, process gone",
			setup: func(e *env, id string) {
				e.procs.Fail(runtimetest.OpStart, errBoom)
				e.procs.Exit(id, 127)
			},
			wantErr: errBoom, want: runtime.Exited, wantReason: "Error", wantMessage: "StartError: boom",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.create(t, e.request("c"))
			if tc.started {
				if err := e.m.Start(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(e, id)
			}
			sub := e.bus.Subscribe()
			defer sub.Close()
			err := e.m.Start(context.Background(), id)
			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Start = %v, want %v", err, tc.wantErr)
			}
			c := e.get(t, id)
			if st := runtime.StateOf(c); st != tc.want {
				t.Fatalf("state = %s, want %s", stateNames[st], stateNames[tc.want])
			}
			switch tc.want {
			case runtime.Running:
				if !tc.started {
					awaitEvent(t, sub, events.Started, id)
				}
			case runtime.Exited:
				if c.Reason != tc.wantReason || c.Message != tc.wantMessage || c.ExitCode != 127 {
					t.Errorf("exit %d %q %q, want 127 %q %q", c.ExitCode, c.Reason, c.Message, tc.wantReason, tc.wantMessage)
				}
				awaitEvent(t, sub, events.Stopped, id)
			}
		})
	}
}

// A container's own exit is recorded by the Manager's watcher.
func TestExitRecorded(t *testing.T) {
	for _, tc := range []struct {
		code       int
		wantReason string
	}{
		{0, "Completed"},
		{3, "Error"},
	} {
		t.Run(tc.wantReason, func(t *testing.T) {
			e := newEnv(t)
			id := e.running(t, "c")
			sub := e.bus.Subscribe()
			defer sub.Close()
			if err := e.procs.Exit(id, tc.code); err != nil {
				t.Fatal(err)
			}
			awaitEvent(t, sub, events.Stopped, id)
			c := e.get(t, id)
			if st := runtime.StateOf(c); st != runtime.Exited {
				t.Fatalf("state = %v, want Exited", st)
			}
			if c.ExitCode != int32(tc.code) || c.Reason != tc.wantReason || c.FinishedAt.Before(c.StartedAt) {
				t.Errorf("exit %d %q at %v (started %v), want %d %q", c.ExitCode, c.Reason, c.FinishedAt, c.StartedAt, tc.code, tc.wantReason)
			}
		})
	}
}

func TestStop(t *testing.T) {
	term, kill := syscall.SIGTERM, syscall.SIGKILL
	for _, tc := range []struct {
		name string
		// state to stop: Created, Running or Exited.
		from    runtime.State
		req     func(*runtime.CreateRequest)
		setup   func(e *env, id string)
		timeout time.Duration
		signal  string // Stop's argument
		// wantKills are the signals sent (all: to every process); nil
		// for none.
		wantKills []runtimetest.Call
		wantCode  int32
	}{
		{
			name: "the image's stop signal", from: runtime.Running, timeout: time.Minute,
			wantKills: []runtimetest.Call{{Signal: syscall.SIGQUIT}}, wantCode: 128 + int32(syscall.SIGQUIT),
		},
		{
			name: "the request's stop signal", from: runtime.Running, timeout: time.Minute,
			req:       func(r *runtime.CreateRequest) { r.StopSignal = "SIGTERM" },
			wantKills: []runtimetest.Call{{Signal: term}}, wantCode: 128 + int32(term),
		},
		{
			name: "Stop's own signal wins", from: runtime.Running, timeout: time.Minute, signal: "INT",
			wantKills: []runtimetest.Call{{Signal: syscall.SIGINT}}, wantCode: 128 + int32(syscall.SIGINT),
		},
		{
			// Whatever the timeout, SIGKILL follows a signal that did not
			// end the container.
			name: "stop signal ignored", from: runtime.Running, timeout: 10 * time.Millisecond,
			setup:     func(e *env, id string) { e.procs.Ignore(id, syscall.SIGQUIT) },
			wantKills: []runtimetest.Call{{Signal: syscall.SIGQUIT}, {Signal: kill, All: true}}, wantCode: 128 + int32(kill),
		},
		{
			name: "no timeout", from: runtime.Running,
			wantKills: []runtimetest.Call{{Signal: kill, All: true}}, wantCode: 128 + int32(kill),
		},
		{
			name: "created, never started", from: runtime.Created, timeout: time.Minute,
			wantKills: []runtimetest.Call{{Signal: kill, All: true}}, wantCode: 128 + int32(kill),
		},
		{
			name: "exited already", from: runtime.Exited, timeout: time.Minute,
			setup:    func(e *env, id string) {},
			wantCode: 7,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			req := e.request("c")
			if tc.req != nil {
				tc.req(&req)
			}
			id := e.create(t, req)
			if tc.from != runtime.Created {
				if err := e.m.Start(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			if tc.from == runtime.Exited {
				sub := e.bus.Subscribe()
				e.procs.Exit(id, 7)
				awaitEvent(t, sub, events.Stopped, id)
				sub.Close()
			}
			if tc.setup != nil {
				tc.setup(e, id)
			}
			before := len(e.procs.Calls(runtimetest.OpKill))
			if err := e.m.Stop(context.Background(), id, tc.timeout, tc.signal); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			var want []runtimetest.Call
			for _, k := range tc.wantKills {
				want = append(want, runtimetest.Call{Op: runtimetest.OpKill, ID: id, Signal: k.Signal, All: k.All})
			}
			if diff := cmp.Diff(want, e.procs.Calls(runtimetest.OpKill)[before:]); diff != "" {
				t.Errorf("kills (-want +got):\n%s", diff)
			}
			// Stop returns once the exit is recorded.
			c := e.get(t, id)
			if st := runtime.StateOf(c); st != runtime.Exited || c.ExitCode != tc.wantCode {
				t.Errorf("state %s, exit code %d; want exited, %d", stateNames[st], c.ExitCode, tc.wantCode)
			}
		})
	}
}

func TestStopUnknown(t *testing.T) {
	e := newEnv(t)
	if err := e.m.Stop(context.Background(), "0123456789ab", time.Second, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stop of an unknown container = %v, want ErrNotFound", err)
	}
}

// Remove leaves nothing of a container in any state, and frees its name.
func TestRemove(t *testing.T) {
	for _, from := range []runtime.State{runtime.Created, runtime.Running, runtime.Exited} {
		t.Run(stateNames[from], func(t *testing.T) {
			e := newEnv(t)
			req := e.request("c")
			req.ImageMounts = []runtime.ImageMount{{Image: e.image, Destination: "/img"}}
			id := e.create(t, req)
			if from != runtime.Created {
				if err := e.m.Start(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			if from == runtime.Exited {
				if err := e.m.Stop(context.Background(), id, 0, ""); err != nil {
					t.Fatal(err)
				}
			}
			sub := e.bus.Subscribe()
			defer sub.Close()
			if err := e.m.Remove(context.Background(), id); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			awaitEvent(t, sub, events.Deleted, id)
			e.assertGone(t)
			if _, err := e.m.Get(context.Background(), id); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Get after Remove = %v, want ErrNotFound", err)
			}
			e.create(t, e.request("c"))
		})
	}
}

// A failing step of Remove keeps the record, so that it can be retried.
func TestRemoveFailureKeepsRecord(t *testing.T) {
	errBoom := errors.New("boom")
	for _, op := range []runtimetest.Op{runtimetest.OpDelete, runtimetest.OpUnmountAll} {
		t.Run(string(op), func(t *testing.T) {
			e := newEnv(t)
			id := e.running(t, "c")
			fail := func(err error) { e.procs.Fail(op, err) }
			if op == runtimetest.OpUnmountAll {
				fail = func(err error) { e.mounts.Fail(op, err) }
			}
			fail(errBoom)
			if err := e.m.Remove(context.Background(), id); !errors.Is(err, errBoom) {
				t.Fatalf("Remove = %v, want %v", err, errBoom)
			}
			e.get(t, id)
			fail(nil)
			if err := e.m.Remove(context.Background(), id); err != nil {
				t.Fatalf("Remove again: %v", err)
			}
			e.assertGone(t)
		})
	}
}

// Recover at start-up: a create cut short is undone, a container whose
// process exited meanwhile is recorded exited, one started just before
// the crash (without its record) is adopted as running.
func TestRecover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adopted := e.create(t, e.request("adopted"))
	exited := e.running(t, "exited")
	running := e.running(t, "running")
	e.m.Close() // berthd goes away; the processes live on

	if err := e.procs.Start(ctx, "", adopted); err != nil {
		t.Fatal(err)
	}
	if err := e.procs.Exit(exited, 9); err != nil {
		t.Fatal(err)
	}
	cut := store.Container{ID: idgen.New(), SandboxID: e.sb.ID, Name: "cut", Key: "cut_x_0", CreatedAt: time.Now().UTC(),
		Dir: e.opts.RootDir + "/containers/cut", Bundle: e.opts.StateDir + "/containers/cut"}
	if err := e.db.Update(func(tx *store.Tx) error { return store.Put(tx, store.Containers, cut.ID, cut) }); err != nil {
		t.Fatal(err)
	}

	e.m = e.newManager(t)
	if err := e.m.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if _, err := e.m.Get(ctx, cut.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("interrupted create: Get = %v, want ErrNotFound", err)
	}
	for id, want := range map[string]runtime.State{adopted: runtime.Running, exited: runtime.Exited, running: runtime.Running} {
		if st := runtime.StateOf(e.get(t, id)); st != want {
			t.Errorf("%s: state %s, want %s", e.get(t, id).Name, stateNames[st], stateNames[want])
		}
	}
	if c := e.get(t, exited); c.ExitCode != 9 {
		t.Errorf("exit code %d, want 9", c.ExitCode)
	}
	// The adopted containers are watched again.
	sub := e.bus.Subscribe()
	defer sub.Close()
	e.procs.Exit(adopted, 0)
	awaitEvent(t, sub, events.Stopped, adopted)
	// Their names stay taken.
	if _, err := e.m.Create(ctx, e.request("running")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Create of a recovered container's name = %v, want ErrAlreadyExists", err)
	}
}

func TestParseSignal(t *testing.T) {
	const dflt = syscall.SIGTERM
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"", dflt},
		{"SIGQUIT", syscall.SIGQUIT},
		{"QUIT", syscall.SIGQUIT},
		{"quit", syscall.SIGQUIT},
		{"sigint", syscall.SIGINT},
		{"9", syscall.SIGKILL},
		{"0", dflt},
		{"65", dflt},
		{"-1", dflt},
		{"SIGIOT", syscall.SIGABRT},
		{"SIGRTMIN", 34},
		{"SIGRTMIN+3", 37},
		{"RTMAX-1", 63},
		{"SIGRTMAX", 64},
		{"SIGRTMAX+1", dflt},
		{"SIGNOPE", dflt},
	} {
		if got := runtime.ParseSignal(tc.in, dflt); got != tc.want {
			t.Errorf("ParseSignal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// Without a Launcher, what needs a live shim or the runtime binary is
// unavailable, not a crash.
func TestNoShims(t *testing.T) {
	e := newEnv(t)
	req := e.request("c")
	req.LogPath = t.TempDir() + "/c/0.log"
	id := e.create(t, req)
	if err := e.m.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Exec(context.Background(), id, runtime.ExecOpts{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Exec = %v, want ErrUnavailable", err)
	}
	if err := e.m.ReopenLog(context.Background(), id); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("ReopenLog = %v, want ErrUnavailable", err)
	}
}

func TestNewManagerNeedsProcesses(t *testing.T) {
	e := newEnv(t)
	o := e.opts
	o.Processes = nil
	if _, err := runtime.NewManager(o); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("NewManager without a Launcher or Processes = %v, want ErrInvalidArgument", err)
	}
}
