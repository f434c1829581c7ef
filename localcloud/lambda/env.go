package lambda

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gust-dev/gust/localcloud/lambda/egress"
)

// An environment is one OS process running a function's bootstrap for
// exactly one (tenant, function version, sub-tenant): its key. The pool
// hands it to one invocation at a time. It has its own Runtime API listener
// (AWS_LAMBDA_RUNTIME_API), working directory and TMPDIR, and a scrubbed
// process environment; how it is isolated is its isolator's business
// (isolation.go).

type envKey struct {
	fnUID     string
	version   int
	subTenant string
}

// drainTimeout bounds how long an exited environment's output pipe is read
// before its exit is reported. Normally the pipe reaches EOF at once; only a
// process the bootstrap left running holds it open longer.
const drainTimeout = 250 * time.Millisecond

type envState uint8

const (
	envStarting envState = iota
	envIdle
	envBusy
	envStopped
)

func (s envState) String() string {
	switch s {
	case envStarting:
		return "starting"
	case envIdle:
		return "idle"
	case envBusy:
		return "busy"
	}
	return "stopped"
}

type environment struct {
	id  string
	key envKey
	fn  *function // the version it runs; never changes
	dir string    // <StateDir>/envs/<id>: task/ and tmp/

	// Bookkeeping guarded by pool.mu.
	state       envState
	retired     bool // its version was replaced: stop instead of going idle
	invocations int
	started     time.Time
	lastUsed    time.Time
	prev, next  *environment // idle LRU list links; nil unless idle

	// Process. Set by start before the environment is shared.
	proc      proc
	isolation string // the isolator's name
	pid       int
	uid       int
	cgroup    *cgroup
	logs      *logSink
	logKey    logKey
	sinks     *logSinks
	srv       *http.Server
	egress    *egress.Proxy // nil without one
	timer     *time.Timer   // one invocation at a time, so one reusable timer
	timerAt   time.Time     // when timer was last set to fire; zero once stopped or its fire received
	memLimit  bool
	// initDuration is how long the environment took from its start
	// (launched, by the machine's clock) to the runtime's first GET /next:
	// Lambda's Init Duration. Set by the first invocation, which the pool
	// hands the environment to alone.
	launched     time.Time
	initDuration time.Duration

	// Runtime API hand-off. An invocation is sent on nextCh when the
	// runtime's GET /next is waiting for it; the runtime's answer comes back
	// on the invocation's result channel.
	nextCh   chan *invocation
	ready    chan struct{} // closed on the runtime's first GET /next
	readyOne sync.Once
	initErr  chan invokeResult // the runtime's init/error, buffered 1
	cur      atomic.Pointer[invocation]
	exited   chan struct{} // closed once the process has exited
	exitErr  error         // valid after exited is closed
	stopOnce sync.Once
	stopping chan struct{} // closed when stop begins
}

// invocation is one request handed to an environment's runtime.
type invocation struct {
	id        string
	payload   []byte
	subTenant string
	arn       string
	traceID   string
	deadline  time.Time
	result    chan invokeResult // buffered 1; the first answer wins
	answered  atomic.Bool
}

// invokeResult is the runtime's answer: a response payload, or a function
// error document ({"errorType":..,"errorMessage":..}).
type invokeResult struct {
	payload []byte
	fnError bool
	// discard stops the environment after this invocation (it crashed,
	// timed out or failed to initialise).
	discard bool
	// undelivered means the environment died before the runtime took the
	// invocation: a warm environment that exited while idle. The
	// invocation can safely go to another environment.
	undelivered bool
}

func (inv *invocation) answer(r invokeResult) bool {
	if !inv.answered.CompareAndSwap(false, true) {
		return false
	}
	inv.result <- r
	return true
}

func newEnvironment(key envKey, fn *function, envsDir string, now time.Time) *environment {
	id := newID("env-")
	return &environment{
		id:       id,
		key:      key,
		fn:       fn,
		dir:      filepath.Join(envsDir, id),
		state:    envStarting,
		started:  now,
		lastUsed: now,
		nextCh:   make(chan *invocation),
		ready:    make(chan struct{}),
		initErr:  make(chan invokeResult, 1),
		exited:   make(chan struct{}),
		stopping: make(chan struct{}),
	}
}

// startSpec is what start needs besides the function.
type startSpec struct {
	// codeDir returns the extracted code of a sha256, extracting it if needed.
	codeDir  func(sha string) (string, error)
	codePath string // set per environment from codeDir
	copyCode bool
	region   string
	sinks    *logSinks
	mem      *memoryLimiter
	iso      isolator
	// egress returns the egress proxy of e, served inside its sandbox;
	// nil serves none (IsolationNone: the process has the host's network).
	egress func(e *environment) *egress.Proxy
	logger *slog.Logger
}

// errEntrypoint marks a start failure caused by the function's code (the
// bootstrap could not be executed), which is the function's error, not the
// platform's.
type errEntrypoint struct{ error }

func (e errEntrypoint) Unwrap() error { return e.error }

// start lays out the environment's directory, starts the bootstrap through
// the isolator and serves its Runtime API (and egress proxy). It does not
// wait for the runtime to be ready; the first invocation does.
func (e *environment) start(s startSpec) (err error) {
	e.launched = time.Now()
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return fmt.Errorf("creating environment dir, %w", err)
	}
	e.logKey = logKey{e.fn.Tenant, e.fn.Name, e.key.subTenant}
	e.sinks = s.sinks
	if e.logs, err = s.sinks.acquire(e.logKey); err != nil {
		return err
	}

	cfg := &e.fn.Config
	e.cgroup, err = s.mem.create(e.id, cfg.MemoryMB)
	if err != nil {
		// The limit is resource control, not isolation: the environment
		// runs without it, and its listing says so.
		s.logger.Warn("environment runs without its memory limit", "environment", e.id, "error", err)
		e.cgroup = nil
	}

	tmpMB := cfg.EphemeralMB
	if tmpMB <= 0 {
		tmpMB = DefaultEphemeralMB
	}
	e.isolation = s.iso.name()
	e.proc, err = s.iso.start(&launch{
		dir: e.dir, code: s.codePath, copyCode: s.copyCode, tmpMB: tmpMB,
		environ: func(l layout) []string { return e.environ(s.region, l) },
		cgroup:  e.cgroup, proxy: s.egress != nil,
	})
	var joinErr errCgroupJoin
	if errors.As(err, &joinErr) {
		s.logger.Warn("environment runs without its memory limit", "environment", e.id, "error", joinErr.error)
		e.cgroup.remove()
		e.cgroup, err = nil, nil
	}
	if err != nil {
		e.cgroup.remove()
		e.cgroup = nil
		e.proc = nil
		return err
	}
	e.memLimit = e.cgroup != nil
	pr, pe := e.proc.output()
	e.pid, e.uid = e.proc.pid(), e.proc.uid()
	e.srv = &http.Server{Handler: runtimeAPI{e}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(e.proc.runtimeAPI()) }()
	if ln := e.proc.proxy(); ln != nil {
		e.egress = s.egress(e)
		go func() { _ = e.egress.Serve(ln) }()
	}
	e.timer = time.NewTimer(time.Hour)
	e.timer.Stop()
	// One pump per stream, so the log tells stdout from stderr.
	pumped := make(chan struct{})
	var pumps sync.WaitGroup
	for stream, r := range map[string]*os.File{StreamStdout: pr, StreamStderr: pe} {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			e.logs.pump(e.id, stream, r)
		}()
	}
	go func() {
		pumps.Wait()
		close(pumped)
	}()
	go func() {
		e.exitErr = e.proc.wait()
		// The pipe may still hold the process's last words (a crash
		// message, say); let the pump reach EOF before the exit is
		// observed, so the log is whole when the crash is reported. A
		// child the bootstrap left behind can keep the write end open, so
		// the wait is bounded and the read end is closed after it.
		select {
		case <-pumped:
		case <-time.After(drainTimeout):
		}
		pr.Close()
		pe.Close()
		close(e.exited)
	}()
	return nil
}

// environ builds the process environment from scratch: the function's
// variables plus the ones Lambda's provided runtime sets. Nothing of gust's
// own environment (credentials, tokens, paths) is inherited.
func (e *environment) environ(region string, l layout) []string {
	cfg := &e.fn.Config
	env := make([]string, 0, len(cfg.Env)+24)
	for k, v := range cfg.Env {
		env = append(env, k+"="+v)
	}
	version := strconv.Itoa(e.fn.Version)
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+l.runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME="+e.fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION="+version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+e.fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+e.started.UTC().Format("2006/01/02")+"/["+version+"]"+e.id,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"LAMBDA_TASK_ROOT="+l.task,
		"LAMBDA_RUNTIME_DIR="+l.task,
		"_HANDLER="+cfg.Handler,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LD_LIBRARY_PATH="+l.task+":"+l.task+"/lib",
		"TMPDIR="+l.tmp,
		"HOME="+l.tmp,
		"GUST_ENVIRONMENT_ID="+e.id,
	)
	if l.proxy != "" {
		// Both spellings: curl and Python read the lower-case ones, Go
		// either. The Runtime API is on loopback, which clients never
		// send through a proxy; NO_PROXY says so for those that would.
		proxy := "http://" + l.proxy
		env = append(env,
			"HTTP_PROXY="+proxy, "HTTPS_PROXY="+proxy, "http_proxy="+proxy, "https_proxy="+proxy,
			"NO_PROXY=localhost,127.0.0.1", "no_proxy=localhost,127.0.0.1")
	}
	return env
}

// populateTask makes dst a private copy of the extracted code in src: the
// same tree, with files hard-linked (or copied when copyCode is set). The
// directory entries are the environment's own either way, so a handler that
// creates or deletes files in its task root affects nobody else.
func populateTask(src, dst string, copyCode bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading code, %w", err)
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.Mkdir(target, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("creating task dir, %w", err)
			}
			return nil
		}
		if !copyCode {
			if err := os.Link(p, target); err == nil {
				return nil
			}
			// Different filesystems: fall back to copying.
		}
		return copyFile(p, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copying code, %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copying code, %w", err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm()|0o200)
	if err != nil {
		return fmt.Errorf("copying code, %w", err)
	}
	_, err = io.Copy(out, in) // copy_file_range: reflinks where the filesystem can
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying code, %w", err)
	}
	return nil
}

// Function error types, as Lambda reports them.
const (
	errTypeTimeout    = "Sandbox.Timedout"
	errTypeExit       = "Runtime.ExitError"
	errTypeOOM        = "Runtime.OutOfMemory"
	errTypeInit       = "Runtime.InitError"
	errTypeEntrypoint = "Runtime.InvalidEntrypoint"
	errTypeTooLarge   = "Function.ResponseSizeTooLarge"
)

// invoke runs inv in the environment and waits for the runtime's answer,
// the process's exit or the timeout, whichever comes first. The caller must
// hold the environment exclusively (the pool guarantees it).
func (e *environment) invoke(inv *invocation, timeout, initTimeout time.Duration) invokeResult {
	select {
	case <-e.ready:
	default:
		// Cold: wait for the runtime's first GET /next.
		defer e.proc.settled()
		e.timer.Reset(initTimeout)
		select {
		case <-e.ready:
			e.timer.Stop()
			e.timerAt = time.Time{}
			e.initDuration = time.Since(e.launched)
		case r := <-e.initErr:
			e.timer.Stop()
			return r
		case <-e.exited:
			e.timer.Stop()
			return e.exitResult(inv.id, "before the runtime was ready")
		case <-e.timer.C:
			e.kill()
			return fnErrorResult(errTypeInit, fmt.Sprintf("RequestId: %s Error: runtime did not ask for an invocation within the %s init timeout", inv.id, initTimeout), true)
		}
	}

	inv.deadline = time.Now().Add(timeout)
	e.cur.Store(inv)
	defer e.cur.Store(nil)
	e.armTimer(inv.deadline)

delivery:
	for {
		select {
		case e.nextCh <- inv:
			break delivery
		case r := <-e.initErr:
			return r
		case <-e.exited:
			r := e.exitResult(inv.id, "")
			r.undelivered = true
			return r
		case <-e.timer.C:
			if e.timedOut(inv.deadline) {
				e.kill()
				return timeoutResult(inv.id, timeout)
			}
		}
	}
	for {
		select {
		case r := <-inv.result:
			return r
		case <-e.exited:
			// The runtime may have answered just before exiting.
			select {
			case r := <-inv.result:
				r.discard = true
				return r
			default:
			}
			return e.exitResult(inv.id, "")
		case <-e.timer.C:
			if !e.timedOut(inv.deadline) {
				continue
			}
			e.kill()
			if inv.answered.CompareAndSwap(false, true) {
				return timeoutResult(inv.id, timeout)
			}
			r := <-inv.result // answered at the last moment: keep the answer
			r.discard = true
			return r
		}
	}
}

// armTimer makes e.timer fire no later than deadline. The timer is left
// running after an invocation, not stopped: the next invocation's deadline
// is never earlier (an environment runs one version, so one timeout), and
// then needs no reset. Setting a timer on an otherwise idle process wakes
// Go's network poller, a thread wake-up on every warm invocation; this way
// the timer is set about once per timeout period instead. An early fire
// only re-arms it (timedOut).
func (e *environment) armTimer(deadline time.Time) {
	if e.timerAt.IsZero() || e.timerAt.After(deadline) {
		e.timer.Reset(time.Until(deadline))
		e.timerAt = deadline
	}
}

// timedOut is called on a fire of e.timer: it reports whether deadline has
// passed, and if not, sets the timer for it.
func (e *environment) timedOut(deadline time.Time) bool {
	e.timerAt = time.Time{}
	if d := time.Until(deadline); d > 0 {
		e.timer.Reset(d)
		e.timerAt = deadline
		return false
	}
	return true
}

func timeoutResult(reqID string, timeout time.Duration) invokeResult {
	return fnErrorResult(errTypeTimeout, fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", reqID, timeout.Seconds()), true)
}

func (e *environment) exitResult(reqID, when string) invokeResult {
	status := "exit status unknown"
	var ee *exec.ExitError
	if errors.As(e.exitErr, &ee) {
		status = ee.ProcessState.String() // "exit status 3", "signal: killed"
	} else if e.exitErr == nil {
		status = "exit status 0"
	}
	msg := "RequestId: " + reqID + " Error: Runtime exited with error: " + status
	if when != "" {
		msg += " " + when
	}
	if e.cgroup.oomKilled() {
		msg += " (out of memory: the function's memory size is " + strconv.Itoa(e.fn.Config.MemoryMB) + " MB)"
		return fnErrorResult(errTypeOOM, msg, true)
	}
	return fnErrorResult(errTypeExit, msg, true)
}

func fnErrorResult(typ, msg string, discard bool) invokeResult {
	b, _ := jsonMarshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	return invokeResult{payload: b, fnError: true, discard: discard}
}

// kill kills the environment's process and everything it started. The
// process's exit is observed through exited.
func (e *environment) kill() {
	if e.proc != nil {
		e.proc.kill()
	}
}

// stop kills the process, waits for it, and removes everything the
// environment had: listeners, sandbox, uid, cgroup, directories. Safe to
// call more than once and on an environment that never started.
func (e *environment) stop() {
	e.stopOnce.Do(func() {
		close(e.stopping)
		if e.proc != nil {
			e.kill()
			<-e.exited
		}
		if e.srv != nil {
			_ = e.srv.Close()
		}
		if e.egress != nil {
			_ = e.egress.Close() // its tunnels too, not only its listener
		}
		if e.proc != nil {
			e.proc.release()
		}
		e.cgroup.remove()
		if e.logs != nil {
			e.logs.forget(e.id)
			e.sinks.release(e.logKey, e.logs)
		}
		_ = os.RemoveAll(e.dir)
	})
}
