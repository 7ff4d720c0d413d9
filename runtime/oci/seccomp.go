package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// This file holds berth's RuntimeDefault seccomp profile and the loader for
// Localhost profiles. Both are written in docker's profile format (a superset
// of the OCI linux.seccomp object with per-rule "includes"/"excludes"
// conditions and an "archMap") and resolved the way docker's
// profiles/seccomp.setupSeccomp does: a rule is kept when none of its
// excludes and all of its includes hold for the container's capabilities and
// the host architecture.
//
// The default profile is docker's (moby profiles/seccomp/default.json, which
// containerd's contrib/seccomp repeats): ptrace, process_vm_readv and
// process_vm_writev are allowed to every container, as docker does on
// kernels >= 4.8 (the seccomp bypass through ptrace was closed there), and
// the newer syscalls that glibc and Go use when present (fchmodat2,
// cachestat, futex_wait/wake/requeue, map_shadow_stack, mseal) are allowed
// too, so that images with a new libc do not get EPERM where the kernel
// would have answered.

const (
	// seccompEPERM is the default action's errno: a syscall outside the
	// profile fails with EPERM, as in docker.
	seccompEPERM = 1

	// cloneNamespaceFlags are the CLONE_NEW* flags of clone(2):
	// NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. Without
	// CAP_SYS_ADMIN, clone is allowed only when (flags & mask) == 0.
	cloneNamespaceFlags = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 |
		0x10000000 | 0x20000000 | 0x40000000

	// afVsock is AF_VSOCK: docker refuses socket(AF_VSOCK, ...) so that
	// containers cannot reach the hypervisor's vsock services.
	afVsock = 40
)

// seccompPersonalities are the personality(2) arguments a container may
// pass: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and
// 0xffffffff, which only queries the current persona.
var seccompPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// seccompBaseAllow is the unconditional allow-list, sorted.
const seccompBaseAllow = `
	_llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir
	chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
	clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range
	creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
	epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
	fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32
	fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
	fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
	futex_wait futex_waitv futex_wake futimesat get_robust_list get_thread_area getcpu getcwd getdents
	getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
	getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid
	getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32
	getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy
	io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit io_uring_enter
	io_uring_register io_uring_setup ioctl ioprio_get ioprio_set ipc kill landlock_add_rule
	landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
	listxattr llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
	membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
	mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
	mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
	munlockall munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause pidfd_open
	pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
	pread64 preadv preadv2 prlimit64 process_mrelease process_vm_readv process_vm_writev pselect6
	pselect6_time64 ptrace pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
	recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
	restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
	rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max
	sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
	sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
	sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64
	send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list set_thread_area set_tid_address
	setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
	setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
	setrlimit setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
	sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64
	statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
	timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
	timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
	times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
	utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`

// seccompGroup is one row of the default profile: syscalls allowed on the
// listed architectures (native names, see seccompNativeArch; none: all) when
// the container holds the capability ("": always).
type seccompGroup struct {
	cap    string
	arches []string
	names  string
}

// seccompGroups are the default profile's conditional allow rules. A
// syscall may be in several groups (bpf with CAP_SYS_ADMIN or CAP_BPF).
var seccompGroups = []seccompGroup{
	{arches: []string{"ppc64le"}, names: "swapcontext sync_file_range2"},
	{arches: []string{"arm", "arm64"}, names: "arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls sync_file_range2"},
	{arches: []string{"amd64", "x32"}, names: "arch_prctl"},
	{arches: []string{"amd64", "x32", "x86"}, names: "modify_ldt"},
	{arches: []string{"s390", "s390x"}, names: "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"},
	{arches: []string{"riscv64"}, names: "riscv_flush_icache"},
	{cap: "CAP_DAC_READ_SEARCH", names: "open_by_handle_at"},
	{cap: "CAP_SYS_ADMIN", names: "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie " +
		"mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname " +
		"setns syslog umount umount2 unshare"},
	{cap: "CAP_SYS_BOOT", names: "reboot"},
	{cap: "CAP_SYS_CHROOT", names: "chroot"},
	{cap: "CAP_SYS_MODULE", names: "delete_module finit_module init_module"},
	{cap: "CAP_SYS_PACCT", names: "acct"},
	{cap: "CAP_SYS_PTRACE", names: "kcmp pidfd_getfd process_madvise"},
	{cap: "CAP_SYS_RAWIO", names: "ioperm iopl"},
	{cap: "CAP_SYS_TIME", names: "clock_settime clock_settime64 settimeofday stime"},
	{cap: "CAP_SYS_TTY_CONFIG", names: "vhangup"},
	{cap: "CAP_SYS_NICE", names: "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"},
	{cap: "CAP_SYSLOG", names: "syslog"},
	{cap: "CAP_BPF", names: "bpf"},
	{cap: "CAP_PERFMON", names: "perf_event_open"},
}

// seccompArchMap is docker's archMap: the native architecture and the
// compat ones its kernel also runs. Architectures without an entry get no
// list, which makes runc allow only the native one.
var seccompArchMap = []seccompArchEntry{
	{Arch: specs.ArchX86_64, SubArches: []specs.Arch{specs.ArchX86, specs.ArchX32}},
	{Arch: specs.ArchAARCH64, SubArches: []specs.Arch{specs.ArchARM}},
	{Arch: specs.ArchMIPS64, SubArches: []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64N32}},
	{Arch: specs.ArchMIPS64N32, SubArches: []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64}},
	{Arch: specs.ArchMIPSEL64, SubArches: []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64N32}},
	{Arch: specs.ArchMIPSEL64N32, SubArches: []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64}},
	{Arch: specs.ArchS390X, SubArches: []specs.Arch{specs.ArchS390}},
	{Arch: specs.ArchRISCV64},
}

// DefaultSeccomp returns berth's RuntimeDefault profile for a container
// whose effective capabilities are caps ("CAP_SYS_ADMIN", ...: the list
// Generate computes) on goarch (runtime.GOARCH). It is docker's default
// profile: everything not allowed fails with EPERM; clone may not create
// namespaces and clone3 fails with ENOSYS (so that glibc falls back to
// clone) unless the container has CAP_SYS_ADMIN; the syscalls a capability
// guards are allowed only with it. The unconditional allow rules are merged
// into the first rule, sorted and deduplicated.
func DefaultSeccomp(caps []string, goarch string) *specs.LinuxSeccomp {
	s, err := defaultSeccompProfile(goarch).resolve(caps, goarch)
	if err != nil {
		// Only minKernel conditions can fail, and the default profile has none.
		panic("oci: resolving the default seccomp profile: " + err.Error())
	}
	return mergeAllowRules(s)
}

// defaultSeccompProfile builds the default profile in docker's format, the
// form in which LoadSeccompProfile would read it.
func defaultSeccompProfile(goarch string) seccompProfile {
	p := seccompProfile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: ptrTo(uint(seccompEPERM)),
		ArchMap:         seccompArchMap,
	}
	rule := func(names string, args ...specs.LinuxSeccompArg) seccompRule {
		return seccompRule{Names: strings.Fields(names), Action: specs.ActAllow, Args: args}
	}
	p.Syscalls = append(p.Syscalls,
		rule(seccompBaseAllow),
		rule("socket", specs.LinuxSeccompArg{Index: 0, Value: afVsock, Op: specs.OpNotEqual}))
	for _, v := range seccompPersonalities {
		p.Syscalls = append(p.Syscalls, rule("personality", specs.LinuxSeccompArg{Index: 0, Value: v, Op: specs.OpEqualTo}))
	}
	for _, g := range seccompGroups {
		r := rule(g.names)
		if g.cap != "" || len(g.arches) > 0 {
			r.Includes = &seccompFilter{Arches: g.arches}
			if g.cap != "" {
				r.Includes.Caps = []string{g.cap}
			}
		}
		p.Syscalls = append(p.Syscalls, r)
	}
	// clone without namespace flags; s390 passes the flags second.
	s390 := []string{"s390", "s390x"}
	noAdmin := &seccompFilter{Caps: []string{"CAP_SYS_ADMIN"}}
	maskedClone := func(index uint) seccompRule {
		return rule("clone", specs.LinuxSeccompArg{Index: index, Value: cloneNamespaceFlags, Op: specs.OpMaskedEqual})
	}
	c := maskedClone(0)
	c.Excludes = &seccompFilter{Caps: noAdmin.Caps, Arches: s390}
	p.Syscalls = append(p.Syscalls, c)
	c = maskedClone(1)
	c.Includes, c.Excludes = &seccompFilter{Arches: s390}, noAdmin
	p.Syscalls = append(p.Syscalls, c)
	// clone3's flags live in a struct seccomp cannot inspect: ENOSYS makes
	// glibc and Go fall back to clone, which the rule above filters.
	p.Syscalls = append(p.Syscalls, seccompRule{
		Names:    []string{"clone3"},
		Action:   specs.ActErrno,
		ErrnoRet: ptrTo(enosys(goarch)),
		Excludes: noAdmin,
	})
	return p
}

// enosys is ENOSYS's number on goarch: 89 on MIPS, 38 elsewhere.
func enosys(goarch string) uint {
	if strings.HasPrefix(goarch, "mips") {
		return 89
	}
	return 38
}

// mergeAllowRules folds every unconditional allow rule into the first one,
// so that each allowed syscall is listed once.
func mergeAllowRules(s *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	plain := func(r specs.LinuxSyscall) bool {
		return r.Action == specs.ActAllow && len(r.Args) == 0 && r.ErrnoRet == nil
	}
	var names []string
	var rest []specs.LinuxSyscall
	for _, r := range s.Syscalls {
		if plain(r) {
			names = append(names, r.Names...)
		} else {
			rest = append(rest, r)
		}
	}
	slices.Sort(names)
	s.Syscalls = append([]specs.LinuxSyscall{{Names: slices.Compact(names), Action: specs.ActAllow}}, rest...)
	return s
}

// LoadSeccompProfile parses a Localhost profile, in docker's format or
// plain OCI linux.seccomp JSON, and resolves it for a container with the
// effective capabilities caps on goarch, as docker does: "archMap" picks the
// entry for goarch, rules whose "includes" do not hold or whose "excludes"
// do are dropped. Unlike docker it refuses unknown fields (a misspelt
// "excludes" would silently widen the profile) and capability names it does
// not know. A "minKernel" condition compares with the running kernel. A
// malformed profile returns an error wrapping errdefs.ErrInvalidArgument.
func LoadSeccompProfile(data []byte, caps []string, goarch string) (*specs.LinuxSeccomp, error) {
	var p seccompProfile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parsing seccomp profile: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if dec.More() {
		return nil, fmt.Errorf("parsing seccomp profile: data after the profile: %w", errdefs.ErrInvalidArgument)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return p.resolve(caps, goarch)
}

// seccompProfile is a profile in docker's format.
type seccompProfile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []seccompArchEntry       `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []seccompRule            `json:"syscalls,omitempty"`
}

// seccompArchEntry is one "archMap" entry.
type seccompArchEntry struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// seccompRule is one "syscalls" entry: an OCI rule plus docker's
// conditions. "name" is docker's older single-name form.
type seccompRule struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *seccompFilter           `json:"includes,omitempty"`
	Excludes *seccompFilter           `json:"excludes,omitempty"`
}

// seccompFilter is a rule's condition. In "includes" every listed
// capability is required and one of the arches; in "excludes" any listed
// capability or arch drops the rule. Arches are native names ("amd64",
// "x86", "arm64", ...; see seccompNativeArch).
type seccompFilter struct {
	Arches    []string       `json:"arches,omitempty"`
	Caps      []string       `json:"caps,omitempty"`
	MinKernel *kernelVersion `json:"minKernel,omitempty"`
}

var (
	seccompActions = []specs.LinuxSeccompAction{
		specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
	}
	seccompOps = []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	}
	seccompFlags = []specs.LinuxSeccompFlag{
		"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow,
		specs.LinuxSeccompFlagWaitKillableRecv,
	}
	seccompArches = []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64,
		specs.ArchLOONGARCH64, specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
	}
)

// validate checks what runc would refuse, and what docker's format
// forbids, before anything is resolved. It normalizes the condition
// capabilities to "CAP_X".
func (p *seccompProfile) validate() error {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
	}
	if p.DefaultAction == "" {
		return invalid("no defaultAction")
	}
	if err := validateAction(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return fmt.Errorf("defaultAction: %w", err)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return invalid("both architectures and archMap are given")
	}
	arches := slices.Clone(p.Architectures)
	for _, m := range p.ArchMap {
		arches = append(append(arches, m.Arch), m.SubArches...)
	}
	for _, a := range arches {
		if !slices.Contains(seccompArches, a) {
			return invalid("unknown architecture %q", a)
		}
	}
	for _, f := range p.Flags {
		if !slices.Contains(seccompFlags, f) {
			return invalid("unknown flag %q", f)
		}
	}
	notify := p.DefaultAction == specs.ActNotify
	for i := range p.Syscalls {
		r := &p.Syscalls[i]
		if r.Name != "" {
			if len(r.Names) > 0 {
				return invalid("syscalls[%d]: both name and names are given", i)
			}
			r.Names, r.Name = []string{r.Name}, ""
		}
		if len(r.Names) == 0 || slices.Contains(r.Names, "") {
			return invalid("syscalls[%d]: no syscall names", i)
		}
		if err := validateAction(r.Action, r.ErrnoRet); err != nil {
			return fmt.Errorf("syscalls[%d] (%s): %w", i, r.Names[0], err)
		}
		notify = notify || r.Action == specs.ActNotify
		for _, a := range r.Args {
			if a.Index > 5 {
				return invalid("syscalls[%d] (%s): argument index %d > 5", i, r.Names[0], a.Index)
			}
			if !slices.Contains(seccompOps, a.Op) {
				return invalid("syscalls[%d] (%s): unknown operator %q", i, r.Names[0], a.Op)
			}
		}
		for _, f := range []*seccompFilter{r.Includes, r.Excludes} {
			if f == nil {
				continue
			}
			norm, err := normalizeCaps(f.Caps)
			if err != nil || slices.Contains(norm, "ALL") {
				return invalid("syscalls[%d] (%s): bad capability in %q", i, r.Names[0], f.Caps)
			}
			f.Caps = norm
		}
	}
	if notify && p.ListenerPath == "" {
		return invalid("SCMP_ACT_NOTIFY needs a listenerPath")
	}
	return nil
}

// validateAction refuses unknown actions and an errno on actions other than
// SCMP_ACT_ERRNO and SCMP_ACT_TRACE, as runc does.
func validateAction(a specs.LinuxSeccompAction, errnoRet *uint) error {
	if !slices.Contains(seccompActions, a) {
		return fmt.Errorf("unknown action %q: %w", a, errdefs.ErrInvalidArgument)
	}
	if errnoRet != nil && a != specs.ActErrno && a != specs.ActTrace {
		return fmt.Errorf("errnoRet with action %s: %w", a, errdefs.ErrInvalidArgument)
	}
	return nil
}

// resolve applies the rules' conditions for caps on goarch and returns the
// OCI profile, rules in profile order.
func (p seccompProfile) resolve(caps []string, goarch string) (*specs.LinuxSeccomp, error) {
	capSet := make(map[string]bool, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		capSet[c] = true
	}
	native := seccompNativeArch(goarch)
	s := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    slices.Clone(p.Architectures),
		Flags:            slices.Clone(p.Flags),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
	}
	if a, ok := seccompNativeArches[native]; ok {
		for _, m := range p.ArchMap {
			if m.Arch == a {
				s.Architectures = append(append(s.Architectures, m.Arch), m.SubArches...)
			}
		}
	}
	for _, r := range p.Syscalls {
		if f := r.Excludes; f != nil {
			if slices.Contains(f.Arches, native) || slices.ContainsFunc(f.Caps, func(c string) bool { return capSet[c] }) {
				continue
			}
			if f.MinKernel != nil {
				newer, err := f.MinKernel.reached()
				if err != nil {
					return nil, err
				}
				if newer {
					continue
				}
			}
		}
		if f := r.Includes; f != nil {
			if len(f.Arches) > 0 && !slices.Contains(f.Arches, native) {
				continue
			}
			if !allOf(f.Caps, func(c string) bool { return capSet[c] }) {
				continue
			}
			if f.MinKernel != nil {
				newer, err := f.MinKernel.reached()
				if err != nil {
					return nil, err
				}
				if !newer {
					continue
				}
			}
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(r.Names),
			Action:   r.Action,
			ErrnoRet: r.ErrnoRet,
			Args:     slices.Clone(r.Args),
		})
	}
	return s, nil
}

func allOf[T any](s []T, f func(T) bool) bool {
	return !slices.ContainsFunc(s, func(v T) bool { return !f(v) })
}

// seccompNativeArch is docker's name for goarch in "arches" conditions:
// GOARCH except x86 for 386 and mipsel64 for mips64le.
func seccompNativeArch(goarch string) string {
	switch goarch {
	case "386":
		return "x86"
	case "mips64le":
		return "mipsel64"
	}
	return goarch
}

// seccompNativeArches maps a native name to the libseccomp architecture.
var seccompNativeArches = map[string]specs.Arch{
	"x86":       specs.ArchX86,
	"amd64":     specs.ArchX86_64,
	"arm":       specs.ArchARM,
	"arm64":     specs.ArchAARCH64,
	"mips":      specs.ArchMIPS,
	"mipsle":    specs.ArchMIPSEL,
	"mips64":    specs.ArchMIPS64,
	"mipsel64":  specs.ArchMIPSEL64,
	"ppc":       specs.ArchPPC,
	"ppc64":     specs.ArchPPC64,
	"ppc64le":   specs.ArchPPC64LE,
	"riscv64":   specs.ArchRISCV64,
	"s390":      specs.ArchS390,
	"s390x":     specs.ArchS390X,
	"loong64":   specs.ArchLOONGARCH64,
	"mips64n32": specs.ArchMIPS64N32,
}

// kernelVersion is a "minKernel" condition, "major.minor" in JSON.
type kernelVersion struct{ major, minor int }

// UnmarshalText parses "5.10".
func (k *kernelVersion) UnmarshalText(b []byte) error {
	v, ok := parseKernelVersion(string(b), false)
	if !ok {
		return fmt.Errorf("minKernel %q is not major.minor: %w", b, errdefs.ErrInvalidArgument)
	}
	*k = v
	return nil
}

// MarshalText prints "5.10".
func (k kernelVersion) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "%d.%d", k.major, k.minor), nil
}

// parseKernelVersion reads "major.minor"; with release, anything may follow
// the minor number, as in "6.8.0-45-generic".
func parseKernelVersion(s string, release bool) (kernelVersion, bool) {
	majorStr, rest, ok := strings.Cut(s, ".")
	if !ok {
		return kernelVersion{}, false
	}
	minorStr := rest
	if release {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			minorStr = rest[:end]
		}
	}
	major, err1 := strconv.Atoi(majorStr)
	minor, err2 := strconv.Atoi(minorStr)
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return kernelVersion{}, false
	}
	return kernelVersion{major, minor}, true
}

// kernelRelease returns the running kernel's release (uname -r). It is the
// only machine read in this file, used for "minKernel" conditions of
// Localhost profiles; tests replace it.
var kernelRelease = func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b)), err
}

// reached reports whether the running kernel is at least k.
func (k kernelVersion) reached() (bool, error) {
	rel, err := kernelRelease()
	if err != nil {
		return false, fmt.Errorf("reading the kernel version for minKernel: %w", err)
	}
	v, ok := parseKernelVersion(rel, true)
	if !ok {
		return false, fmt.Errorf("kernel release %q: cannot compare with minKernel", rel)
	}
	return v.major > k.major || v.major == k.major && v.minor >= k.minor, nil
}

func ptrTo[T any](v T) *T { return &v }
