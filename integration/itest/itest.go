// Package itest holds what gust's end-to-end test packages share
// (integration, integration/fleets, integration/crash,
// integration/topology): starting gust in the test process or as the gust
// binary, reading a fleet's instances from the cloud as ground truth, and
// waiting. It is a regular package, not a _test file, so every test package
// can import it; nothing outside tests does.
//
// Its only package-level state is the cache of the binaries it builds (see
// GustBinary): every other helper keeps what it starts in its own return
// value and stops it with the test's Cleanup, so tests in parallel cannot
// see each other's platforms, clouds or keys.
package itest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/tenants"
)

// StartPlatform starts gust as `gust dev` runs it, inside the test
// process (platform.Start, ephemeral, on 127.0.0.1), with mod applied to
// its Config, and registers the default tenant. It is closed when the test
// ends.
func StartPlatform(t testing.TB, mod func(*platform.Config)) *platform.Platform {
	t.Helper()
	cfg := platform.Config{IP: "127.0.0.1"}
	if mod != nil {
		mod(&cfg)
	}
	p, err := platform.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	_, err = p.EnsureTenant(context.Background(), tenants.DefaultTenant)
	require.NoError(t, err)
	return p
}

// WaitFor waits up to timeout for cond, checking every 20ms.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, timeout, 20*time.Millisecond, what)
}

// FreePort is a TCP port on 127.0.0.1 that nothing listened on a moment
// ago. Another process may take it before the caller does; the tests that
// use it pass it straight to the process that binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := devserver.FreePort("127.0.0.1")
	require.NoError(t, err)
	return p
}
