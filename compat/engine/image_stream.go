package engine

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-runtime/berth/imageservice"
	"github.com/berth-runtime/berth/imageservice/remote"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// streamMessage is one line of docker's JSON progress stream. The
// `progress` bar text and the top-level `error` were dropped from the
// API types, but docker-py and docker-compose 1.29 still read them.
type streamMessage struct {
	jsonstream.Message
	ProgressMessage string `json:"progress,omitempty"`
	ErrorMessage    string `json:"error,omitempty"`
}

// progressStream writes a streamed reply (pull, push, load, import). The
// status line goes out with the first message, so an error that comes
// before any progress is still an HTTP error with docker's status.
type progressStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	fw      *flushWriter
	enc     *json.Encoder
	started bool
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	return &progressStream{w: w}
}

func (p *progressStream) send(m streamMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		p.fw = newFlushWriter(p.w)
		p.enc = json.NewEncoder(p.fw)
	}
	p.enc.Encode(m)
}

func (p *progressStream) status(id, status string) {
	p.send(streamMessage{Message: jsonstream.Message{ID: id, Status: status}})
}

// finish ends the stream with err: before the first message it is the
// handler's error (an HTTP status), after it a message with errorDetail,
// as docker sends it.
func (p *progressStream) finish(err error) error {
	if err == nil {
		return nil
	}
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if !started {
		return err
	}
	p.send(streamMessage{Message: jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}}, ErrorMessage: err.Error()})
	return nil
}

// progressBar is docker's text bar ("[=====>      ]  1.2MB/2.3MB") for the
// old clients that print the `progress` field.
func progressBar(current, total int64) string {
	if total <= 0 {
		return humanSize(current)
	}
	const width = 50
	n := int(float64(width) * float64(current) / float64(total))
	if n > width {
		n = width
	}
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, humanSize(current), humanSize(total))
}

// humanSize is docker's decimal size ("1.23MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

// registryAuth decodes X-Registry-Auth (base64url JSON of
// registry.AuthConfig, padded or not, standard alphabet tolerated as
// docker's own decoder does). An empty header is no credentials.
func registryAuth(r *http.Request) (*remote.Auth, error) {
	h := r.Header.Get(registry.AuthHeader)
	if h == "" {
		return nil, nil
	}
	cfg, err := decodeAuthConfig(h)
	if err != nil {
		return nil, err
	}
	a := &remote.Auth{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth, IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}
	if a.IsZero() {
		return nil, nil
	}
	return a, nil
}

func decodeAuthConfig(s string) (registry.AuthConfig, error) {
	var cfg registry.AuthConfig
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return cfg, errorf(errdefs.ErrInvalidArgument, "invalid X-Registry-Auth header: %v", err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, errorf(errdefs.ErrInvalidArgument, "invalid X-Registry-Auth header: %v", err)
	}
	return cfg, nil
}

// pullReporter turns the image service's pull progress into docker's
// lines: "<tag>: Pulling from <path>" once the manifest is known, then per
// layer "Pulling fs layer", "Downloading" with its byte counts, "Download
// complete" and "Pull complete" (berth unpacks a layer while it downloads,
// so there is no separate "Extracting" phase to report), or "Already
// exists". The lines before the first download are held: a pull that
// finds the image up to date shows none of them, as in docker.
type pullReporter struct {
	out     *progressStream
	tag     string // the id of the "Pulling from" line
	path    string
	mu      sync.Mutex
	started bool
	fetched bool
	pending []streamMessage
}

func (p *pullReporter) report(pr imageservice.Progress) {
	if pr.Layer == "" {
		return
	}
	id := shortDigest(pr.Layer.Encoded())
	p.mu.Lock()
	if !p.started {
		p.started = true
		p.out.status(p.tag, "Pulling from "+p.path)
	}
	if !p.fetched {
		switch pr.Status {
		case imageservice.StatusWaiting:
			p.pending = append(p.pending, streamMessage{Message: jsonstream.Message{ID: id, Status: "Pulling fs layer", Progress: &jsonstream.Progress{}}})
			p.mu.Unlock()
			return
		case imageservice.StatusExists:
			for i := range p.pending {
				if p.pending[i].ID == id {
					p.pending[i].Status = "Already exists"
				}
			}
			p.mu.Unlock()
			return
		}
		p.fetched = true
		p.flushLocked()
	}
	p.mu.Unlock()
	switch pr.Status {
	case imageservice.StatusDownloading:
		p.out.send(streamMessage{Message: jsonstream.Message{ID: id, Status: "Downloading",
			Progress: &jsonstream.Progress{Current: pr.Current, Total: pr.Total}}, ProgressMessage: progressBar(pr.Current, pr.Total)})
	case imageservice.StatusExists:
		p.out.send(streamMessage{Message: jsonstream.Message{ID: id, Status: "Already exists", Progress: &jsonstream.Progress{}}})
	case imageservice.StatusComplete:
		p.out.send(streamMessage{Message: jsonstream.Message{ID: id, Status: "Download complete", Progress: &jsonstream.Progress{}}})
		p.out.send(streamMessage{Message: jsonstream.Message{ID: id, Status: "Pull complete", Progress: &jsonstream.Progress{}}})
	}
}

// flush sends the held lines (a pull that fetched no layer but still
// changed the image, as a new manifest for known layers does).
func (p *pullReporter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
}

func (p *pullReporter) flushLocked() {
	for _, m := range p.pending {
		p.out.send(m)
	}
	p.pending = nil
}

func shortDigest(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}
