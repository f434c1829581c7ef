// Package initproc is the sandbox's init: gust's own binary, re-executed
// by package sandbox with argv[0] Arg0, takes over in this package's init
// function, builds the sandbox from inside and becomes the function's
// program. Its imports are kept to packages that Go initialises early (see
// package sys), so a sandbox's start-up does not pay for the rest of gust.
package initproc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/gust-dev/gust/localcloud/lambda/sandbox/internal/sys"
)

// The init's two pipes, inherited as ExtraFiles. The parent writes on CtlFD
// the preparation, later the configuration, and last the go-ahead byte; the
// init answers each of the first two with one status line on StatusFD
// ("ready", or an error). The status pipe reaches EOF when the program's
// exec succeeds (the init marks it close-on-exec), or a last line says why
// it did not.
//
// Before the go-ahead, the parent may ask for listeners: ListenRequest
// followed by a length-prefixed JSON address. The init opens each in its
// network namespace and sends it on ListenFD, a Unix socket: one message
// carrying the listener's descriptor, or the error's text and none.
const (
	CtlFD    = 3
	StatusFD = 4
	ListenFD = 5

	ListenRequest = 'l'
)

// Arg0 is the argv[0] the init is started with.
const Arg0 = "gust-sandbox-init"

// Paths inside every sandbox.
const (
	TaskDir       = "/var/task"
	TmpDir        = "/tmp"
	RuntimeBinary = "/var/runtime/gust"
)

// PrepConfig is what every sandbox has, whatever runs in it: what the init
// builds ahead of need.
type PrepConfig struct {
	Root   string `json:"root"`
	ID     int    `json:"id"`
	UserNS bool   `json:"user_ns"`
	// Filters are the seccomp filters to load, compiled by the parent
	// (the compiler's dependencies have no place in the init).
	Filters [][]Instruction `json:"filters"`
}

// Instruction is one BPF instruction of a seccomp filter.
type Instruction struct {
	Code uint16 `json:"c"`
	Jt   uint8  `json:"t"`
	Jf   uint8  `json:"f"`
	K    uint32 `json:"k"`
}

// Config is the program's part: the Spec's fields that matter inside.
type Config struct {
	Code     string   `json:"code"`
	Path     string   `json:"path"`
	Args     []string `json:"args"`
	Dir      string   `json:"dir"`
	Env      []string `json:"env"`
	TmpBytes int64    `json:"tmp_bytes"`
}

func init() {
	if len(os.Args) > 0 && os.Args[0] == Arg0 {
		runInit() // never returns
	}
}

// runInit is the sandbox's init: it builds the sandbox from inside and
// becomes the program. Any failure is reported on the status pipe and ends
// the process; nothing here can leave state on the host, since every mount
// is in the sandbox's own namespace.
func runInit() {
	// Capability bounding set, no_new_privs, the seccomp filter and the
	// parent-death signal are per thread: set them on the thread that
	// execs the program, which is the one thread that survives the exec.
	runtime.LockOSThread()
	status := os.NewFile(StatusFD, "status")
	ctl := os.NewFile(CtlFD, "ctl")
	sys.CloseOnExec(StatusFD)
	sys.CloseOnExec(CtlFD)
	sys.CloseOnExec(ListenFD)
	fail := func(err error) {
		fmt.Fprintf(status, "%v\n", err)
		os.Exit(127)
	}
	ready := func() {
		if _, err := io.WriteString(status, "ready\n"); err != nil {
			os.Exit(127)
		}
	}
	// Preparation: everything that does not depend on the program.
	var prep PrepConfig
	if err := readConfig(ctl, &prep); err != nil {
		fail(fmt.Errorf("reading sandbox preparation: %w", err))
	}
	if err := prepareRoot(prep.Root); err != nil {
		fail(err)
	}
	if err := sys.Sethostname([]byte(hostname)); err != nil {
		fail(fmt.Errorf("setting hostname: %w", err))
	}
	if err := loopbackUp(); err != nil {
		fail(err)
	}
	filters := make([][]syscall.SockFilter, len(prep.Filters))
	for i, f := range prep.Filters {
		if len(f) == 0 {
			fail(errors.New("an empty seccomp filter"))
		}
		for _, in := range f {
			filters[i] = append(filters[i], syscall.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K})
		}
	}
	ready()
	// Configuration: the program. A prepared sandbox may wait here a
	// long time; EOF means gust gave up on it.
	var cfg Config
	if err := readConfig(ctl, &cfg); err != nil {
		os.Exit(127)
	}
	if err := finishRoot(prep.Root, prep.ID, &cfg); err != nil {
		fail(err)
	}
	ready()
	// Wait for the parent's go-ahead: it joins cgroups meanwhile, and has
	// us open listeners in our network namespace. EOF means it gave up.
	for {
		var b [1]byte
		if n, _ := ctl.Read(b[:]); n != 1 {
			os.Exit(127)
		}
		if b[0] != ListenRequest {
			break
		}
		var addr string
		if err := readConfig(ctl, &addr); err != nil {
			os.Exit(127)
		}
		if err := sendListener(addr); err != nil {
			os.Exit(127)
		}
	}
	// gust has moved it into its cgroups by now: a cgroup namespace rooted
	// there hides the host's cgroup paths (and gust's pid in them) from
	// /proc/self/cgroup.
	if err := sys.Unshare(sys.CLONE_NEWCGROUP); err != nil {
		fail(fmt.Errorf("entering a cgroup namespace: %w", err))
	}
	if err := dropPrivileges(prep.ID, prep.UserNS); err != nil {
		fail(err)
	}
	if cfg.Dir != "" {
		if err := sys.Chdir(cfg.Dir); err != nil {
			fail(fmt.Errorf("entering %s: %w", cfg.Dir, err))
		}
	}
	// Every descriptor but stdio closes on exec: the init's pipes, and
	// anything the binary's own initialisation opened.
	_ = sys.CloseRange(3, ^uint(0), sys.CLOSE_RANGE_CLOEXEC)
	for i, f := range filters {
		if err := sys.LoadSeccomp(f); err != nil {
			fail(fmt.Errorf("loading seccomp filter %d: %w", i, err))
		}
	}
	err := syscall.Exec(cfg.Path, cfg.Args, cfg.Env)
	// The filter is loaded; writing the status line is still allowed.
	fail(fmt.Errorf("exec %s: %w", cfg.Path, err))
}

// sendListener opens a TCP listener on addr and sends it to the parent on
// ListenFD, or the reason it could not. The init keeps no copy: the
// program must not inherit it. Only a failure to send is returned.
func sendListener(addr string) error {
	fd, err := listen(addr)
	if err != nil {
		return sys.Sendmsg(ListenFD, []byte(fmt.Sprintf("listening on %s: %v", addr, err)), nil, nil, 0)
	}
	defer sys.Close(fd)
	return sys.Sendmsg(ListenFD, []byte{'k'}, sys.UnixRights(fd), nil, 0)
}

// listen opens a TCP listener on addr, an IPv4 address and port such as
// 127.0.0.1:9001.
func listen(addr string) (int, error) {
	host, portText, ok := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portText)
	if !ok || err != nil || port < 1 || port > 65535 {
		return -1, fmt.Errorf("bad address %q", addr)
	}
	var ip [4]byte
	parts := strings.Split(host, ".")
	if len(parts) != 4 {
		return -1, fmt.Errorf("bad address %q", addr)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return -1, fmt.Errorf("bad address %q", addr)
		}
		ip[i] = byte(n)
	}
	return sys.ListenTCP4(ip, port)
}

func readConfig(r io.Reader, cfg any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 1<<20 {
		return fmt.Errorf("configuration of %d bytes is too large", size)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	return json.Unmarshal(buf, cfg)
}

// System directories shown read-only; missing ones are skipped, symlinks
// (a merged /usr) are recreated as symlinks.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// Public host files and directories under /etc that runtimes need: CA
// certificates for TLS, alternatives (targets of /usr/bin symlinks) and the
// dynamic linker's cache. None holds a secret.
var sharedEtc = []string{"/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/alternatives", "/etc/ld.so.cache"}

// Device nodes bound from the host's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// hostname is every sandbox's host name.
const hostname = "sandbox"

// prepareRoot mounts the part of the sandbox's root filesystem on root
// that every sandbox shares: the system directories, /dev and /proc.
func prepareRoot(root string) error {
	// Nothing mounted from here on may propagate back to the host.
	if err := sys.Mount("", "/", "", sys.MS_REC|sys.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := sys.Mount("tmpfs", root, "tmpfs", sys.MS_NOSUID|sys.MS_NODEV, "size=1m,nr_inodes=1024,mode=0755"); err != nil {
		return fmt.Errorf("mounting root: %w", err)
	}
	at := func(p string) string { return join(root, p) }
	for _, d := range []string{"etc", "tmp", "proc", "dev", "var/task", "var/runtime"} {
		if err := os.MkdirAll(at(d), 0o755); err != nil {
			return fmt.Errorf("creating /%s: %w", d, err)
		}
	}
	for _, d := range systemDirs {
		if err := shareHostPath(d, at(d)); err != nil {
			return err
		}
	}
	for _, p := range sharedEtc {
		if err := shareHostPath(p, at(p)); err != nil {
			return err
		}
	}
	if err := buildDev(at("dev")); err != nil {
		return err
	}
	shareRuntimeBinary(at(RuntimeBinary))
	if err := sys.Mount("proc", at("proc"), "proc", sys.MS_NOSUID|sys.MS_NODEV|sys.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := bindReadOnly(at("proc/sys"), at("proc/sys")); err != nil {
		return fmt.Errorf("making /proc/sys read-only: %w", err)
	}
	return nil
}

// shareRuntimeBinary shows gust's own binary (this process's) read-only at
// dst, so gust's sample handler mode runs in a sandbox as Lambda's runtime
// runs from /var/runtime. It is a convenience, not part of the isolation:
// where the binary cannot be reached (a user namespace's uid may not see a
// binary under another user's directory), the sandbox goes without it.
func shareRuntimeBinary(dst string) {
	self, err := os.Executable()
	if err != nil {
		return
	}
	if err := os.WriteFile(dst, nil, 0o555); err != nil {
		return
	}
	if err := bindReadOnly(self, dst); err != nil {
		_ = os.Remove(dst)
	}
}

// finishRoot adds the program's part to the root filesystem on root (its
// code, /tmp, /etc) and enters it with pivot_root.
func finishRoot(root string, id int, cfg *Config) error {
	at := func(p string) string { return join(root, p) }
	if err := writeEtc(at("etc"), id); err != nil {
		return err
	}
	if err := bindReadOnly(cfg.Code, at(TaskDir)); err != nil {
		return fmt.Errorf("mounting the code at %s: %w", TaskDir, err)
	}
	tmpBytes := cfg.TmpBytes
	if tmpBytes <= 0 {
		tmpBytes = 512 << 20
	}
	if err := sys.Mount("tmpfs", at(TmpDir), "tmpfs", sys.MS_NOSUID|sys.MS_NODEV,
		"size="+strconv.FormatInt(tmpBytes, 10)+",mode=1777"); err != nil {
		return fmt.Errorf("mounting %s: %w", TmpDir, err)
	}
	if err := pivotRoot(root); err != nil {
		return err
	}
	if err := sys.Mount("", "/", "", sys.MS_REMOUNT|sys.MS_RDONLY|sys.MS_NOSUID|sys.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	return nil
}

// shareHostPath shows the host's path at dst, read-only: a directory or a
// file as a bind mount, a symlink as the same symlink. A path the host does
// not have is skipped.
func shareHostPath(path, dst string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("sharing %s: %w", path, err)
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
		if err := os.MkdirAll(dir(dst), 0o755); err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
	default:
		if err := os.MkdirAll(dir(dst), 0o755); err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
		if err := os.WriteFile(dst, nil, 0o444); err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
	}
	if err := bindReadOnly(path, dst); err != nil {
		return fmt.Errorf("sharing %s: %w", path, err)
	}
	return nil
}

// bindReadOnly bind-mounts src on dst and makes the bind read-only, nosuid
// and nodev. A remount must keep the flags the kernel locked on src (in a
// user namespace, any of them), so they are read from src first.
func bindReadOnly(src, dst string) error {
	if err := sys.Mount(src, dst, "", sys.MS_BIND|sys.MS_REC, ""); err != nil {
		return err
	}
	var st sys.Statfs_t
	if err := sys.Statfs(dst, &st); err != nil {
		return err
	}
	flags := uintptr(sys.MS_BIND | sys.MS_REMOUNT | sys.MS_RDONLY | sys.MS_NOSUID | sys.MS_NODEV)
	for _, f := range [...]struct{ st, ms int64 }{
		{sys.ST_NOEXEC, sys.MS_NOEXEC},
		{sys.ST_NOATIME, sys.MS_NOATIME},
		{sys.ST_NODIRATIME, sys.MS_NODIRATIME},
		{sys.ST_RELATIME, sys.MS_RELATIME},
	} {
		if st.Flags&f.st != 0 {
			flags |= uintptr(f.ms)
		}
	}
	return sys.Mount("", dst, "", flags, "")
}

// writeEtc writes the generated files of /etc. The program's user is
// sbx_user, as Lambda names its own.
func writeEtc(etc string, uid int) error {
	id := strconv.Itoa(uid)
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
			"sbx_user:x:" + id + ":" + id + "::" + TmpDir + ":/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":    "root:x:0:\nsbx_user:x:" + id + ":\nnogroup:x:65534:\n",
		"hosts":    "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"hostname": hostname + "\n",
		// No resolver inside: names are resolved by the egress proxy, the
		// sandbox's only way out (HTTP_PROXY).
		"resolv.conf":   "# gust sandbox: no DNS; connections go through HTTP_PROXY\noptions timeout:1 attempts:1\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
	}
	for name, body := range files {
		if err := os.WriteFile(join(etc, name), []byte(body), 0o444); err != nil {
			return fmt.Errorf("writing /etc/%s: %w", name, err)
		}
	}
	return nil
}

// buildDev mounts a small /dev with the harmless device nodes only.
func buildDev(dev string) error {
	if err := sys.Mount("tmpfs", dev, "tmpfs", sys.MS_NOSUID|sys.MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range devices {
		p := join(dev, d)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d, err)
		}
		if err := sys.Mount("/dev/"+d, p, "", sys.MS_BIND, ""); err != nil {
			return fmt.Errorf("mounting /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, join(dev, name)); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", name, err)
		}
	}
	return sys.Mount("", dev, "", sys.MS_REMOUNT|sys.MS_RDONLY|sys.MS_NOSUID|sys.MS_NOEXEC, "")
}

// pivotRoot makes root the root directory and detaches the host's tree.
// pivot_root(".", ".") stacks the old root under the new one, so no
// directory for it is needed; unmounting "." then drops it.
func pivotRoot(root string) error {
	oldRoot, err := sys.Open("/", sys.O_DIRECTORY|sys.O_RDONLY|sys.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the old root: %w", err)
	}
	defer sys.Close(oldRoot)
	if err := sys.Chdir(root); err != nil {
		return fmt.Errorf("entering the root: %w", err)
	}
	if err := sys.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := sys.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := sys.Mount("", ".", "", sys.MS_SLAVE|sys.MS_REC, ""); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := sys.Unmount(".", sys.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return sys.Chdir("/")
}

// loopbackUp brings up lo, the one interface of a new network namespace, so
// the Runtime API and the egress proxy can listen on 127.0.0.1 inside.
func loopbackUp() error {
	fd, err := sys.Socket(sys.AF_INET, sys.SOCK_DGRAM|sys.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	defer sys.Close(fd)
	ifr, err := sys.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	if err := sys.IoctlIfreq(fd, sys.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | sys.IFF_UP)
	if err := sys.IoctlIfreq(fd, sys.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}

// dropPrivileges makes the init the sandbox's unprivileged user with no
// capabilities left, in any set, now or after exec.
func dropPrivileges(id int, userNS bool) error {
	// The bounding set caps what any later exec could gain (this thread,
	// the one that execs). It needs CAP_SETPCAP, so it goes first.
	for c := 0; c <= sys.CAP_LAST_CAP; c++ {
		if err := sys.Prctl(sys.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, sys.EINVAL) {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if err := sys.Prctl(sys.PR_CAP_AMBIENT, sys.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	if !userNS {
		// In a user namespace setgroups is denied (and there are no
		// supplementary groups to drop).
		if err := sys.ThreadSetgroups(); err != nil {
			return fmt.Errorf("dropping supplementary groups: %w", err)
		}
	}
	// This thread's credentials only: it is the one that execs, and the
	// only one left after the exec. Changing every thread (syscall's
	// Setresuid) stops the init's whole runtime to signal each thread,
	// which costs milliseconds on a busy machine for nothing: the other
	// threads run only the init's own code until the exec ends them.
	if err := sys.ThreadSetresgid(id); err != nil {
		return fmt.Errorf("setting gid %d: %w", id, err)
	}
	if err := sys.ThreadSetresuid(id); err != nil {
		return fmt.Errorf("setting uid %d: %w", id, err)
	}
	// Changing uid cleared the parent-death signal; without it the
	// sandbox would outlive a gust that died.
	if err := sys.Prctl(sys.PR_SET_PDEATHSIG, uintptr(sys.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the parent-death signal: %w", err)
	}
	if !parentAlive() {
		return errors.New("gust exited while the sandbox started")
	}
	// A non-zero uid leaves the permitted and effective sets empty after
	// a setresuid; clear them explicitly all the same, and the inheritable
	// set with them.
	hdr := sys.CapUserHeader{Version: sys.LINUX_CAPABILITY_VERSION_3}
	var data [2]sys.CapUserData
	if err := sys.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing capabilities: %w", err)
	}
	if err := sys.Prctl(sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return nil
}

// parentAlive reports whether the ctl pipe's writer, gust, is still there.
// A PID namespace's init has no visible parent (getppid is 0), so the pipe
// is the only witness.
func parentAlive() bool {
	fds := []sys.PollFd{{Fd: CtlFD, Events: sys.POLLIN}}
	for {
		_, err := sys.Poll(fds, 0)
		if errors.Is(err, sys.EINTR) { // the Go runtime's preemption signals
			continue
		}
		return err == nil && fds[0].Revents&(sys.POLLHUP|sys.POLLERR) == 0
	}
}

// join and dir are path/filepath's Join and Dir for the clean, absolute
// paths the init builds, without importing path/filepath (see package sys
// on why the init's imports matter).
func join(dir, name string) string {
	return strings.TrimSuffix(dir, "/") + "/" + strings.TrimPrefix(name, "/")
}

func dir(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}
