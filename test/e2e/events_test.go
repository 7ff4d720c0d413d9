package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventLog collects one subscriber's events.
type eventLog struct {
	mu     sync.Mutex
	events []*runtimeapi.ContainerEventResponse
}

func (l *eventLog) add(e *runtimeapi.ContainerEventResponse) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func subscribe(t *testing.T, d *daemon, l *eventLog) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := d.RT.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			e, err := stream.Recv()
			if err != nil {
				return
			}
			l.add(e)
		}
	}()
	// berthd sends headers once the subscription is registered.
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	return func() { cancel(); <-done }
}

// TestContainerEvents runs many container life cycles concurrently with
// three subscribers, one of which disconnects and reconnects half way:
// every subscriber sees every transition of every container exactly once,
// in order, with the pod's status.
func TestContainerEvents(t *testing.T) {
	n := 1000
	if s := os.Getenv("BERTH_EVENTS_CYCLES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	d, img, _ := podDaemon(t, "")
	pod := podConfig(t, "events")
	podID := runPod(t, d, pod)
	var a, b, c1, c2 eventLog
	stopA := subscribe(t, d, &a)
	stopB := subscribe(t, d, &b)
	stopC := subscribe(t, d, &c1)

	cycle := func(i int) string {
		cfg := containerConfig(fmt.Sprintf("c%d", i), img, "true")
		cfg.LogPath = ""
		id := runContainer(t, d, podID, pod, cfg)
		waitState(t, d, id, runtimeapi.ContainerState_CONTAINER_EXITED)
		if _, err := d.RT.RemoveContainer(ctxT(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Error(err)
		}
		return id
	}
	run := func(from, to int) []string {
		ids := make([]string, to-from)
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					ids[i-from] = cycle(i)
				}
			}()
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return ids
	}
	first := run(0, n/2)
	// C disconnects only after it has received the first half: events
	// still in flight on a stream its client closes are lost to it, as
	// with any stream.
	waitAll(t, &c1, first)
	stopC()
	stopC = subscribe(t, d, &c2)
	second := run(n/2, n)
	// Every removal returned before run did, so each deletion is on the
	// bus; with 8 workers the last one issued need not be the last one
	// published, so wait for all of them.
	for _, l := range []*eventLog{&a, &b, &c2} {
		waitAll(t, l, second)
	}
	stopA()
	stopB()
	stopC()

	want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	check := func(name string, l *eventLog, ids []string, exact bool) {
		per := map[string][]runtimeapi.ContainerEventType{}
		for _, e := range l.events {
			if e.ContainerId == podID {
				continue
			}
			per[e.ContainerId] = append(per[e.ContainerId], e.ContainerEventType)
			if e.PodSandboxStatus == nil || e.PodSandboxStatus.Id != podID {
				t.Errorf("%s: event without the pod's status: %v", name, e)
				return
			}
			if e.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT && len(e.ContainersStatuses) == 0 {
				t.Errorf("%s: %v event without container statuses", name, e.ContainerEventType)
				return
			}
		}
		bad := 0
		for _, id := range ids {
			got := per[id]
			if fmt.Sprint(got) != fmt.Sprint(want) && bad < 3 {
				t.Errorf("%s: container %s got %v, want %v", name, id[:12], got, want)
				bad++
			}
			delete(per, id)
		}
		if exact && len(per) != 0 {
			t.Errorf("%s: events for %d containers it should not have seen", name, len(per))
		}
	}
	all := append(append([]string{}, first...), second...)
	check("subscriber A", &a, all, true)
	check("subscriber B", &b, all, true)
	// The reconnected subscriber: no event twice across its two streams,
	// and everything that happened after it reconnected.
	seen := map[string]bool{}
	for _, l := range []*eventLog{&c1, &c2} {
		for _, e := range l.events {
			k := e.ContainerId + e.ContainerEventType.String()
			if seen[k] {
				t.Errorf("reconnected subscriber got %v of %s twice", e.ContainerEventType, e.ContainerId[:12])
			}
			seen[k] = true
		}
	}
	check("subscriber C before its reconnect", &c1, first, false)
	check("subscriber C after its reconnect", &c2, second, true)
	t.Logf("%d life cycles, %d events per subscriber", n, len(a.events))
}

// waitAll waits until l holds a deletion event for every id.
func waitAll(t *testing.T, l *eventLog, ids []string) {
	t.Helper()
	waitFor(t, "the subscriber to receive every deletion", func() bool {
		deleted := map[string]bool{}
		l.mu.Lock()
		for _, e := range l.events {
			if e.ContainerEventType == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
				deleted[e.ContainerId] = true
			}
		}
		l.mu.Unlock()
		for _, id := range ids {
			if !deleted[id] {
				return false
			}
		}
		return true
	})
}
