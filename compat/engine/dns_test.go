package engine

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/berth-runtime/berth/store"
)

// serveDNS runs h on a loopback UDP port and returns its address and a
// query function.
func serveDNS(t *testing.T, h dns.Handler) (string, func(name string, qtype uint16) *dns.Msg) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		resp, _, err := new(dns.Client).Exchange(m, pc.LocalAddr().String())
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return resp
	}
}

func TestNetworkDNSAnswersFromTheNetworksContainers(t *testing.T) {
	web := store.Container{ID: "0123456789ab" + "cdef0123456789abcdef0123456789abcdef0123456789abcdef", Key: "web",
		Labels: map[string]string{composeServiceLabel: "frontend"}}
	db := store.Container{ID: "fedcba987654" + "3210fedcba9876543210fedcba9876543210fedcba9876543210", Key: "db"}
	eps := []endpoint{
		{Container: web, Network: "app", IPs: []string{"10.1.0.5"}, Aliases: []string{"WWW"}},
		{Container: web, Network: "other", IPs: []string{"10.2.0.5"}},
		{Container: db, Network: "other", IPs: []string{"10.2.0.6"}},
	}
	// An upstream that answers every forwarded name with 192.0.2.1.
	upstreamAddr, _ := serveDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.ParseIP("192.0.2.1")})
		w.WriteMsg(m)
	}))
	_, query := serveDNS(t, &dnsHandler{
		network:   "app",
		endpoints: func(context.Context) ([]endpoint, error) { return eps, nil },
		upstream:  func() []string { return []string{upstreamAddr} },
		log:       slog.Default(),
	})

	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"web", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.5"}},
		{"WEB.", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.5"}},
		{"www", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.5"}},
		{"frontend", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.5"}},
		{"0123456789ab", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.5"}},
		{"web", dns.TypeAAAA, dns.RcodeSuccess, nil},
		// db is on another network only.
		{"db", dns.TypeA, dns.RcodeNameError, nil},
		{"example.org", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
	} {
		resp := query(tc.name, tc.qtype)
		var got []string
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		if resp.Rcode != tc.rcode || len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
			t.Errorf("%s %s: rcode %s answers %v, want %s %v", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[resp.Rcode], got, dns.RcodeToString[tc.rcode], tc.want)
		}
	}
	resp := query("5.0.1.10.in-addr.arpa", dns.TypePTR)
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.PTR).Ptr != "web.app." {
		t.Errorf("PTR of 10.1.0.5: %v", resp.Answer)
	}
}
