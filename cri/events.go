package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/events"
)

var eventTypes = map[events.Kind]runtimeapi.ContainerEventType{
	events.Created: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	events.Started: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	events.Stopped: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	events.Deleted: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams container and sandbox life-cycle events (the
// kubelet's evented PLEG) in the order they happened, each with the pod's
// status and its containers' statuses as they are when it is sent. A
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
			if err := stream.Send(s.eventResponse(ctx, e)); err != nil {
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
	if sb, err := s.sandboxes.Get(ctx, e.SandboxID); err == nil {
		resp.PodSandboxStatus = s.toSandboxStatus(ctx, sb)
	}
	cs, err := s.containers.List(ctx)
	if err != nil {
		return resp
	}
	for _, c := range cs {
		if c.SandboxID == e.SandboxID {
			resp.ContainersStatuses = append(resp.ContainersStatuses, s.toContainerStatus(c))
		}
	}
	return resp
}
