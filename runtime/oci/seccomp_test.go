package oci

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/testutil"
)

// Outcomes of seccompVerdict.
const (
	allowed = "allow"
	eperm   = "EPERM"
	enosysV = "ENOSYS"
)

// seccompVerdict evaluates s for one call of name with args the way the
// kernel filter would: the first rule naming the syscall whose argument
// conditions all hold decides; otherwise the default action. The default
// profile has no overlapping rules, so the order does not matter there.
func seccompVerdict(t *testing.T, s *specs.LinuxSeccomp, name string, args ...uint64) string {
	t.Helper()
	var a [6]uint64
	copy(a[:], args)
	action, errno := s.DefaultAction, s.DefaultErrnoRet
	for _, r := range s.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		if allOf(r.Args, func(c specs.LinuxSeccompArg) bool { return argHolds(t, c, a[c.Index]) }) {
			action, errno = r.Action, r.ErrnoRet
			break
		}
	}
	switch {
	case action == specs.ActAllow:
		return allowed
	case action == specs.ActErrno && errno != nil && *errno == 1:
		return eperm
	case action == specs.ActErrno && errno != nil && (*errno == 38 || *errno == 89):
		return enosysV
	}
	t.Fatalf("%s: unexpected action %s errno %v", name, action, errno)
	return ""
}

func argHolds(t *testing.T, c specs.LinuxSeccompArg, v uint64) bool {
	switch c.Op {
	case specs.OpEqualTo:
		return v == c.Value
	case specs.OpNotEqual:
		return v != c.Value
	case specs.OpMaskedEqual:
		return v&c.Value == c.ValueTwo
	}
	t.Fatalf("operator %s not simulated", c.Op)
	return false
}

const (
	cloneNewNS   = 0x00020000
	cloneNewUser = 0x10000000
	// What fork and pthread_create pass.
	cloneFork   = 0x01200011 // CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
	cloneThread = 0x003d0f00 // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
	afInet      = 2
)

type syscallCase struct {
	name string
	args []uint64
	want string
}

func checkVerdicts(t *testing.T, s *specs.LinuxSeccomp, cases []syscallCase) {
	t.Helper()
	for _, tc := range cases {
		if got := seccompVerdict(t, s, tc.name, tc.args...); got != tc.want {
			t.Errorf("%s%v: got %s, want %s", tc.name, tc.args, got, tc.want)
		}
	}
}

func TestDefaultSeccompDefaultCapabilities(t *testing.T) {
	s := DefaultSeccomp(DefaultCapabilities(), "amd64")
	if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != 1 {
		t.Fatalf("default action %s errno %v, want SCMP_ACT_ERRNO EPERM", s.DefaultAction, s.DefaultErrnoRet)
	}
	checkVerdicts(t, s, []syscallCase{
		// Blocked without the capability that guards them, or always.
		{"mount", nil, eperm},
		{"umount2", nil, eperm},
		{"unshare", []uint64{cloneNewNS}, eperm},
		{"setns", nil, eperm},
		{"ptrace", nil, allowed},
		{"process_vm_readv", nil, allowed},
		{"fchmodat2", nil, allowed},
		{"reboot", nil, eperm},
		{"init_module", nil, eperm},
		{"kexec_load", nil, eperm},
		{"add_key", nil, eperm},
		{"keyctl", nil, eperm},
		{"request_key", nil, eperm},
		{"bpf", nil, eperm},
		{"perf_event_open", nil, eperm},
		{"open_by_handle_at", nil, eperm},
		{"settimeofday", nil, eperm},
		{"swapon", nil, eperm},
		{"userfaultfd", nil, eperm},
		{"clone", []uint64{cloneFork | cloneNewNS}, eperm},
		{"clone", []uint64{cloneFork | cloneNewUser}, eperm},
		{"clone3", nil, enosysV},
		{"personality", []uint64{0x0040000}, eperm}, // ADDR_NO_RANDOMIZE
		{"socket", []uint64{afVsock}, eperm},
		// Allowed.
		{"read", nil, allowed},
		{"write", nil, allowed},
		{"openat", nil, allowed},
		{"execve", nil, allowed},
		{"exit_group", nil, allowed},
		{"futex", nil, allowed},
		{"epoll_wait", nil, allowed},
		{"io_uring_setup", nil, allowed},
		{"name_to_handle_at", nil, allowed},
		{"clone", []uint64{cloneFork}, allowed},
		{"clone", []uint64{cloneThread}, allowed},
		{"socket", []uint64{afInet}, allowed},
		{"personality", []uint64{0x0}, allowed},
		{"personality", []uint64{0x8}, allowed},
		{"personality", []uint64{0xffffffff}, allowed},
		{"arch_prctl", nil, allowed},
		{"modify_ldt", nil, allowed},
		{"chroot", nil, allowed}, // CAP_SYS_CHROOT is a default capability
	})
}

func TestDefaultSeccompCapabilities(t *testing.T) {
	tests := []struct {
		cap   string
		cases []syscallCase
	}{
		{"CAP_SYS_ADMIN", []syscallCase{
			{"mount", nil, allowed},
			{"umount2", nil, allowed},
			{"unshare", []uint64{cloneNewNS}, allowed},
			{"setns", nil, allowed},
			{"clone", []uint64{cloneFork | cloneNewNS | cloneNewUser}, allowed},
			{"clone3", nil, allowed},
			{"bpf", nil, allowed},
			{"sethostname", nil, allowed},
			{"kcmp", nil, eperm},
		}},
		{"CAP_SYS_PTRACE", []syscallCase{
			{"ptrace", nil, allowed},
			{"process_vm_readv", nil, allowed},
			{"process_vm_writev", nil, allowed},
			{"kcmp", nil, allowed},
			{"pidfd_getfd", nil, allowed},
			{"mount", nil, eperm},
			{"clone3", nil, enosysV},
		}},
		{"CAP_SYS_MODULE", []syscallCase{{"init_module", nil, allowed}, {"finit_module", nil, allowed}, {"kexec_load", nil, eperm}}},
		{"CAP_SYS_BOOT", []syscallCase{{"reboot", nil, allowed}, {"kexec_load", nil, eperm}}},
		{"CAP_SYS_TIME", []syscallCase{{"clock_settime", nil, allowed}, {"settimeofday", nil, allowed}}},
		{"CAP_SYS_NICE", []syscallCase{{"mbind", nil, allowed}, {"set_mempolicy", nil, allowed}}},
		{"CAP_SYS_PACCT", []syscallCase{{"acct", nil, allowed}}},
		{"CAP_SYS_RAWIO", []syscallCase{{"iopl", nil, allowed}, {"ioperm", nil, allowed}}},
		{"CAP_SYSLOG", []syscallCase{{"syslog", nil, allowed}}},
		{"CAP_SYS_TTY_CONFIG", []syscallCase{{"vhangup", nil, allowed}}},
		{"CAP_DAC_READ_SEARCH", []syscallCase{{"open_by_handle_at", nil, allowed}}},
		{"CAP_BPF", []syscallCase{{"bpf", nil, allowed}, {"mount", nil, eperm}}},
		{"CAP_PERFMON", []syscallCase{{"perf_event_open", nil, allowed}}},
	}
	for _, tt := range tests {
		t.Run(tt.cap, func(t *testing.T) {
			checkVerdicts(t, DefaultSeccomp(append(DefaultCapabilities(), tt.cap), "amd64"), tt.cases)
		})
	}
	t.Run("no capabilities", func(t *testing.T) {
		checkVerdicts(t, DefaultSeccomp(nil, "amd64"), []syscallCase{{"chroot", nil, eperm}, {"read", nil, allowed}})
	})
	t.Run("every capability", func(t *testing.T) {
		// Some syscalls are never allowed, whatever the capabilities.
		checkVerdicts(t, DefaultSeccomp(AllCapabilities(0), "amd64"), []syscallCase{
			{"kexec_load", nil, eperm},
			{"add_key", nil, eperm},
			{"keyctl", nil, eperm},
			{"swapon", nil, eperm},
			{"mount", nil, allowed},
		})
	})
}

func TestDefaultSeccompArchitectures(t *testing.T) {
	tests := []struct {
		goarch string
		want   []specs.Arch
		cases  []syscallCase
	}{
		{"amd64", []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, []syscallCase{
			{"arch_prctl", nil, allowed}, {"modify_ldt", nil, allowed}, {"cacheflush", nil, eperm},
		}},
		{"arm64", []specs.Arch{specs.ArchAARCH64, specs.ArchARM}, []syscallCase{
			{"arch_prctl", nil, eperm}, {"cacheflush", nil, allowed}, {"sync_file_range2", nil, allowed},
			{"clone", []uint64{cloneFork}, allowed}, {"clone", []uint64{cloneNewNS}, eperm},
		}},
		{"s390x", []specs.Arch{specs.ArchS390X, specs.ArchS390}, []syscallCase{
			{"s390_runtime_instr", nil, allowed},
			// The flags are clone's second argument on s390.
			{"clone", []uint64{0, cloneFork}, allowed},
			{"clone", []uint64{0, cloneNewNS}, eperm},
			{"clone", []uint64{cloneNewNS, 0}, allowed},
		}},
		{"riscv64", []specs.Arch{specs.ArchRISCV64}, []syscallCase{{"riscv_flush_icache", nil, allowed}}},
		{"mips64le", []specs.Arch{specs.ArchMIPSEL64, specs.ArchMIPSEL, specs.ArchMIPSEL64N32}, []syscallCase{
			{"clone3", nil, enosysV},
		}},
		// No archMap entry: the native architecture only, as docker.
		{"ppc64le", nil, []syscallCase{{"swapcontext", nil, allowed}, {"sync_file_range2", nil, allowed}}},
		{"386", nil, []syscallCase{{"modify_ldt", nil, allowed}, {"arch_prctl", nil, eperm}}},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			s := DefaultSeccomp(DefaultCapabilities(), tt.goarch)
			if diff := cmp.Diff(tt.want, s.Architectures); diff != "" {
				t.Errorf("architectures (-want +got):\n%s", diff)
			}
			checkVerdicts(t, s, tt.cases)
		})
	}
	for _, r := range DefaultSeccomp(nil, "mips64").Syscalls {
		if slices.Contains(r.Names, "clone3") && (r.ErrnoRet == nil || *r.ErrnoRet != 89) {
			t.Errorf("clone3 errno on mips64 = %v, want 89 (ENOSYS there)", r.ErrnoRet)
		}
	}
}

func TestDefaultSeccompShape(t *testing.T) {
	base := strings.Fields(seccompBaseAllow)
	if !slices.IsSorted(base) || len(slices.Compact(slices.Clone(base))) != len(base) {
		t.Error("seccompBaseAllow is not sorted and free of duplicates")
	}
	for _, g := range seccompGroups {
		names := strings.Fields(g.names)
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Errorf("group %q %v: names not sorted and unique", g.cap, g.arches)
		}
		for _, n := range names {
			if slices.Contains(base, n) {
				t.Errorf("group %q %v: %s is already allowed unconditionally", g.cap, g.arches, n)
			}
		}
	}
	for _, goarch := range []string{"amd64", "arm64", "s390x"} {
		for _, caps := range [][]string{nil, DefaultCapabilities(), AllCapabilities(0)} {
			s := DefaultSeccomp(caps, goarch)
			first := s.Syscalls[0]
			if first.Action != specs.ActAllow || len(first.Args) != 0 || !slices.IsSorted(first.Names) ||
				len(slices.Compact(slices.Clone(first.Names))) != len(first.Names) {
				t.Errorf("%s %d caps: first rule is not one sorted unconditional allow-list", goarch, len(caps))
			}
			for _, r := range s.Syscalls[1:] {
				if r.Action == specs.ActAllow && len(r.Args) == 0 {
					t.Errorf("%s %d caps: unconditional allow rule %v not merged", goarch, len(caps), r.Names)
				}
			}
			t.Logf("%s, %d caps: %d syscalls allowed unconditionally, %d other rules",
				goarch, len(caps), len(first.Names), len(s.Syscalls)-1)
		}
	}
}

// The default profile written in docker's format and read back through the
// loader resolves to DefaultSeccomp: the two share one resolver, and the
// table survives JSON.
func TestDefaultSeccompThroughLoader(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64", "s390x", "ppc64le"} {
		data, err := json.Marshal(defaultSeccompProfile(goarch))
		if err != nil {
			t.Fatal(err)
		}
		for _, caps := range [][]string{nil, DefaultCapabilities(), {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}, AllCapabilities(0)} {
			got, err := LoadSeccompProfile(data, caps, goarch)
			if err != nil {
				t.Fatalf("%s: %v", goarch, err)
			}
			if diff := cmp.Diff(DefaultSeccomp(caps, goarch), mergeAllowRules(got)); diff != "" {
				t.Errorf("%s %v (-default +loaded):\n%s", goarch, caps, diff)
			}
		}
	}
}

func fakeKernelRelease(t *testing.T, release string) {
	t.Helper()
	old := kernelRelease
	t.Cleanup(func() { kernelRelease = old })
	kernelRelease = func() (string, error) { return release, nil }
}

func TestLoadSeccompProfile(t *testing.T) {
	fakeKernelRelease(t, "5.15.0-91-generic")
	const profile = `{
		"defaultAction": "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 1,
		"archMap": [
			{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
			{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
		],
		"syscalls": [
			{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
			{"name": "getpid", "action": "SCMP_ACT_ALLOW", "comment": "docker's older single-name form"},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["sys_ptrace", "CAP_SYS_ADMIN"]}},
			{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
			 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
			 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
			{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
			{"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
			{"names": ["landlock_create_ruleset"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.13"}},
			{"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.16"}},
			{"names": ["uselib"], "action": "SCMP_ACT_LOG", "excludes": {"minKernel": "6.0"}}
		]
	}`
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	maskedClone := specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: cloneNamespaceFlags, Op: specs.OpMaskedEqual}}}
	clone3 := specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: ptrTo(uint(38))}
	later := []specs.LinuxSyscall{
		allow("landlock_create_ruleset"),
		{Names: []string{"uselib"}, Action: specs.ActLog},
	}
	tests := []struct {
		name   string
		caps   []string
		goarch string
		want   []specs.LinuxSyscall
		arches []specs.Arch
	}{
		{"default caps amd64", DefaultCapabilities(), "amd64",
			append([]specs.LinuxSyscall{allow("read", "write"), allow("getpid"), maskedClone, clone3, allow("arch_prctl")}, later...),
			[]specs.Arch{specs.ArchX86_64, specs.ArchX86}},
		{"sys_admin arm64", []string{"CAP_SYS_ADMIN"}, "arm64",
			append([]specs.LinuxSyscall{allow("read", "write"), allow("getpid"), allow("mount"), allow("cacheflush")}, later...),
			[]specs.Arch{specs.ArchAARCH64, specs.ArchARM}},
		{"sys_admin and sys_ptrace s390x", []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}, "s390x",
			append([]specs.LinuxSyscall{allow("read", "write"), allow("getpid"), allow("mount"), allow("ptrace")}, later...),
			nil},
		{"no caps s390x", nil, "s390x",
			append([]specs.LinuxSyscall{allow("read", "write"), allow("getpid"), clone3}, later...),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadSeccompProfile([]byte(profile), tt.caps, tt.goarch)
			if err != nil {
				t.Fatal(err)
			}
			want := &specs.LinuxSeccomp{
				DefaultAction:   specs.ActErrno,
				DefaultErrnoRet: ptrTo(uint(1)),
				Architectures:   tt.arches,
				Syscalls:        tt.want,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A plain OCI linux.seccomp object is a docker profile without conditions.
func TestLoadSeccompProfileOCI(t *testing.T) {
	in := &specs.LinuxSeccomp{
		DefaultAction:    specs.ActKillProcess,
		Architectures:    []specs.Arch{specs.ArchX86_64},
		Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		ListenerPath:     "/run/agent.sock",
		ListenerMetadata: "meta",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow},
			{Names: []string{"mkdir"}, Action: specs.ActNotify},
			{Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: ptrTo(uint(13)),
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpEqualTo}}},
		},
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadSeccompProfile(data, nil, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLoadSeccompProfileInvalid(t *testing.T) {
	fakeKernelRelease(t, "6.1.0")
	rule := func(r string) string {
		return `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [` + r + `]}`
	}
	tests := []struct{ name, profile string }{
		{"not JSON", `{"defaultAction": `},
		{"empty", ``},
		{"trailing data", `{"defaultAction": "SCMP_ACT_ERRNO"} {}`},
		{"no default action", `{"syscalls": []}`},
		{"unknown default action", `{"defaultAction": "SCMP_ACT_MAYBE"}`},
		{"unknown field", `{"defaultAction": "SCMP_ACT_ERRNO", "syscall": []}`},
		{"misspelt condition", rule(`{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "exclude": {"caps": ["CAP_SYS_ADMIN"]}}`)},
		{"unknown action", rule(`{"names": ["read"], "action": "SCMP_ACT_PERMIT"}`)},
		{"both name and names", rule(`{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}`)},
		{"no names", rule(`{"action": "SCMP_ACT_ALLOW"}`)},
		{"empty name", rule(`{"names": [""], "action": "SCMP_ACT_ALLOW"}`)},
		{"argument index", rule(`{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}`)},
		{"unknown operator", rule(`{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_LIKE"}]}`)},
		{"errno on allow", rule(`{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}`)},
		{"unknown capability", rule(`{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_FLY"]}}`)},
		{"ALL capability", rule(`{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["ALL"]}}`)},
		{"bad minKernel", rule(`{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "five"}}`)},
		{"notify without listener", rule(`{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}`)},
		{"unknown architecture", `{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}`},
		{"architectures and archMap", `{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
			"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}]}`},
		{"unknown flag", `{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSeccompProfile([]byte(tt.profile), DefaultCapabilities(), "amd64")
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %+v, %v; want an error wrapping ErrInvalidArgument", s, err)
			}
		})
	}
}

func TestKernelVersion(t *testing.T) {
	tests := []struct {
		release, min string
		want         bool
	}{
		{"5.15.0-91-generic", "4.8", true},
		{"5.15.0-91-generic", "5.15", true},
		{"5.15.0-91-generic", "5.16", false},
		{"6.18.44-fc-v669", "5.16", true},
		{"4.19", "5.1", false},
		{"10.0.0", "9.99", true},
	}
	for _, tt := range tests {
		fakeKernelRelease(t, tt.release)
		var k kernelVersion
		if err := k.UnmarshalText([]byte(tt.min)); err != nil {
			t.Fatal(err)
		}
		got, err := k.reached()
		if err != nil || got != tt.want {
			t.Errorf("kernel %s >= %s: got %v, %v; want %v", tt.release, tt.min, got, err, tt.want)
		}
	}
	fakeKernelRelease(t, "garbage")
	if _, err := (kernelVersion{4, 8}).reached(); err == nil {
		t.Error("unparsable kernel release: no error")
	}
}

// TestDefaultSeccompRunc runs busybox under runc with the default profile.
// The process holds CAP_SYS_ADMIN in every set while the profile is the one
// for the default capabilities, so a refused unshare can only come from
// seccomp; the same run with the CAP_SYS_ADMIN profile is the control.
func TestDefaultSeccompRunc(t *testing.T) {
	testutil.RequiresRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not found")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not found")
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := elf.NewFile(bytes.NewReader(bin)); err != nil || slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Skip(busybox + " is not a static executable")
	}
	bundle, state := t.TempDir(), t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "true", "unshare"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var base specs.Spec
	if err := json.Unmarshal(data, &base); err != nil {
		t.Fatal(err)
	}
	withAdmin := append(DefaultCapabilities(), "CAP_SYS_ADMIN")

	run := func(t *testing.T, profileCaps []string, args ...string) (string, error) {
		t.Helper()
		spec := base
		proc := *base.Process
		proc.Terminal = false
		proc.Args = args
		proc.Env = []string{"PATH=/bin"}
		proc.Capabilities = &specs.LinuxCapabilities{
			Bounding: withAdmin, Effective: withAdmin, Permitted: withAdmin,
		}
		spec.Process = &proc
		linux := *base.Linux
		linux.Seccomp = DefaultSeccomp(profileCaps, runtime.GOARCH)
		spec.Linux = &linux
		b, err := json.Marshal(&spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("berth-seccomp-test-%d", os.Getpid())
		cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
		out, err := cmd.CombinedOutput()
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		return string(out), err
	}

	if out, err := run(t, DefaultCapabilities(), "true"); err != nil {
		t.Fatalf("true under the default profile: %v: %s", err, out)
	}
	out, err := run(t, DefaultCapabilities(), "unshare", "-m", "true")
	if err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("unshare -m under the default profile: err %v, output %q; want EPERM", err, out)
	}
	t.Logf("unshare -m under the default profile: %v: %s", err, strings.TrimSpace(out))
	if out, err := run(t, withAdmin, "unshare", "-m", "true"); err != nil {
		t.Errorf("unshare -m under the CAP_SYS_ADMIN profile: %v: %s", err, out)
	}
}
