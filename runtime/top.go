package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Pids lists the processes of a running container (its init, what it
// started and what was exec'd in it), as the host numbers them, from the
// OCI runtime's `ps` (the container's cgroup). docker top keeps the host's
// ps rows of these pids.
func (m *Manager) Pids(ctx context.Context, id string) ([]int, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if StateOf(c) != Running {
		return nil, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	rt, err := m.ociRuntime(c.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	call, err := rt.CLI().Command(ctx, "ps", "--format", "json", c.ID)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	call.Cmd.Stdout = &out
	if err := call.Run(); err != nil {
		return nil, fmt.Errorf("listing the processes of %s: %w", c.ID, err)
	}
	var pids []int
	if err := json.Unmarshal(out.Bytes(), &pids); err != nil {
		return nil, fmt.Errorf("listing the processes of %s: %w", c.ID, err)
	}
	return pids, nil
}

// TopResult is the host's ps output for a container's processes: the
// column titles and a row per process (a thread's rows follow their
// process's with "-" as pid, with ps's m option).
type TopResult struct {
	Titles    []string
	Processes [][]string
}

// Top runs the host's ps with psArgs (docker's default "-ef") and keeps
// the rows of the container's processes, as docker top does. Arguments
// that rename the PID column ("pid=PID" is the only one allowed) are
// refused with errdefs.ErrInvalidArgument.
func (m *Manager) Top(ctx context.Context, id, psArgs string) (TopResult, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := validatePSArgs(psArgs); err != nil {
		return TopResult{}, err
	}
	pids, err := m.Pids(ctx, id)
	if err != nil {
		return TopResult{}, err
	}
	args := strings.Split(psArgs, " ")
	q := make([]string, len(pids))
	for i, p := range pids {
		q[i] = strconv.Itoa(p)
	}
	out, err := exec.CommandContext(ctx, "ps", append(args, "-q", strings.Join(q, ","))...).Output()
	if err != nil {
		// Some ps options (f) cannot be combined with q: the whole list.
		out, err = exec.CommandContext(ctx, "ps", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if line, _, _ := bytes.Cut(ee.Stderr, []byte("\n")); len(line) > 0 {
					err = errors.New(string(line))
				}
			}
			return TopResult{}, fmt.Errorf("ps: %w", err)
		}
	}
	return ParsePS(out, pids)
}

var psPidRename = regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)

// validatePSArgs refuses ps arguments that would call another column
// "PID" (docker's check).
func validatePSArgs(psArgs string) error {
	for _, group := range psPidRename.FindAllStringSubmatch(psArgs, -1) {
		if len(group) >= 3 && group[1] != "pid" {
			return fmt.Errorf("specifying \"%s=%s\" is not allowed: %w", group[1], group[2], errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// ParsePS keeps the rows of ps output whose PID column is one of pids
// (and the thread rows after them), with the last column holding the
// rest of the line (the command and its arguments).
func ParsePS(output []byte, pids []int) (TopResult, error) {
	lines := strings.Split(string(output), "\n")
	res := TopResult{Titles: strings.Fields(lines[0]), Processes: [][]string{}}
	pidIndex := slices.Index(res.Titles, "PID")
	if pidIndex < 0 {
		return res, fmt.Errorf("Couldn't find PID field in ps output")
	}
	row := func(fields []string) []string {
		n := len(res.Titles)
		if len(fields) < n {
			return fields
		}
		return append(fields[:n-1:n-1], strings.Join(fields[n-1:], " "))
	}
	inContainer := false
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) <= pidIndex {
			continue
		}
		if fields[pidIndex] == "-" {
			if inContainer {
				res.Processes = append(res.Processes, row(fields))
			}
			continue
		}
		p, err := strconv.Atoi(fields[pidIndex])
		if err != nil {
			return res, fmt.Errorf("Unexpected pid '%s': %s", fields[pidIndex], err)
		}
		inContainer = slices.Contains(pids, p)
		if inContainer {
			res.Processes = append(res.Processes, row(fields))
		}
	}
	return res, nil
}
