package sandbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

// fakeContainers is a container service holding the containers all. It
// records the stop and remove calls and the stats requests the sandbox
// service makes; fail maps a container id to the error its Stop and
// Remove return.
type fakeContainers struct {
	all   []store.Container
	fail  map[string]error
	calls []string
	reqs  []runtime.StatsRequest
}

func (f *fakeContainers) Get(ctx context.Context, id string) (store.Container, error) {
	for _, c := range f.all {
		if c.ID == id {
			return c, nil
		}
	}
	return store.Container{}, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
}

func (f *fakeContainers) List(ctx context.Context) ([]store.Container, error) { return f.all, nil }

func (f *fakeContainers) Stats(ctx context.Context, req runtime.StatsRequest) []runtime.ContainerStats {
	f.reqs = append(f.reqs, req)
	out := make([]runtime.ContainerStats, len(req.Containers))
	for i, c := range req.Containers {
		out[i] = runtime.ContainerStats{Container: c}
	}
	return out
}

func (f *fakeContainers) Match(_ context.Context, flt runtime.ContainerFilter) ([]store.Container, error) {
	var out []store.Container
	for _, c := range f.all {
		if flt.Matches(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeContainers) Stop(_ context.Context, id string, timeout time.Duration, _ string) error {
	f.calls = append(f.calls, fmt.Sprintf("stop %s %s", id, timeout))
	return f.fail[id]
}

func (f *fakeContainers) Remove(_ context.Context, id string) error {
	f.calls = append(f.calls, "remove "+id)
	return f.fail[id]
}

func TestEachContainer(t *testing.T) {
	boom := errors.New("boom")
	f := &fakeContainers{
		all: []store.Container{{ID: "c1", SandboxID: "pod1"}, {ID: "c2", SandboxID: "pod2"}, {ID: "c3", SandboxID: "pod1"}},
	}
	m := &Manager{containers: f}
	stop := func(ctx context.Context, id string) error { return m.containers.Stop(ctx, id, 0, "") }
	if err := m.eachContainer(context.Background(), "pod1", stop); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"stop c1 0s", "stop c3 0s"}, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// One gone meanwhile is skipped; any other error stops the walk.
	f.calls = nil
	f.fail = map[string]error{"c1": fmt.Errorf("c1: %w", errdefs.ErrNotFound)}
	if err := m.eachContainer(context.Background(), "pod1", m.containers.Remove); err != nil {
		t.Fatalf("with a vanished container: %v", err)
	}
	f.calls = nil
	f.fail = map[string]error{"c1": boom}
	if err := m.eachContainer(context.Background(), "pod1", m.containers.Remove); !errors.Is(err, boom) {
		t.Fatalf("with a failing container: %v", err)
	}
	if diff := cmp.Diff([]string{"remove c1"}, f.calls); diff != "" {
		t.Errorf("calls after a failure (-want +got):\n%s", diff)
	}
}
