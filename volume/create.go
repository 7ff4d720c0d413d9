package volume

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idgen"
	"github.com/berth-runtime/berth/store"
)

// CreateRequest asks for a volume.
type CreateRequest struct {
	// Name is the volume's name; empty: a generated 64-hex name (an
	// anonymous volume's).
	Name string
	// Driver is "local" or empty (the same).
	Driver string
	Labels map[string]string
	// Options are the local driver's: type, device and o (see
	// store.Volume.Options).
	Options map[string]string
	// Anonymous marks a volume made for one container's unnamed mount;
	// it gets docker's LabelAnonymous.
	Anonymous bool
}

// validName is docker's rule for local volume names (RestrictedNameChars).
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// opError is docker's "OP NAME: reason" wrapping a sentinel.
type opError struct {
	op, name string
	err      error
}

func (e *opError) Error() string { return fmt.Sprintf("%s %s: %v", e.op, e.name, e.err) }
func (e *opError) Unwrap() error { return e.err }

// Create makes a volume, or returns the existing one of that name as
// docker does (unless it has another driver).
func (m *Manager) Create(ctx context.Context, req CreateRequest) (store.Volume, error) {
	name := req.Name
	if name == "" {
		name = idgen.New()
	}
	driver := req.Driver
	if driver == "" {
		driver = DriverLocal
	}
	if err := validate(name, driver, req.Options); err != nil {
		return store.Volume{}, &opError{op: "create", name: name, err: err}
	}
	if existing, err := m.Get(ctx, name); err == nil {
		return existing, nil
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return store.Volume{}, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	v := store.Volume{
		Name: name, Driver: driver, Labels: maps.Clone(req.Labels), Options: maps.Clone(req.Options),
		Anonymous: req.Anonymous, CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	if req.Anonymous {
		if v.Labels == nil {
			v.Labels = map[string]string{}
		}
		v.Labels[LabelAnonymous] = ""
	}
	// The directory first: a crash before the commit leaves an empty
	// directory without a record, which New sweeps.
	if err := os.MkdirAll(m.Mountpoint(v), 0o755); err != nil {
		return store.Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	var created store.Volume
	err := m.db.Update(func(tx *store.Tx) error {
		if old, err := get(tx, name); err == nil {
			// Made meanwhile by another request: theirs stands.
			created = old
			return nil
		}
		created = v
		return store.Put(tx, store.Volumes, name, v)
	})
	if err != nil {
		return store.Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	m.log.Debug("created volume", "volume", name, "anonymous", req.Anonymous)
	return created, nil
}

// validate checks a create request as docker's local driver does, with
// its messages.
func validate(name, driver string, opts map[string]string) error {
	if driver != DriverLocal {
		// docker's words for a driver plugin it does not have.
		return &missingDriver{driver}
	}
	if len(name) == 1 {
		return &invalid{"volume name is too short, names should be at least two alphanumeric characters"}
	}
	if !validName.MatchString(name) {
		return &invalid{fmt.Sprintf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, "[a-zA-Z0-9][a-zA-Z0-9_.-]")}
	}
	for k := range opts {
		switch k {
		case "type", "device", "o":
		default:
			return &invalid{fmt.Sprintf("invalid option: %q", k)}
		}
	}
	if len(opts) == 0 {
		return nil
	}
	// docker's mandatory options: each of these needs the others.
	for _, need := range [][2]string{{"device", "type"}, {"type", "device"}, {"o", "device"}, {"o", "type"}} {
		if _, ok := opts[need[0]]; ok {
			if _, ok := opts[need[1]]; !ok {
				return &invalid{fmt.Sprintf("missing required option: %q", need[1])}
			}
		}
	}
	if _, _, err := parseMountOptions(opts["o"]); err != nil {
		return err
	}
	return nil
}

// invalid is a bad request whose text is docker's exact message.
type invalid struct{ msg string }

func (e *invalid) Error() string { return e.msg }
func (e *invalid) Unwrap() error { return errdefs.ErrInvalidArgument }

// missingDriver is docker's error for a volume driver it has no plugin of.
type missingDriver struct{ name string }

func (e *missingDriver) Error() string {
	return fmt.Sprintf("error looking up volume plugin %s: plugin %q not found", e.name, e.name)
}
func (e *missingDriver) Unwrap() error { return errdefs.ErrNotFound }
