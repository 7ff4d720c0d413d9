package engine

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/sandbox/podfiles"
)

// Name resolution on user-defined networks, as podman's aardvark-dns
// does it: berthd answers DNS on each user network's gateway address
// (port 53, UDP and TCP), and the resolv.conf of a container on the
// network names that address (dnsFor). A query is answered from the
// running docker containers on that network only — by container name,
// short ID, network alias and compose service — so containers started or
// connected later resolve at once, and a network's names stay on it.
// Other names with a dot go to the host's resolvers; unknown single-label
// names are NXDOMAIN at once, as no resolver outside knows them.
//
// The sockets bind with IP_FREEBIND: the gateway address appears only
// when the first container joins (the bridge plugin adds it), and the
// server must be there before that container resolves anything.
// Internal networks have no gateway address on the host, so no server.

// dnsTTL is the TTL of the answers about containers (docker's 600 s).
const dnsTTL = 600

// composeServiceLabel names a compose service; its containers resolve by
// the service's name.
const composeServiceLabel = "com.docker.compose.service"

// dnsRegistry holds the running servers by cni network.
type dnsRegistry struct {
	mu      sync.Mutex
	ctx     context.Context
	servers map[string]*netDNS
	// upstream are the host's resolvers (host:port), searches and
	// options its resolv.conf's.
	upstream          []string
	searches, options []string
}

// netDNS is one network's server.
type netDNS struct {
	gateway  netip.Addr
	udp, tcp *dns.Server
}

// startNetworkDNS reads the host's resolvers and starts a server for
// every user network that has none yet; servers stop with ctx.
func (s *Server) startNetworkDNS(ctx context.Context) error {
	s.dns.mu.Lock()
	s.dns.ctx = ctx
	if conf, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, ns := range conf.Servers {
			s.dns.upstream = append(s.dns.upstream, net.JoinHostPort(ns, conf.Port))
		}
		s.dns.searches = conf.Search
	}
	s.dns.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.dns.mu.Lock()
		defer s.dns.mu.Unlock()
		for name, srv := range s.dns.servers {
			srv.shutdown()
			delete(s.dns.servers, name)
		}
	})
	if s.networks == nil {
		return nil
	}
	all, err := s.networks.ListNetworks(ctx)
	if err != nil {
		return err
	}
	for _, n := range all {
		s.startDNS(n)
	}
	return nil
}

// hasDNS reports whether berth runs a DNS server for n.
func hasDNS(n cni.Network) bool {
	return !n.Default && n.Name != bridgeNetwork && !n.Internal && n.Gateway.IsValid() && n.Gateway.Is4()
}

// startDNS starts n's server (if n gets one and it is not running). A
// failure is logged: the network works, without names.
func (s *Server) startDNS(n cni.Network) {
	if !hasDNS(n) {
		return
	}
	s.dns.mu.Lock()
	defer s.dns.mu.Unlock()
	if s.dns.ctx == nil || s.dns.ctx.Err() != nil {
		return
	}
	if _, ok := s.dns.servers[n.Name]; ok {
		return
	}
	if s.dns.servers == nil {
		s.dns.servers = map[string]*netDNS{}
	}
	addr := net.JoinHostPort(n.Gateway.String(), "53")
	lc := net.ListenConfig{Control: freebind}
	pc, err := lc.ListenPacket(s.dns.ctx, "udp4", addr)
	if err != nil {
		s.log.Warn("no DNS for a network: listening", "network", n.Name, "addr", addr, "error", err)
		return
	}
	l, err := lc.Listen(s.dns.ctx, "tcp4", addr)
	if err != nil {
		pc.Close()
		s.log.Warn("no DNS for a network: listening", "network", n.Name, "addr", addr, "error", err)
		return
	}
	h := &dnsHandler{network: n.Name, endpoints: s.endpoints, upstream: s.dnsUpstream, log: s.log}
	srv := &netDNS{
		gateway: n.Gateway,
		udp:     &dns.Server{PacketConn: pc, Handler: h},
		tcp:     &dns.Server{Listener: l, Handler: h},
	}
	for _, d := range []*dns.Server{srv.udp, srv.tcp} {
		go func() {
			if err := d.ActivateAndServe(); err != nil {
				s.log.Debug("network DNS stopped", "network", n.Name, "error", err)
			}
		}()
	}
	s.dns.servers[n.Name] = srv
	s.log.Debug("serving DNS", "network", n.Name, "addr", addr)
}

// stopDNS stops the server of cni network name, if it has one.
func (s *Server) stopDNS(name string) {
	s.dns.mu.Lock()
	defer s.dns.mu.Unlock()
	if srv, ok := s.dns.servers[name]; ok {
		srv.shutdown()
		delete(s.dns.servers, name)
	}
}

// dnsUpstream are the host's resolvers that queries are forwarded to.
func (s *Server) dnsUpstream() []string {
	s.dns.mu.Lock()
	defer s.dns.mu.Unlock()
	return slices.Clone(s.dns.upstream)
}

func (n *netDNS) shutdown() {
	n.udp.Shutdown()
	n.tcp.Shutdown()
}

// freebind lets a socket bind an address the host does not have yet.
func freebind(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// dnsFor is the resolver configuration of a container on the docker
// network ref (name or ID): berth's server on the network's gateway, with
// the host's search domains, for user-defined networks; nil (the host's
// resolv.conf, as docker gives the default bridge) for the others. The
// container door puts it in the sandbox's RunRequest.DNS.
func (s *Server) dnsFor(ref string) *podfiles.DNS {
	n, err := s.findNetwork(context.Background(), ref)
	if err != nil || n.CNI == "" || !hasDNS(n.Network) {
		return nil
	}
	s.dns.mu.Lock()
	defer s.dns.mu.Unlock()
	if _, ok := s.dns.servers[n.CNI]; !ok {
		return nil
	}
	return &podfiles.DNS{Servers: []string{n.Gateway.String()}, Searches: slices.Clone(s.dns.searches), Options: []string{"ndots:0"}}
}

// dnsHandler answers the queries of one network.
type dnsHandler struct {
	network string
	// endpoints lists the attachments of the running containers
	// (Server.endpoints); upstream the resolvers to forward to.
	endpoints func(context.Context) ([]endpoint, error)
	upstream  func() []string
	log       *slog.Logger
}

func (h *dnsHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNotImplemented)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	if q.Qclass == dns.ClassINET {
		if q.Qtype == dns.TypePTR {
			if target := h.reverse(ctx, name); target != "" {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: dnsTTL}, Ptr: dns.Fqdn(target)})
				w.WriteMsg(m)
				return
			}
		} else if ips, ok := h.lookup(ctx, name); ok {
			if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
				for _, ip := range ips {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL}, A: ip.AsSlice()})
				}
			}
			// Other types of a known name: no data, not NXDOMAIN, so
			// that resolvers asking A and AAAA keep the A answer.
			w.WriteMsg(m)
			return
		}
	}
	if !strings.Contains(name, ".") {
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
		return
	}
	h.forward(w, r)
}

// lookup finds the IPv4 addresses on this network of the running
// containers that name names.
func (h *dnsHandler) lookup(ctx context.Context, name string) ([]netip.Addr, bool) {
	eps, err := h.endpoints(ctx)
	if err != nil {
		h.log.Warn("network DNS: listing containers", "error", err)
		return nil, false
	}
	var ips []netip.Addr
	found := false
	for _, ep := range eps {
		if ep.Network != h.network || !slices.Contains(endpointNames(ep), name) {
			continue
		}
		found = true
		for _, a := range ep.IPs {
			if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
	}
	return ips, found
}

// endpointNames are the names a container answers to on a network, lower
// case: its name, short ID, aliases there and compose service.
func endpointNames(ep endpoint) []string {
	names := []string{ep.Container.Key, ep.Container.ID[:12]}
	names = append(names, ep.Aliases...)
	if svc := ep.Container.Labels[composeServiceLabel]; svc != "" {
		names = append(names, svc)
	}
	for i := range names {
		names[i] = strings.ToLower(names[i])
	}
	return names
}

// reverse finds the container on this network with the address that the
// in-addr.arpa name stands for.
func (h *dnsHandler) reverse(ctx context.Context, name string) string {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return ""
	}
	slices.Reverse(parts)
	ip, err := netip.ParseAddr(strings.Join(parts, "."))
	if err != nil {
		return ""
	}
	eps, err := h.endpoints(ctx)
	if err != nil {
		return ""
	}
	for _, ep := range eps {
		if ep.Network == h.network && slices.Contains(ep.IPs, ip.String()) {
			return ep.Container.Key + "." + dockerNetworkName(h.network)
		}
	}
	return ""
}

// forward asks the host's resolvers, in order, over the protocol the
// query came on; with none answering, SERVFAIL.
func (h *dnsHandler) forward(w dns.ResponseWriter, r *dns.Msg) {
	upstream := h.upstream()
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	for _, up := range upstream {
		resp, _, err := c.Exchange(r, up)
		if err == nil && resp != nil {
			if resp.Truncated && proto == "udp" {
				resp.Compress = true
			}
			w.WriteMsg(resp)
			return
		}
	}
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	w.WriteMsg(m)
}
