package sandbox

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process is a started sandbox.
type Process struct {
	cmd    *exec.Cmd
	ctl    *os.File // write end of the init's ctl pipe; closed once released
	status *bufio.Reader
	statR  *os.File
	netns  *os.File // the sandbox's network namespace, for Listen

	closeOnce sync.Once
}

// Start clones the sandbox's init into new namespaces and waits until it
// has built the sandbox's root filesystem. The program does not run yet:
// the caller joins cgroups and opens listeners (Listen), then calls
// Release. On error nothing is left running.
func Start(spec *Spec) (*Process, error) {
	if spec.Root == "" || spec.Code == "" || spec.Path == "" || spec.Output == nil {
		return nil, errors.New("sandbox: Root, Code, Path and Output are required")
	}
	cfg := initConfig{Root: spec.Root, Code: spec.Code, Path: spec.Path, Args: spec.Args, Dir: spec.Dir,
		Env: spec.Env, ID: spec.ID, TmpBytes: spec.TmpBytes, Hostname: spec.Hostname, UserNS: spec.UserNS}
	if cfg.Hostname == "" {
		cfg.Hostname = "sandbox"
	}
	if len(cfg.Args) == 0 {
		cfg.Args = []string{spec.Path}
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encoding configuration: %w", err)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	statR, statW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET,
		// A sandbox must not outlive gust: nobody would reap it. The init
		// sets it again after changing uid, which clears it.
		Pdeathsig: syscall.SIGKILL,
	}
	if spec.UserNS {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: spec.ID, HostID: spec.HostID, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: spec.ID, HostID: spec.HostID, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		// The init runs as the sandbox's (non-zero) uid from the start, so
		// the capabilities it needs to build the sandbox must survive its
		// exec as ambient ones; it drops them all before the program runs.
		attr.Credential = &syscall.Credential{Uid: uint32(spec.ID), Gid: uint32(spec.ID), NoSetGroups: true}
		attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_SETPCAP}
	}
	if spec.CgroupFD >= 0 {
		attr.UseCgroupFD = true
		attr.CgroupFD = spec.CgroupFD
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{InitArg0},
		Env:         []string{}, // nothing of gust's environment
		Dir:         "/",
		Stdout:      spec.Output,
		Stderr:      spec.Output,
		ExtraFiles:  []*os.File{ctlR, statW}, // fds 3 and 4
		SysProcAttr: attr,
	}
	err = cmd.Start()
	ctlR.Close()
	statW.Close()
	if err != nil {
		ctlW.Close()
		statR.Close()
		return nil, fmt.Errorf("sandbox: starting init: %w", err)
	}
	p := &Process{cmd: cmd, ctl: ctlW, statR: statR, status: bufio.NewReader(statR)}
	fail := func(err error) (*Process, error) {
		p.Kill()
		_ = p.Wait()
		p.Close()
		return nil, err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	if _, err := ctlW.Write(append(n[:], body...)); err != nil {
		return fail(fmt.Errorf("sandbox: sending configuration: %w", err))
	}
	line, err := p.status.ReadString('\n')
	if line = strings.TrimSpace(line); line != "ready" {
		if line == "" {
			line = fmt.Sprintf("init exited (%v)", err)
		}
		return fail(fmt.Errorf("sandbox: %s", line))
	}
	if p.netns, err = os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"); err != nil {
		return fail(fmt.Errorf("sandbox: opening its network namespace: %w", err))
	}
	return p, nil
}

// Pid is the host's pid of the sandbox's PID 1: the init, then the program.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Listen opens a TCP listener inside the sandbox's network namespace, for
// example on its 127.0.0.1:9001. The listener's sockets belong to that
// namespace, so only the sandbox can connect; the caller serves them from
// its own goroutines, which stay in the host's namespace.
func (p *Process) Listen(addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// A thread in the sandbox's namespace must never run anything
		// else: it is unlocked only once back in the host's. If it cannot
		// go back, the goroutine exits locked and the runtime ends the
		// thread.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("sandbox: %w", err)}
			return
		}
		defer self.Close()
		if err := unix.Setns(int(p.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("sandbox: entering its network namespace: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
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

// Close releases the parent's handles on the sandbox. The network namespace
// disappears once the sandbox has exited and every listener opened in it is
// closed.
func (p *Process) Close() {
	p.closeOnce.Do(func() {
		p.ctl.Close()
		p.statR.Close()
		if p.netns != nil {
			p.netns.Close()
		}
	})
}

var _ io.Closer = (*os.File)(nil)
