// Package berthapi holds berth's own extensions to the Docker Engine API:
// what berthd serves beyond docker's endpoints, because one store holds
// both doors' objects and docker's API has no word for a pod. The server
// (compat/engine) writes these types and the berth CLI (compat/cli) reads
// them, so the two sides share one definition.
package berthapi

import "time"

// PodsPath lists the pod sandboxes of both doors: GET, with or without
// docker's /v1.xx version prefix. Query: filters, docker's JSON filter map
// ({"origin":{"cri":true}}), keys id (prefix), name, namespace, origin
// ("cri" or "docker"), state ("ready" or "notready") and label (key or
// key=value). An unknown key is docker's 400 "invalid filter 'KEY'". The
// reply is a JSON array of Pod, newest first, with 200.
const PodsPath = "/berth/pods/json"

// Origins and states of a Pod.
const (
	OriginCRI    = "cri"
	OriginDocker = "docker"

	StateReady    = "ready"
	StateNotReady = "notready"
)

// Pod is one pod sandbox as the pods endpoint reports it: the CRI's
// PodSandbox seen from the docker side, or the sandbox under one docker
// container.
type Pod struct {
	// ID is the sandbox's ID (64 hex).
	ID string `json:"Id"`
	// Name is the CRI pod's metadata name; for a docker container's
	// sandbox, the container's name without the leading "/".
	Name      string
	Namespace string `json:",omitempty"`
	UID       string `json:"Uid,omitempty"`
	Attempt   uint32 `json:",omitempty"`
	// Origin is the door that made it: OriginCRI or OriginDocker.
	Origin string
	// State is StateReady or StateNotReady, the CRI's words.
	State   string
	Created time.Time
	Labels  map[string]string `json:",omitempty"`
	// Network is the docker network the pod was made on, "host" for the
	// host's network, "none" without one, or empty for the default pod
	// network.
	Network string   `json:",omitempty"`
	IPs     []string `json:",omitempty"`
	// RuntimeHandler is the CRI runtime handler (runtime class); empty
	// for the default.
	RuntimeHandler string `json:",omitempty"`
	// Containers are the pod's containers, of either door.
	Containers []PodContainer
}

// PodContainer is one container of a Pod.
type PodContainer struct {
	ID string `json:"Id"`
	// Name is the docker name without "/" for a docker container, the
	// CRI container's metadata name otherwise.
	Name  string
	Image string
	// State is docker's word: created, running, paused, restarting,
	// exited or dead.
	State string
}
