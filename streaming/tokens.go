package streaming

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// tokenTTL is how long an exec or attach URL stays valid: cri-streaming's
// own (unexported) cache TTL, one minute.
const tokenTTL = time.Minute

// tokens keeps berth's copy of the one-time tokens of exec and attach
// URLs. cri-streaming's cache is not reachable from outside, and the
// WebSocket v5 sessions it cannot serve are served by berth itself: every
// /exec/ and /attach/ request first consumes its token here, so a URL
// works once whichever side serves it. (A token used by berth's side stays
// in cri-streaming's cache, unreachable, until it expires.)
type tokens struct {
	mu  sync.Mutex
	m   map[string]pending
	now func() time.Time
}

type pending struct {
	req     any // *runtimeapi.ExecRequest or *runtimeapi.AttachRequest
	expires time.Time
}

func newTokens() *tokens {
	return &tokens{m: map[string]pending{}, now: time.Now}
}

// add records req under the token of rawURL, a URL cri-streaming made.
func (t *tokens) add(rawURL string, req any) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("streaming URL %q: %w", rawURL, err)
	}
	_, token, ok := sessionPath(u.Path)
	if !ok {
		return fmt.Errorf("streaming URL %q has no token", rawURL)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for k, p := range t.m {
		if now.After(p.expires) {
			delete(t.m, k)
		}
	}
	t.m[token] = pending{req: req, expires: now.Add(tokenTTL)}
	return nil
}

// consume removes the token and returns its request, if it was there and
// had not expired.
func (t *tokens) consume(token string) (any, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[token]
	if !ok {
		return nil, false
	}
	delete(t.m, token)
	if t.now().After(p.expires) {
		return nil, false
	}
	return p.req, true
}

// sessionPath splits an exec or attach URL path, /exec/{token} or
// /attach/{token} (trailing slashes aside), into its kind and token.
// ok is false for any other path.
func sessionPath(p string) (kind, token string, ok bool) {
	p = strings.Trim(path.Clean("/"+p), "/")
	kind, token, found := strings.Cut(p, "/")
	if !found || (kind != "exec" && kind != "attach") {
		return "", "", false
	}
	return kind, token, true
}
