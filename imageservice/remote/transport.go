package remote

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Timeouts of the shared transports. There is deliberately no overall
// request timeout: a layer body can take minutes. A stalled pull is ended by
// the caller's context.
const (
	dialTimeout           = 30 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	idleConnTimeout       = 90 * time.Second
	// Layers are fetched concurrently from one or two hosts (the registry
	// and the CDN it redirects blobs to).
	maxIdleConnsPerHost = 16
)

// newTransport returns the tuned transport of one TLS mode. Every endpoint
// of a Resolver with that mode shares it, so connections are reused across
// pulls. Plain-HTTP endpoints use the verifying transport: TLS does not
// apply to them.
func newTransport(skipVerify bool) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// A custom TLSClientConfig turns HTTP/2 off unless asked for.
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}, //nolint:gosec // only for hosts listed in Config.Insecure
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
	}
}
