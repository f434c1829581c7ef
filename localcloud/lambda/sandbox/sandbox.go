// Package sandbox runs one program in a sandbox that gust builds itself out
// of Linux primitives, with no container runtime and no daemon: new PID,
// mount, IPC, UTS and network namespaces (and a user namespace when gust is
// not root), its own root filesystem entered with pivot_root, an
// unprivileged uid and gid of its own, no capabilities, no_new_privs and a
// seccomp filter.
//
// # How a sandbox starts
//
// Prepare re-executes the running binary (/proc/self/exe) as the
// sandbox's init, cloned straight into the new namespaces. The init
// function of package initproc (imported by this one, so in every binary
// that can start a sandbox) recognises that process by its argv[0]
// (InitArg0) and never returns to the program's own main; that package
// imports little, so the binary's other packages are mostly not
// initialised in it. The init builds the part of the root filesystem every
// sandbox shares, brings up its loopback interface and reports ready: a
// sandbox can be prepared ahead of need. Configure gives it its program:
// the init mounts the code, /tmp and /etc and enters the finished root
// with pivot_root. The parent then does what must happen from outside: it
// joins the init to its cgroups, and has the init open listeners in the
// sandbox's network namespace and hand them over (Process.Listen). Only
// then does Release let the init enter a cgroup namespace, drop to the
// sandbox's uid, shed every capability, set no_new_privs, load the seccomp
// filter and exec the program, which becomes PID 1 of the sandbox's PID
// namespace. When it exits or is killed, the kernel kills everything else
// in the namespace.
//
// The root filesystem holds:
//
//	/usr /bin /sbin /lib* read-only binds of the host's (symlinks copied as symlinks)
//	/etc                  generated passwd, group, hosts, resolv.conf, nsswitch.conf, hostname;
//	                      the host's CA certificates, alternatives and ld.so.cache, read-only
//	/var/task             the program's code, a read-only bind
//	/var/runtime/gust     gust's own binary, read-only (RuntimeBinary)
//	/tmp                  a private tmpfs of Spec.TmpBytes
//	/proc                 a fresh procfs of the sandbox's PID namespace (/proc/sys read-only)
//	/dev                  null, zero, full, random, urandom
//
// and the root itself is a read-only tmpfs, so nothing else of the host is
// visible.
package sandbox

import (
	"errors"

	"github.com/gust-dev/gust/localcloud/lambda/sandbox/internal/initproc"
)

// InitArg0 is the argv[0] the sandbox's init is started with. A binary that
// imports this package (directly or not) serves as the init when started
// with it.
const InitArg0 = initproc.Arg0

// Sandboxed programs run as uids (with gids of the same number) from
// FirstID to FirstID+NumIDs-1, one to each live sandbox. The range is far
// above the ids distributions and subordinate-id ranges hand out, so no
// file or process on the host belongs to one.
const (
	FirstID = 1_500_000_000
	NumIDs  = 65536
)

// Paths inside every sandbox.
const (
	TaskDir = initproc.TaskDir
	TmpDir  = initproc.TmpDir
	// RuntimeBinary is gust's own binary, read-only, as Lambda provides
	// its runtime under /var/runtime: gust's sample handler mode runs from
	// it. It is the public program every user of gust has; it holds no
	// state and no secret.
	RuntimeBinary = initproc.RuntimeBinary
)

// Options are what a sandbox is prepared with, before anyone knows what
// will run in it (Prepare): the costly part of a sandbox, a process in new
// namespaces with the shared part of its root filesystem, can be done ahead
// of need.
type Options struct {
	// Root is an empty directory, on the host, that the sandbox's root
	// filesystem is mounted on. The mounts exist only in the sandbox's own
	// mount namespace: on the host it stays an empty directory.
	Root string
	// ID is the uid and gid the program runs as, from IDs.
	ID int
	// UserNS builds the sandbox inside a new user namespace in which ID
	// maps to HostID. It is required when gust is not root, and allowed
	// when it is (the tests use it to cover that path).
	UserNS bool
	HostID int
	// Background prepares the sandbox at the lowest CPU priority, for one
	// prepared ahead of need; Configure restores the normal priority.
	Background bool
	// SplitStderr gives the sandbox's stderr a pipe of its own
	// (Process.Stderr), so a reader can tell it from stdout; without it
	// both go to Process.Output.
	SplitStderr bool
}

// Spec is the program a prepared sandbox runs (Process.Configure).
type Spec struct {
	// Code is the host directory shown read-only at /var/task. Its files
	// should be owned by root and not writable, so that the sandbox's uid
	// cannot change them even through another path.
	Code string
	// Path and Args are the program to run, as seen inside the sandbox
	// (for example /var/task/bootstrap), and its arguments (Args[0] is the
	// program's name). Dir is its working directory inside.
	Path string
	Args []string
	Dir  string
	// Env is the program's complete environment.
	Env []string
	// TmpBytes bounds /tmp; 0 means 512 MiB.
	TmpBytes int64
}

// ErrUnsupported is returned where sandboxes cannot be built at all.
var ErrUnsupported = errors.New("sandboxes need Linux")
