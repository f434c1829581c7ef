package sandbox

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gust-dev/gust/localcloud/lambda/sandbox/internal/initproc"
)

// Process is a sandbox: prepared, then configured with its program, then
// released to run it.
type Process struct {
	cmd    *exec.Cmd
	ctl    *os.File // write end of the init's ctl pipe; closed once released
	status *bufio.Reader
	statR  *os.File
	output *os.File // read end of the sandbox's stdout (and stderr, unless split)
	stderr *os.File // read end of its stderr with Options.SplitStderr, else nil
	lns    *os.File // the parent's end of the socket the init sends listeners on

	niced bool // prepared at backgroundNice; Configure restores it

	closeOnce sync.Once
}

// backgroundNice is the priority of a sandbox prepared in the background,
// so preparing the next sandboxes never slows the cold starts that use
// the ones already prepared.
const backgroundNice = 19

// Prepare clones a sandbox's init into new namespaces and waits until it
// has built the part of the root filesystem that every sandbox shares.
// Nothing runs in it yet: Configure says what will. On error nothing is
// left running.
func Prepare(o Options) (*Process, error) {
	if o.Root == "" {
		return nil, errors.New("sandbox: Options.Root is required")
	}
	if o.ID < FirstID || o.ID >= FirstID+NumIDs {
		return nil, fmt.Errorf("sandbox: id %d is outside the sandbox range", o.ID)
	}
	filters, err := compileSeccomp()
	if err != nil {
		return nil, err
	}
	prep, err := json.Marshal(initproc.PrepConfig{Root: o.Root, ID: o.ID, UserNS: o.UserNS, Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("sandbox: encoding preparation: %w", err)
	}
	var files []*os.File // the child's ends, closed once it has them
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	files = append(files, ctlR)
	statR, statW, err := os.Pipe()
	if err != nil {
		closeAll()
		ctlW.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	files = append(files, statW)
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll()
		ctlW.Close()
		statR.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	files = append(files, outW)
	errR, errW := (*os.File)(nil), outW
	if o.SplitStderr {
		if errR, errW, err = os.Pipe(); err != nil {
			closeAll()
			ctlW.Close()
			statR.Close()
			outR.Close()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		files = append(files, errW)
	}
	closeReaders := func() {
		outR.Close()
		if errR != nil {
			errR.Close()
		}
	}
	// A socket, not a pipe: the init sends the listeners it opens in its
	// network namespace over it (Listen).
	lnFDs, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		closeAll()
		ctlW.Close()
		statR.Close()
		closeReaders()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	lns := os.NewFile(uintptr(lnFDs[0]), "listeners")
	lnsChild := os.NewFile(uintptr(lnFDs[1]), "listeners")
	files = append(files, lnsChild)
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET,
		// A sandbox must not outlive gust: nobody would reap it. The init
		// sets it again after changing uid, which clears it.
		Pdeathsig: syscall.SIGKILL,
	}
	if o.UserNS {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: o.ID, HostID: o.HostID, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: o.ID, HostID: o.HostID, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		// The init runs as the sandbox's (non-zero) uid from the start, so
		// the capabilities it needs to build the sandbox must survive its
		// exec as ambient ones; it drops them all before the program runs.
		attr.Credential = &syscall.Credential{Uid: uint32(o.ID), Gid: uint32(o.ID), NoSetGroups: true}
		attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_SETPCAP}
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{InitArg0},
		Env:         []string{}, // nothing of gust's environment
		Dir:         "/",
		Stdout:      outW,
		Stderr:      errW,
		ExtraFiles:  []*os.File{ctlR, statW, lnsChild}, // fds 3, 4 and 5
		SysProcAttr: attr,
	}
	niced := o.Background && os.Geteuid() == 0
	if niced {
		err = startNiced(cmd)
	} else {
		err = cmd.Start()
	}
	closeAll()
	if err != nil {
		ctlW.Close()
		statR.Close()
		closeReaders()
		lns.Close()
		return nil, fmt.Errorf("sandbox: starting init: %w", err)
	}
	p := &Process{cmd: cmd, ctl: ctlW, statR: statR, status: bufio.NewReader(statR), output: outR, stderr: errR, lns: lns}
	p.niced = niced
	if err := p.send(nil, prep); err != nil {
		return nil, p.abandon(err)
	}
	if err := p.awaitReady(); err != nil {
		return nil, p.abandon(err)
	}
	return p, nil
}

// startNiced starts cmd at backgroundNice: from a thread set to that
// priority for the fork, since a child inherits its forking thread's
// priority, every thread of the init's runtime included. Only root can
// raise the thread's priority back afterwards (and Configure the
// sandbox's), so it is used only as root.
func startNiced(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		// The forking goroutine stays on this thread; the thread is
		// unlocked for other goroutines only once its priority is back.
		runtime.LockOSThread()
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, backgroundNice); err != nil {
			runtime.UnlockOSThread()
			errc <- cmd.Start()
			return
		}
		err := cmd.Start()
		if unix.Setpriority(unix.PRIO_PROCESS, 0, 0) == nil {
			runtime.UnlockOSThread()
		} // else the goroutine exits locked, and the thread with it
		errc <- err
	}()
	return <-errc
}

// Start prepares a sandbox and configures it with spec: Prepare and
// Configure in one.
func Start(o Options, spec *Spec) (*Process, error) {
	p, err := Prepare(o)
	if err != nil {
		return nil, err
	}
	if err := p.Configure(spec); err != nil {
		return nil, p.abandon(err)
	}
	return p, nil
}

// Configure gives a prepared sandbox its program: the init mounts the code
// and /tmp, writes /etc and enters the finished root with pivot_root. The
// program does not run yet: the caller joins cgroups and opens listeners
// (Listen), then calls Release. On error the caller must Kill, Wait and
// Close the sandbox.
func (p *Process) Configure(spec *Spec) error {
	if spec.Code == "" || spec.Path == "" {
		return errors.New("sandbox: Spec.Code and Spec.Path are required")
	}
	if p.niced {
		// Every thread of the init: dropping privileges runs on all of
		// them, and the main one execs the program.
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p.Pid()) + "/task")
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
			}
		}
		p.niced = false
	}
	cfg := initproc.Config{Code: spec.Code, Path: spec.Path, Args: spec.Args, Dir: spec.Dir, Env: spec.Env, TmpBytes: spec.TmpBytes}
	if len(cfg.Args) == 0 {
		cfg.Args = []string{spec.Path}
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("sandbox: encoding configuration: %w", err)
	}
	if err := p.send(nil, body); err != nil {
		return err
	}
	return p.awaitReady()
}

// send writes one length-prefixed message to the init, after the bytes of
// prefix (a request's tag), in one write.
func (p *Process) send(prefix, body []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	msg := append(append(prefix[:len(prefix):len(prefix)], n[:]...), body...)
	if _, err := p.ctl.Write(msg); err != nil {
		return fmt.Errorf("sandbox: writing to init: %w", err)
	}
	return nil
}

// awaitReady reads the init's next status line.
func (p *Process) awaitReady() error {
	line, err := p.status.ReadString('\n')
	if line = strings.TrimSpace(line); line != "ready" {
		if line == "" {
			line = fmt.Sprintf("init exited (%v)", err)
		}
		return fmt.Errorf("sandbox: %s", line)
	}
	return nil
}

// abandon kills a sandbox that failed to start and returns err.
func (p *Process) abandon(err error) error {
	p.Kill()
	_ = p.Wait()
	p.output.Close()
	if p.stderr != nil {
		p.stderr.Close()
	}
	p.Close()
	return err
}

// Pid is the host's pid of the sandbox's PID 1: the init, then the program.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is the read end of the sandbox's stdout, and of its stderr unless
// Options.SplitStderr; the caller owns it from Prepare on. It reaches EOF
// once every process of the sandbox has exited.
func (p *Process) Output() *os.File { return p.output }

// Stderr is the read end of the sandbox's stderr with Options.SplitStderr,
// owned by the caller like Output; nil without it.
func (p *Process) Stderr() *os.File { return p.stderr }

// Listen opens a TCP listener inside the sandbox's network namespace, for
// example on its 127.0.0.1:9001, between Configure and Release. The
// listener's socket belongs to that namespace, so only the sandbox can
// connect; the caller serves it from its own goroutines, in the host's
// namespace.
//
// The init opens the socket, inside, and sends it back over a Unix
// socket: gust cannot enter the namespace itself unless it is root
// (setns(2) into a network namespace needs CAP_SYS_ADMIN in the caller's
// own user namespace too, and a multi-threaded process cannot join the
// sandbox's user namespace first).
func (p *Process) Listen(addr string) (net.Listener, error) {
	body, err := json.Marshal(addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := p.send([]byte{initproc.ListenRequest}, body); err != nil {
		return nil, err
	}
	buf := make([]byte, 1024)
	oob := make([]byte, unix.CmsgSpace(4))
	nb, noob, _, _, err := unix.Recvmsg(int(p.lns.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sandbox: receiving a listener: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:noob]); err == nil {
		for i := range msgs {
			got, _ := unix.ParseUnixRights(&msgs[i])
			fds = append(fds, got...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		if nb == 0 {
			return nil, errors.New("sandbox: init exited")
		}
		return nil, fmt.Errorf("sandbox: %s", buf[:nb])
	}
	f := os.NewFile(uintptr(fds[0]), "sandbox listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return ln, nil
}

// Release lets the sandbox's program start: the init drops its privileges,
// loads the seccomp filter and execs it. An error is the init's: most often
// the program could not be executed.
func (p *Process) Release() error {
	if _, err := p.ctl.Write([]byte{'g'}); err != nil {
		return fmt.Errorf("sandbox: releasing init: %w", err)
	}
	// EOF on the status pipe is a successful exec (the init marked it
	// close-on-exec); a line is the init's error.
	line, _ := p.status.ReadString('\n')
	p.ctl.Close()
	if line = strings.TrimSpace(line); line != "" {
		return errors.New(line)
	}
	return nil
}

// Kill kills the sandbox's PID 1, and with it every process of the
// sandbox.
func (p *Process) Kill() { _ = p.cmd.Process.Signal(syscall.SIGKILL) }

// Wait waits for the sandbox's PID 1 to exit. The kernel has killed every
// other process of the sandbox by the time it returns: a PID namespace's
// init is reaped only after all of them.
func (p *Process) Wait() error { return p.cmd.Wait() }

// Close releases the parent's handles on the sandbox, but for Output. The
// network namespace disappears once the sandbox has exited and every
// listener opened in it is closed.
func (p *Process) Close() {
	p.closeOnce.Do(func() {
		p.ctl.Close()
		p.statR.Close()
		p.lns.Close()
	})
}
