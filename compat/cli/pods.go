package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/opts"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/compat/berthapi"
)

const (
	defaultPodsTableFormat = "table {{.ID}}\t{{.Name}}\t{{.Namespace}}\t{{.Origin}}\t{{.State}}\t{{.IPs}}\t{{.Containers}}\t{{.CreatedSince}}"
	defaultPodsQuietFormat = "{{.ID}}"
)

// podsOptions are the flags of `berth pods` and `berth ps --pods`.
type podsOptions struct {
	quiet   bool
	noTrunc bool
	format  string
	filter  client.Filters
}

// newPodsCommand is `berth pods`: the pod sandboxes of both doors, the
// kubelet's and the ones under docker containers, from the one store.
func newPodsCommand(dockerCli command.Cli) *cobra.Command {
	var o podsOptions
	filter := opts.NewFilterOpt()
	cmd := &cobra.Command{
		Use:   "pods [OPTIONS]",
		Short: "List pod sandboxes of both doors, CRI and docker",
		Long: "List the pod sandboxes of both of berthd's doors: the pods the kubelet (CRI) runs,\n" +
			"and the sandbox under every container of the Engine API. Same as \"berth ps --pods\".",
		Example: "berth pods\nberth pods --filter origin=cri --filter namespace=kube-system\nberth pods --format '{{.Name}} {{.IPs}}'",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.filter = filter.Value()
			return runPods(cmd.Context(), dockerCli, o)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	flags := cmd.Flags()
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Only display pod IDs")
	flags.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	flags.StringVar(&o.format, "format", "", "Format output using a custom template:\n"+
		"'table':            Print output in table format with column headers (default)\n"+
		"'table TEMPLATE':   Print output in table format using the given Go template\n"+
		"'json':             Print in JSON format\n"+
		"'TEMPLATE':         Print output using the given Go template.\n"+
		"Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	flags.VarP(&filter, "filter", "f", "Filter output based on conditions provided (id, name, namespace, origin=cri|docker, state=ready|notready, label)")
	return cmd
}

// addPsPods gives `berth ps` and `berth container ls` a --pods flag that
// lists pods instead, with ps's own -q, --no-trunc, --format and --filter.
func addPsPods(root *cobra.Command, dockerCli command.Cli) {
	for _, path := range [][]string{{"ps"}, {"container", "ls"}} {
		c, _, err := root.Find(path)
		if err != nil || c == root || c.RunE == nil {
			continue
		}
		var pods bool
		c.Flags().BoolVar(&pods, "pods", false, "List pod sandboxes instead (berth pods)")
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if !pods {
				return run(cmd, args)
			}
			var o podsOptions
			flags := cmd.Flags()
			o.quiet, _ = flags.GetBool("quiet")
			o.noTrunc, _ = flags.GetBool("no-trunc")
			o.format, _ = flags.GetString("format")
			if f := flags.Lookup("filter"); f != nil {
				if fo, ok := f.Value.(*opts.FilterOpt); ok {
					o.filter = fo.Value()
				}
			}
			return runPods(cmd.Context(), dockerCli, o)
		}
	}
}

func runPods(ctx context.Context, dockerCli command.Cli, o podsOptions) error {
	pods, err := listPods(ctx, dockerCli.Client(), o.filter)
	if err != nil {
		return err
	}
	format := o.format
	if format == "" || format == formatter.TableFormatKey {
		format = defaultPodsTableFormat
		if o.quiet {
			format = defaultPodsQuietFormat
		}
	} else if o.quiet {
		fmt.Fprintln(dockerCli.Err(), "WARNING: Ignoring custom format, because both --format and --quiet are set.")
		format = defaultPodsQuietFormat
	}
	return writePods(formatter.Context{Output: dockerCli.Out(), Format: formatter.Format(format), Trunc: !o.noTrunc}, pods)
}

// podsAPI is what listPods needs of the Engine API client: its dialer,
// which already speaks the host's transport (unix socket, TCP with TLS,
// SSH), so the extension endpoint goes where every other request goes.
type podsAPI interface {
	Dialer() func(context.Context) (net.Conn, error)
	DaemonHost() string
}

// listPods asks berthd's pods endpoint (berthapi.PodsPath).
func listPods(ctx context.Context, apiClient client.APIClient, filter client.Filters) ([]berthapi.Pod, error) {
	api, ok := apiClient.(podsAPI)
	if !ok {
		return nil, errors.New("berth pods: the API client cannot make berth's own requests")
	}
	dial := api.Dialer()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}
	defer hc.CloseIdleConnections()
	q := url.Values{}
	if len(filter) > 0 {
		b, err := json.Marshal(filter)
		if err != nil {
			return nil, err
		}
		q.Set("filters", string(b))
	}
	u := url.URL{Scheme: "http", Host: client.DummyHost, Path: berthapi.PodsPath, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", command.UserAgent())
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("berth pods: cannot reach the engine at %s: %w", api.DaemonHost(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("berth pods: the engine at %s does not serve GET %s: it is not a berthd, or a berthd without the pods endpoint", api.DaemonHost(), berthapi.PodsPath)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("Error response from daemon: %s", e.Message)
		}
		return nil, fmt.Errorf("Error response from daemon: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var pods []berthapi.Pod
	if err := json.Unmarshal(body, &pods); err != nil {
		return nil, fmt.Errorf("berth pods: malformed reply from %s: %w", api.DaemonHost(), err)
	}
	return pods, nil
}

// writePods renders pods with docker's formatter, so --format takes the
// same templates (table, json, Go templates) as every docker list.
func writePods(ctx formatter.Context, pods []berthapi.Pod) error {
	render := func(format func(formatter.SubContext) error) error {
		for _, p := range pods {
			if err := format(&podContext{p: p, trunc: ctx.Trunc}); err != nil {
				return err
			}
		}
		return nil
	}
	pc := &podContext{}
	pc.Header = formatter.SubHeaderContext{
		"ID":             "POD ID",
		"Name":           "NAME",
		"Namespace":      "NAMESPACE",
		"Uid":            "UID",
		"Attempt":        "ATTEMPT",
		"Origin":         "ORIGIN",
		"State":          "STATE",
		"Network":        "NETWORK",
		"IPs":            "IP",
		"Containers":     "CONTAINERS",
		"CreatedAt":      "CREATED AT",
		"CreatedSince":   "CREATED",
		"RuntimeHandler": "RUNTIME",
		"Labels":         "LABELS",
	}
	return ctx.Write(pc, render)
}

// podContext is one pod's row: the fields --format templates can name.
type podContext struct {
	formatter.HeaderContext
	p     berthapi.Pod
	trunc bool
}

// MarshalJSON is the pod as --format json prints it.
func (c *podContext) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(c) }

func (c *podContext) ID() string {
	if c.trunc && len(c.p.ID) > 12 {
		return c.p.ID[:12]
	}
	return c.p.ID
}

func (c *podContext) Name() string      { return c.p.Name }
func (c *podContext) Namespace() string { return c.p.Namespace }
func (c *podContext) Uid() string       { return c.p.UID } //nolint:revive // the template name docker users expect
func (c *podContext) Attempt() string   { return fmt.Sprint(c.p.Attempt) }
func (c *podContext) Origin() string    { return c.p.Origin }
func (c *podContext) State() string     { return c.p.State }
func (c *podContext) Network() string   { return c.p.Network }
func (c *podContext) IPs() string       { return strings.Join(c.p.IPs, ",") }

func (c *podContext) RuntimeHandler() string { return c.p.RuntimeHandler }

// Containers is the number of the pod's containers.
func (c *podContext) Containers() string { return fmt.Sprint(len(c.p.Containers)) }

func (c *podContext) CreatedAt() string {
	return c.p.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
}

func (c *podContext) CreatedSince() string {
	if c.p.Created.IsZero() {
		return ""
	}
	return units.HumanDuration(time.Since(c.p.Created)) + " ago"
}

// Labels is key=value pairs, sorted, comma-separated.
func (c *podContext) Labels() string {
	pairs := make([]string, 0, len(c.p.Labels))
	for k, v := range c.p.Labels {
		pairs = append(pairs, k+"="+v)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// Label is one label's value.
func (c *podContext) Label(name string) string { return c.p.Labels[name] }
