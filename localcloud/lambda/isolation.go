package lambda

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gust-dev/gust/localcloud/lambda/sandbox"
)

// Isolation levels (Config.Isolation, gust dev --cloud-isolation).
const (
	// IsolationSandbox runs every environment in its own sandbox (package
	// sandbox): namespaces, its own root filesystem and uid, no
	// capabilities, seccomp, and no network but the egress proxy.
	IsolationSandbox = "sandbox"
	// IsolationNone runs environments as plain processes of gust's own
	// user, sharing the machine's filesystem and network. A function can
	// then read and reach everything gust can: for trusted code only.
	IsolationNone = "none"
)

// Addresses inside a sandbox's network namespace, as in Lambda: the
// Runtime API, and the egress proxy the function reaches the network
// through (HTTP_PROXY).
const (
	SandboxRuntimeAPI = "127.0.0.1:9001"
	SandboxProxy      = "127.0.0.1:9002"
)

// An isolator starts environments' processes. It is the only part of the
// local cloud that knows how a process is isolated, so a stronger one (gVisor,
// a microVM) is one more implementation; the pool and the Runtime API do
// not change.
type isolator interface {
	// name is the isolation level, as listings show it.
	name() string
	// start starts the bootstrap of l. On success the process runs, in
	// its cgroup when l.cgroup is set, and the returned proc's listeners
	// are open for the caller to serve; on error nothing is left running.
	// An errEntrypoint error means the function's code could not be
	// executed.
	start(l *launch) (proc, error)
	// close releases what the isolator holds besides environments.
	close()
}

// launch is what an isolator needs to start one environment.
type launch struct {
	dir      string // the environment's own directory on the host; exists, empty
	code     string // the extracted code (read-only files)
	copyCode bool
	tmpMB    int
	// environ builds the process environment once the isolator knows where
	// things are.
	environ func(layout) []string
	cgroup  *cgroup // nil: none
	// proxy asks for an egress proxy listener inside the sandbox; an
	// isolator without a network of its own (none) has nothing to serve it
	// in, and ignores it.
	proxy bool
}

// layout is where a process finds its task root, /tmp, Runtime API and
// egress proxy ("" for none).
type layout struct {
	task, tmp, runtimeAPI, proxy string
}

// proc is a started environment process.
type proc interface {
	pid() int
	// output is the read ends of the process's stdout and stderr, the
	// caller's to read and close; EOF on both means every process has
	// exited.
	output() (stdout, stderr *os.File)
	// uid is the uid the bootstrap runs as, on the host.
	uid() int
	runtimeAPI() net.Listener
	// proxy is the egress proxy's listener, nil without one.
	proxy() net.Listener
	// wait waits for the process to exit; once it returns, nothing the
	// process started is left (for a sandbox), or its process group has
	// been sent SIGKILL (none).
	wait() error
	kill()
	// release frees what the process held (ids, namespaces); called once,
	// after wait returned.
	release()
	// settled says the process's start is over (its runtime asked for an
	// invocation, failed or exited): work put off so as not to slow the
	// start may run now. Calls after the first do nothing.
	settled()
}

// newIsolator returns the isolator of an isolation level, or why it cannot
// run here;
// dir is where it may make per-sandbox directories.
func newIsolator(cfg *Config, dir string) (isolator, error) {
	switch cfg.Isolation {
	case IsolationNone:
		return plainRuntime{}, nil
	case "", IsolationSandbox:
		return newSandboxRuntime(cfg, dir)
	}
	return nil, fmt.Errorf("unknown isolation %q: use %s or %s", cfg.Isolation, IsolationSandbox, IsolationNone)
}

// plainRuntime runs the bootstrap as a plain process of gust's own user
// (IsolationNone).
type plainRuntime struct{}

func (plainRuntime) name() string { return IsolationNone }
func (plainRuntime) close()       {}

func (plainRuntime) start(l *launch) (proc, error) {
	task := filepath.Join(l.dir, "task")
	tmp := filepath.Join(l.dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("creating environment dir, %w", err)
	}
	if err := populateTask(l.code, task, l.copyCode); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("opening runtime api listener, %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("creating output pipe, %w", err)
	}
	// The child holds its own copies of pw and ew; EOF on pr and er means
	// it (and its children) exited.
	defer pw.Close()
	er, ew, err := os.Pipe()
	if err != nil {
		ln.Close()
		pr.Close()
		return nil, fmt.Errorf("creating output pipe, %w", err)
	}
	defer ew.Close()
	bootstrap := filepath.Join(task, "bootstrap")
	cmd := &exec.Cmd{
		Path:   bootstrap,
		Args:   []string{bootstrap},
		Dir:    task,
		Env:    l.environ(layout{task: task, tmp: tmp, runtimeAPI: ln.Addr().String()}),
		Stdout: pw,
		Stderr: ew,
		SysProcAttr: &syscall.SysProcAttr{
			// Its own process group, so a timeout kills whatever the
			// bootstrap started too (unless it left the group: only a
			// sandbox's PID namespace catches those).
			Setpgid: true,
			// Environments must not outlive gust: they hold no state worth
			// keeping and nobody would reap them.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if l.cgroup != nil && l.cgroup.fd != nil { // v2: placed at clone time
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(l.cgroup.fd.Fd())
	}
	if err := cmd.Start(); err != nil {
		ln.Close()
		pr.Close()
		er.Close()
		return nil, errEntrypoint{fmt.Errorf("starting bootstrap, %w", err)}
	}
	p := &plainProc{cmd: cmd, ln: ln, out: pr, err: er}
	if err := l.cgroup.join(cmd.Process.Pid); err != nil {
		// The bootstrap already runs; the caller decides whether to keep
		// it without its cgroup.
		return p, errCgroupJoin{err}
	}
	return p, nil
}

// errCgroupJoin is a start that succeeded except for joining the cgroup.
type errCgroupJoin struct{ error }

func (e errCgroupJoin) Unwrap() error { return e.error }

type plainProc struct {
	cmd      *exec.Cmd
	ln       net.Listener
	out, err *os.File
}

func (p *plainProc) output() (stdout, stderr *os.File) { return p.out, p.err }

func (p *plainProc) pid() int                 { return p.cmd.Process.Pid }
func (p *plainProc) uid() int                 { return os.Geteuid() }
func (p *plainProc) runtimeAPI() net.Listener { return p.ln }
func (p *plainProc) proxy() net.Listener      { return nil }
func (p *plainProc) wait() error              { return p.cmd.Wait() }
func (p *plainProc) kill()                    { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }
func (p *plainProc) release()                 {}
func (p *plainProc) settled()                 {}

// sandboxRuntime runs each environment in its own sandbox
// (IsolationSandbox).
//
// Building a sandbox's namespaces, init process and shared mounts is most
// of a cold start's cost (and re-executing gust's own binary as the init
// costs its whole start-up), so a few sandboxes are kept prepared ahead of
// need: a cold start takes one and only adds the function's part. A
// prepared sandbox runs nothing of anyone's and belongs to no tenant until
// it is configured.
type sandboxRuntime struct {
	ids sandbox.IDs
	// userNS builds sandboxes in a user namespace, mapping each sandbox's
	// uid to hostID: required when gust is not root.
	userNS bool
	hostID int
	dir    string // where sandboxes' root mount points are made
	logger *slog.Logger

	warm   chan *preparedSandbox // prepared, unconfigured; only refill adds
	kick   chan struct{}         // wakes refill
	done   chan struct{}
	refill sync.WaitGroup
	// starting counts environments taken from the pool whose start is not
	// over yet (proc.settled). The refill waits for it to reach 0:
	// preparing a sandbox (namespaces, mounts) slows a start running
	// beside it far more than its CPU priority says, through the kernel's
	// own locks.
	starting atomic.Int32
}

// refillPatience bounds how long the refill waits for starts to settle,
// so a steady stream of cold starts cannot keep the pool empty.
const refillPatience = 100 * time.Millisecond

// preparedSandbox is a sandbox with its id and root mount point, before
// and after it is configured.
type preparedSandbox struct {
	sp   *sandbox.Process
	id   int
	root string
}

func newSandboxRuntime(cfg *Config, dir string) (*sandboxRuntime, error) {
	if err := sandbox.Check(); err != nil {
		return nil, err
	}
	// Without root, only a user namespace can give a sandbox a uid of its
	// own; it maps to gust's uid on the host, the one uid gust may use.
	rt := &sandboxRuntime{userNS: os.Geteuid() != 0, hostID: os.Geteuid(), dir: dir,
		logger: cfg.Logger, kick: make(chan struct{}, 1), done: make(chan struct{})}
	// The first sandbox is the probe: a machine that cannot build one is
	// found out now, not at the first invocation.
	first, err := rt.prepare(false)
	if err != nil {
		return nil, err
	}
	n := cfg.WarmSandboxes
	if n <= 0 {
		first.discard(rt)
		rt.warm = make(chan *preparedSandbox)
		return rt, nil
	}
	rt.warm = make(chan *preparedSandbox, n)
	rt.warm <- first
	rt.refill.Add(1)
	go rt.refillLoop()
	rt.wake()
	return rt, nil
}

func (*sandboxRuntime) name() string { return IsolationSandbox }

// prepare builds a sandbox that runs nothing yet; background ones at the
// lowest CPU priority.
func (rt *sandboxRuntime) prepare(background bool) (*preparedSandbox, error) {
	id, err := rt.ids.Get()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(rt.dir, "sandbox-")
	if err != nil {
		rt.ids.Put(id)
		return nil, fmt.Errorf("creating sandbox root, %w", err)
	}
	if rt.userNS {
		// The init builds the root as hostID.
		if err := os.Chown(root, rt.hostID, rt.hostID); err != nil {
			os.Remove(root)
			rt.ids.Put(id)
			return nil, fmt.Errorf("creating sandbox root, %w", err)
		}
	}
	sp, err := sandbox.Prepare(sandbox.Options{Root: root, ID: id, UserNS: rt.userNS, HostID: rt.hostID, Background: background, SplitStderr: true})
	if err != nil {
		os.Remove(root)
		rt.ids.Put(id)
		return nil, err
	}
	return &preparedSandbox{sp: sp, id: id, root: root}, nil
}

// discard kills a sandbox no environment took and gives back everything
// it held, its output pipe included. Its processes are gone when Wait
// returns, so its id owns nothing any more.
func (w *preparedSandbox) discard(rt *sandboxRuntime) {
	w.sp.Kill()
	_ = w.sp.Wait()
	w.closeOutput()
	w.release(rt)
}

// release gives back what an exited sandbox held.
func (w *preparedSandbox) release(rt *sandboxRuntime) {
	w.sp.Close()
	_ = os.Remove(w.root) // empty on the host: the mounts were the sandbox's own
	rt.ids.Put(w.id)
}

// refillLoop keeps the warm pool full, one sandbox at a time, so refilling
// never competes with cold starts for more than one core.
func (rt *sandboxRuntime) refillLoop() {
	defer rt.refill.Done()
	for {
		for len(rt.warm) < cap(rt.warm) {
			for waited := time.Duration(0); rt.starting.Load() > 0 && waited < refillPatience; waited += 2 * time.Millisecond {
				select {
				case <-rt.done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
			w, err := rt.prepare(true)
			if err != nil {
				rt.logger.Warn("preparing a sandbox", "error", err)
				break // until the next cold start asks again
			}
			select {
			case rt.warm <- w:
			case <-rt.done:
				w.discard(rt)
				return
			}
		}
		select {
		case <-rt.kick:
		case <-rt.done:
			return
		}
	}
}

// closeOutput closes the read ends of the sandbox's stdout and stderr.
func (w *preparedSandbox) closeOutput() {
	w.sp.Output().Close()
	w.sp.Stderr().Close()
}

func (rt *sandboxRuntime) wake() {
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

// close discards the warm sandboxes; environments' sandboxes are their
// own to stop.
func (rt *sandboxRuntime) close() {
	close(rt.done)
	rt.refill.Wait()
	for {
		select {
		case w := <-rt.warm:
			w.discard(rt)
		default:
			return
		}
	}
}

func (rt *sandboxRuntime) start(l *launch) (proc, error) {
	// The environment's own links to its code, shown read-only at
	// /var/task: the files are the code cache's, root's and read-only, and
	// the links outlive the cache entry if the function's code is
	// replaced while the environment runs.
	task := filepath.Join(l.dir, "task")
	if err := populateTask(l.code, task, l.copyCode); err != nil {
		return nil, err
	}
	var w *preparedSandbox
	select {
	case w = <-rt.warm:
	default:
	}
	rt.starting.Add(1)
	p := &sandboxProc{rt: rt}
	if w == nil {
		var err error
		if w, err = rt.prepare(false); err != nil {
			p.settled()
			return nil, err
		}
	}
	p.w = w
	fail := func(err error) (proc, error) {
		p.kill()
		_ = p.wait()
		w.closeOutput()
		p.release()
		return nil, err
	}
	lay := layout{task: sandbox.TaskDir, tmp: sandbox.TmpDir, runtimeAPI: SandboxRuntimeAPI}
	if l.proxy {
		lay.proxy = SandboxProxy
	}
	if err := w.sp.Configure(&sandbox.Spec{
		Code: task, Path: sandbox.TaskDir + "/bootstrap", Dir: sandbox.TaskDir,
		Env: l.environ(lay), TmpBytes: int64(l.tmpMB) << 20,
	}); err != nil {
		return fail(err)
	}
	// Before the bootstrap runs: it must never run outside its limits,
	// and its Runtime API must be there when it first asks.
	var joinErr error
	if err := l.cgroup.move(w.sp.Pid()); err != nil {
		joinErr = errCgroupJoin{err}
	}
	var err error
	if p.api, err = w.sp.Listen(SandboxRuntimeAPI); err != nil {
		return fail(fmt.Errorf("opening runtime api listener, %w", err))
	}
	if l.proxy {
		if p.px, err = w.sp.Listen(SandboxProxy); err != nil {
			return fail(fmt.Errorf("opening egress proxy listener, %w", err))
		}
	}
	if err := w.sp.Release(); err != nil {
		return fail(errEntrypoint{fmt.Errorf("starting bootstrap, %w", err)})
	}
	return p, joinErr
}

type sandboxProc struct {
	rt      *sandboxRuntime
	w       *preparedSandbox
	api, px net.Listener
	settle  sync.Once
}

// settled lets the refill prepare the sandbox that replaces this one.
func (p *sandboxProc) settled() {
	p.settle.Do(func() {
		p.rt.starting.Add(-1)
		p.rt.wake()
	})
}

func (p *sandboxProc) pid() int { return p.w.sp.Pid() }
func (p *sandboxProc) uid() int { return p.w.id }
func (p *sandboxProc) output() (stdout, stderr *os.File) {
	return p.w.sp.Output(), p.w.sp.Stderr()
}
func (p *sandboxProc) runtimeAPI() net.Listener { return p.api }
func (p *sandboxProc) proxy() net.Listener      { return p.px }
func (p *sandboxProc) wait() error              { return p.w.sp.Wait() }
func (p *sandboxProc) kill()                    { p.w.sp.Kill() }

func (p *sandboxProc) release() {
	p.settled() // an environment stopped before it ever settled
	for _, ln := range []net.Listener{p.api, p.px} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	p.w.release(p.rt)
}
