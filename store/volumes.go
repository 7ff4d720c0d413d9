package store

import "time"

// Volume is a named volume of the docker door (its "local" driver): a
// directory under <root>/volumes/NAME/_data, or, with Options naming a
// type and device, a file system mounted there while containers use it.
type Volume struct {
	Name string `json:"name"`
	// Driver is "local", the only one berth has.
	Driver string            `json:"driver"`
	Labels map[string]string `json:"labels,omitempty"`
	// Options are the driver's: "type", "device" and "o", as mount(8)
	// takes them (type=tmpfs device=tmpfs o=size=64m; type=none
	// device=/srv o=bind).
	Options map[string]string `json:"options,omitempty"`
	// Anonymous volumes were made for a container that named only a
	// destination; prune removes them by default (docker 23+).
	Anonymous bool      `json:"anonymous,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}
