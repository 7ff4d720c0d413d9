package cri

import (
	"context"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/events"
	"github.com/berth-runtime/berth/runtime"
	"github.com/berth-runtime/berth/store"
)

var eventTypes = map[events.Kind]runtimeapi.ContainerEventType{
	events.Created: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	events.Started: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	events.Stopped: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	events.Deleted: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams container and sandbox life-cycle events (the
// kubelet's evented PLEG) in the order they happened, each with the pod's
// status and its containers' statuses as they are when the first subscriber
// reaches the event (the response is built once and shared). A
// subscriber too slow to keep up is cut off with an error rather than
// silently losing events, so it relists.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	sub := s.events.Subscribe()
	defer sub.Close()
	// Headers now, not with the first event: a client that waits for them
	// knows it will see every event from here on.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		evs, err := sub.Next(ctx.Done())
		if err != nil {
			return err
		}
		if evs == nil {
			return ctx.Err()
		}
		for _, e := range evs {
			if e.Origin != string(store.OriginCRI) {
				continue // the kubelet must not see (and kill) docker's
			}
			if err := stream.Send(s.eventResponses.get(e.Seq, func() *runtimeapi.ContainerEventResponse {
				return s.eventResponse(ctx, e)
			})); err != nil {
				return err
			}
		}
	}
}

func (s *Server) eventResponse(ctx context.Context, e events.Event) *runtimeapi.ContainerEventResponse {
	resp := &runtimeapi.ContainerEventResponse{
		ContainerId:        e.ID,
		ContainerEventType: eventTypes[e.Kind],
		CreatedAt:          e.Time.UnixNano(),
	}
	sb, err := s.sandboxes.Get(ctx, e.SandboxID)
	if err != nil {
		// Removed meanwhile: the event alone.
		return resp
	}
	resp.PodSandboxStatus = toSandboxStatus(sb)
	cs, err := s.containers.Match(ctx, runtime.ContainerFilter{SandboxIDPrefix: sb.ID})
	if err != nil {
		return resp
	}
	for _, c := range cs {
		resp.ContainersStatuses = append(resp.ContainersStatuses, s.toContainerStatus(ctx, c))
	}
	return resp
}

// eventResponses shares each event's response between subscribers: the
// statuses are looked up once per event, not once per stream. It keeps
// the last eventCacheSize responses; all subscribers read events in the
// same order at about the same time, so they find each other's.
type eventResponses struct {
	mu    sync.Mutex
	resp  map[uint64]*runtimeapi.ContainerEventResponse
	order []uint64
}

const eventCacheSize = 1024

// get returns the response for event seq, building it if no subscriber
// has. Built responses are only read (marshalled) afterwards.
func (c *eventResponses) get(seq uint64, build func() *runtimeapi.ContainerEventResponse) *runtimeapi.ContainerEventResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.resp[seq]; ok {
		return r
	}
	if c.resp == nil {
		c.resp = map[uint64]*runtimeapi.ContainerEventResponse{}
	}
	r := build()
	c.resp[seq] = r
	c.order = append(c.order, seq)
	if len(c.order) > eventCacheSize {
		delete(c.resp, c.order[0])
		c.order = c.order[1:]
	}
	return r
}
