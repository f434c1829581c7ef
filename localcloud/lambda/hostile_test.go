//go:build linux

package lambda_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// countingListener accepts and counts connections, closing them at once.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func listenCounting(t *testing.T, network, addr string) *countingListener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	cl := &countingListener{Listener: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return cl
}

// hostIPv4 is one of this machine's non-loopback IPv4 addresses, or "".
func hostIPv4() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// TestHostileFunctionIsContained deploys a hostile function next to a
// victim of another tenant and has it attack the victim, the local cloud
// and the machine. Every attack must fail, and fail the way the sandbox
// makes it fail; what a function is entitled to must keep working; and the
// victim must not notice.
func TestHostileFunctionIsContained(t *testing.T) {
	requireRootSandbox(t)
	h := newHarness(t, nil)
	state := h.cfg.StateDir
	cloudAddr := strings.TrimPrefix(h.url, "http://")

	// What a function must never reach: a stand-in for the Temporal
	// frontend on loopback, an abstract unix socket, a System V shared
	// memory segment.
	temporal := listenCounting(t, "tcp", "127.0.0.1:0")
	abstractName := fmt.Sprintf("@gust-hostile-test-%d", os.Getpid())
	abstract := listenCounting(t, "unix", abstractName)
	shmKey := 0x67750000 | os.Getpid()&0xffff
	shmID, err := unix.SysvShmGet(shmKey, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = unix.SysvShmCtl(shmID, unix.IPC_RMID, nil) })

	// The victim: tenant acme, a live environment with a secret in its
	// environment and one in its /tmp.
	secret := fmt.Sprintf("acme-secret-%d-%d", os.Getpid(), time.Now().UnixNano())
	acme := h.client("acme")
	createFn(t, acme, "payments", fnOpts{tenancy: true, timeout: 10, env: map[string]string{"ACME_SECRET": secret}})
	v := mustInvoke(t, acme, "payments", "acme-customer", map[string]any{"write_tmp": "victim-marker"})
	require.Equal(t, "acme-customer", v.resp.TenantID)
	victim := h.envByID(t, "acme", "payments", v.envID)
	require.NotZero(t, victim.Pid)
	require.Equal(t, lambda.IsolationSandbox, victim.Isolation)
	secretFile := fmt.Sprintf("/proc/%d/root/tmp/secret", victim.Pid)
	require.NoError(t, os.WriteFile(secretFile, []byte(secret), 0o600))
	require.NoError(t, os.Chown(secretFile, victim.Uid, victim.Uid))
	victimDir := filepath.Join(state, "envs", victim.EnvironmentID)

	// The attacker: tenant evil. 1 GB, so /tmp (512 MB) fills before
	// memory does: tmpfs pages count against the memory limit.
	evil := h.client("evil")
	deployHostile(t, evil, "innocent", hostileOpts{memoryMB: 1024, timeout: 60})
	const sub = "evil-sub"
	hit := func(t *testing.T, req map[string]any) hostileReport {
		t.Helper()
		return mustAttack(t, evil, "innocent", sub, req)
	}
	first := attack(t, evil, "innocent", sub, map[string]any{"attack": "identity"})
	require.Empty(t, first.fnError, "%v", first.errDoc)
	me := h.envByID(t, "evil", "innocent", first.envID)
	require.Equal(t, lambda.IsolationSandbox, me.Isolation)

	// Other children of this process: the sandboxes' inits, the hostile
	// function's siblings on the host.
	var siblings []int
	for _, p := range hostProcs() {
		if p.ppid == os.Getpid() && p.pid != me.Pid {
			siblings = append(siblings, p.pid)
		}
	}
	require.Contains(t, siblings, victim.Pid)

	t.Run("its own Runtime API works", func(t *testing.T) {
		// It is being invoked through it; and it can connect to it.
		r := hit(t, map[string]any{"attack": "connect", "addrs": []string{lambda.SandboxRuntimeAPI}})
		o := outcomeFor(t, r.Outcomes, "connect", lambda.SandboxRuntimeAPI)
		assert.True(t, o.OK, "%v", o)
	})

	t.Run("identity", func(t *testing.T) {
		id := hit(t, map[string]any{"attack": "identity"}).Identity
		require.NotNil(t, id)
		assert.Equal(t, sub, id.TenantID, "the handler saw another sub-tenant")
		assert.Equal(t, "innocent", id.FunctionName)
		assert.NotZero(t, id.Uid)
		assert.True(t, inSandboxRange(id.Uid), "uid %d is outside the sandbox range", id.Uid)
		assert.Equal(t, id.Uid, id.Euid)
		assert.Equal(t, id.Uid, id.Gid, "gid")
		assert.Equal(t, id.Uid, id.Egid, "egid")
		for _, g := range id.Groups {
			assert.True(t, inSandboxRange(g), "supplementary group %d", g)
		}
		assert.Equal(t, me.Uid, id.Uid, "the listing's uid")
		assert.NotEqual(t, victim.Uid, id.Uid, "two live environments share a uid")
		capsZero(t, "CapEff", id.CapEff)
		capsZero(t, "CapPrm", id.CapPrm)
		capsZero(t, "CapInh", id.CapInh)
		capsZero(t, "CapAmb", id.CapAmb)
		capsZero(t, "CapBnd", id.CapBnd)
		assert.Equal(t, 1, id.NoNewPrivs, "no_new_privs")
		assert.Equal(t, 2, id.Seccomp, "seccomp filter mode")
		assert.Equal(t, 1, id.Pid, "the function is PID 1 of its PID namespace")
		host, _ := os.Hostname()
		assert.NotEqual(t, host, id.Hostname, "the UTS namespace is the host's")
		assert.Equal(t, lambda.SandboxRuntimeAPI, id.RuntimeAPI)
		assert.Equal(t, "http://"+lambda.SandboxProxy, id.HTTPProxy)
		// No descriptor of gust's leaked into the function.
		for fd, target := range id.StartupFDs {
			assert.LessOrEqual(t, fd, 2, "descriptor %d (%s) leaked into the function", fd, target)
		}
		// Its mounts: the sandbox's, read-only but for /tmp, /proc and
		// the device nodes.
		allowed := []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ssl", "/etc/ca-certificates",
			"/etc/pki", "/etc/alternatives", "/etc/ld.so.cache", "/var/task", "/var/runtime", "/proc/sys"}
		writable := []string{"/tmp", "/proc", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}
		require.NotEmpty(t, id.Mounts)
		for _, m := range id.Mounts {
			known := m.Point == "/" || m.Point == "/dev" || slices.Contains(writable, m.Point) ||
				slices.ContainsFunc(allowed, func(a string) bool { return m.Point == a || strings.HasPrefix(m.Point, a+"/") })
			assert.True(t, known, "unexpected mount %s (%s %s)", m.Point, m.FSType, m.Options)
			if !slices.Contains(writable, m.Point) {
				assert.True(t, slices.Contains(strings.Split(m.Options, ","), "ro"), "mount %s is writable (%s)", m.Point, m.Options)
			}
		}
	})

	t.Run("its own /tmp works", func(t *testing.T) {
		r := hit(t, map[string]any{"attack": "tmp"})
		require.Len(t, r.Outcomes, 2)
		for _, o := range r.Outcomes {
			assert.True(t, o.OK, "%v", o)
		}
		assert.Equal(t, "mine", r.Outcomes[1].Detail)
	})

	t.Run("other environments' environ", func(t *testing.T) {
		// The host can read the victim's environ (the test's check works).
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", victim.Pid))
		require.NoError(t, err)
		require.Contains(t, string(b), secret)

		r := hit(t, map[string]any{"attack": "environ", "secret": secret, "paths": []string{
			fmt.Sprintf("/proc/%d/environ", victim.Pid), fmt.Sprintf("/proc/%d/environ", os.Getpid())}})
		assert.Empty(t, r.SecretIn, "the victim's secret was read")
		// It sees only its own processes, and can read their environ.
		require.NotEmpty(t, r.Visible)
		own := r.own()
		assert.Empty(t, strangers(r, me.Uid), "processes that are not its own are visible")
		readOwn := false
		for _, o := range r.Outcomes {
			if o.OK && strings.Contains(o.Detail, "AWS_LAMBDA_FUNCTION_NAME=innocent") {
				readOwn = true
			}
			assert.NotContains(t, o.Detail, secret)
		}
		assert.True(t, readOwn, "the function could not even read its own environ: the check proves nothing")
		for _, pid := range []int{victim.Pid, os.Getpid()} {
			if own[pid] {
				continue // the same number is one of its own processes there
			}
			outcomeFailed(t, outcomeFor(t, r.Outcomes, "read", fmt.Sprintf("/proc/%d/environ", pid)), "ENOENT")
		}
	})

	t.Run("other environments' files", func(t *testing.T) {
		paths := []string{
			filepath.Join(victimDir, "task", "bootstrap"),
			filepath.Join(victimDir, "task"),
			filepath.Join(victimDir, "root", "tmp", "secret"),
			victimDir,
			filepath.Join(state, "envs"),
			filepath.Join(state, "lambda.db"),
			filepath.Join(state, "code"),
			filepath.Join(state, "logs"),
			state,
			secretFile,
			fmt.Sprintf("/proc/%d/root/var/task/bootstrap", victim.Pid),
			fmt.Sprintf("/proc/%d/cwd", victim.Pid),
		}
		// The host can reach them (the paths are right), but for the
		// victim's root seen from the host: its mounts exist only in its
		// own mount namespace.
		for _, p := range paths {
			if p != filepath.Join(victimDir, "root", "tmp", "secret") {
				_, err := os.Stat(p)
				require.NoError(t, err, "the test's own path %s", p)
			}
		}
		r := hit(t, map[string]any{"attack": "read", "paths": paths})
		outcomesFailed(t, r.Outcomes, "ENOENT", "EACCES")
		for _, o := range r.Outcomes {
			assert.NotContains(t, o.Detail, secret)
		}
	})

	t.Run("the machine's files", func(t *testing.T) {
		wd, _ := os.Getwd()
		exe, _ := os.Executable()
		paths := []string{"/root", "/etc/shadow", "/etc/gshadow", "/home", "/proc/1/root/etc/shadow", "/sys/fs/cgroup",
			"/var/run/docker.sock", "/run", wd, exe}
		r := hit(t, map[string]any{"attack": "read", "paths": paths})
		outcomesFailed(t, r.Outcomes, "ENOENT", "EACCES")
		// /etc is the sandbox's own.
		r = hit(t, map[string]any{"attack": "read", "paths": []string{"/etc/passwd"}})
		o := outcomeFor(t, r.Outcomes, "read", "/etc/passwd")
		require.True(t, o.OK, "%v", o)
		hostPasswd, _ := os.ReadFile("/etc/passwd")
		assert.NotEqual(t, string(hostPasswd), o.Detail)
		assert.Contains(t, o.Detail, "sbx_user:x:"+strconv.Itoa(me.Uid))
	})

	t.Run("other processes", func(t *testing.T) {
		r := hit(t, map[string]any{"attack": "processes",
			"pids":      append([]int{victim.Pid, os.Getpid(), os.Getppid()}, siblings...),
			"kill_pids": append([]int{victim.Pid}, siblings...)})
		own := r.own()
		assert.Empty(t, strangers(r, me.Uid), "processes that are not its own are visible")
		assert.Equal(t, 1, r.Self, "it is not PID 1 of its namespace")
		require.NotEmpty(t, r.Outcomes)
		for _, o := range r.Outcomes {
			pid, _ := strconv.Atoi(o.Target)
			if own[pid] {
				continue // that number is one of its own there
			}
			outcomeFailed(t, o, "ESRCH", "EPERM")
		}
		assert.True(t, hostProcAlive(victim.Pid), "the victim's process was killed")
	})

	t.Run("the network", func(t *testing.T) {
		other := listenCounting(t, "tcp", "127.0.0.1:0")
		refused := []string{cloudAddr, temporal.Addr().String(), other.Addr().String(), "127.0.0.1:7233"}
		unreachable := []string{"169.254.169.254:80"}
		if ip := hostIPv4(); ip != "" {
			_, port, _ := net.SplitHostPort(cloudAddr)
			unreachable = append(unreachable, net.JoinHostPort(ip, port))
		}
		// The host reaches them all (the targets are real).
		hostDials := temporal.accepted.Load() + abstract.accepted.Load() + other.accepted.Load()
		for _, a := range append(refused[:3:3], abstractName) {
			network := "tcp"
			if strings.HasPrefix(a, "@") {
				network = "unix"
			}
			c, err := net.DialTimeout(network, a, time.Second)
			require.NoError(t, err, a)
			c.Close()
			if network == "tcp" && a == cloudAddr {
				continue // not a counting listener
			}
			hostDials++
		}
		accepted := func() int64 { return temporal.accepted.Load() + abstract.accepted.Load() + other.accepted.Load() }
		eventually(t, func() bool { return accepted() == hostDials }, "the host's own connections were accepted")

		r := hit(t, map[string]any{"attack": "connect",
			"addrs": slices.Concat([]string{lambda.SandboxRuntimeAPI}, refused, unreachable, []string{abstractName})})
		for _, o := range r.Outcomes {
			switch {
			case o.Target == lambda.SandboxRuntimeAPI:
				assert.True(t, o.OK, "its own Runtime API: %v", o)
			case slices.Contains(refused, o.Target), o.Target == abstractName:
				outcomeFailed(t, o, "ECONNREFUSED")
			case slices.Contains(unreachable, o.Target):
				outcomeFailed(t, o, "ENETUNREACH")
			default:
				t.Errorf("unexpected outcome %v", o)
			}
		}
		assert.Len(t, r.Outcomes, 2+len(refused)+len(unreachable))
		time.Sleep(50 * time.Millisecond) // an accept would have been counted by now
		assert.Equal(t, hostDials, accepted(), "a listener of the host accepted the function's connection")
	})

	t.Run("System V IPC", func(t *testing.T) {
		r := hit(t, map[string]any{"attack": "ipc", "shm_key": shmKey})
		outcomesFailed(t, r.Outcomes, "ENOENT")
	})

	t.Run("writing the code and the root filesystem", func(t *testing.T) {
		r := hit(t, map[string]any{"attack": "write", "paths": []string{
			"/var/task/bootstrap", "/var/task/planted", "/etc/passwd", "/etc/planted", "/planted", "/usr/bin/planted",
			"/bin/sh", "/dev/planted", "/proc/sys/kernel/hostname"}})
		outcomesFailed(t, r.Outcomes, "EROFS", "EACCES")
		_, err := os.Stat(filepath.Join(state, "envs", me.EnvironmentID, "task", "planted"))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})

	t.Run("forbidden system calls", func(t *testing.T) {
		r := hit(t, map[string]any{"attack": "syscalls"})
		for _, op := range []string{"mount", "umount2", "pivot_root", "chroot", "ptrace", "unshare(CLONE_NEWUSER)",
			"unshare(CLONE_NEWNET|CLONE_NEWUSER)", "clone(CLONE_NEWUSER|CLONE_NEWNS)", "setns", "bpf", "keyctl",
			"perf_event_open", "init_module", "io_uring_setup", "sethostname"} {
			outcomeFailed(t, outcomeFor(t, r.Outcomes, op, ""), "EPERM")
		}
		// clone3's flags are out of the filter's reach: it answers ENOSYS.
		outcomeFailed(t, outcomeFor(t, r.Outcomes, "clone3", ""), "ENOSYS")
		if _, err := os.Stat("/usr/bin/unshare"); err == nil {
			o := outcomeFor(t, r.Outcomes, "unshare -U (command)", "")
			assert.False(t, o.OK, "ATTACK SUCCEEDED: %v", o)
			assert.Contains(t, o.Error, "Operation not permitted")
		}
	})

	t.Run("system calls through the 32-bit ABI", func(t *testing.T) {
		if runtime.GOARCH != "amd64" {
			t.Skip("int 0x80 is x86-64's 32-bit ABI")
		}
		// Whether this machine's kernel answers int 0x80 at all, out of
		// any sandbox: many disable the 32-bit ABI (ia32_emulation).
		bin := filepath.Join(t.TempDir(), "hostile")
		require.NoError(t, os.WriteFile(bin, hostileBinary(t), 0o755))
		out, err := exec.Command(bin, "hostile-abi32").CombinedOutput()
		hostABI32 := err == nil && strings.Contains(string(out), "returned")

		r := hit(t, map[string]any{"attack": "abi32"})
		o := outcomeFor(t, r.Outcomes, "int 0x80", "getpid")
		assert.False(t, o.OK, "ATTACK SUCCEEDED: %v", o)
		assert.NotContains(t, o.Detail, "returned", "ATTACK SUCCEEDED: %v", o)
		if hostABI32 {
			assert.Contains(t, o.Error, "bad system call", "the process was not killed by seccomp: %v", o)
		} else {
			t.Logf("this kernel refuses int 0x80 even outside a sandbox (%v): the seccomp architecture guard is not exercised here; in the sandbox: %s", err, o.Error)
		}
	})

	t.Run("filling /tmp", func(t *testing.T) {
		require.Equal(t, lambda.DefaultEphemeralMB, me.EphemeralStorageMB)
		r := hit(t, map[string]any{"attack": "fill_tmp", "max_mb": lambda.DefaultEphemeralMB + 64})
		assert.Equal(t, "ENOSPC", r.Errno, "%s after %d bytes", r.Error, r.Bytes)
		assert.LessOrEqual(t, r.Bytes, int64(lambda.DefaultEphemeralMB)<<20)
		assert.Greater(t, r.Bytes, int64(lambda.DefaultEphemeralMB-16)<<20, "/tmp filled far below its size")
		// It cleaned up, and /tmp still works.
		again := hit(t, map[string]any{"attack": "tmp"})
		for _, o := range again.Outcomes {
			assert.True(t, o.OK, "%v", o)
		}
	})

	t.Run("fork bomb", func(t *testing.T) {
		if me.PidsMax == 0 {
			t.Skip("this machine enforces no pids.max (no pids cgroup controller for gust)")
		}
		require.Equal(t, lambda.DefaultPidsMax, me.PidsMax)
		start := time.Now()
		r := hit(t, map[string]any{"attack": "fork_bomb", "max": 4 * lambda.DefaultPidsMax})
		t.Logf("started %d processes beside %d threads in %d ms (reaped in %d ms; %v in all), then: %s",
			r.Spawned, r.Threads, r.SpawnMS, r.ReapMS, time.Since(start), r.Error)
		assert.Equal(t, "EAGAIN", r.Errno, r.Error)
		assert.LessOrEqual(t, r.Spawned+r.Threads, lambda.DefaultPidsMax)
		assert.Greater(t, r.Spawned, lambda.DefaultPidsMax/2, "stopped far below pids.max: by something else")
		// The function cleaned up after itself and still answers.
		after := hit(t, map[string]any{"attack": "processes"})
		assert.Less(t, len(after.Visible), 8, "processes left behind: %+v", after.Visible)
		assert.Less(t, len(procsOfUID(me.Uid)), 8)
	})

	t.Run("the victim is unaffected", func(t *testing.T) {
		r := mustInvoke(t, acme, "payments", "acme-customer", map[string]any{"env": []string{"ACME_SECRET"}})
		assert.Empty(t, r.fnError)
		assert.Equal(t, "acme-customer", r.resp.TenantID)
		assert.Equal(t, v.envID, r.envID, "the victim's environment was replaced")
		assert.False(t, r.cold)
		assert.Equal(t, int64(2), r.resp.Invocations)
		assert.Equal(t, secret, r.resp.Env["ACME_SECRET"])
		assert.Contains(t, r.resp.TmpFiles, "victim-marker")
		assert.Contains(t, r.resp.TmpFiles, "secret")
		assert.Equal(t, victim.Pid, h.envByID(t, "acme", "payments", v.envID).Pid)
	})
}
