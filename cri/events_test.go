package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestEventResponsesBuiltOncePerEvent(t *testing.T) {
	var c eventResponses
	builds := 0
	build := func() *runtimeapi.ContainerEventResponse {
		builds++
		return &runtimeapi.ContainerEventResponse{ContainerId: "x"}
	}
	for sub := 0; sub < 3; sub++ {
		if r := c.get(7, build); r.ContainerId != "x" {
			t.Fatalf("subscriber %d got %v", sub, r)
		}
	}
	if builds != 1 {
		t.Errorf("built %d times for 3 subscribers", builds)
	}
	for seq := uint64(100); seq < 100+eventCacheSize+10; seq++ {
		c.get(seq, build)
	}
	if len(c.resp) != eventCacheSize || len(c.order) != eventCacheSize {
		t.Errorf("cache holds %d/%d entries, want %d", len(c.resp), len(c.order), eventCacheSize)
	}
}
