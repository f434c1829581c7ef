package lambda

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

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
}

// launch is what an isolator needs to start one environment.
type launch struct {
	id       string
	dir      string // the environment's own directory on the host; exists, empty
	code     string // the extracted code (read-only files)
	copyCode bool
	memoryMB int
	tmpMB    int
	// environ builds the process environment once the isolator knows where
	// things are.
	environ func(layout) []string
	output  *os.File // stdout and stderr
	cgroup  *cgroup  // nil: none
	// proxy asks for an egress proxy listener inside the sandbox.
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
}

// newIsolator returns the isolator of an isolation level, or why it cannot
// run here.
func newIsolator(cfg *Config) (isolator, error) {
	switch cfg.Isolation {
	case IsolationNone:
		return plainRuntime{}, nil
	case "", IsolationSandbox:
		rt := &sandboxRuntime{userNS: cfg.SandboxUserNamespace || os.Geteuid() != 0, hostID: os.Geteuid()}
		if err := rt.probe(); err != nil {
			return nil, err
		}
		return rt, nil
	}
	return nil, fmt.Errorf("unknown isolation %q: use %s or %s", cfg.Isolation, IsolationSandbox, IsolationNone)
}

// plainRuntime runs the bootstrap as a plain process of gust's own user
// (IsolationNone).
type plainRuntime struct{}

func (plainRuntime) name() string { return IsolationNone }

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
	bootstrap := filepath.Join(task, "bootstrap")
	cmd := &exec.Cmd{
		Path:   bootstrap,
		Args:   []string{bootstrap},
		Dir:    task,
		Env:    l.environ(layout{task: task, tmp: tmp, runtimeAPI: ln.Addr().String()}),
		Stdout: l.output,
		Stderr: l.output,
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
		return nil, errEntrypoint{fmt.Errorf("starting bootstrap, %w", err)}
	}
	if err := l.cgroup.join(cmd.Process.Pid); err != nil {
		// The bootstrap already runs; the caller decides whether to keep
		// it without its cgroup.
		return &plainProc{cmd: cmd, ln: ln}, errCgroupJoin{err}
	}
	return &plainProc{cmd: cmd, ln: ln}, nil
}

// errCgroupJoin is a start that succeeded except for joining the cgroup.
type errCgroupJoin struct{ error }

func (e errCgroupJoin) Unwrap() error { return e.error }

type plainProc struct {
	cmd *exec.Cmd
	ln  net.Listener
}

func (p *plainProc) pid() int                 { return p.cmd.Process.Pid }
func (p *plainProc) uid() int                 { return os.Geteuid() }
func (p *plainProc) runtimeAPI() net.Listener { return p.ln }
func (p *plainProc) proxy() net.Listener      { return nil }
func (p *plainProc) wait() error              { return p.cmd.Wait() }
func (p *plainProc) kill()                    { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }
func (p *plainProc) release()                 {}

// sandboxRuntime runs each environment in its own sandbox
// (IsolationSandbox).
type sandboxRuntime struct {
	ids sandbox.IDs
	// userNS builds sandboxes in a user namespace, mapping each sandbox's
	// uid to hostID: required when gust is not root.
	userNS bool
	hostID int
}

func (*sandboxRuntime) name() string { return IsolationSandbox }

// probe builds one sandbox (without running anything in it), so a machine
// that cannot is found out at start, not at the first invocation.
func (rt *sandboxRuntime) probe() error {
	if err := sandbox.Check(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gust-sandbox-probe-")
	if err != nil {
		return fmt.Errorf("sandbox probe: %w", err)
	}
	defer os.RemoveAll(dir)
	out, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("sandbox probe: %w", err)
	}
	defer out.Close()
	id, err := rt.ids.Get()
	if err != nil {
		return err
	}
	defer rt.ids.Put(id)
	if rt.userNS {
		if err := os.Chown(dir, rt.hostID, rt.hostID); err != nil {
			return fmt.Errorf("sandbox probe: %w", err)
		}
	}
	p, err := sandbox.Start(&sandbox.Spec{Root: dir, Code: dir, Path: "/nonexistent", Output: out,
		ID: id, UserNS: rt.userNS, HostID: rt.hostID, CgroupFD: -1})
	if err != nil {
		return err
	}
	p.Kill()
	_ = p.Wait()
	p.Close()
	return nil
}

func (rt *sandboxRuntime) start(l *launch) (proc, error) {
	id, err := rt.ids.Get()
	if err != nil {
		return nil, err
	}
	// The environment's own links to its code, shown read-only at
	// /var/task: the files are the code cache's, root's and read-only, and
	// the links outlive the cache entry if the function's code is
	// replaced while the environment runs.
	task := filepath.Join(l.dir, "task")
	if err := populateTask(l.code, task, l.copyCode); err != nil {
		rt.ids.Put(id)
		return nil, err
	}
	root := filepath.Join(l.dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		rt.ids.Put(id)
		return nil, fmt.Errorf("creating environment root, %w", err)
	}
	if rt.userNS {
		// The init builds the root as hostID.
		if err := os.Chown(root, rt.hostID, rt.hostID); err != nil {
			rt.ids.Put(id)
			return nil, fmt.Errorf("creating environment root, %w", err)
		}
	}
	lay := layout{task: sandbox.TaskDir, tmp: sandbox.TmpDir, runtimeAPI: SandboxRuntimeAPI}
	if l.proxy {
		lay.proxy = SandboxProxy
	}
	spec := &sandbox.Spec{
		Root: root, Code: task,
		Path: sandbox.TaskDir + "/bootstrap", Dir: sandbox.TaskDir,
		Env: l.environ(lay), Output: l.output,
		ID: id, TmpBytes: int64(l.tmpMB) << 20,
		UserNS: rt.userNS, HostID: rt.hostID, CgroupFD: -1,
	}
	if l.cgroup != nil && l.cgroup.fd != nil {
		spec.CgroupFD = int(l.cgroup.fd.Fd())
	}
	sp, err := sandbox.Start(spec)
	if err != nil {
		rt.ids.Put(id)
		return nil, err
	}
	p := &sandboxProc{rt: rt, sp: sp, id: id}
	fail := func(err error) (proc, error) {
		p.kill()
		_ = p.wait()
		p.release()
		return nil, err
	}
	// Before the bootstrap runs: it must never run outside its limits,
	// and its Runtime API must be there when it first asks.
	var joinErr error
	if err := l.cgroup.join(sp.Pid()); err != nil {
		joinErr = errCgroupJoin{err}
	}
	if p.api, err = sp.Listen(SandboxRuntimeAPI); err != nil {
		return fail(fmt.Errorf("opening runtime api listener, %w", err))
	}
	if l.proxy {
		if p.px, err = sp.Listen(SandboxProxy); err != nil {
			return fail(fmt.Errorf("opening egress proxy listener, %w", err))
		}
	}
	if err := sp.Release(); err != nil {
		return fail(errEntrypoint{fmt.Errorf("starting bootstrap, %w", err)})
	}
	return p, joinErr
}

type sandboxProc struct {
	rt      *sandboxRuntime
	sp      *sandbox.Process
	id      int
	api, px net.Listener
}

func (p *sandboxProc) pid() int                 { return p.sp.Pid() }
func (p *sandboxProc) uid() int                 { return p.id }
func (p *sandboxProc) runtimeAPI() net.Listener { return p.api }
func (p *sandboxProc) proxy() net.Listener      { return p.px }
func (p *sandboxProc) wait() error              { return p.sp.Wait() }
func (p *sandboxProc) kill()                    { p.sp.Kill() }

func (p *sandboxProc) release() {
	for _, ln := range []net.Listener{p.api, p.px} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	p.sp.Close()
	// Only now: the sandbox's processes are gone (wait returned), so the
	// id owns nothing any more.
	p.rt.ids.Put(p.id)
}
