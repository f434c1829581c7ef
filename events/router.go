// Package events delivers the cloud's instance events to the fleets that
// own them.
//
// One Router runs per worker process. For each tenant whose fleets ask
// (Watch), it runs one receive loop on the tenant's events queue, finds
// the fleet of each event's instance (from what launches reported with
// Learn, else from the instance's tags), and signals each fleet's workflow
// once per received batch with workflows.InstanceEventsSignal. A batch's
// messages are deleted only after every signal of the batch succeeded, so
// delivery is at least once and fleets must treat the events as
// idempotent hints; their periodic reconcile remains the truth.
//
// Everything is bounded: the tenants watched at once, the instance-to-fleet
// cache, a batch (one receive), and errors back off.
package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/sqsevents"
)

// Signaler is the part of client.Client the router uses.
type Signaler interface {
	// SignalWorkflow signals the workflow's current run (runID ""). It
	// returns a *serviceerror.NotFound when no such workflow is running.
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

var _ Signaler = client.Client(nil)

// Source is where each tenant's events come from: *sqsevents.Accounts.
type Source interface {
	// Poll receives one batch of tenant's events, waiting up to wait for
	// one, and hands it to handle; the batch is deleted only if handle
	// returns nil. Errors are the providers' typed errors (NotFound: no
	// queue, or no access to the tenant's account).
	Poll(ctx context.Context, tenant string, wait time.Duration, handle sqsevents.Handler) (sqsevents.Result, error)
}

var _ Source = (*sqsevents.Accounts)(nil)

// Defaults of Config's limits.
const (
	DefaultMaxTenants    = 1000
	DefaultCacheSize     = 100_000
	DefaultIdleAfter     = 10 * time.Minute
	DefaultActiveFor     = time.Minute
	DefaultMinBackoff    = time.Second
	DefaultMaxBackoff    = 30 * time.Second
	DefaultSignalTimeout = 10 * time.Second
	DefaultReceivers     = 16
)

// Config configures a Router. Source, Accounts and Signaler are required;
// zero limits are the defaults.
type Config struct {
	Source   Source
	Accounts providers.Accounts
	Signaler Signaler
	// Metrics receives the router's counters (MetricReceived and the
	// rest); nil records none.
	Metrics client.MetricsHandler
	// Logger receives the loops' errors; nil is slog.Default().
	Logger *slog.Logger

	// MaxTenants bounds the tenants watched at once; Watch for one more
	// reports false (its fleets poll) until a loop stops.
	MaxTenants int
	// Receivers bounds the receives a tenant's loop keeps outstanding
	// (default DefaultReceivers). SQS hands each message to one receiver,
	// so they split the queue; one receiver would bound a tenant to ten
	// messages per round trip of receive, signals and delete, which a
	// hundred fleets launching together outrun. A loop starts with one
	// receiver, adds one each time a receive comes back full (a backlog),
	// and drops one each time a long poll comes back empty, so a quiet
	// tenant costs one long poll, not Receivers.
	Receivers int
	// CacheSize bounds the instances whose fleet the router remembers.
	CacheSize int
	// IdleAfter stops a tenant's loop that long after its last Watch or
	// Learn; the next Watch starts it again.
	IdleAfter time.Duration
	// ActiveFor is how long after its last successful receive a tenant's
	// events count as flowing. It must exceed the long poll
	// (sqsevents.WaitSeconds).
	ActiveFor time.Duration
	// MinBackoff and MaxBackoff bound the pause after a failed batch,
	// doubling from the one to the other. MinBackoff is also the least
	// time between two long polls that found nothing.
	MinBackoff, MaxBackoff time.Duration
	// SignalTimeout bounds one signal.
	SignalTimeout time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Router implements activities.EventWatcher. Its methods are safe for
// concurrent use.
type Router struct {
	cfg   Config
	log   *slog.Logger
	cache *cache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	loops map[string]*loop // by tenant; at most cfg.MaxTenants

	// outboxes holds, for each fleet launch with a signal in flight, the
	// events that go in its next one (deliver.go).
	omu      sync.Mutex
	outboxes map[outboxKey]*outbox
	closed   bool
}

var _ activities.EventWatcher = (*Router)(nil)

// loop is one tenant's receive loop; its fields are guarded by Router.mu.
type loop struct {
	tenant  string
	lastUse time.Time // last Watch or Learn
	okAt    time.Time // end of the last fully successful poll; zero: none yet
	failing bool      // the last poll failed
	// receivers counts the loop's receivers running; between 1 and
	// Config.Receivers while the loop is in Router.loops.
	receivers int
}

// New returns a Router with no loop running; Close stops it.
func New(cfg Config) *Router {
	if cfg.Receivers <= 0 {
		cfg.Receivers = DefaultReceivers
	}
	if cfg.MaxTenants <= 0 {
		cfg.MaxTenants = DefaultMaxTenants
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = DefaultIdleAfter
	}
	if cfg.ActiveFor <= 0 {
		cfg.ActiveFor = DefaultActiveFor
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.SignalTimeout <= 0 {
		cfg.SignalTimeout = DefaultSignalTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = client.MetricsNopHandler
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Router{
		cfg:      cfg,
		log:      log.With("component", "events"),
		cache:    newCache(cfg.CacheSize),
		ctx:      ctx,
		cancel:   cancel,
		loops:    map[string]*loop{},
		outboxes: map[outboxKey]*outbox{},
	}
}

// Watch makes sure tenant's events are being received, starting its loop
// if none runs, and reports whether they flow: whether the loop's last
// poll succeeded, within ActiveFor. It never blocks on the cloud, so the
// first Watch of a tenant reports false. An invalid tenant name, a closed
// router or one at MaxTenants report false.
func (r *Router) Watch(tenant string) bool {
	tenant = providers.TenantOrDefault(tenant)
	if !providers.ValidTenantName(tenant) {
		return false
	}
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if l, ok := r.loops[tenant]; ok {
		l.lastUse = now
		return !l.failing && !l.okAt.IsZero() && now.Sub(l.okAt) <= r.cfg.ActiveFor
	}
	if len(r.loops) >= r.cfg.MaxTenants {
		r.log.Debug("not watching a tenant's events: too many tenants watched", "tenant", tenant, "max", r.cfg.MaxTenants)
		return false
	}
	l := &loop{tenant: tenant, lastUse: now, receivers: 1}
	r.loops[tenant] = l
	r.wg.Add(1)
	go r.run(l)
	return false
}

// Learn records that ids belong to the fleet fleetID of tenant, launched
// with runTag, so their events need no lookup. It keeps the tenant's loop
// from going idle. Ids beyond the cache's size evict the oldest; a fleet
// id that is not one is ignored.
func (r *Router) Learn(tenant, fleetID, runTag string, ids []string) {
	tenant = providers.TenantOrDefault(tenant)
	if !providers.ValidTenantName(tenant) || !validOwner(fleetID, runTag) {
		return
	}
	if len(ids) > r.cfg.CacheSize {
		ids = ids[len(ids)-r.cfg.CacheSize:]
	}
	o := owner{fleetID: fleetID, runTag: runTag}
	for _, id := range ids {
		r.cache.put(tenant, id, o)
	}
	now := r.cfg.Now()
	r.mu.Lock()
	if l, ok := r.loops[tenant]; ok {
		l.lastUse = now
	}
	r.mu.Unlock()
}

// Close stops every loop and waits for them. A batch being delivered is
// abandoned undeleted, so it comes again to whoever reads the queue next.
func (r *Router) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
