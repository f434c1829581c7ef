package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// The watcher: the running-count poll that measures time to min and
// target, the epochs that say whether a count is fresh, and the adoption of
// instances whose launch never reported them.

// watcher is the poll loop's state.
type watcher struct {
	// epoch counts launch and terminate results; a running count is fresh
	// (obsEpoch == epoch) only if none landed since it was scheduled.
	epoch, obsEpoch int
	// adopting is set while the watcher looks for instances no launch
	// reported; the fleet can't be done while it does.
	adopting bool
	// stop ends the loop; idle says it waits the long interval, in which
	// poke ends the wait early.
	stop, idle, poke bool
	cancel           workflow.CancelFunc
	// settled says a count was taken while every launch had settled, at
	// settledEpoch, with the orphans it revealed adopted; settle is the
	// fill loop's request for one (fleetLocalReserve), answered every
	// PollInterval until a count settles.
	settled, settle bool
	settledEpoch    int
}

// startWatcher polls the running count: every PollInterval while anything
// is launching or booting, every IdlePollInterval otherwise. Time to min is
// the first poll that sees Min running.
func (f *fleet) startWatcher(ctx workflow.Context) {
	wctx, cancel := workflow.WithCancel(ctx)
	f.w.cancel = cancel
	workflow.Go(wctx, func(ctx workflow.Context) {
		actx := workflow.WithActivityOptions(ctx, countOptions())
		// fleetEventsFirst: PrepareFleet said the events flow, so the first
		// count waits its interval like the later ones.
		skip := f.eventsFirst && f.eventsActive
		for !f.w.stop && ctx.Err() == nil {
			var took time.Duration
			if skip {
				skip = false
			} else {
				took = f.countOnce(ctx, actx)
			}
			if f.w.stop || ctx.Err() != nil {
				return
			}
			interval := f.tune.IdlePollInterval
			if f.offerings && f.eventsActive {
				// Events carry the changes; this count is the safety net.
				f.reconciles++
				interval = f.tune.ReconcileInterval + jitter(f.tune.ReconcileInterval, f.in.FleetID, f.reconciles)
			} else if f.busy() {
				// A count of a large fleet is a heavy DescribeInstances;
				// waiting at least twice its duration keeps polling under
				// a third of the cloud's and the worker's time.
				interval = max(f.tune.PollInterval, 2*took)
			}
			if f.w.settle {
				// The fill loop waits on a settled count to end the fleet.
				interval = min(interval, f.tune.PollInterval)
			}
			f.w.idle, f.w.poke = interval > f.tune.PollInterval, false
			_, _ = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      interval,
				TimerOptions: workflow.TimerOptions{Summary: "next running count"},
			}, func() bool { return f.w.stop || f.w.poke })
			f.w.idle = false
		}
	})
}

// countOnce takes one running count (a reconciling count in a fleet of
// offerings), applies it, and adopts orphans it reveals. It returns how
// long the count took.
func (f *fleet) countOnce(ctx, actx workflow.Context) time.Duration {
	var a *activities.Fleet
	in := activities.CountRunningInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}
	epoch, quiet := f.w.epoch, f.launchesSettled()
	f.activitiesThisRun++
	var res activities.CountRunningResult
	began := workflow.Now(ctx)
	var err error
	if f.offerings {
		res, err = f.reconcile(ctx, actx)
	} else {
		err = workflow.ExecuteActivity(actx, a.CountRunning, in).Get(ctx, &res)
	}
	took := workflow.Now(ctx).Sub(began)
	if err == nil && f.offerings {
		f.w.obsEpoch = epoch
		settled := quiet && f.launchesSettled() && epoch == f.w.epoch
		if settled && res.Running+res.Pending > len(f.st.InstanceIDs)+f.stillRunningLost() {
			f.w.adopting = true
			f.adoptOrphans(ctx)
			f.w.adopting = false
			f.changed = true
			// What it adopted (or a list that raced a launch) needs a
			// count of its own before the fleet may end on it.
			settled = false
		}
		if settled {
			f.w.settled, f.w.settledEpoch, f.w.settle = true, epoch, false
			f.changed = true
		}
	} else if err == nil {
		f.st.Running, f.st.Pending, f.st.Gone = res.Running, res.Pending, res.Total-res.Running-res.Pending
		f.w.obsEpoch = epoch
		if f.st.MinReachedAt.IsZero() && res.Running >= f.in.Min {
			f.st.MinReachedAt = workflow.Now(ctx)
		}
		f.changed = true
		if quiet && f.launchesSettled() && epoch == f.w.epoch && res.Running+res.Pending > len(f.st.InstanceIDs) {
			// Set before the fill loop can see this count: the
			// running instances it counts include the orphans.
			f.w.adopting = true
			f.adoptOrphans(ctx)
			f.w.adopting = false
			f.changed = true
		}
	} else if ctx.Err() == nil {
		f.log.Warn("counting running instances failed", "Error", err)
	}
	return took
}

// reconcile runs one ReconcileFleet and applies it to the instances' states.
// It returns the counts in instances, as CountRunning does.
func (f *fleet) reconcile(ctx, actx workflow.Context) (activities.CountRunningResult, error) {
	var a *activities.Fleet
	known := append([]string(nil), f.st.InstanceIDs...)
	in := activities.ReconcileFleetInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}
	var res activities.ReconcileFleetResult
	if err := workflow.ExecuteActivity(actx, a.ReconcileFleet, in).Get(ctx, &res); err != nil {
		return activities.CountRunningResult{}, err
	}
	if res.EventsActive != f.eventsActive {
		f.log.Info("instance events", "Active", res.EventsActive)
	}
	f.eventsActive = res.EventsActive
	f.lostRunning = 0
	for _, s := range res.NotRunning {
		if _, live := f.states[s.ID]; !live && s.Interrupted && (s.State == providers.StateRunning || s.State == providers.StatePending) {
			f.lostRunning++
		}
	}
	f.applyReconcile(ctx, known, res)
	return activities.CountRunningResult{Running: res.Running, Pending: res.Pending, Total: res.Total}, nil
}

// stillRunningLost counts the instances the fleet gave up as lost that the
// last count still saw live (interrupted spot instances run out their
// notice), so they do not look like orphans to adopt.
func (f *fleet) stillRunningLost() int { return f.lostRunning }

// launchesSettled reports whether every launch the fleet made has
// reported: no burst chunk or fill round is in flight, and no cancel is
// under way. Only then does the cloud hold no instance of the fleet that a
// launch is still about to report.
func (f *fleet) launchesSettled() bool {
	return f.st.BurstDone && f.flight.total() == 0 && f.cancelReq == nil
}

// adoptOrphans is called when a count, taken while launches were settled,
// found more live instances with the fleet's tags than the fleet knows of.
// They come from a launch whose response was lost and whose retries gave
// up (a burst chunk past its schedule-to-close timeout): EC2 launched them,
// nobody reported them. The fleet adopts them instead of leaking them; if
// that puts it over target, the fill loop terminates the newest, as for a
// scale down.
func (f *fleet) adoptOrphans(ctx workflow.Context) {
	// Workflows started before adoption existed never scheduled this
	// activity; replaying their histories must not either.
	if f.version(ctx, versionAdoptOrphans) == workflow.DefaultVersion {
		return
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, controlOptions("find instances no launch reported"))
	epoch := f.w.epoch
	f.activitiesThisRun++
	var res activities.ListFleetResult
	err := workflow.ExecuteActivity(actx, a.ListFleetInstances, activities.ListFleetInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}).Get(ctx, &res)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("listing the fleet's instances failed; the next count looks again", "Error", err)
		}
		return
	}
	if epoch != f.w.epoch || !f.launchesSettled() {
		return // a launch started or landed meanwhile: its instances may be in the list
	}
	known := make(map[string]bool, len(f.st.InstanceIDs))
	for _, id := range f.st.InstanceIDs {
		known[id] = true
	}
	var orphans []string
	for _, id := range res.IDs { // a slice, in the cloud's order: deterministic
		if !known[id] && !f.terminatedHere[id] {
			orphans = append(orphans, id)
		}
	}
	if len(orphans) == 0 {
		return
	}
	f.log.Warn("adopting instances whose launch never reported them", "Count", len(orphans))
	f.st.Adopted += len(orphans)
	if f.offerings {
		// Which offering an orphan came from is not known; it counts as
		// the first's, on-demand.
		f.addPlaced(ctx, orphans, 0, false)
		return
	}
	f.addInstances(orphans)
	f.changed = true
}

// addInstances records launched (or adopted) instances, newest last.
func (f *fleet) addInstances(ids []string) {
	if len(ids) == 0 {
		return
	}
	f.st.InstanceIDs = append(f.st.InstanceIDs, ids...)
	if f.states != nil {
		for _, id := range ids {
			f.states[id] = f.early[id] // what an event said before the launch did
			delete(f.early, id)
		}
	}
	f.w.epoch++
	f.pokeWatcher()
}

// busy reports whether instances are launching or booting.
func (f *fleet) busy() bool {
	return f.flight.total() > 0 || f.w.obsEpoch != f.w.epoch ||
		f.st.Pending > 0 || f.st.Running < len(f.st.InstanceIDs)
}

// pokeWatcher ends an idle wait between polls early, unless instance
// events carry the changes (fleetFastStart): then the count stays the slow
// safety net, and a launch's answer does not cost a DescribeInstances.
func (f *fleet) pokeWatcher() {
	if f.fastStart && f.eventsActive {
		return
	}
	if f.w.idle {
		f.w.poke = true
	}
}

// requestSettledCount asks the watcher for a count taken with every
// launch settled (actSettle), at once, even while events carry the
// changes: the fleet ends on it.
func (f *fleet) requestSettledCount() {
	if !f.w.settle {
		f.w.settle, f.w.poke = true, true
	}
}

// unsettled reports whether the fleet may not end yet for want of a
// settled count (fleetLocalReserve).
func (f *fleet) unsettled() bool {
	return f.settleEnd && !(f.w.settled && f.w.settledEpoch == f.w.epoch)
}

func (f *fleet) stopWatcher() {
	f.w.stop = true
	if f.w.cancel != nil {
		f.w.cancel()
	}
}
