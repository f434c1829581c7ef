package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
	"github.com/gust-dev/gust/providers/sqsevents"
	"github.com/gust-dev/gust/workflows"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

type rig struct {
	r     *Router
	src   *fakeSource
	sig   *fakeSignaler
	accts *fake.Accounts
	clock *clock
}

func newRig(t *testing.T, configure func(*Config)) *rig {
	t.Helper()
	g := &rig{src: newFakeSource(), sig: &fakeSignaler{}, accts: fake.NewAccounts(), clock: &clock{t: t0}}
	cfg := Config{
		Source: g.src, Accounts: g.accts, Signaler: g.sig, Now: g.clock.Now, Logger: slog.New(slog.DiscardHandler),
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}
	if configure != nil {
		configure(&cfg)
	}
	g.r = New(cfg)
	t.Cleanup(g.r.Close)
	return g
}

// receivers is how many receivers tenant's loop counts; 0 without one.
func (g *rig) receivers(tenant string) int {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	if l := g.r.loops[tenant]; l != nil {
		return l.receivers
	}
	return 0
}

func (g *rig) loops() []string {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	var out []string
	for tenant := range g.r.loops {
		out = append(out, tenant)
	}
	slices.Sort(out)
	return out
}

// launch starts n instances with tags in c and returns their ids.
func launch(t *testing.T, c *fake.Compute, n int, tags map[string]string) []string {
	t.Helper()
	c.SetCapacity("m5.large", 1000)
	insts, err := c.Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: n, MaxCount: n, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range insts {
		ids = append(ids, in.ID)
	}
	return ids
}

func fleetTags(fleetID, runTag string) map[string]string {
	return map[string]string{providers.FleetTagKey: fleetID, activities.FleetRunTagKey: runTag}
}

func ev(id, state string, sec int) sqsevents.Event {
	return sqsevents.Event{InstanceID: id, State: state, At: t0.Add(time.Duration(sec) * time.Second)}
}

func describes(c *fake.Compute) [][]string {
	var out [][]string
	for _, call := range c.Calls() {
		if call.Method == fake.MethodDescribe {
			ids := slices.Clone(call.Input.(providers.InstanceFilter).IDs)
			slices.Sort(ids)
			out = append(out, ids)
		}
	}
	return out
}

func byWorkflow(sigs []signal) map[string][]signal {
	out := map[string][]signal{}
	for _, s := range sigs {
		out[s.workflowID] = append(out[s.workflowID], s)
	}
	return out
}

func TestLearnedInstancesNeedNoLookup(t *testing.T) {
	g := newRig(t, nil)
	acme := g.accts.Add("acme")
	g.r.Learn("acme", "web", "run-1", []string{"i-00000000000000001", "i-00000000000000002"})
	g.src.send("acme", ev("i-00000000000000002", "running", 2), ev("i-00000000000000001", "pending", 1), ev("i-00000000000000001", "running", 3))
	g.r.Watch("acme")
	eventually(t, "the batch deleted", func() bool { _, deleted, _, _ := g.src.stats("acme"); return deleted == 3 })

	if d := describes(acme); len(d) != 0 {
		t.Fatalf("learned instances were described: %v", d)
	}
	sigs := g.sig.signals()
	if len(sigs) != 1 {
		t.Fatalf("%d signals, want 1: %+v", len(sigs), sigs)
	}
	s := sigs[0]
	if s.workflowID != workflows.FleetWorkflowID("acme", "web") || s.runID != "" || s.name != workflows.InstanceEventsSignal || s.in.RunTag != "run-1" {
		t.Fatalf("signal %+v", s)
	}
	want := []workflows.InstanceEvent{
		{ID: "i-00000000000000001", State: "pending", At: t0.Add(time.Second)},
		{ID: "i-00000000000000002", State: "running", At: t0.Add(2 * time.Second)},
		{ID: "i-00000000000000001", State: "running", At: t0.Add(3 * time.Second)},
	}
	if !slices.Equal(s.in.Events, want) {
		t.Fatalf("events %+v, want %+v (oldest first)", s.in.Events, want)
	}
}

// TestMissesAreDescribedInOneCallAndGroupedByFleet: a batch's unknown
// instances cost one DescribeInstances; each fleet gets one signal; what
// is no fleet's is dropped, and what the description found is not asked
// again.
func TestMissesAreDescribedInOneCallAndGroupedByFleet(t *testing.T) {
	g := newRig(t, nil)
	c := g.accts.Add("")
	web := launch(t, c, 2, fleetTags("web", "r1"))
	api := launch(t, c, 1, fleetTags("api", "r2"))
	stray := launch(t, c, 1, map[string]string{"team": "x"})
	// A tag no gust fleet has: with its '/' it would name tenant acme's
	// fleet web.
	hostile := launch(t, c, 1, fleetTags("acme/web", "r3"))
	unknown := "i-0000000000000ffff"
	batch := []sqsevents.Event{
		ev(web[0], "running", 1), ev(api[0], "running", 2), ev(stray[0], "running", 3),
		ev(web[1], "running", 4), ev(hostile[0], "running", 5), ev(unknown, "running", 6),
	}
	g.src.send(providers.DefaultTenant, batch...)
	g.r.Watch("")
	eventually(t, "the batch deleted", func() bool { _, deleted, _, _ := g.src.stats(providers.DefaultTenant); return deleted == 6 })

	all := []string{web[0], web[1], api[0], stray[0], hostile[0], unknown}
	slices.Sort(all)
	if d := describes(c); len(d) != 1 || !slices.Equal(d[0], all) {
		t.Fatalf("describes %v, want one of %v", d, all)
	}
	got := byWorkflow(g.sig.signals())
	if len(got) != 2 || len(got["web"]) != 1 || len(got["api"]) != 1 {
		t.Fatalf("signals %+v, want one to web and one to api", got)
	}
	if s := got["web"][0]; s.in.RunTag != "r1" || len(s.in.Events) != 2 || s.in.Events[0].ID != web[0] || s.in.Events[1].ID != web[1] {
		t.Fatalf("web got %+v", s.in)
	}
	if s := got["api"][0]; s.in.RunTag != "r2" || len(s.in.Events) != 1 || s.in.Events[0].ID != api[0] {
		t.Fatalf("api got %+v", s.in)
	}

	// Again: only the instance the cloud did not find is asked for.
	g.src.send(providers.DefaultTenant, batch...)
	eventually(t, "the second batch deleted", func() bool { _, deleted, _, _ := g.src.stats(providers.DefaultTenant); return deleted == 12 })
	if d := describes(c); len(d) != 2 || !slices.Equal(d[1], []string{unknown}) {
		t.Fatalf("describes %v, want a second of %s only", d, unknown)
	}
}

// TestTenantsNeverMix: the same instance id in two accounts is two
// instances; each queue's events reach only its own tenant's fleets.
func TestTenantsNeverMix(t *testing.T) {
	g := newRig(t, nil)
	acme, globex := g.accts.Add("acme"), g.accts.Add("globex")
	a := launch(t, acme, 1, fleetTags("web", "ra"))
	b := launch(t, globex, 1, fleetTags("api", "rg"))
	if a[0] != b[0] {
		t.Fatalf("the test wants equal ids in both accounts, got %s and %s", a[0], b[0])
	}
	g.r.Learn("acme", "web", "ra", a)
	g.src.send("globex", ev(b[0], "running", 1))
	g.src.send("acme", ev(a[0], "pending", 1))
	g.r.Watch("acme")
	g.r.Watch("globex")
	eventually(t, "both batches deleted", func() bool {
		_, da, _, _ := g.src.stats("acme")
		_, dg, _, _ := g.src.stats("globex")
		return da == 1 && dg == 1
	})
	got := byWorkflow(g.sig.signals())
	if len(got) != 2 || len(got["acme/web"]) != 1 || len(got["globex/api"]) != 1 {
		t.Fatalf("signals %+v, want one to acme/web and one to globex/api", got)
	}
	if got["acme/web"][0].in.Events[0].State != "pending" || got["globex/api"][0].in.RunTag != "rg" {
		t.Fatalf("signals crossed tenants: %+v", got)
	}
	if len(describes(acme)) != 0 || len(describes(globex)) != 1 {
		t.Fatalf("describes: acme %v, globex %v; want globex's own lookup only", describes(acme), describes(globex))
	}
	if g.loops(); !slices.Equal(g.loops(), []string{"acme", "globex"}) {
		t.Fatalf("loops %v", g.loops())
	}
}

func TestClosedFleetIsDropped(t *testing.T) {
	g := newRig(t, nil)
	g.accts.Add("")
	g.r.Learn("", "old", "r", []string{"i-00000000000000001"})
	g.sig.setFail("old", serviceerror.NewNotFound("workflow execution already completed"))
	g.src.send(providers.DefaultTenant, ev("i-00000000000000001", "terminated", 1))
	g.r.Watch("")
	eventually(t, "the batch deleted", func() bool { _, deleted, _, _ := g.src.stats(providers.DefaultTenant); return deleted == 1 })
	if _, _, refused, _ := g.src.stats(providers.DefaultTenant); refused != 0 {
		t.Fatalf("a gone fleet must not hold the batch back: %d refusals", refused)
	}
}

// TestFailedSignalLeavesTheBatch: one fleet's signal failing keeps the
// whole batch in the queue; it is delivered again once signals work.
func TestFailedSignalLeavesTheBatch(t *testing.T) {
	g := newRig(t, nil)
	g.accts.Add("")
	g.r.Learn("", "web", "r1", []string{"i-00000000000000001"})
	g.r.Learn("", "api", "r2", []string{"i-00000000000000002"})
	g.sig.setFail("api", errors.New("frontend unavailable"))
	g.src.send(providers.DefaultTenant, ev("i-00000000000000001", "running", 1), ev("i-00000000000000002", "running", 2))
	g.r.Watch("")
	eventually(t, "the batch refused twice", func() bool { _, _, refused, _ := g.src.stats(providers.DefaultTenant); return refused >= 2 })
	if _, deleted, _, _ := g.src.stats(providers.DefaultTenant); deleted != 0 {
		t.Fatalf("after failed signals: %d deleted; want the batch kept", deleted)
	}
	if g.r.Watch("") {
		t.Fatal("events that cannot be delivered do not flow")
	}
	g.sig.setFail("api", nil)
	eventually(t, "the batch deleted", func() bool { _, deleted, _, _ := g.src.stats(providers.DefaultTenant); return deleted == 2 })
	got := byWorkflow(g.sig.signals())
	if len(got["api"]) != 1 || len(got["web"]) < 2 {
		t.Fatalf("signals %+v: want api once, web again with the redelivery", got)
	}
	eventually(t, "Watch active again", func() bool { return g.r.Watch("") })
}

func TestFailedLookupLeavesTheBatch(t *testing.T) {
	g := newRig(t, nil)
	c := g.accts.Add("")
	ids := launch(t, c, 1, fleetTags("web", "r1"))
	c.FailNext(fake.MethodDescribe, providers.NewThrottledError(errors.New("RequestLimitExceeded")))
	g.src.send(providers.DefaultTenant, ev(ids[0], "running", 1))
	g.r.Watch("")
	eventually(t, "the batch deleted", func() bool { _, deleted, _, _ := g.src.stats(providers.DefaultTenant); return deleted == 1 })
	if _, _, refused, _ := g.src.stats(providers.DefaultTenant); refused != 1 {
		t.Fatalf("%d refusals, want the throttled lookup's", refused)
	}
	if len(g.sig.signals()) != 1 {
		t.Fatalf("signals %+v", g.sig.signals())
	}
}

func TestWatchIsActiveOnlyAfterASuccessfulReceive(t *testing.T) {
	g := newRig(t, nil)
	gate := make(chan struct{})
	g.src.setGate(gate)
	if g.r.Watch("acme") {
		t.Fatal("the first Watch cannot know yet")
	}
	// The tenant's loop starts with one receiver, which makes its first,
	// short poll.
	eventually(t, "the first poll", func() bool { return g.src.waiting() == 1 })
	if g.r.Watch("acme") {
		t.Fatal("active before any receive succeeded")
	}
	close(gate)
	g.src.setGate(nil)
	eventually(t, "active", func() bool { return g.r.Watch("acme") })
	g.src.mu.Lock()
	waits := slices.Clone(g.src.waits["acme"])
	g.src.mu.Unlock()
	if waits[0] != 0 || !slices.Contains(waits, sqsevents.WaitSeconds*time.Second) {
		t.Fatalf("waits %v: want a short poll first, then long polls", waits)
	}

	g.src.setFail("acme", providers.NewNotFoundError(errors.New("queue does not exist")))
	eventually(t, "inactive after an error", func() bool { return !g.r.Watch("acme") })
	g.src.setFail("acme", nil)
	eventually(t, "active again", func() bool { return g.r.Watch("acme") })

	// A loop stuck in a receive goes stale.
	g.src.setGate(make(chan struct{}))
	eventually(t, "stuck polls", func() bool { n := g.receivers("acme"); return n > 0 && g.src.waiting() == n })
	g.clock.advance(DefaultActiveFor + time.Second)
	if g.r.Watch("acme") {
		t.Fatal("active without a successful receive for longer than ActiveFor")
	}
}

func TestIdleLoopStopsAndRestarts(t *testing.T) {
	g := newRig(t, nil)
	g.r.Watch("acme")
	polls := func() int { p, _, _, _ := g.src.stats("acme"); return p }
	eventually(t, "polling", func() bool { return polls() >= 1 })

	// Learn keeps it alive.
	g.clock.advance(DefaultIdleAfter - time.Minute)
	g.r.Learn("acme", "web", "r", []string{"i-00000000000000001"})
	g.clock.advance(2 * time.Minute)
	n := polls()
	eventually(t, "two more polls", func() bool { return polls() >= n+2 })
	if !slices.Equal(g.loops(), []string{"acme"}) {
		t.Fatalf("loops %v: a Learn must keep the loop", g.loops())
	}

	g.clock.advance(DefaultIdleAfter + time.Second)
	eventually(t, "the idle loop stopped", func() bool { return len(g.loops()) == 0 })
	n = polls()
	if g.r.Watch("acme") {
		t.Fatal("a restarted loop cannot be active yet")
	}
	eventually(t, "polling again", func() bool { return polls() > n })
	eventually(t, "active again", func() bool { return g.r.Watch("acme") })
}

func TestTenantsAreBounded(t *testing.T) {
	g := newRig(t, func(c *Config) { c.MaxTenants = 1 })
	g.r.Watch("acme")
	if g.r.Watch("globex") || g.r.Watch("../etc") || g.r.Watch("a/b") {
		t.Fatal("a tenant past the bound, or an invalid name, cannot be active")
	}
	if !slices.Equal(g.loops(), []string{"acme"}) {
		t.Fatalf("loops %v, want acme's only", g.loops())
	}
	g.r.Close()
	if g.r.Watch("acme") || len(g.r.loops) > 1 {
		t.Fatal("a closed router watches nothing")
	}
}

func TestLearnIsBoundedAndValidated(t *testing.T) {
	g := newRig(t, func(c *Config) { c.CacheSize = 3 })
	g.r.Learn("", "acme/web", "r", []string{"i-00000000000000001"})
	g.r.Learn("", "", "r", []string{"i-00000000000000001"})
	g.r.Learn("../x", "web", "r", []string{"i-00000000000000001"})
	if n := g.r.cache.entries(); n != 0 {
		t.Fatalf("%d entries from invalid Learns", n)
	}
	g.r.Learn("", "web", "r", []string{"i-1", "i-2", "i-3", "i-4", "i-5"})
	if n := g.r.cache.entries(); n != 3 {
		t.Fatalf("%d entries, want the bound 3", n)
	}
	if _, ok := g.r.cache.get(providers.DefaultTenant, "i-5"); !ok {
		t.Fatal("the newest must be kept")
	}
}

func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := newCache(2)
	c.put("t", "a", owner{"f", "r"})
	c.put("t", "b", owner{"f", "r"})
	c.get("t", "a")
	c.put("t", "c", owner{"f", "r"})
	if _, ok := c.get("t", "b"); ok {
		t.Fatal("b was the least recently used")
	}
	for _, id := range []string{"a", "c"} {
		if _, ok := c.get("t", id); !ok {
			t.Fatalf("%s evicted", id)
		}
	}
	if _, ok := c.get("u", "a"); ok {
		t.Fatal("another tenant's entry answered")
	}
}

func TestMetricsCountByTenant(t *testing.T) {
	m := newMetricsRecorder()
	g := newRig(t, func(c *Config) { c.Metrics = m })
	c := g.accts.Add("acme")
	web := launch(t, c, 1, fleetTags("web", "r1"))
	stray := launch(t, c, 1, nil)
	g.r.Learn("acme", "old", "r0", []string{"i-0000000000000aaaa"})
	g.sig.setFail("acme/old", serviceerror.NewNotFound("gone"))
	g.src.send("acme", ev(web[0], "running", 1), ev(stray[0], "running", 2), ev("i-0000000000000aaaa", "terminated", 3))
	g.r.Watch("acme")
	eventually(t, "the batch counted", func() bool { return m.get(MetricReceived+",tenant=acme") == 3 })
	for series, want := range map[string]int64{
		MetricReceived + ",tenant=acme":                                 3,
		MetricDelivered + ",tenant=acme":                                1,
		MetricLookupMisses + ",tenant=acme":                             2,
		MetricIgnored + ",reason=" + reasonNoFleet + ",tenant=acme":     1,
		MetricIgnored + ",reason=" + reasonFleetClosed + ",tenant=acme": 1,
	} {
		if got := m.get(series); got != want {
			t.Errorf("%s = %d, want %d", series, got, want)
		}
	}
}

// TestReceiversFollowTheBacklog: a loop starts with one receiver, adds
// one after each full batch up to Config.Receivers, so that deliveries run
// that many at once and no more, and, once the queue is drained, drops
// back to one as long polls come back empty.
func TestReceiversFollowTheBacklog(t *testing.T) {
	g := newRig(t, func(c *Config) { c.Receivers = 3 })
	g.accts.Add("acme")
	for b := range 10 {
		// One fleet per batch: signals to one fleet go one at a time.
		var ids []string
		var batch []sqsevents.Event
		for i := range 10 {
			id := fmt.Sprintf("i-%017x", 10*b+i+1)
			ids = append(ids, id)
			batch = append(batch, ev(id, "running", 1))
		}
		g.r.Learn("acme", fmt.Sprintf("web-%d", b), "run-1", ids)
		g.src.send("acme", batch...)
	}
	g.sig.setDelay(50 * time.Millisecond) // each batch is one signal
	g.r.Watch("acme")
	eventually(t, "the backlog deleted", func() bool { _, deleted, _, _ := g.src.stats("acme"); return deleted == 100 })
	if n := g.sig.mostInFlight(); n != 3 {
		t.Fatalf("at most %d deliveries at once, want Receivers, 3", n)
	}
	eventually(t, "one receiver left", func() bool { return g.receivers("acme") == 1 })
	if _, _, _, queued := g.src.stats("acme"); queued != 0 {
		t.Fatalf("%d batches left", queued)
	}
}

// TestSignalsToOneFleetGoTogether: while a signal to a fleet is in flight,
// the batches for it that other receivers hold wait and go together in
// the next; every event arrives once, each signal oldest first, and each
// batch is deleted only after the signal that carried it.
func TestSignalsToOneFleetGoTogether(t *testing.T) {
	g := newRig(t, func(c *Config) { c.Receivers = 4 })
	g.accts.Add("acme")
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("i-%017x", i+1))
	}
	g.r.Learn("acme", "web", "run-1", ids)
	for b := range 4 {
		var batch []sqsevents.Event
		for i, id := range ids[10*b : 10*b+10] {
			batch = append(batch, ev(id, "running", 40-10*b-i)) // newest first
		}
		g.src.send("acme", batch...)
	}
	for i := range 8 { // one event per batch: the loop does not grow on these
		g.src.send("acme", ev(ids[i], "shutting-down", 100+i))
	}
	g.sig.setDelay(30 * time.Millisecond)
	g.r.Watch("acme")
	eventually(t, "every batch deleted", func() bool { _, deleted, _, _ := g.src.stats("acme"); return deleted == 48 })

	sigs := g.sig.signals()
	seen := map[string]int{}
	for _, s := range sigs {
		if s.workflowID != workflows.FleetWorkflowID("acme", "web") || s.in.RunTag != "run-1" {
			t.Fatalf("signal %+v", s)
		}
		if !slices.IsSortedFunc(s.in.Events, func(a, b workflows.InstanceEvent) int { return a.At.Compare(b.At) }) {
			t.Errorf("signal's events not oldest first: %+v", s.in.Events)
		}
		for _, e := range s.in.Events {
			seen[e.ID+" "+e.State]++
		}
	}
	if len(seen) != 48 {
		t.Fatalf("%d distinct events delivered, want 48", len(seen))
	}
	for e, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", e, n)
		}
	}
	if len(sigs) >= 12 {
		t.Errorf("%d signals for 12 batches of one fleet, want fewer: batches that wait go together", len(sigs))
	}
	if n := g.sig.mostInFlight(); n != signalsInFlight {
		t.Errorf("%d signals to one fleet at once, want %d", n, signalsInFlight)
	}
}
