package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/store"
)

func (s *Server) eventRoutes() {
	s.route("GET", "/events", s.getEvents)
}

// emit records a docker event that the services' own events do not
// carry (image tag/untag/pull/delete, volume and network create/destroy,
// connect/disconnect, container rename/pause/kill/health_status...): typ is
// docker's event Type ("container", "image", "volume", "network"), action
// its Action, id the object's ID (or name), attrs its Actor.Attributes
// (name, image, exitCode, ...). /events streams them with the container
// life-cycle events the bus carries.
func (s *Server) emit(typ, action, id string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	s.journal.add(eventtypes.Message{
		Type: eventtypes.Type(typ), Action: eventtypes.Action(action),
		Actor: eventtypes.Actor{ID: id, Attributes: attrs}, Scope: "local",
	})
}

// containerAttributes are the Actor.Attributes docker gives a container's
// events: its labels, then its image and name (which win over labels of
// the same key), then extra (exitCode...).
func containerAttributes(name, image string, labels, extra map[string]string) map[string]string {
	attrs := maps.Clone(labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	maps.Copy(attrs, extra)
	if image != "" {
		attrs["image"] = image
	}
	attrs["name"] = strings.TrimPrefix(name, "/")
	return attrs
}

// emitContainer emits a container event with docker's attributes taken
// from the container's record.
func (s *Server) emitContainer(c store.Container, action string, extra map[string]string) {
	s.emit("container", action, c.ID, containerAttributes(s.eventName(c.Origin, c.Key, c.Name, c.SandboxID, c.Attempt), c.Image, c.Labels, extra))
}

// fromBus turns the services' container life-cycle events (both doors'
// containers) into docker's: created → create, started → start,
// stopped → die (with exitCode), deleted → destroy. Sandboxes have no
// docker events of their own. It runs as the bus's tap, in the bus's
// order.
func (s *Server) fromBus(e events.Event) {
	if e.Sandbox {
		return
	}
	var action string
	var extra map[string]string
	switch e.Kind {
	case events.Created:
		action = "create"
	case events.Started:
		action = "start"
	case events.Stopped:
		action = "die"
		extra = map[string]string{"exitCode": strconv.Itoa(int(e.ExitCode))}
	case events.Deleted:
		action = "destroy"
	default:
		return
	}
	name := s.eventName(store.Origin(e.Origin), e.Key, e.Name, e.SandboxID, e.Attempt)
	s.journal.add(eventtypes.Message{
		Type: eventtypes.ContainerEventType, Action: eventtypes.Action(action),
		Actor: eventtypes.Actor{ID: e.ID, Attributes: containerAttributes(name, e.Image, e.Labels, extra)},
		Scope: "local", TimeNano: e.Time.UnixNano(),
	})
}

// eventName is the name docker shows for a container: the docker name
// of the docker side's, dockershim's k8s_<name>_<pod>_<namespace>_<uid>_<attempt>
// of the CRI's (the bare metadata name if its pod is gone already).
func (s *Server) eventName(origin store.Origin, key, name, sandboxID string, attempt uint32) string {
	if origin == store.OriginDocker {
		return key
	}
	if s.pods == nil {
		return name
	}
	sb, err := s.pods.Get(context.Background(), sandboxID)
	if err != nil {
		return name
	}
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", name, sb.Name, sb.Namespace, sb.UID, attempt)
}

// journalSize is how many past events /events can replay (docker keeps
// 256).
const journalSize = 1000

// listenerQueue is how far a /events client may fall behind before its
// stream is ended.
const listenerQueue = 4096

// journal keeps the recent events and fans new ones out to the /events
// streams, all in one order.
type journal struct {
	mu        sync.Mutex
	ring      []eventtypes.Message // oldest first, at most journalSize
	listeners map[*listener]struct{}
}

type listener struct {
	match func(eventtypes.Message) bool
	ch    chan eventtypes.Message
	// lagged is closed when the listener fell listenerQueue behind.
	lagged chan struct{}
}

func newJournal() *journal { return &journal{listeners: map[*listener]struct{}{}} }

// add stamps m (Time, TimeNano; the caller's TimeNano if set), keeps
// it, and hands it to every listener whose filter takes it.
func (j *journal) add(m eventtypes.Message) {
	if m.TimeNano == 0 {
		m.TimeNano = time.Now().UnixNano()
	}
	m.Time = m.TimeNano / int64(time.Second)
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.ring) == journalSize {
		copy(j.ring, j.ring[1:])
		j.ring = j.ring[:journalSize-1]
	}
	j.ring = append(j.ring, m)
	for l := range j.listeners {
		if !l.match(m) {
			continue
		}
		select {
		case l.ch <- m:
		default:
			delete(j.listeners, l)
			close(l.lagged)
		}
	}
}

// subscribe returns the kept events between since and until (docker
// replays none when neither is given) that match, and a listener for the
// ones to come.
func (j *journal) subscribe(since, until time.Time, match func(eventtypes.Message) bool) ([]eventtypes.Message, *listener) {
	l := &listener{match: match, ch: make(chan eventtypes.Message, listenerQueue), lagged: make(chan struct{})}
	j.mu.Lock()
	defer j.mu.Unlock()
	var past []eventtypes.Message
	if !since.IsZero() || !until.IsZero() {
		for _, m := range j.ring {
			if !since.IsZero() && m.TimeNano < since.UnixNano() || !until.IsZero() && m.TimeNano > until.UnixNano() {
				continue
			}
			if match(m) {
				past = append(past, m)
			}
		}
	}
	j.listeners[l] = struct{}{}
	return past, l
}

func (j *journal) unsubscribe(l *listener) {
	j.mu.Lock()
	delete(j.listeners, l)
	j.mu.Unlock()
}

// count is the number of /events streams (Info's NEventsListener).
func (j *journal) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.listeners)
}

// legacyMessage is an event as API versions before 1.52 send it: with
// the pre-1.10 status, id and from of container and image events.
type legacyMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	eventtypes.Message
}

func wireEvent(r *http.Request, m eventtypes.Message) any {
	if !versionBefore(r, "1.52") || m.Type != eventtypes.ContainerEventType && m.Type != eventtypes.ImageEventType {
		return m
	}
	return legacyMessage{Status: string(m.Action), ID: m.Actor.ID, From: m.Actor.Attributes["image"], Message: m}
}

// getEvents streams events: the kept ones between since and until, then
// new ones until `until` passes or the client leaves, all passing the
// filters.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	q := r.URL.Query()
	since, err := eventTime(q.Get("since"), now)
	if err != nil {
		return err
	}
	until, err := eventTime(q.Get("until"), now)
	if err != nil {
		return err
	}
	if !until.IsZero() && until.Before(since) {
		return errorf(errdefs.ErrInvalidArgument, "`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	f, err := parseFilters(r, eventFilterKeys...)
	if err != nil {
		return err
	}
	past, l := s.journal.subscribe(since, until, func(m eventtypes.Message) bool { return eventMatches(f, m) })
	defer s.journal.unsubscribe(l)

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	fw.rc.Flush()
	enc := json.NewEncoder(fw)
	for _, m := range past {
		if err := enc.Encode(wireEvent(r, m)); err != nil {
			return nil
		}
	}
	var timeout <-chan time.Time
	if !until.IsZero() {
		if until.Before(now) {
			return nil
		}
		t := time.NewTimer(until.Sub(now))
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case m := <-l.ch:
			if err := enc.Encode(wireEvent(r, m)); err != nil {
				return nil
			}
		case <-l.lagged:
			return nil
		case <-timeout:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

// eventFilterKeys are the filters /events knows (docker's daemon/events
// filter).
var eventFilterKeys = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

// eventMatches is docker's event filter: every given key must match.
// container/volume/network/daemon match the actor's ID or name by
// prefix; image the ID or the image (name of an image event) with or
// without its tag; event the action exactly (health_status, exec_create
// and exec_start by prefix, as their actions carry a suffix).
func eventMatches(f filters, m eventtypes.Message) bool {
	action := string(m.Action)
	matchEvent := exactMatch(f, "event", action)
	for _, v := range f["event"] {
		if v == "health_status" || v == "exec_create" || v == "exec_start" {
			matchEvent = fuzzyMatch(f, "event", action)
			break
		}
	}
	return matchEvent &&
		exactMatch(f, "type", string(m.Type)) &&
		exactMatch(f, "scope", m.Scope) &&
		matchActor(f, m, eventtypes.DaemonEventType) &&
		matchActor(f, m, eventtypes.ContainerEventType) &&
		matchActor(f, m, eventtypes.PluginEventType) &&
		matchActor(f, m, eventtypes.VolumeEventType) &&
		matchActor(f, m, eventtypes.NetworkEventType) &&
		matchImage(f, m) &&
		matchActor(f, m, eventtypes.NodeEventType) &&
		matchActor(f, m, eventtypes.ServiceEventType) &&
		matchActor(f, m, eventtypes.SecretEventType) &&
		matchActor(f, m, eventtypes.ConfigEventType) &&
		f.MatchLabels("label", m.Actor.Attributes)
}

// matchActor: the filter named after the event type (container=x) takes
// events whose actor's ID or name starts with x. Like docker, it filters
// events of every type by that key (a container filter leaves only
// events whose actor matches).
func matchActor(f filters, m eventtypes.Message, typ eventtypes.Type) bool {
	return fuzzyMatch(f, string(typ), m.Actor.ID) || fuzzyMatch(f, string(typ), m.Actor.Attributes["name"])
}

func matchImage(f filters, m eventtypes.Message) bool {
	nameAttr := "image"
	if m.Type == eventtypes.ImageEventType {
		nameAttr = "name"
	}
	name := m.Actor.Attributes[nameAttr]
	id := m.Actor.ID
	return exactMatch(f, "image", id) || exactMatch(f, "image", name) ||
		exactMatch(f, "image", stripTag(id)) || exactMatch(f, "image", stripTag(name))
}

func stripTag(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarName(ref)
}

// exactMatch is true when key is not given or value is one of its values.
func exactMatch(f filters, key, value string) bool { return f.Match(key, value) }

// fuzzyMatch is exactMatch, or value starts with one of key's values.
func fuzzyMatch(f filters, key, value string) bool {
	if exactMatch(f, key, value) {
		return true
	}
	for _, prefix := range f[key] {
		if strings.HasPrefix(value, prefix) {
			return true
		}
	}
	return false
}

// eventTime reads since/until as docker's clients send them (the CLI
// turns its own input into unix seconds with a fraction) and as users
// type them (RFC 3339 with or without zone, date only, a duration back
// from now such as 10m). Empty is the zero time.
func eventTime(value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return now.Add(-d), nil
	}
	const (
		rfc3339Local     = "2006-01-02T15:04:05"
		rfc3339NanoLocal = "2006-01-02T15:04:05.999999999"
		dateWithZone     = "2006-01-02Z07:00"
		dateLocal        = "2006-01-02"
	)
	inLocation := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	var format string
	switch {
	case strings.Contains(value, "."):
		format = time.RFC3339Nano
		if inLocation {
			format = rfc3339NanoLocal
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !inLocation && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone offset's colon
		}
		formats := [3]string{"2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", time.RFC3339}
		if inLocation {
			formats = [3]string{"2006-01-02T15", "2006-01-02T15:04", rfc3339Local}
		}
		format = formats[min(colons, 2)]
	case inLocation:
		format = dateLocal
	default:
		format = dateWithZone
	}
	var t time.Time
	var err error
	if inLocation {
		t, err = time.ParseInLocation(format, value, now.Location())
	} else {
		t, err = time.Parse(format, value)
	}
	if err == nil {
		return t, nil
	}
	if strings.Contains(value, "-") {
		return time.Time{}, errorf(errdefs.ErrInvalidArgument, "invalid timestamp %q: %v", value, err)
	}
	sec, frac, hasFrac := strings.Cut(value, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errorf(errdefs.ErrInvalidArgument, "failed to parse value as time or duration: %q", value)
	}
	var nanos int64
	if hasFrac {
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || len(frac) > 9 {
			return time.Time{}, errorf(errdefs.ErrInvalidArgument, "failed to parse value as time or duration: %q", value)
		}
		nanos = int64(float64(n) * math.Pow10(9-len(frac)))
	}
	return time.Unix(secs, nanos), nil
}
