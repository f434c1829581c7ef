//go:build linux

package lambda_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// TestIsolationNoneMustBeAskedFor: functions run in sandboxes unless
// isolation "none" is asked for by name, and a misspelt level is an error,
// never a weaker isolation.
func TestIsolationNoneMustBeAskedFor(t *testing.T) {
	requireRootSandbox(t)

	for _, tc := range []struct{ name, isolation string }{{"default", ""}, {"explicit", lambda.IsolationSandbox}} {
		t.Run(tc.name+" is sandbox", func(t *testing.T) {
			h := newHarness(t, func(cfg *lambda.Config) { cfg.Isolation = tc.isolation })
			level, err := h.cloud.Isolation()
			require.NoError(t, err)
			assert.Equal(t, lambda.IsolationSandbox, level)
			c := h.client("t1")
			createFn(t, c, "echo", fnOpts{tenancy: true})
			r := mustInvoke(t, c, "echo", "s", nil)
			l := h.envs(t, "t1", "echo")
			assert.Equal(t, lambda.IsolationSandbox, l.Isolation)
			require.Len(t, l.Environments, 1)
			e := l.Environments[0]
			assert.Equal(t, lambda.IsolationSandbox, e.Isolation)
			assert.True(t, inSandboxRange(e.Uid), "uid %d", e.Uid)
			assert.Equal(t, e.Uid, r.resp.UID, "the uid the function runs as")
			assert.Equal(t, 1, r.resp.PID, "PID 1 of its own PID namespace")
		})
	}

	t.Run("none when asked for", func(t *testing.T) {
		h := newHarness(t, func(cfg *lambda.Config) { cfg.Isolation = lambda.IsolationNone })
		level, err := h.cloud.Isolation()
		require.NoError(t, err)
		assert.Equal(t, lambda.IsolationNone, level)
		c := h.client("t1")
		createFn(t, c, "echo", fnOpts{tenancy: true})
		r := mustInvoke(t, c, "echo", "s", nil)
		l := h.envs(t, "t1", "echo")
		assert.Equal(t, lambda.IsolationNone, l.Isolation)
		require.Len(t, l.Environments, 1)
		e := l.Environments[0]
		assert.Equal(t, lambda.IsolationNone, e.Isolation)
		assert.Equal(t, os.Geteuid(), e.Uid, "a plain process runs as gust's own uid")
		assert.Equal(t, os.Geteuid(), r.resp.UID)
		assert.Equal(t, e.Pid, r.resp.PID, "a plain process has the host's pid")
	})

	t.Run("unknown levels fail Open", func(t *testing.T) {
		for _, bad := range []string{"sandboxed", "None", "SANDBOX", "gvisor", " "} {
			c, err := lambda.Open(lambda.Config{StateDir: t.TempDir(), Isolation: bad})
			if !assert.Error(t, err, "isolation %q", bad) {
				c.Close()
				continue
			}
			assert.Contains(t, err.Error(), `unknown isolation "`+bad+`"`)
			assert.Contains(t, err.Error(), lambda.IsolationSandbox)
			assert.Contains(t, err.Error(), lambda.IsolationNone)
		}
	})
}
