//go:build linux

package lambda_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// sandboxedEnv is a live environment and what it holds on the host.
type sandboxedEnv struct {
	id       string
	pid, uid int
	dir      string
	cgroups  []string
}

// envCgroups finds an environment's cgroup directories (gust-<id>, in a
// gust-lambda-* parent) in the cgroup v1 memory, pids and cpu hierarchies,
// and in the v2 one.
func envCgroups(id string) []string {
	var out []string
	for _, root := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if d.Name() == "gust-"+id && strings.HasPrefix(filepath.Base(filepath.Dir(p)), "gust-lambda-") {
				out = append(out, p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

// mountsMentioning lists the processes whose mount table mentions any of
// needles, with the line.
func mountsMentioning(needles ...string) []string {
	var out []string
	files, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		for line := range strings.Lines(string(b)) {
			for _, n := range needles {
				if strings.Contains(line, n) {
					out = append(out, f+": "+strings.TrimSpace(line))
				}
			}
		}
	}
	return out
}

// TestSandboxCleanup discards environments in every way the local cloud
// does (idle reaping, a timeout, running out of memory, a version update)
// after each started processes meant to outlive it, and checks that
// nothing of the environment is left: no process of its uid, no mount, no
// cgroup, no directory, and its uid back in the pool.
func TestSandboxCleanup(t *testing.T) {
	requireRootSandbox(t)
	const warm = 2 // sandboxes kept prepared, each with a uid of its own
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	h := newHarness(t, func(cfg *lambda.Config) {
		cfg.IdleTTL = time.Hour // the background reaper never fires on its own in this test
		cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
		cfg.WarmSandboxes = warm
	})
	c := h.client("ct")
	// A timeout of 5 s: long enough that the out-of-memory case reaches its
	// limit before it, even on a loaded machine (with 1 s it timed out
	// first), and still a short wait for the timeout case.
	deployHostile(t, c, "leaky", hostileOpts{timeout: 5, memoryMB: 128})
	envsDir := filepath.Join(h.cfg.StateDir, "envs")

	// What the hostile function can start to outlive its environment on
	// this machine.
	orphans := 1 // a plain background sleep
	if _, err := exec.LookPath("setsid"); err == nil {
		orphans++
	}
	if _, err := exec.LookPath("timeout"); err == nil {
		orphans += 2 // timeout and its sleep
	}

	// start starts an environment for sub that leaves orphans behind.
	start := func(t *testing.T, sub string) sandboxedEnv {
		t.Helper()
		r := attack(t, c, "leaky", sub, map[string]any{"attack": "spawn_orphans"})
		require.Empty(t, r.fnError, "%v", r.errDoc)
		for _, o := range r.report.Outcomes {
			if _, err := exec.LookPath(o.Target); o.Op != "lookpath" || err == nil {
				require.True(t, o.OK, "%v", o)
			}
		}
		e := h.envByID(t, "ct", "leaky", r.envID)
		l := sandboxedEnv{id: e.EnvironmentID, pid: e.Pid, uid: e.Uid, dir: filepath.Join(envsDir, e.EnvironmentID)}
		require.True(t, inSandboxRange(l.uid))

		// The orphans run, as the environment's uid, some of them out of
		// its session and process group.
		var procs []hostProc
		eventually(t, func() bool { procs = procsOfUID(l.uid); return len(procs) >= 1+orphans }, "the orphans started")
		var fn hostProc
		for _, p := range procs {
			if p.pid == l.pid {
				fn = p
			}
		}
		require.Equal(t, l.pid, fn.pid, "the environment's process runs as its uid: %+v", procs)
		if orphans > 1 {
			escaped := 0
			for _, p := range procs {
				if p.sid != fn.sid || p.pgid != fn.pgid {
					escaped++
				}
			}
			assert.Positive(t, escaped, "no orphan left the session or process group: %+v", procs)
		}
		// The checks below can see what they look for.
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(l.pid), "mountinfo"))
		require.NoError(t, err)
		require.Contains(t, string(b), l.id, "the sandbox's mounts do not mention its environment")
		_, err = os.Stat(l.dir)
		require.NoError(t, err)
		l.cgroups = envCgroups(l.id)
		want := 0
		for _, on := range []bool{e.MemoryLimitEnforced, e.PidsMax > 0, e.CpuShare > 0} {
			if on {
				want++
			}
		}
		require.Len(t, l.cgroups, want, "the environment's cgroups: %v", l.cgroups)
		t.Logf("environment %s: uid %d, %d processes, cgroups %v", l.id, l.uid, len(procs), l.cgroups)
		return l
	}

	// gone asserts that nothing of l is left.
	gone := func(t *testing.T, l sandboxedEnv) {
		t.Helper()
		eventually(t, func() bool { return len(procsOfUID(l.uid)) == 0 }, "no process of the environment's uid is left")
		assertProcessGone(t, l.pid)
		assert.Empty(t, mountsMentioning(l.id, l.dir), "mounts of the discarded environment")
		eventually(t, func() bool {
			for _, cg := range l.cgroups {
				if _, err := os.Stat(cg); !os.IsNotExist(err) {
					return false
				}
			}
			return true
		}, "the environment's cgroups are removed")
		assert.Empty(t, envCgroups(l.id))
		eventually(t, func() bool { _, err := os.Stat(l.dir); return os.IsNotExist(err) }, "the environment's directory is removed")
		for _, e := range h.envs(t, "ct", "leaky").Environments {
			assert.NotEqual(t, l.id, e.EnvironmentID, "the discarded environment is still listed")
		}
		// Every uid handed out belongs to a listed environment or to a
		// prepared sandbox, and every sandbox root left is one of theirs.
		var live, inUse, roots int
		eventually(t, func() bool {
			live = len(h.envs(t, "ct", "leaky").Environments)
			inUse = lambda.SandboxIDsInUse(h.cloud)
			dirs, _ := filepath.Glob(filepath.Join(envsDir, "sandbox-*"))
			roots = len(dirs)
			return inUse == live+warm && roots == inUse
		}, "the uid went back to the pool")
		assert.Equal(t, live+warm, inUse)
		assert.Equal(t, inUse, roots)
	}

	// another asserts that sub gets a new environment, which works.
	another := func(t *testing.T, sub string, old sandboxedEnv) {
		t.Helper()
		r := attack(t, c, "leaky", sub, map[string]any{"attack": "identity"})
		require.Empty(t, r.fnError, "%v", r.errDoc)
		require.NotNil(t, r.report.Identity)
		assert.NotEqual(t, old.id, r.envID)
		assert.Equal(t, sub, r.report.Identity.TenantID)
		assert.True(t, inSandboxRange(r.report.Identity.Uid))
	}

	t.Run("idle reaping", func(t *testing.T) {
		l := start(t, "reaped")
		now.Add(int64(2 * time.Hour))
		assert.Equal(t, 1, h.cloud.Reap())
		gone(t, l)
		another(t, "reaped", l)
	})

	t.Run("timeout", func(t *testing.T) {
		l := start(t, "timed-out")
		r := attack(t, c, "leaky", "timed-out", map[string]any{"attack": "sleep", "sleep_ms": 60000})
		assert.Equal(t, "Sandbox.Timedout", r.errDoc["errorType"], "%v", r.errDoc)
		assert.Equal(t, l.id, r.envID)
		gone(t, l)
		another(t, "timed-out", l)
	})

	t.Run("out of memory", func(t *testing.T) {
		if l := h.envs(t, "ct", "leaky"); !l.MemoryLimitEnforced {
			t.Skipf("this machine allows no memory limit (%s)", l.MemoryLimitNote)
		}
		l := start(t, "oom")
		r := attack(t, c, "leaky", "oom", map[string]any{"attack": "alloc", "alloc_mb": 400})
		assert.Equal(t, "Runtime.OutOfMemory", r.errDoc["errorType"], "%v", r.errDoc)
		assert.Equal(t, l.id, r.envID)
		gone(t, l)
		another(t, "oom", l)
	})

	t.Run("version update", func(t *testing.T) {
		l := start(t, "updated")
		out, err := c.UpdateFunctionConfiguration(context.Background(), &awslambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("leaky"),
			Environment:  &types.Environment{Variables: map[string]string{"VERSION": "2"}},
		})
		require.NoError(t, err)
		require.NotEqual(t, "1", aws.ToString(out.Version))
		gone(t, l)
		another(t, "updated", l)
	})
}
