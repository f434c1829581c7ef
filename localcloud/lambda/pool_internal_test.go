package lambda

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolHarness drives a pool directly. Its environments run a bootstrap that
// only sleeps: acquire starts the process without waiting for the runtime,
// so the pool's bookkeeping is exercised with real processes in
// milliseconds.
type poolHarness struct {
	t *testing.T
	p *pool
}

func newPoolHarness(t *testing.T, maxPerFunction, maxTotal int) *poolHarness {
	t.Helper()
	code := t.TempDir()
	require.NoError(t, os.Chmod(code, 0o755)) // a sandbox's uid reads it
	require.NoError(t, os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755))
	dir := t.TempDir()
	cfg, err := Config{StateDir: dir, MaxEnvsPerFunction: maxPerFunction, MaxEnvsTotal: maxTotal}.withDefaults()
	require.NoError(t, err)
	spec := startSpec{
		codeDir: func(string) (string, error) { return code, nil },
		region:  cfg.Region,
		sinks:   newLogSinks(filepath.Join(dir, "logs"), 1<<20),
		mem:     newMemoryLimiter("", true),
		iso:     testIsolator(t),
		logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	p := newPool(&cfg, spec, filepath.Join(dir, "envs"))
	t.Cleanup(p.close)
	return &poolHarness{t: t, p: p}
}

func testFunction(name string) *function {
	return &function{Tenant: "t", Name: name, UID: "uid-" + name, Version: 1,
		Config: functionConfig{MemoryMB: 128, TimeoutSec: 3}}
}

// acquire starts an environment of (fn, sub), which must be a cold start.
func (h *poolHarness) acquire(fn *function, sub string) *environment {
	h.t.Helper()
	e, cold, err := h.p.acquire(fn, sub)
	require.NoError(h.t, err, "acquire %s/%s", fn.Name, sub)
	require.True(h.t, cold, "acquire %s/%s", fn.Name, sub)
	return e
}

// idle starts an environment of (fn, sub) and releases it at once, making
// it the most recently used idle environment.
func (h *poolHarness) idle(fn *function, sub string) *environment {
	h.t.Helper()
	e := h.acquire(fn, sub)
	h.p.release(e, false)
	return e
}

// live reports whether e is still one of the pool's environments.
func (h *poolHarness) live(e *environment) bool {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.p.all[e.id] == e
}

// requireEvicted checks that e was removed and its process waited for
// before the acquire that evicted it returned: the number of processes
// never exceeds a limit.
func (h *poolHarness) requireEvicted(e *environment, msg string) {
	h.t.Helper()
	require.False(h.t, h.live(e), msg)
	require.True(h.t, isClosed(e.exited), "%s: stopped synchronously", msg)
}

func requireThrottled(t *testing.T, err error, reason, msg string) {
	t.Helper()
	var ae *apiError
	require.True(t, errors.As(err, &ae), "want a throttle, got %v", err)
	assert.Equal(t, codeTooManyRequests, ae.code)
	assert.Equal(t, reason, ae.reason)
	assert.Contains(t, ae.message, msg)
}

// TestPoolEvictsLRUIdleEnvironmentAtFunctionLimit: a function at its
// environment limit with idle environments serves a new sub-tenant by
// stopping its own least recently used idle one, never another function's,
// even one idle for longer.
func TestPoolEvictsLRUIdleEnvironmentAtFunctionLimit(t *testing.T) {
	h := newPoolHarness(t, 3, 10)
	f1, f2 := testFunction("f1"), testFunction("f2")
	other := h.idle(f2, "x") // the least recently used of all
	a := h.idle(f1, "a")
	b := h.idle(f1, "b")
	c := h.idle(f1, "c")

	d := h.acquire(f1, "d")
	h.requireEvicted(a, "f1's least recently used idle environment made room")
	assert.True(t, h.live(b) && h.live(c), "only one victim")
	assert.True(t, h.live(other), "another function's environment is not f1's to evict")
	assert.Equal(t, 3, h.p.perFn[f1.UID])
	h.p.release(d, false)

	// b is now f1's least recently used.
	e := h.acquire(f1, "e")
	h.requireEvicted(b, "the next victim")
	assert.True(t, h.live(c) && h.live(d) && h.live(other))
	h.p.release(e, false)
}

// TestPoolRefusesOnlyWhenAllOfAFunctionsEnvironmentsAreBusy: idle
// environments of other functions do not make room under a function's
// own limit.
func TestPoolRefusesOnlyWhenAllOfAFunctionsEnvironmentsAreBusy(t *testing.T) {
	h := newPoolHarness(t, 3, 10)
	f1, f2 := testFunction("f1"), testFunction("f2")
	other := h.idle(f2, "x")
	h.acquire(f1, "a")
	b := h.acquire(f1, "b")
	h.acquire(f1, "c")

	_, _, err := h.p.acquire(f1, "d")
	requireThrottled(t, err, reasonReservedFunctionConc, "Function f1 has all 3 of its execution environments busy")
	assert.True(t, h.live(other))
	assert.Equal(t, 3, h.p.perFn[f1.UID])

	// Another function is not throttled by f1's limit.
	h.p.release(h.acquire(f2, "y"), false)

	// One of f1's environments going idle makes room again.
	h.p.release(b, false)
	h.acquire(f1, "d")
	h.requireEvicted(b, "the idle one made room")
	assert.True(t, h.live(other))
}

// TestPoolEvictsAnyFunctionsLRUIdleEnvironmentAtTotalLimit: at the total
// limit (with the function under its own) the least recently used idle
// environment of any function makes room; at both limits at once the
// function's own does, which frees a place under both.
func TestPoolEvictsAnyFunctionsLRUIdleEnvironmentAtTotalLimit(t *testing.T) {
	h := newPoolHarness(t, 3, 4)
	f1, f2 := testFunction("f1"), testFunction("f2")
	x := h.idle(f2, "x")
	a := h.idle(f1, "a")
	b := h.idle(f1, "b")
	c := h.idle(f1, "c")

	// Both limits: f1's own victim, although x is older.
	d := h.acquire(f1, "d")
	h.requireEvicted(a, "f1's own least recently used")
	assert.True(t, h.live(x))
	h.p.release(d, false)

	// Make x recently used; b is now the least recently used of all.
	warm, cold, err := h.p.acquire(f2, "x")
	require.NoError(t, err)
	require.False(t, cold)
	require.Same(t, x, warm)
	h.p.release(x, false)

	// Only the total limit: any function's victim, here f1's b for f2.
	y := h.acquire(f2, "y")
	h.requireEvicted(b, "the least recently used of all functions")
	assert.True(t, h.live(c) && h.live(d) && h.live(x))
	assert.Equal(t, 4, h.p.total)

	// Everything busy: the total limit refuses.
	for _, sub := range []string{"c", "d"} {
		_, cold, err := h.p.acquire(f1, sub)
		require.NoError(t, err)
		require.False(t, cold)
	}
	_, _, err = h.p.acquire(f2, "x")
	require.NoError(t, err)
	_, _, err = h.p.acquire(f2, "z")
	requireThrottled(t, err, reasonConcurrentLimit, "All 4 execution environments are busy")
	_ = y
}

// TestPoolKeepsCodeWhileEnvironmentsUseIt: code is removed only when no
// environment uses it, and no environment starts from code being removed.
func TestPoolKeepsCodeWhileEnvironmentsUseIt(t *testing.T) {
	h := newPoolHarness(t, 3, 10)
	f1, f2 := testFunction("f1"), testFunction("f2")
	f1.CodeSHA256, f2.CodeSHA256 = "code-1", "code-2"
	e := h.acquire(f1, "a")

	assert.False(t, h.p.lockCodeForRemoval("code-1"), "a busy environment uses it")
	h.p.release(e, false)
	assert.Empty(t, h.p.freedCode(), "an idle one too")
	select {
	case <-h.p.codeFreed:
		t.Fatal("signalled while in use")
	default:
	}

	h.p.removeFunction(f1.UID)
	select {
	case <-h.p.codeFreed:
	default:
		t.Fatal("not signalled when the last environment went")
	}
	assert.Equal(t, []string{"code-1"}, h.p.freedCode())
	assert.Empty(t, h.p.freedCode(), "handed over once")

	require.True(t, h.p.lockCodeForRemoval("code-1"))
	_, _, err := h.p.acquire(f1, "b")
	assert.ErrorIs(t, err, errCodeRemoved)
	h.p.release(h.acquire(f2, "x"), false) // other code starts
	h.p.unlockCode()
	h.acquire(f1, "b")
}
