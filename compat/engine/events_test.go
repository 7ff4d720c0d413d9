package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	eventtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/store"
)

func TestEventTime(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "", want: time.Time{}},
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "1733479200", want: time.Unix(1733479200, 0)},
		{in: "1733479200.5", want: time.Unix(1733479200, 500000000)},
		{in: "1733479200.000000123", want: time.Unix(1733479200, 123)},
		{in: "2026-12-06T09:30:00Z", want: now.Add(-30 * time.Minute)},
		{in: "2026-12-06T11:30:00+02:00", want: now.Add(-30 * time.Minute)},
		{in: "2026-12-06T09:30:00.25Z", want: now.Add(-30*time.Minute + 250*time.Millisecond)},
		{in: "2026-12-06T09:30:00", want: now.Add(-30 * time.Minute)},
		{in: "2026-12-06T09:30", want: now.Add(-30 * time.Minute)},
		{in: "2026-12-06", want: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "2026-13-06", wantErr: true},
		{in: "12.x", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := eventTime(tc.in, now)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("eventTime(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("eventTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestEventMatches(t *testing.T) {
	run := eventtypes.Message{Type: "container", Action: "start", Actor: eventtypes.Actor{
		ID: "4f2a1c", Attributes: map[string]string{"name": "web", "image": "docker.io/library/busybox:latest", "tier": "front"}}}
	health := eventtypes.Message{Type: "container", Action: "health_status: healthy", Actor: eventtypes.Actor{ID: "4f2a1c", Attributes: map[string]string{"name": "web"}}}
	tag := eventtypes.Message{Type: "image", Action: "tag", Actor: eventtypes.Actor{ID: "sha256:abc", Attributes: map[string]string{"name": "busybox:1"}}}
	vol := eventtypes.Message{Type: "volume", Action: "create", Actor: eventtypes.Actor{ID: "data", Attributes: map[string]string{"driver": "local"}}}
	for _, tc := range []struct {
		name    string
		filters filters
		m       eventtypes.Message
		want    bool
	}{
		{"none", filters{}, run, true},
		{"type", filters{"type": {"container"}}, run, true},
		{"other type", filters{"type": {"image"}}, run, false},
		{"event", filters{"event": {"start", "die"}}, run, true},
		{"other event", filters{"event": {"die"}}, run, false},
		{"health_status prefix", filters{"event": {"health_status"}}, health, true},
		{"container by name", filters{"container": {"web"}}, run, true},
		{"container by id prefix", filters{"container": {"4f2"}}, run, true},
		{"other container", filters{"container": {"db"}}, run, false},
		{"container filter drops volume events", filters{"container": {"web"}}, vol, false},
		{"image by familiar name", filters{"image": {"busybox"}}, run, true},
		{"image by full name", filters{"image": {"docker.io/library/busybox:latest"}}, run, true},
		{"image event by name", filters{"image": {"busybox"}}, tag, true},
		{"other image", filters{"image": {"alpine"}}, run, false},
		{"label key", filters{"label": {"tier"}}, run, true},
		{"label value", filters{"label": {"tier=front"}}, run, true},
		{"label other value", filters{"label": {"tier=back"}}, run, false},
		{"volume", filters{"volume": {"data"}}, vol, true},
		{"type and event", filters{"type": {"container"}, "event": {"start"}}, run, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eventMatches(tc.filters, tc.m); got != tc.want {
				t.Errorf("eventMatches(%v, %s %s) = %v, want %v", tc.filters, tc.m.Type, tc.m.Action, got, tc.want)
			}
		})
	}
}

func TestJournalKeepsTheNewest(t *testing.T) {
	j := newJournal()
	for i := 0; i < journalSize+10; i++ {
		j.add(eventtypes.Message{Type: "container", Action: "start", TimeNano: int64(i + 1)})
	}
	past, l := j.subscribe(time.Unix(0, 1), time.Time{}, func(eventtypes.Message) bool { return true })
	defer j.unsubscribe(l)
	if len(past) != journalSize || past[0].TimeNano != 11 || past[len(past)-1].TimeNano != journalSize+10 {
		t.Fatalf("kept %d events from %d to %d, want the newest %d", len(past), past[0].TimeNano, past[len(past)-1].TimeNano, journalSize)
	}
	none, l2 := j.subscribe(time.Time{}, time.Time{}, func(eventtypes.Message) bool { return true })
	defer j.unsubscribe(l2)
	if len(none) != 0 {
		t.Errorf("without since or until, %d past events replayed; docker replays none", len(none))
	}
}

// TestEventsStream drives GET /events through the handler: past events
// since a time, the bus's container events translated, emitted ones
// interleaved in order, the legacy fields for old API versions, and the
// stream ending at until.
func TestEventsStream(t *testing.T) {
	bus := events.NewBus()
	s := New(Options{Events: bus})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	begin := time.Now()
	labels := map[string]string{"app": "demo"}
	bus.Publish(events.Event{Kind: events.Created, ID: "c1", Origin: string(store.OriginDocker), Key: "web", Name: "web", Image: "busybox", Labels: labels})
	s.emit("container", "attach", "c1", map[string]string{"name": "web"})
	bus.Publish(events.Event{Kind: events.Started, ID: "c1", Origin: string(store.OriginDocker), Key: "web", Name: "web", Image: "busybox", Labels: labels})
	bus.Publish(events.Event{Kind: events.Started, ID: "sb", Sandbox: true, Origin: string(store.OriginDocker)})
	bus.Publish(events.Event{Kind: events.Stopped, ID: "c1", Origin: string(store.OriginDocker), Key: "web", Name: "web", Image: "busybox", Labels: labels, ExitCode: 3})
	s.emit("volume", "create", "data", map[string]string{"driver": "local"})

	get := func(version string, q url.Values) []map[string]any {
		t.Helper()
		resp, err := http.Get(srv.URL + version + "/events?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /events: %s", resp.Status)
		}
		var out []map[string]any
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			out = append(out, m)
		}
		return out
	}
	sinceUntil := url.Values{"since": {"10m"}, "until": {time.Now().Add(time.Millisecond).Format(time.RFC3339Nano)}}
	got := get("/v1.52", sinceUntil)
	var actions []string
	for _, m := range got {
		actions = append(actions, m["Type"].(string)+" "+m["Action"].(string))
	}
	want := "container create,container attach,container start,container die,volume create"
	if strings.Join(actions, ",") != want {
		t.Fatalf("events: %s, want %s", strings.Join(actions, ","), want)
	}
	die := got[3]
	attrs := die["Actor"].(map[string]any)["Attributes"].(map[string]any)
	if attrs["exitCode"] != "3" || attrs["name"] != "web" || attrs["image"] != "busybox" || attrs["app"] != "demo" {
		t.Errorf("die attributes: %v", attrs)
	}
	if die["scope"] != "local" || die["timeNano"].(float64) < float64(begin.UnixNano()) {
		t.Errorf("die: scope %v, timeNano %v", die["scope"], die["timeNano"])
	}
	if _, ok := die["status"]; ok {
		t.Errorf("API 1.52 has no legacy status field: %v", die)
	}

	f, _ := json.Marshal(map[string]map[string]bool{"type": {"container": true}, "event": {"die": true}})
	sinceUntil.Set("filters", string(f))
	old := get("/v1.41", sinceUntil)
	if len(old) != 1 || old[0]["status"] != "die" || old[0]["id"] != "c1" || old[0]["from"] != "busybox" {
		t.Errorf("API 1.41, filtered to die: %v", old)
	}

	resp, err := http.Get(srv.URL + "/events?since=20&until=10")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("since after until: %s, want 400", resp.Status)
	}
	resp, err = http.Get(srv.URL + `/events?filters={"colour":["red"]}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown filter: %s, want 400", resp.Status)
	}
}

// TestEventsLive: a stream without until sees events emitted after it
// began, and none from before.
func TestEventsLive(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.emit("network", "create", "before", nil)
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The listener is registered before the headers are sent.
	s.emit("network", "create", "after", nil)
	var m eventtypes.Message
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Actor.ID != "after" {
		t.Errorf("first live event is %q, want the one emitted after the stream began", m.Actor.ID)
	}
	if s.journal.count() != 1 {
		t.Errorf("%d listeners, want 1", s.journal.count())
	}
}
