package lambda

import (
	"errors"
	"sync"
	"time"
)

// pool owns every environment and enforces the rules:
//
//  1. an environment serves one key (tenant's function incarnation, version,
//     sub-tenant) for its whole life;
//  2. a free warm environment of the key is reused, the most recently used
//     first (it is the likeliest to have warm caches);
//  3. one invocation at a time per environment; new environments are
//     started up to the per-sub-tenant, per-function and total limits, and
//     past a limit the caller is throttled at once, never queued;
//  4. idle environments are reaped after IdleTTL, and when the
//     per-function or total limit is reached the least recently used idle
//     environment within that limit (of the function, or of any function)
//     is stopped to make room: only busy environments throttle a new
//     sub-tenant, never idle ones.
//
// Everything is in memory: environments are processes that die with gust,
// so there is nothing to persist, and the invoke path never touches SQLite.
type pool struct {
	cfg  *Config
	spec startSpec
	envs string // directory of environments' directories

	mu     sync.Mutex
	keys   map[envKey]*keyEnvs     // guarded by mu
	perFn  map[string]int          // live environments per function UID; guarded by mu
	total  int                     // live environments; guarded by mu
	all    map[string]*environment // by id; guarded by mu
	lru    environment             // sentinel of the idle list: lru.next is the most recently used; guarded by mu
	closed bool                    // guarded by mu
	// busy counts the environments running (or starting for) an
	// invocation per function UID, and reserved is the functions' reserved
	// concurrency (PutFunctionConcurrency): no more than reserved[uid]
	// invocations run at once. Both guarded by mu.
	busy     map[string]int
	reserved map[string]int

	// The code store removes code only when no environment uses it, so an
	// environment that is starting never finds its code half gone (running
	// ones have their own links to it; see store.removeCode).
	codeUsers   map[string]int  // environments in all, by code sha256; guarded by mu
	codeWaiting map[string]bool // code to remove once codeUsers drops to 0; guarded by mu
	codeLocked  string          // code being removed, which no environment may start from; guarded by mu
	codeFreed   chan struct{}   // signalled (cap 1) when waiting code becomes unused

	stops    sync.WaitGroup // asynchronous stops in flight
	starting sync.WaitGroup // acquires starting an environment
}

// keyEnvs are one key's environments.
type keyEnvs struct {
	idle []*environment // most recently used last
	live int            // idle, busy and starting
}

func newPool(cfg *Config, spec startSpec, envsDir string) *pool {
	p := &pool{cfg: cfg, spec: spec, envs: envsDir,
		keys: map[envKey]*keyEnvs{}, perFn: map[string]int{}, all: map[string]*environment{},
		busy: map[string]int{}, reserved: map[string]int{},
		codeUsers: map[string]int{}, codeWaiting: map[string]bool{}, codeFreed: make(chan struct{}, 1)}
	p.lru.next, p.lru.prev = &p.lru, &p.lru
	return p
}

var (
	errPoolClosed           = errors.New("lambda service is shutting down")
	errRemovedWhileStarting = errors.New("the function was deleted while its environment was starting")
	errCodeRemoved          = errors.New("the function was updated or deleted while its environment was starting")
)

// acquire returns an environment of (fn, subTenant) for the caller's
// exclusive use, and whether it had to be started (a cold start). The
// caller must release it. Errors are *apiError (throttling), errEntrypoint
// (the code cannot run) or internal failures.
func (p *pool) acquire(fn *function, subTenant string) (*environment, bool, error) {
	key := envKey{fnUID: fn.UID, version: fn.Version, subTenant: subTenant}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	if limit, ok := p.reserved[fn.UID]; ok && p.busy[fn.UID] >= limit {
		// Reserved concurrency caps invocations, whichever sub-tenant
		// or version they are for; 0 throttles the function entirely.
		p.mu.Unlock()
		return nil, false, errTooManyRequests(reasonReservedFunctionConc,
			"Rate Exceeded. Function %s is at its reserved concurrency of %d", fn.Name, limit)
	}
	ks := p.keys[key]
	if ks != nil && len(ks.idle) > 0 {
		e := ks.idle[len(ks.idle)-1]
		ks.idle[len(ks.idle)-1] = nil
		ks.idle = ks.idle[:len(ks.idle)-1]
		p.unlinkLocked(e)
		e.state = envBusy
		e.invocations++
		p.busy[fn.UID]++
		p.mu.Unlock()
		return e, false, nil
	}

	if p.codeLocked != "" && fn.CodeSHA256 == p.codeLocked {
		// fn was looked up before an update or deletion that is now
		// removing its code.
		p.mu.Unlock()
		return nil, false, errCodeRemoved
	}

	maxSub := fn.Config.MaxEnvsPerSubTenant
	if maxSub <= 0 {
		maxSub = p.cfg.MaxEnvsPerSubTenant
	}
	if ks != nil && ks.live >= maxSub {
		p.mu.Unlock()
		return nil, false, errTooManyRequests(reasonReservedFunctionConc,
			"Rate Exceeded. Sub-tenant has all %d of its execution environments of %s busy", maxSub, fn.Name)
	}
	// At a limit, the least recently used idle environment within it
	// (necessarily another key's: this key has none idle) makes room. One
	// victim is always enough: the function's own frees a place under
	// both limits, and under the total limit any function's will do.
	var victim *environment
	switch {
	case p.perFn[fn.UID] >= p.cfg.MaxEnvsPerFunction:
		if victim = p.lruIdleLocked(fn.UID); victim == nil {
			p.mu.Unlock()
			return nil, false, errTooManyRequests(reasonReservedFunctionConc,
				"Rate Exceeded. Function %s has all %d of its execution environments busy", fn.Name, p.cfg.MaxEnvsPerFunction)
		}
		p.removeLocked(victim)
	case p.total >= p.cfg.MaxEnvsTotal:
		if victim = p.lru.prev; victim == &p.lru {
			p.mu.Unlock()
			return nil, false, errTooManyRequests(reasonConcurrentLimit,
				"Rate Exceeded. All %d execution environments are busy", p.cfg.MaxEnvsTotal)
		}
		p.removeLocked(victim)
	}
	if ks == nil {
		ks = &keyEnvs{}
		p.keys[key] = ks
	}
	ks.live++
	p.busy[fn.UID]++
	p.perFn[fn.UID]++
	p.total++
	p.codeUsers[fn.CodeSHA256]++
	e := newEnvironment(key, fn, p.envs, p.cfg.Now()) // envStarting: start writes its fields unlocked
	e.invocations = 1
	p.all[e.id] = e
	p.starting.Add(1) // under mu while !closed, so before close's Wait
	p.mu.Unlock()
	defer p.starting.Done()

	if victim != nil {
		// Synchronously, so the number of processes never exceeds the limit.
		victim.stop()
	}
	spec := p.spec
	code, err := p.spec.codeDir(fn.CodeSHA256)
	if err == nil {
		spec.codePath = code
		err = e.start(spec)
	}
	p.mu.Lock()
	if e.state == envStopped {
		// Removed while starting: its function was deleted or the pool
		// is closing. Its code may have been removed meanwhile too, so a
		// start error is that, not the function's.
		err = errRemovedWhileStarting
	}
	if err != nil {
		p.removeLocked(e)
		p.mu.Unlock()
		e.stop()
		return nil, false, err
	}
	e.state = envBusy // publishes start's writes to list, which reads under mu
	p.mu.Unlock()
	go p.watch(e)
	return e, true, nil
}

// release returns e after an invocation. An environment that must not be
// used again (crashed, timed out, retired, or the pool is closing) is
// stopped; the others go idle.
func (p *pool) release(e *environment, discard bool) {
	p.mu.Lock()
	if e.state == envStopped {
		// Removed while busy (function deleted, pool closed): just finish
		// stopping it.
		p.mu.Unlock()
		p.stopAsync(e)
		return
	}
	if discard || e.retired || p.closed || isClosed(e.exited) {
		p.removeLocked(e)
		p.mu.Unlock()
		p.stopAsync(e)
		return
	}
	e.state = envIdle
	p.unbusyLocked(e.key.fnUID)
	e.lastUsed = p.cfg.Now()
	ks := p.keys[e.key]
	ks.idle = append(ks.idle, e)
	p.linkFrontLocked(e)
	p.mu.Unlock()
}

// watch removes an environment whose process exits while it is idle (for
// example killed from outside); a busy one is handled by its invocation.
func (p *pool) watch(e *environment) {
	select {
	case <-e.exited:
	case <-e.stopping:
		return
	}
	p.mu.Lock()
	idle := e.state == envIdle
	if idle {
		p.removeLocked(e)
	}
	p.mu.Unlock()
	if idle {
		p.stopAsync(e)
	}
}

// retire makes the environments of fnUID older than version unusable,
// except those of the published versions in keep: idle ones stop now,
// busy ones when their invocation ends. New invocations already use
// version's key, so they never reach them.
func (p *pool) retire(fnUID string, version int, keep map[int]bool) {
	p.retireIf(func(e *environment) bool {
		return e.key.fnUID == fnUID && e.key.version < version && !keep[e.key.version]
	})
}

// retireVersion retires the environments of one version of fnUID, a
// deleted published version.
func (p *pool) retireVersion(fnUID string, version int) {
	p.retireIf(func(e *environment) bool { return e.key.fnUID == fnUID && e.key.version == version })
}

func (p *pool) retireIf(match func(*environment) bool) {
	var stop []*environment
	p.mu.Lock()
	for _, e := range p.all {
		if !match(e) {
			continue
		}
		e.retired = true
		if e.state == envIdle {
			p.removeLocked(e)
			stop = append(stop, e)
		}
	}
	p.mu.Unlock()
	for _, e := range stop {
		e.stop()
	}
}

// removeFunction stops every environment of fnUID, busy ones included:
// their invocations end with the process's exit.
func (p *pool) removeFunction(fnUID string) {
	var stop []*environment
	p.mu.Lock()
	for _, e := range p.all {
		if e.key.fnUID == fnUID {
			stop = p.removeForStopLocked(e, stop)
		}
	}
	p.mu.Unlock()
	for _, e := range stop {
		e.stop()
	}
}

// reap stops the environments idle since before now-IdleTTL and reports
// how many it stopped.
func (p *pool) reap(now time.Time) int {
	cutoff := now.Add(-p.cfg.IdleTTL)
	var stop []*environment
	p.mu.Lock()
	for e := p.lru.prev; e != &p.lru && !e.lastUsed.After(cutoff); e = p.lru.prev {
		p.removeLocked(e)
		stop = append(stop, e)
	}
	p.mu.Unlock()
	for _, e := range stop {
		e.stop()
	}
	return len(stop)
}

// snapshot is an environment as listings show it.
type snapshot struct {
	ID          string
	Version     int
	SubTenant   string
	State       string
	Retired     bool
	Invocations int
	PID         int
	MemoryMB    int
	MemoryLimit bool
	Isolation   string
	UID         int
	PidsMax     int // 0: not enforced
	CPUShare    int // cpu.shares (v1) or cpu.weight (v2); 0: not enforced
	TmpMB       int
	Started     time.Time
	LastUsed    time.Time
}

func (p *pool) list(fnUID string) []snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]snapshot, 0)
	for _, e := range p.all {
		if e.key.fnUID != fnUID {
			continue
		}
		s := snapshot{ID: e.id, Version: e.key.version, SubTenant: e.key.subTenant,
			State: e.state.String(), Retired: e.retired, Invocations: e.invocations,
			MemoryMB: e.fn.Config.MemoryMB, Started: e.started, LastUsed: e.lastUsed}
		if e.state != envStarting {
			s.PID, s.MemoryLimit, s.Isolation, s.UID = e.pid, e.memLimit, e.isolation, e.uid
			if e.cgroup != nil {
				s.PidsMax, s.CPUShare = e.cgroup.pidsMax, e.cgroup.cpuShare
			}
			s.TmpMB = e.fn.Config.EphemeralMB
			if s.TmpMB <= 0 {
				s.TmpMB = DefaultEphemeralMB
			}
		}
		out = append(out, s)
	}
	return out
}

// close stops every environment and waits for them.
func (p *pool) close() {
	var stop []*environment
	p.mu.Lock()
	p.closed = true
	for _, e := range p.all {
		stop = p.removeForStopLocked(e, stop)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range stop {
		wg.Add(1)
		go func() { defer wg.Done(); e.stop() }()
	}
	wg.Wait()
	p.starting.Wait()
	p.stops.Wait()
}

// removeForStopLocked removes e and adds it to stop, unless it is still
// starting: acquire owns it until start returns, and stops it then.
func (p *pool) removeForStopLocked(e *environment, stop []*environment) []*environment {
	starting := e.state == envStarting
	p.removeLocked(e)
	if starting {
		return stop
	}
	return append(stop, e)
}

func (p *pool) stopAsync(e *environment) {
	p.stops.Add(1)
	go func() { defer p.stops.Done(); e.stop() }()
}

// removeLocked forgets e and frees its place under every limit. The caller
// stops it after unlocking.
func (p *pool) removeLocked(e *environment) {
	if e.state == envStopped {
		return
	}
	if e.state == envBusy || e.state == envStarting {
		p.unbusyLocked(e.key.fnUID)
	}
	ks := p.keys[e.key]
	if e.state == envIdle {
		for i, x := range ks.idle {
			if x == e {
				ks.idle = append(ks.idle[:i], ks.idle[i+1:]...)
				break
			}
		}
		p.unlinkLocked(e)
	}
	e.state = envStopped
	if ks.live--; ks.live == 0 {
		delete(p.keys, e.key)
	}
	if p.perFn[e.key.fnUID]--; p.perFn[e.key.fnUID] == 0 {
		delete(p.perFn, e.key.fnUID)
	}
	p.total--
	delete(p.all, e.id)
	// A removed environment never runs an invocation again, and is being
	// stopped: its code may go.
	sha := e.fn.CodeSHA256
	if p.codeUsers[sha]--; p.codeUsers[sha] == 0 {
		delete(p.codeUsers, sha)
		if p.codeWaiting[sha] {
			select {
			case p.codeFreed <- struct{}{}:
			default:
			}
		}
	}
}

// lockCodeForRemoval reports whether no environment uses the code sha. If
// none does, no environment may start from it until unlockCode; otherwise
// it waits, and codeFreed is signalled once its last environment is
// removed. The caller holds Cloud.ctl, so there is one removal at a time.
func (p *pool) lockCodeForRemoval(sha string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.codeUsers[sha] > 0 {
		p.codeWaiting[sha] = true
		return false
	}
	delete(p.codeWaiting, sha)
	p.codeLocked = sha
	return true
}

func (p *pool) unlockCode() {
	p.mu.Lock()
	p.codeLocked = ""
	p.mu.Unlock()
}

// freedCode returns, and stops waiting for, the waiting code that no
// environment uses any more; the caller removes it or not (releaseCode).
func (p *pool) freedCode() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for sha := range p.codeWaiting {
		if p.codeUsers[sha] == 0 {
			delete(p.codeWaiting, sha)
			out = append(out, sha)
		}
	}
	return out
}

// lruIdleLocked returns the least recently used idle environment of
// fnUID, or nil if it has none idle. It walks the idle list from its old
// end, so it costs at most the number of idle environments.
func (p *pool) lruIdleLocked(fnUID string) *environment {
	for e := p.lru.prev; e != &p.lru; e = e.prev {
		if e.key.fnUID == fnUID {
			return e
		}
	}
	return nil
}

func (p *pool) linkFrontLocked(e *environment) {
	e.prev, e.next = &p.lru, p.lru.next
	p.lru.next.prev = e
	p.lru.next = e
}

func (p *pool) unlinkLocked(e *environment) {
	if e.prev == nil {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// setReserved sets the reserved concurrency of fnUID; n < 0 removes it.
func (p *pool) setReserved(fnUID string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 0 {
		delete(p.reserved, fnUID)
		return
	}
	p.reserved[fnUID] = n
}

func (p *pool) unbusyLocked(fnUID string) {
	if p.busy[fnUID]--; p.busy[fnUID] <= 0 {
		delete(p.busy, fnUID)
	}
}
