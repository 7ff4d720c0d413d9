package podfiles

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const localhostLines = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"fe00::0\tip6-mcastprefix\n" +
	"fe00::1\tip6-allnodes\n" +
	"fe00::2\tip6-allrouters\n"

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteHostname(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hostname")
	if err := WriteHostname(p, "web-0"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "web-0\n" {
		t.Errorf("hostname = %q", got)
	}
	if err := WriteHostname(p, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty hostname: %v", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v", st.Mode())
	}
}

func TestWriteHosts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hostname string
		ips      []string
		want     string
		wantErr  error
	}{
		{name: "no IP", hostname: "web", want: localhostLines},
		{name: "one IP", hostname: "web", ips: []string{"10.89.0.5"}, want: localhostLines + "10.89.0.5\tweb\n"},
		{name: "dual stack", hostname: "web", ips: []string{"10.89.0.5", "fd00::5"}, want: localhostLines + "10.89.0.5\tweb\nfd00::5\tweb\n"},
		{name: "empty IP skipped", hostname: "web", ips: []string{""}, want: localhostLines},
		{name: "bad IP", hostname: "web", ips: []string{"10.89.0"}, wantErr: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "hosts")
			err := WriteHosts(p, tc.hostname, tc.ips)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, read(t, p)); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteResolvConf(t *testing.T) {
	host := "# managed by someone\n" +
		"nameserver 127.0.0.53\n" +
		"nameserver 127.1.2.3\n" +
		"nameserver ::1\n" +
		"nameserver 192.0.2.1\n" +
		"nameserver 2001:db8::1\n" +
		"search corp.example\n" +
		"options edns0 trust-ad\n"
	onlyLoopback := "nameserver 127.0.0.53\nnameserver ::1\nsearch lan\n"

	for _, tc := range []struct {
		name    string
		dns     *DNS
		host    string // "" = no host file
		want    string
		wantErr error
	}{
		{
			name: "host copy drops loopback servers",
			host: host,
			want: "# managed by someone\n" +
				"nameserver 192.0.2.1\n" +
				"nameserver 2001:db8::1\n" +
				"search corp.example\n" +
				"options edns0 trust-ad\n",
		},
		{
			name: "only loopback servers leaves none",
			dns:  &DNS{},
			host: onlyLoopback,
			want: "search lan\n",
		},
		{name: "no host file", want: ""},
		{
			name: "explicit settings ignore host",
			dns: &DNS{
				Servers:  []string{"10.96.0.10", "2001:db8::53"},
				Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:  []string{"ndots:5", "timeout:2"},
			},
			host: host,
			want: "nameserver 10.96.0.10\n" +
				"nameserver 2001:db8::53\n" +
				"search default.svc.cluster.local svc.cluster.local cluster.local\n" +
				"options ndots:5 timeout:2\n",
		},
		{
			name: "explicit loopback server is kept",
			dns:  &DNS{Servers: []string{"127.0.0.1"}},
			want: "nameserver 127.0.0.1\n",
		},
		{
			name: "options only",
			dns:  &DNS{Options: []string{"ndots:2"}},
			host: host,
			want: "options ndots:2\n",
		},
		{name: "bad server", dns: &DNS{Servers: []string{"dns.example"}}, wantErr: errdefs.ErrInvalidArgument},
		{name: "bad search", dns: &DNS{Searches: []string{"a b"}}, wantErr: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hostPath := filepath.Join(dir, "host-resolv.conf")
			if tc.host != "" {
				if err := os.WriteFile(hostPath, []byte(tc.host), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(dir, "resolv.conf")
			err := WriteResolvConf(p, tc.dns, hostPath)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("file written despite error: %v", err)
				}
				return
			}
			if diff := cmp.Diff(tc.want, read(t, p)); diff != "" {
				t.Errorf("resolv.conf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts")
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		if err := WriteHosts(p, "h", []string{ip}); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, p); got != localhostLines+"10.0.0.2\th\n" {
		t.Errorf("hosts = %q", got)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temp files left)", len(ents))
	}
}
