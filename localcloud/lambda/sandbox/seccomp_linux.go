package sandbox

import (
	"fmt"
	"sync"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/gust-dev/gust/localcloud/lambda/sandbox/internal/initproc"
)

// deniedSyscalls fail with EPERM inside a sandbox. They are the calls a
// function has no business making, after Docker's default profile
// (github.com/moby/profiles/seccomp): changing mounts and namespaces,
// tracing or reading other processes, loading code into the kernel, kernel
// keyrings, perf and BPF, io_uring, clocks, swap, reboot. Most already fail
// for an unprivileged uid without capabilities; denying them here also
// removes the kernel code behind them from the attack surface.
var deniedSyscalls = []string{
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"open_by_handle_at", "name_to_handle_at",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "userfaultfd",
	"keyctl", "add_key", "request_key",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "lookup_dcookie", "uselib", "sethostname", "setdomainname",
}

// cloneNamespaceFlags are the clone flags that create namespaces. clone
// with any of them is denied like unshare (CLONE_NEWUSER needs no
// privilege, and a user namespace of its own would hand the function
// capabilities over new namespaces).
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// policy is the sandbox's seccomp policy.
func policy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: deniedSyscalls},
			{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{{
				Name:       "clone",
				Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNamespaceFlags}},
			}}},
		},
	}
}

// compileSeccomp builds the sandbox's filters, for its init to load before
// it execs the program: the policy, built by go-seccomp-bpf; a guard that
// kills a process making a call through another architecture's ABI (32-bit
// int 0x80 on x86-64), which the policy's filter lets through to its
// default action; and clone3's. The kernel runs all three and the strictest
// answer wins.
func compileSeccomp() ([][]initproc.Instruction, error) {
	compileOnce.Do(func() {
		native, err := arch.GetInfo("")
		if err != nil {
			compileErr = fmt.Errorf("seccomp: %w", err)
			return
		}
		p := policy()
		insts, err := p.Assemble()
		if err != nil {
			compileErr = fmt.Errorf("assembling the seccomp policy: %w", err)
			return
		}
		for _, prog := range [][]bpf.Instruction{archGuard(uint32(native.ID)), insts, clone3Guard()} {
			raw, err := bpf.Assemble(prog)
			if err != nil {
				compileErr = fmt.Errorf("assembling a seccomp filter: %w", err)
				return
			}
			filter := make([]initproc.Instruction, len(raw))
			for i, r := range raw {
				filter[i] = initproc.Instruction{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
			}
			compiled = append(compiled, filter)
		}
	})
	return compiled, compileErr
}

// The filters are the same for every sandbox: compiled once.
var (
	compileOnce sync.Once
	compiled    [][]initproc.Instruction
	compileErr  error
)

// archGuard kills a process that makes a call through an architecture's
// ABI other than native's: no function needs one, and the policy would let
// it through.
func archGuard(native uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: native, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
	}
}

// clone3Guard answers ENOSYS to clone3, which passes its flags in memory,
// where a filter cannot read them: libc then falls back to clone, whose
// flags the policy can check.
func clone3Guard() []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 4}, // seccomp_data.nr
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_CLONE3, SkipFalse: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
	}
}
