package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The init's two pipes, inherited as ExtraFiles. The parent writes on ctlFD
// the preparation, later the configuration, and last the go-ahead byte; the
// init answers each of the first two with one status line on statusFD
// ("ready", or an error). The status pipe reaches EOF when the program's
// exec succeeds (the init marks it close-on-exec), or a last line says why
// it did not.
//
// Before the go-ahead, the parent may ask for listeners: listenRequest
// followed by a length-prefixed JSON address. The init opens each in its
// network namespace and sends it on listenFD, a Unix socket: one message
// carrying the listener's descriptor, or the error's text and none.
const (
	ctlFD    = 3
	statusFD = 4
	listenFD = 5

	listenRequest = 'l'
)

// prepConfig is what every sandbox has, whatever runs in it: what the init
// builds ahead of need.
type prepConfig struct {
	Root   string `json:"root"`
	ID     int    `json:"id"`
	UserNS bool   `json:"user_ns"`
}

// initConfig is the program's part: the Spec's fields that matter inside.
type initConfig struct {
	Code     string   `json:"code"`
	Path     string   `json:"path"`
	Args     []string `json:"args"`
	Dir      string   `json:"dir"`
	Env      []string `json:"env"`
	TmpBytes int64    `json:"tmp_bytes"`
}

func init() {
	if len(os.Args) > 0 && os.Args[0] == InitArg0 {
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
	status := os.NewFile(statusFD, "status")
	ctl := os.NewFile(ctlFD, "ctl")
	unix.CloseOnExec(statusFD)
	unix.CloseOnExec(ctlFD)
	unix.CloseOnExec(listenFD)
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
	var prep prepConfig
	if err := readConfig(ctl, &prep); err != nil {
		fail(fmt.Errorf("reading sandbox preparation: %w", err))
	}
	if err := prepareRoot(prep.Root); err != nil {
		fail(err)
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		fail(fmt.Errorf("setting hostname: %w", err))
	}
	if err := loopbackUp(); err != nil {
		fail(err)
	}
	filters, err := compileSeccomp()
	if err != nil {
		fail(err)
	}
	ready()
	// Configuration: the program. A prepared sandbox may wait here a
	// long time; EOF means gust gave up on it.
	var cfg initConfig
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
		if b[0] != listenRequest {
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
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		fail(fmt.Errorf("entering a cgroup namespace: %w", err))
	}
	if err := dropPrivileges(prep.ID, prep.UserNS); err != nil {
		fail(err)
	}
	if cfg.Dir != "" {
		if err := unix.Chdir(cfg.Dir); err != nil {
			fail(fmt.Errorf("entering %s: %w", cfg.Dir, err))
		}
	}
	// Every descriptor but stdio closes on exec: the init's pipes, and
	// anything the binary's own initialisation opened.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err := loadSeccomp(filters); err != nil {
		fail(err)
	}
	err = syscall.Exec(cfg.Path, cfg.Args, cfg.Env)
	// The filter is loaded; writing the status line is still allowed.
	fail(fmt.Errorf("exec %s: %w", cfg.Path, err))
}

// sendListener opens a TCP listener on addr and sends it to the parent on
// listenFD, or the reason it could not. The init keeps no copy: the
// program must not inherit it. Only a failure to send is returned.
func sendListener(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return unix.Sendmsg(listenFD, []byte(fmt.Sprintf("listening on %s: %v", addr, err)), nil, nil, 0)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return unix.Sendmsg(listenFD, []byte(fmt.Sprintf("listening on %s: %v", addr, err)), nil, nil, 0)
	}
	defer f.Close()
	return unix.Sendmsg(listenFD, []byte{'k'}, unix.UnixRights(int(f.Fd())), nil, 0)
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
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,nr_inodes=1024,mode=0755"); err != nil {
		return fmt.Errorf("mounting root: %w", err)
	}
	at := func(p string) string { return filepath.Join(root, p) }
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
	if err := unix.Mount("proc", at("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
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
func finishRoot(root string, id int, cfg *initConfig) error {
	at := func(p string) string { return filepath.Join(root, p) }
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
	if err := unix.Mount("tmpfs", at(TmpDir), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		"size="+strconv.FormatInt(tmpBytes, 10)+",mode=1777"); err != nil {
		return fmt.Errorf("mounting %s: %w", TmpDir, err)
	}
	if err := pivotRoot(root); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
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
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("sharing %s: %w", path, err)
		}
	default:
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
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
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	for _, f := range [...]struct{ st, ms int64 }{
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st.Flags&f.st != 0 {
			flags |= uintptr(f.ms)
		}
	}
	return unix.Mount("", dst, "", flags, "")
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
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o444); err != nil {
			return fmt.Errorf("writing /etc/%s: %w", name, err)
		}
	}
	return nil
}

// buildDev mounts a small /dev with the harmless device nodes only.
func buildDev(dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range devices {
		p := filepath.Join(dev, d)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d, err)
		}
		if err := unix.Mount("/dev/"+d, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mounting /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", name, err)
		}
	}
	return unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "")
}

// pivotRoot makes root the root directory and detaches the host's tree.
// pivot_root(".", ".") stacks the old root under the new one, so no
// directory for it is needed; unmounting "." then drops it.
func pivotRoot(root string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the old root: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering the root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return unix.Chdir("/")
}

// loopbackUp brings up lo, the one interface of a new network namespace, so
// the Runtime API and the egress proxy can listen on 127.0.0.1 inside.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}

// dropPrivileges makes the init the sandbox's unprivileged user with no
// capabilities left, in any set, now or after exec.
func dropPrivileges(id int, userNS bool) error {
	// The bounding set caps what any later exec could gain (this thread,
	// the one that execs). It needs CAP_SETPCAP, so it goes first.
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	if !userNS {
		// In a user namespace setgroups is denied (and there are no
		// supplementary groups to drop).
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("dropping supplementary groups: %w", err)
		}
	}
	// The setres* wrappers change every thread of the process.
	if err := syscall.Setresgid(id, id, id); err != nil {
		return fmt.Errorf("setting gid %d: %w", id, err)
	}
	if err := syscall.Setresuid(id, id, id); err != nil {
		return fmt.Errorf("setting uid %d: %w", id, err)
	}
	// Changing uid cleared the parent-death signal; without it the
	// sandbox would outlive a gust that died.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the parent-death signal: %w", err)
	}
	if !parentAlive() {
		return errors.New("gust exited while the sandbox started")
	}
	// A non-zero uid leaves the permitted and effective sets empty after
	// a setresuid; clear them explicitly all the same, and the inheritable
	// set with them.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return nil
}

// parentAlive reports whether the ctl pipe's writer, gust, is still there.
// A PID namespace's init has no visible parent (getppid is 0), so the pipe
// is the only witness.
func parentAlive() bool {
	fds := []unix.PollFd{{Fd: ctlFD, Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) { // the Go runtime's preemption signals
			continue
		}
		return err == nil && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) == 0
	}
}
