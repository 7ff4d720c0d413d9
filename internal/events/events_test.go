package events

import (
	"sync"
	"testing"
)

func TestEveryEventOnceInOneOrder(t *testing.T) {
	b := NewBus()
	subs := []*Subscription{b.Subscribe(), b.Subscribe(), b.Subscribe()}
	const publishers, each = 8, 500
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				b.Publish(Event{Kind: Kind(i % 4), ID: "c"})
			}
		}()
	}
	wg.Wait()
	for i, s := range subs {
		var got []Event
		for len(got) < publishers*each {
			evs, err := s.Next(nil)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, evs...)
		}
		for j, e := range got {
			if e.Seq != uint64(j+1) {
				t.Fatalf("subscriber %d: event %d has seq %d", i, j, e.Seq)
			}
		}
		s.Close()
	}
}

func TestLaggingSubscriberIsCutOffNotBlocking(t *testing.T) {
	b := NewBus()
	slow := b.Subscribe()
	for i := 0; i < MaxQueue+1; i++ {
		b.Publish(Event{})
	}
	if _, err := slow.Next(nil); err != ErrLagged {
		t.Errorf("Next = %v, want ErrLagged", err)
	}
	stop := make(chan struct{})
	close(stop)
	fresh := b.Subscribe()
	if evs, err := fresh.Next(stop); evs != nil || err != nil {
		t.Errorf("a new subscriber sees old events: %v %v", evs, err)
	}
}

func TestTapSeesEveryEventInOrder(t *testing.T) {
	b := NewBus()
	var got []uint64
	cancel := b.Tap(func(e Event) { got = append(got, e.Seq) })
	for i := 0; i < 3; i++ {
		b.Publish(Event{ID: "c"})
	}
	cancel()
	b.Publish(Event{ID: "c"})
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("tap saw %v, want [1 2 3] and nothing after cancel", got)
	}
}
