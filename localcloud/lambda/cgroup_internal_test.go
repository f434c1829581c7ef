package lambda

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestMemoryCgroupPath(t *testing.T) {
	p, err := memoryCgroupPath(writeFile(t, "5:devices:/\n4:memory:/process_api/abc\n0::/\n"))
	require.NoError(t, err)
	assert.Equal(t, "/process_api/abc", p)

	p, err = memoryCgroupPath(writeFile(t, "7:cpu,cpuacct:/a\n6:blkio,memory:/b c\n"))
	require.NoError(t, err)
	assert.Equal(t, "/b c", p)

	// cgroup v2 only: the single "0::" line names no controllers.
	_, err = memoryCgroupPath(writeFile(t, "0::/user.slice\n"))
	assert.ErrorContains(t, err, "no cgroup v1 memory controller")
}

func TestMemoryMount(t *testing.T) {
	info := "" +
		"30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu\n" +
		"33 25 0:29 /docker/x /sys/fs/cgroup/mem\\040ory rw,relatime shared:8 - cgroup cgroup rw,memory\n" +
		"40 25 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	mnt, root, err := memoryMount(writeFile(t, info))
	require.NoError(t, err)
	assert.Equal(t, "/sys/fs/cgroup/mem ory", mnt)
	assert.Equal(t, "/docker/x", root)

	_, _, err = memoryMount(writeFile(t, "33 25 0:29 / /sys/fs/cgroup/memory ro,relatime - cgroup cgroup ro,memory\n"))
	assert.ErrorContains(t, err, "read-only")

	_, _, err = memoryMount(writeFile(t, "40 25 0:35 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"))
	assert.ErrorContains(t, err, "no cgroup v1 memory hierarchy")
}

func TestMemoryLimiterReportsWhyNot(t *testing.T) {
	m := newMemoryLimiter("", true)
	assert.False(t, m.enforced())
	assert.Contains(t, m.reason, "turned off")

	m = newMemoryLimiter(t.TempDir(), false)
	assert.False(t, m.enforced(), "a directory that is not a cgroup")
	assert.Contains(t, m.reason, "cgroup parent unusable")
}

func TestEnvironmentRunsWithoutALimitItCannotGet(t *testing.T) {
	code := t.TempDir()
	require.NoError(t, os.Chmod(code, 0o755)) // a sandbox's uid reads it
	_, err := lambdatest.BuildEcho(code)
	require.NoError(t, err)
	dir := t.TempDir()
	var logs bytes.Buffer
	spec := startSpec{
		codePath: code,
		region:   "us-east-1",
		sinks:    newLogSinks(filepath.Join(dir, "logs"), 1<<20),
		// A limiter whose parent cgroup has gone away under it.
		mem:    &memoryLimiter{parent: filepath.Join(dir, "no-such-cgroup"), v1: true},
		iso:    testIsolator(t),
		logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	fn := &function{Tenant: "t", Name: "echo", UID: "u", Version: 1, Config: functionConfig{MemoryMB: 128, TimeoutSec: 3}}
	e := newEnvironment(envKey{fnUID: "u", version: 1, subTenant: "s"}, fn, filepath.Join(dir, "envs"), time.Now())
	require.NoError(t, e.start(spec))
	defer e.stop()

	assert.False(t, e.memLimit, "the listing must not claim a limit")
	assert.Contains(t, logs.String(), "environment runs without its memory limit")
	res := e.invoke(&invocation{id: "r1", payload: []byte(`{}`), subTenant: "s", result: make(chan invokeResult, 1)}, 3*time.Second, 10*time.Second)
	assert.False(t, res.fnError, "the function still runs: %s", res.payload)
}

// testIsolator is the default isolator (a sandbox), for tests that start
// environments without a Cloud.
func testIsolator(t *testing.T) isolator {
	t.Helper()
	cfg, err := Config{StateDir: t.TempDir()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	iso, err := newIsolator(&cfg, cfg.StateDir)
	if err != nil {
		t.Fatalf("no sandbox on this machine (tests need root or user namespaces): %v", err)
	}
	t.Cleanup(iso.close)
	return iso
}
