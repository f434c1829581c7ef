// Command hostile is a deliberately malicious Lambda function for the local
// cloud's security tests (lambdatest.BuildHostile builds it as a bootstrap).
// Its input names an attack and its targets; it carries the attack out and
// returns a JSON report of exactly what happened: for every target, whether
// the operation succeeded, and if not, its errno and error text. It never
// decides whether the sandbox held: the test does.
//
// Every attack is written to be harmless to the machine when it runs
// without a sandbox (Isolation "none", which the tests use to show their
// assertions can fail): destructive calls get arguments the kernel rejects
// after the seccomp filter would have (an invalid size, a path that does not
// exist), files are opened but never written, and what it fills or starts
// it removes or kills before answering.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"golang.org/x/sys/unix"
)

// Request names one attack and its targets.
type Request struct {
	Attack string `json:"attack"`
	// Paths are files or directories to read (read, environ) or open for
	// writing (write).
	Paths []string `json:"paths,omitempty"`
	// Pids get kill(pid, 0); KillPids get kill(pid, SIGKILL).
	Pids     []int `json:"pids,omitempty"`
	KillPids []int `json:"kill_pids,omitempty"`
	// Addrs are TCP host:port, or @name for an abstract unix socket.
	Addrs []string `json:"addrs,omitempty"`
	// Secret is searched for in every /proc/*/environ (environ).
	Secret string `json:"secret,omitempty"`
	// MaxMB bounds fill_tmp; Max bounds fork_bomb.
	MaxMB int `json:"max_mb,omitempty"`
	Max   int `json:"max,omitempty"`
	// SleepMS and AllocMB are for sleep and alloc.
	SleepMS int `json:"sleep_ms,omitempty"`
	AllocMB int `json:"alloc_mb,omitempty"`
	// ShmKey is a System V shared memory key to look up (ipc).
	ShmKey int `json:"shm_key,omitempty"`
	// Fetches are HTTP requests (fetch).
	Fetches []Fetch `json:"fetches,omitempty"`
}

// Fetch is one HTTP request of the fetch attack.
type Fetch struct {
	// URL is fetched with GET. Via says how: "env" (net/http's default
	// transport, which honours HTTP_PROXY and NO_PROXY), "proxy" (always
	// through HTTP_PROXY, even for hosts NO_PROXY lists) or "direct" (no
	// proxy at all).
	URL string `json:"url,omitempty"`
	Via string `json:"via,omitempty"`
	// Connect, when set, is a host:port to open a CONNECT tunnel to
	// through HTTPS_PROXY; Path is then requested over the tunnel with
	// plain HTTP.
	Connect string `json:"connect,omitempty"`
	Path    string `json:"path,omitempty"`
}

// Outcome is what became of one operation on one target.
type Outcome struct {
	Op     string `json:"op"`
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	// Errno is the error's errno name (ENOENT), when it has one.
	Errno string `json:"errno,omitempty"`
	Error string `json:"error,omitempty"`
	// Detail is what the operation returned: the start of a file, a
	// directory listing, a response body.
	Detail    string `json:"detail,omitempty"`
	Status    int    `json:"status,omitempty"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

// Proc is a process the function can see in its /proc.
type Proc struct {
	Pid  int    `json:"pid"`
	PPid int    `json:"ppid"`
	Uid  int    `json:"uid"`
	Sid  int    `json:"sid"`
	Pgid int    `json:"pgid"`
	Comm string `json:"comm"`
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point   string `json:"point"`
	Options string `json:"options"`
	FSType  string `json:"fstype"`
}

// Identity is who and where the function is.
type Identity struct {
	Uid, Gid, Euid, Egid int
	Groups               []int
	Pid, PPid            int
	Hostname             string
	TenantID             string
	FunctionName         string
	// From /proc/self/status.
	CapEff, CapPrm, CapInh, CapBnd, CapAmb string
	NoNewPrivs, Seccomp                    int
	// StartupFDs are the descriptors the process had when main started,
	// fd number to readlink target.
	StartupFDs map[int]string
	Mounts     []Mount
	RuntimeAPI string
	HTTPProxy  string
}

// Report is the function's answer.
type Report struct {
	Attack string `json:"attack"`
	// Self is the function's pid, as it sees it.
	Self     int       `json:"self"`
	Outcomes []Outcome `json:"outcomes,omitempty"`
	Identity *Identity `json:"identity,omitempty"`
	// Visible are the processes of /proc (environ, processes,
	// spawn_orphans).
	Visible []Proc `json:"visible,omitempty"`
	// SecretIn lists the environ files that held the secret (environ).
	SecretIn []string `json:"secret_in,omitempty"`
	// Bytes written (fill_tmp), processes started (fork_bomb), and how
	// it ended.
	Bytes   int64  `json:"bytes,omitempty"`
	Spawned int    `json:"spawned,omitempty"`
	Errno   string `json:"errno,omitempty"`
	Error   string `json:"error,omitempty"`
	// Threads is the process's thread count when fork_bomb stopped.
	Threads int `json:"threads,omitempty"`
	// SpawnMS and ReapMS time fork_bomb's two phases.
	SpawnMS int64 `json:"spawn_ms,omitempty"`
	ReapMS  int64 `json:"reap_ms,omitempty"`
}

var startupFDs map[int]string

// abi32Arg makes the program, started with it as its only argument, make a
// system call through the 32-bit ABI and print the result instead of
// serving invocations (attack abi32 starts it so).
const abi32Arg = "hostile-abi32"

func main() {
	if len(os.Args) == 2 && os.Args[1] == abi32Arg {
		fmt.Printf("int 0x80 getpid returned %d (pid %d)\n", int(int80(i386Getpid, 0, 0, 0)), os.Getpid())
		return
	}
	startupFDs = listFDs()
	awslambda.Start(handle)
}

func handle(ctx context.Context, req Request) (*Report, error) {
	r := &Report{Attack: req.Attack, Self: os.Getpid()}
	switch req.Attack {
	case "identity":
		r.Identity = identity(ctx)
	case "environ":
		environ(r, req)
	case "read":
		for _, p := range req.Paths {
			r.Outcomes = append(r.Outcomes, read(p))
		}
	case "processes":
		processes(r, req)
	case "connect":
		for _, a := range req.Addrs {
			r.Outcomes = append(r.Outcomes, connect(a))
		}
	case "write":
		for _, p := range req.Paths {
			r.Outcomes = append(r.Outcomes, write(p))
		}
	case "syscalls":
		r.Outcomes = syscalls()
	case "tmp":
		r.Outcomes = ownTmp()
	case "fill_tmp":
		fillTmp(r, req.MaxMB)
	case "fork_bomb":
		forkBomb(r, req.Max)
	case "spawn_orphans":
		r.Outcomes = spawnOrphans()
		time.Sleep(100 * time.Millisecond) // let them start
		r.Visible = visible()
	case "abi32":
		r.Outcomes = append(r.Outcomes, abi32())
	case "ipc":
		r.Outcomes = append(r.Outcomes, shm(req.ShmKey))
	case "fetch":
		for _, f := range req.Fetches {
			r.Outcomes = append(r.Outcomes, fetch(f))
		}
	case "sleep":
		// Regardless of ctx's deadline: the platform must enforce it.
		time.Sleep(time.Duration(req.SleepMS) * time.Millisecond)
	case "alloc":
		b := make([]byte, req.AllocMB<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		r.Bytes = int64(len(b))
	default:
		return nil, fmt.Errorf("unknown attack %q", req.Attack)
	}
	return r, nil
}

// outcome records the result of op on target, started at start.
func outcome(op, target string, start time.Time, err error) Outcome {
	o := Outcome{Op: op, Target: target, OK: err == nil, ElapsedMS: time.Since(start).Milliseconds()}
	if err != nil {
		o.Error = err.Error()
		o.Errno = errnoName(err)
	}
	return o
}

func errnoName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return "errno " + strconv.Itoa(int(en))
	}
	return ""
}

func clip(b []byte) string {
	const max = 2048
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

func identity(ctx context.Context) *Identity {
	id := &Identity{Uid: os.Getuid(), Gid: os.Getgid(), Euid: os.Geteuid(), Egid: os.Getegid(),
		Pid: os.Getpid(), PPid: os.Getppid(), StartupFDs: startupFDs,
		RuntimeAPI: os.Getenv("AWS_LAMBDA_RUNTIME_API"), HTTPProxy: os.Getenv("HTTP_PROXY"),
		FunctionName: lambdacontext.FunctionName}
	id.Groups, _ = os.Getgroups()
	id.Hostname, _ = os.Hostname()
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		id.TenantID = lc.TenantID
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "CapEff":
				id.CapEff = v
			case "CapPrm":
				id.CapPrm = v
			case "CapInh":
				id.CapInh = v
			case "CapBnd":
				id.CapBnd = v
			case "CapAmb":
				id.CapAmb = v
			case "NoNewPrivs":
				id.NoNewPrivs, _ = strconv.Atoi(v)
			case "Seccomp":
				id.Seccomp, _ = strconv.Atoi(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			pre, post, _ := strings.Cut(line, " - ")
			f, tail := strings.Fields(pre), strings.Fields(post)
			if len(f) < 6 {
				continue
			}
			m := Mount{Point: f[4], Options: f[5]}
			if len(tail) > 0 {
				m.FSType = tail[0]
			}
			id.Mounts = append(id.Mounts, m)
		}
	}
	return id
}

// listFDs lists the process's open descriptors with raw system calls, so
// the listing opens nothing but its own directory descriptor (left out).
func listFDs() map[int]string {
	fds := map[int]string{}
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fds[-1] = err.Error()
		return fds
	}
	defer unix.Close(dir)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dir, buf)
		if err != nil || n <= 0 {
			break
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		for _, name := range names {
			fd, err := strconv.Atoi(name)
			if err != nil || fd == dir {
				continue
			}
			target, err := os.Readlink("/proc/self/fd/" + name)
			if err != nil {
				target = "?" + err.Error()
			}
			fds[fd] = target
		}
	}
	return fds
}

// visible lists the processes of /proc.
func visible() []Proc {
	var out []Proc
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := Proc{Pid: pid, Uid: -1}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/status"); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "Uid:"); ok {
					if f := strings.Fields(v); len(f) > 0 {
						p.Uid, _ = strconv.Atoi(f[0])
					}
				}
			}
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			// pid (comm) state ppid pgrp session ...
			s := string(b)
			if i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')'); i >= 0 && j > i {
				p.Comm = s[i+1 : j]
				f := strings.Fields(s[j+1:])
				if len(f) > 3 {
					p.PPid, _ = strconv.Atoi(f[1])
					p.Pgid, _ = strconv.Atoi(f[2])
					p.Sid, _ = strconv.Atoi(f[3])
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// environ reads every /proc/[0-9]*/environ it can see, and the extra
// paths, looking for the secret.
func environ(r *Report, req Request) {
	paths, _ := filepath.Glob("/proc/[0-9]*/environ")
	paths = append(paths, req.Paths...)
	for _, p := range paths {
		start := time.Now()
		b, err := os.ReadFile(p)
		o := outcome("read", p, start, err)
		if err == nil {
			o.Detail = clip(bytes.ReplaceAll(b, []byte{0}, []byte{'\n'}))
			if req.Secret != "" && bytes.Contains(b, []byte(req.Secret)) {
				r.SecretIn = append(r.SecretIn, p)
			}
		}
		r.Outcomes = append(r.Outcomes, o)
	}
	r.Visible = visible()
}

// read reads a file, or lists a directory.
func read(p string) Outcome {
	start := time.Now()
	f, err := os.Open(p)
	if err != nil {
		return outcome("read", p, start, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		names, err := f.Readdirnames(100)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		o := outcome("list", p, start, err)
		o.Detail = strings.Join(names, "\n")
		return o
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	o := outcome("read", p, start, err)
	o.Detail = clip(b)
	return o
}

func processes(r *Report, req Request) {
	r.Visible = visible()
	for _, pid := range req.Pids {
		start := time.Now()
		r.Outcomes = append(r.Outcomes, outcome("kill0", strconv.Itoa(pid), start, syscall.Kill(pid, 0)))
	}
	for _, pid := range req.KillPids {
		start := time.Now()
		r.Outcomes = append(r.Outcomes, outcome("sigkill", strconv.Itoa(pid), start, syscall.Kill(pid, syscall.SIGKILL)))
	}
}

// connect opens a TCP connection (or an abstract unix socket's, for
// @name) and closes it at once.
func connect(addr string) Outcome {
	network := "tcp"
	if strings.HasPrefix(addr, "@") {
		network = "unix"
	}
	start := time.Now()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return outcome("connect", addr, start, err)
}

// write opens p for writing, creating it if missing; it never writes a
// byte, and removes a file it created.
func write(p string) Outcome {
	start := time.Now()
	_, statErr := os.Lstat(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	o := outcome("open-write", p, start, err)
	if err == nil {
		f.Close()
		if statErr != nil {
			os.Remove(p)
		}
	}
	return o
}

// syscalls makes the calls the seccomp filter denies, each with arguments
// the kernel itself would reject or that do no harm, so that without a
// filter they fail differently (or succeed harmlessly).
func syscalls() []Outcome {
	var out []Outcome
	run := func(op string, f func() error) {
		start := time.Now()
		out = append(out, outcome(op, "", start, f()))
	}
	tmp := os.TempDir()
	run("mount", func() error {
		dir := filepath.Join(tmp, "hostile-mnt")
		os.Mkdir(dir, 0o700)
		defer os.Remove(dir)
		err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m")
		if err == nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
		return err
	})
	// A path that is not a mount point: EINVAL without a filter.
	run("umount2", func() error { return unix.Unmount(filepath.Join(tmp, "not-a-mount"), unix.MNT_DETACH) })
	// Paths that do not exist: ENOENT without a filter.
	run("pivot_root", func() error { return unix.PivotRoot("/nonexistent-new-root", "/nonexistent-old-root") })
	run("chroot", func() error { return unix.Chroot("/nonexistent-root") })
	run("ptrace", ptraceChild)
	// Go programs are multithreaded: EINVAL without a filter.
	run("unshare(CLONE_NEWUSER)", func() error { return unix.Unshare(unix.CLONE_NEWUSER) })
	run("unshare(CLONE_NEWNET|CLONE_NEWUSER)", func() error { return unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWUSER) })
	// A single-threaded program's unshare, as a real exploit would do it.
	if _, err := os.Stat("/usr/bin/unshare"); err == nil {
		run("unshare -U (command)", func() error {
			out, err := exec.Command("/usr/bin/unshare", "-U", "/bin/true").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
			}
			return nil
		})
	}
	run("clone(CLONE_NEWUSER|CLONE_NEWNS)", func() error {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS}
		return cmd.Run()
	})
	// clone3 with a size of 0: EINVAL without a filter.
	run("clone3", func() error { return rawErr(unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)) })
	// An invalid descriptor: EBADF without a filter.
	run("setns", func() error { return unix.Setns(-1, unix.CLONE_NEWNET) })
	// A NULL attribute: EFAULT (or EPERM) without a filter.
	run("bpf", func() error { return rawErr(unix.Syscall(unix.SYS_BPF, 0, 0, 0)) })
	// Harmless without a filter: looks up the session keyring.
	run("keyctl", func() error {
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
		return err
	})
	run("perf_event_open", func() error {
		return rawErr(unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0))
	})
	run("init_module", func() error { return rawErr(unix.Syscall(unix.SYS_INIT_MODULE, 0, 0, 0)) })
	run("io_uring_setup", func() error { return rawErr(unix.Syscall(unix.SYS_IO_URING_SETUP, 0, 0, 0)) })
	// A name over 64 bytes: EINVAL without a filter.
	run("sethostname", func() error { return unix.Sethostname(bytes.Repeat([]byte{'x'}, 100)) })
	return out
}

func rawErr(_, _ uintptr, errno syscall.Errno) error {
	if errno != 0 {
		return errno
	}
	return nil
}

// ptraceChild attaches to a child of its own: allowed without a filter
// for the same uid.
func ptraceChild() error {
	cmd := exec.Command("/bin/sleep", "10")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting a child: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := unix.PtraceAttach(cmd.Process.Pid)
	if err == nil {
		var ws unix.WaitStatus
		unix.Wait4(cmd.Process.Pid, &ws, unix.WALL, nil)
		unix.PtraceDetach(cmd.Process.Pid)
	}
	return err
}

// ownTmp writes and reads back a file in its own /tmp.
func ownTmp() []Outcome {
	p := filepath.Join(os.TempDir(), "hostile-own-file")
	start := time.Now()
	err := os.WriteFile(p, []byte("mine"), 0o600)
	out := []Outcome{outcome("write", p, start, err)}
	start = time.Now()
	b, err := os.ReadFile(p)
	o := outcome("read", p, start, err)
	o.Detail = string(b)
	out = append(out, o)
	os.Remove(p)
	return out
}

// fillTmp writes to its TMPDIR until the write fails or maxMB is
// written, then removes what it wrote.
func fillTmp(r *Report, maxMB int) {
	p := filepath.Join(os.TempDir(), "hostile-fill")
	f, err := os.Create(p)
	if err != nil {
		r.Error, r.Errno = err.Error(), errnoName(err)
		return
	}
	defer os.Remove(p)
	defer f.Close()
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	for maxMB <= 0 || r.Bytes < int64(maxMB)<<20 {
		n, err := f.Write(chunk)
		r.Bytes += int64(n)
		if err != nil {
			r.Error, r.Errno = err.Error(), errnoName(err)
			return
		}
	}
}

// forkBomb forks processes that do nothing until forking fails or max are
// running, then kills and reaps them all.
func forkBomb(r *Report, max int) {
	if max <= 0 {
		max = 4096
	}
	// The Go runtime dies when it cannot start a thread it needs; start
	// the threads it may need now, while it can. Idle threads are kept.
	var ready, hold sync.WaitGroup
	hold.Add(1)
	for range 16 {
		ready.Add(1)
		go func() {
			runtime.LockOSThread()
			ready.Done()
			hold.Wait()
			runtime.UnlockOSThread()
		}()
	}
	ready.Wait()
	hold.Done()

	start := time.Now()
	var pids []int
	for len(pids) < max {
		pid, errno := forkPause()
		if errno != 0 {
			r.Error, r.Errno = errno.Error(), errnoName(errno)
			break
		}
		pids = append(pids, pid)
	}
	r.Spawned = len(pids)
	r.SpawnMS = time.Since(start).Milliseconds()
	start = time.Now()
	defer func() { r.ReapMS = time.Since(start).Milliseconds() }()
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				r.Threads, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
	}
}

// forkPause forks a child that only ever waits for a signal. The child runs
// no Go code after the fork (the runtime's other threads are not there):
// this function and the raw system calls it makes are nosplit. Much faster
// than starting a program, on machines where exec is slow.
//
//go:nosplit
func forkPause() (int, syscall.Errno) {
	r1, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	if r1 == 0 {
		for {
			syscall.RawSyscall(syscall.SYS_PAUSE, 0, 0, 0)
		}
	}
	return int(r1), 0
}

// spawnOrphans leaves processes behind that try to outlive the function:
// one in a session of its own (setsid), one in a process group of its own
// (GNU timeout), one plain; their shell exits at once, so they are
// orphans.
func spawnOrphans() []Outcome {
	var parts []string
	var out []Outcome
	for _, bin := range []string{"setsid", "timeout"} {
		p, err := exec.LookPath(bin)
		out = append(out, outcome("lookpath", bin, time.Now(), err))
		if err != nil {
			continue
		}
		switch bin {
		case "setsid":
			parts = append(parts, p+" sleep 1000 </dev/null >/dev/null 2>&1 &")
		case "timeout":
			parts = append(parts, p+" 1000 sleep 1000 </dev/null >/dev/null 2>&1 &")
		}
	}
	parts = append(parts, "sleep 1000 </dev/null >/dev/null 2>&1 &", "exit 0")
	script := strings.Join(parts, "\n")
	start := time.Now()
	err := exec.Command("/bin/sh", "-c", script).Run()
	out = append(out, outcome("spawn", script, start, err))
	return out
}

// abi32 starts itself to make a system call through the 32-bit ABI: a
// filter that checks system call numbers of one ABI only is bypassed
// through another's. Harmless without a filter: getpid.
func abi32() Outcome {
	start := time.Now()
	if !haveInt80 {
		return outcome("int 0x80", "getpid", start, errors.New("no 32-bit ABI on "+runtime.GOARCH))
	}
	self, err := os.Executable()
	if err != nil {
		return outcome("int 0x80", "getpid", start, err)
	}
	out, err := exec.Command(self, abi32Arg).CombinedOutput()
	o := outcome("int 0x80", "getpid", start, err)
	o.Detail = string(out)
	return o
}

// shm looks up a System V shared memory segment by key.
func shm(key int) Outcome {
	start := time.Now()
	id, err := unix.SysvShmGet(key, 0, 0)
	o := outcome("shmget", strconv.Itoa(key), start, err)
	if err == nil {
		o.Detail = "id " + strconv.Itoa(id)
	}
	return o
}

func fetch(f Fetch) Outcome {
	if f.Connect != "" {
		return tunnel(f)
	}
	start := time.Now()
	var tr *http.Transport
	switch f.Via {
	case "", "env":
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case "proxy":
		proxy, err := url.Parse(os.Getenv("HTTP_PROXY"))
		if err != nil || os.Getenv("HTTP_PROXY") == "" {
			return outcome("fetch", f.URL, start, fmt.Errorf("no usable HTTP_PROXY (%q): %v", os.Getenv("HTTP_PROXY"), err))
		}
		tr = &http.Transport{Proxy: http.ProxyURL(proxy)}
	case "direct":
		tr = &http.Transport{}
	default:
		return outcome("fetch", f.URL, start, fmt.Errorf("unknown via %q", f.Via))
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get(f.URL)
	if err != nil {
		return outcome("fetch "+f.Via, f.URL, start, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	o := outcome("fetch "+f.Via, f.URL, start, err)
	o.Status, o.Detail = resp.StatusCode, string(b)
	return o
}

// tunnel sends CONNECT to HTTPS_PROXY and, once tunnelled, a plain GET.
// Status is the CONNECT's answer; Detail the tunnelled response's status
// line and body, or the proxy's refusal.
func tunnel(f Fetch) Outcome {
	start := time.Now()
	proxy, err := url.Parse(os.Getenv("HTTPS_PROXY"))
	if err != nil || proxy.Host == "" {
		return outcome("connect-tunnel", f.Connect, start, fmt.Errorf("no usable HTTPS_PROXY (%q)", os.Getenv("HTTPS_PROXY")))
	}
	c, err := net.DialTimeout("tcp", proxy.Host, 2*time.Second)
	if err != nil {
		return outcome("connect-tunnel", f.Connect, start, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", f.Connect, f.Connect)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return outcome("connect-tunnel", f.Connect, start, err)
	}
	o := outcome("connect-tunnel", f.Connect, start, nil)
	o.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		o.OK, o.Detail = false, string(b)
		return o
	}
	host, _, _ := net.SplitHostPort(f.Connect)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", cmp.Or(f.Path, "/"), host)
	inner, err := http.ReadResponse(br, nil)
	if err != nil {
		o.OK, o.Error, o.Errno = false, err.Error(), errnoName(err)
		return o
	}
	defer inner.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(inner.Body, 4096))
	o.Detail = inner.Status + "\n" + string(b)
	o.ElapsedMS = time.Since(start).Milliseconds()
	return o
}
