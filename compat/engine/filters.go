package engine

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// filters are the `filters` query parameter of the list, prune and events
// calls: each key has values, any of which may match.
type filters map[string][]string

// parseFilters reads `filters` in both of docker's forms,
// {"key":{"value":true}} and the older {"key":["value"]}, and refuses keys
// not in allowed with docker's message.
func parseFilters(r *http.Request, allowed ...string) (filters, error) {
	raw := r.URL.Query().Get("filters")
	f := filters{}
	if raw == "" {
		return f, nil
	}
	var byMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &byMap); err == nil {
		for k, vals := range byMap {
			for v, on := range vals {
				if on {
					f[k] = append(f[k], v)
				}
			}
			slices.Sort(f[k])
		}
	} else {
		var byList map[string][]string
		if err := json.Unmarshal([]byte(raw), &byList); err != nil {
			return nil, errorf(errdefs.ErrInvalidArgument, "invalid filter: %v", err)
		}
		f = byList
	}
	for k := range f {
		if !slices.Contains(allowed, k) {
			return nil, errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", k)
		}
	}
	return f, nil
}

// Has reports whether key was given.
func (f filters) Has(key string) bool { return len(f[key]) > 0 }

// Match reports whether value is one of key's values (true when key was
// not given).
func (f filters) Match(key, value string) bool {
	return !f.Has(key) || slices.Contains(f[key], value)
}

// MatchLabels reports whether labels match every `label` (or other key's)
// value: "k" needs the label, "k=v" its value; `label!` inverts.
func (f filters) MatchLabels(key string, labels map[string]string) bool {
	for _, want := range f[key] {
		k, v, hasValue := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	for _, not := range f[key+"!"] {
		k, v, hasValue := strings.Cut(not, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == v) {
			return false
		}
	}
	return true
}
