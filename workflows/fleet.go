package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/providers"
)

// LaunchFleetWorkflow is split by role:
//
//	fleet.go          the run: phases in order, the fleet's state, results
//	fleet_handlers.go status query, scale and cancel updates, cancel signal
//	fleet_launch.go   validation, reservation, burst, the fill loop and its rounds
//	fleet_decide.go   decide: what the fill loop does at each wake-up (pure)
//	fleet_watch.go    the running-count poll, epochs and adoption of orphans
//	fleet_cleanup.go  scale-down terminations, release, the final sweep
//
// fleet_api.go is the contract; fleet_options.go the activity options.

// Defaults of FleetTuning and the fleet's other timings.
const (
	defaultPollInterval       = 500 * time.Millisecond
	defaultIdlePollInterval   = 10 * time.Second
	defaultMaxFillInFlight    = 32
	defaultContinueAsNewAfter = 500
	// defaultReconcileInterval is the pause between the safety-net counts
	// of a fleet that receives instance events.
	defaultReconcileInterval = 30 * time.Second
	// capacityBackoffMax caps the capacity backoff (reservation retries
	// under CapacityPolicyWait, fill rounds that found no capacity), which
	// starts at 1s and doubles.
	capacityBackoffMax = 30 * time.Second
	// lostGrace is how long the fleet tolerates seeing fewer running
	// instances than it launched, with none pending, before it decides they
	// were terminated by someone else (DescribeInstances is eventually
	// consistent, so one poll is not enough).
	lostGrace = 30 * time.Second
)

// Change ids of workflow.GetVersion. A change that alters the commands a
// fleet makes goes behind one, so histories recorded before it still
// replay (replay_test.go).
const (
	// versionAdoptOrphans: the watcher may schedule ListFleetInstances.
	versionAdoptOrphans = "adopt-orphans"
	// versionLookAgain: after terminating extras or releasing the
	// reservation, the fill loop decides again at once instead of waiting
	// for the next change (the next running count).
	versionLookAgain = "fleet-look-again"
	// versionDropSurplus: a scale down cancels the newest fill rounds in
	// flight that the new target does not need, before they launch.
	versionDropSurplus = "fleet-drop-surplus"
	// versionScaleMemo: a scale upserts the memo's target, so listings
	// show the current target.
	versionScaleMemo = "fleet-scale-memo"
	// versionOfferings: a new fleet is a fleet of offerings
	// (fleet_offerings.go): PrepareFleet, ReserveOfferings, LaunchOfferings
	// and ReconcileFleet instead of the one-type activities, instance
	// events, instant fallback and, under OnLostReplace, maintenance of the
	// target after it is reached. A chain of runs started before it stays
	// on the one-type path.
	versionOfferings = "fleet-offerings"
	// fleetFastStart is versionOfferings' version 2: PrepareFleet runs as a
	// local activity inside the first workflow task (one round trip through
	// the server less before the burst), and while instance events arrive
	// a launch's answer does not trigger a reconciling count (the events
	// carry the states; the count stays the slow safety net). Version 2,
	// not a new change id, because each new id costs every fleet one more
	// search attribute upsert, a visibility write.
	fleetFastStart workflow.Version = 2
	// fleetEventsFirst is versionOfferings' version 3: PrepareFleet also
	// says whether the tenant's instance events arrive, and when they do
	// the fleet takes no reconciling count at the start (its first is one
	// ReconcileInterval later). A fleet whose every live instance has had
	// its state from an event knows them without a count, so it may end on
	// them (view's Fresh). Each fleet so saves one DescribeInstances by tag,
	// one activity and often one workflow task while it launches, which is
	// when a hundred fleets together are short of CPU (and, on AWS, of the
	// describe bucket).
	fleetEventsFirst workflow.Version = 3
	// fleetLocalReserve is versionOfferings' version 4: ReserveOfferings
	// runs as a local activity too, right after PrepareFleet in the first
	// workflow task, which then also schedules the burst. That saves each
	// fleet a second round trip through the server (an activity task and a
	// workflow task) before its burst: with a hundred fleets launching
	// together, about a third of the time to min. A run that is lost with
	// its workflow task finds what it reserved by tag and keeps or
	// cancels it (activities.ReserveTagKey), where the activity relied on
	// its heartbeat record. The same version makes a fleet end (fulfilled,
	// not maintained) only on a count taken while every launch had
	// settled: ending on events alone, or on any count that came back,
	// settled or not, could miss the instances a lost launch response
	// left behind, which only such a count finds and adopts (actSettle).
	fleetLocalReserve workflow.Version = 4
)

// version is workflow.GetVersion of one of the change ids older than
// fleetFastStart, whose newest version is 1. A run on fleetFastStart has
// every older change: it records no marker for them (each would cost a
// search attribute upsert), and its replays, which see fastStart again,
// ask none.
func (f *fleet) version(ctx workflow.Context, changeID string) workflow.Version {
	if f.fastStart {
		return 1
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1)
}

// LaunchFleetWorkflow launches a fleet: it verifies capacity for Min with a
// capacity reservation, launches Min in one parallel burst against it
// outside the platform rate limiter, then fills toward Target through the
// rate-limited LaunchTaskQueue as capacity arrives. See fleet_api.go for the
// contract and the messages it handles.
//
// Every activity input carries in.Tenant, the account the fleet acts in.
// That changed no command: the same activities are scheduled in the same
// order, only their inputs name the tenant, and histories recorded before
// tenants existed (no Tenant, which means the default tenant) replay
// unchanged, so no workflow.GetVersion guards it.
func LaunchFleetWorkflow(ctx workflow.Context, in LaunchFleetInput) (FleetResult, error) {
	f, err := newFleet(ctx, in)
	if err != nil {
		return FleetResult{}, err
	}
	defer trackFleet(f)() // gust_fleets_in_flight (progress.go)
	return f.run(ctx)
}

// fleet is one run of LaunchFleetWorkflow. Its fields are touched only by
// workflow coroutines, which never run in parallel. st is the durable part,
// handed to the next run by continue-as-new; the rest is rebuilt by each
// run.
type fleet struct {
	in   LaunchFleetInput
	tune FleetTuning // in.Tuning with defaults filled in
	tags map[string]string
	st   FleetState
	log  log.Logger

	// changed wakes the fill loop; every coroutine that changes what
	// decide sees sets it.
	changed bool

	// cancelReq is the pending cancel request, if any.
	cancelReq *CancelInput
	cancelRes CancelResult
	// cleanupErr is why the final sweep failed to terminate the fleet's
	// instances; a cancel with it set did not clean up.
	cleanupErr error
	// done is set once the fleet reached a terminal state and cleaned up;
	// handlers waiting on it may return.
	done bool
	// fatal is an error no later round can fix; the fleet fails once its
	// launches drained.
	fatal error
	// message explains the current state to the user (status, result).
	message string

	flight launches
	// backingOff holds new fill rounds until the capacity backoff timer
	// fires; fillDeadlineHit is set once FillTimeout passed.
	backingOff, fillDeadlineHit bool
	// dropSurplus: this run may drop fill rounds (versionDropSurplus).
	dropSurplus bool
	// lostSince is decide's memory of when instances first went missing.
	lostSince time.Time

	w watcher
	// terminatedHere holds the ids this run terminated, so a cloud that
	// still lists them as running for a while after (EC2's eventual
	// consistency) does not get them adopted back.
	terminatedHere map[string]bool

	activitiesThisRun int

	// offerings: this chain is a fleet of offerings (versionOfferings);
	// maintain: it keeps its target after reaching it (OnLostReplace);
	// stopping: the run left its loop and is ending.
	offerings, maintain, stopping bool
	// states holds each live instance's last known state ("" unknown), and
	// is the set of live ids; early holds states of instances no launch
	// has reported yet. statesKnown: a reconciling count came back this
	// run. Fleets of offerings only.
	states, early map[string]string
	statesKnown   bool
	// eventsActive: the worker said instance events arrive for the tenant.
	eventsActive bool
	// fastStart: this run is on versionOfferings' fleetFastStart;
	// eventsFirst: on fleetEventsFirst; localReserve and settleEnd: on
	// fleetLocalReserve.
	fastStart, eventsFirst, localReserve, settleEnd bool
	// spotBackingOff holds new spot rounds as backingOff holds on-demand
	// ones; availableAt is when the armed availability timer fires.
	spotBackingOff bool
	availableAt    time.Time
	// reconciles counts this run's reconciling counts, for their jitter;
	// lostRunning is how many instances given up as lost the last one
	// still saw running.
	reconciles, lostRunning int
}

// launches counts the launch activities outstanding.
type launches struct {
	burst int // burst chunks
	fill  int // fill rounds
	// fillRequested is the instances the fill rounds asked for (sum of
	// MaxCount), reserved those of them against the reservation.
	fillRequested, reserved int
	// rounds are the fill rounds outstanding, oldest first, so a scale
	// down can drop the newest before the rate limiter lets them launch.
	rounds []*fillInFlight
	// spotRequested is the part of fillRequested in spot rounds, and
	// burstUnits the units the burst's chunks ask for (fleets of
	// offerings).
	spotRequested, burstUnits int
}

// fillInFlight is one outstanding fill round.
type fillInFlight struct {
	count    int
	cancel   workflow.CancelFunc
	dropping bool // cancelled by a scale down; not yet reported
}

// droppable returns the counts of the rounds not being dropped, oldest
// first, and the instances the rounds being dropped asked for.
func (l launches) droppable() (counts []int, dropping int) {
	for _, r := range l.rounds {
		if r.dropping {
			dropping += r.count
		} else {
			counts = append(counts, r.count)
		}
	}
	return counts, dropping
}

func (l launches) total() int { return l.burst + l.fill }

func newFleet(ctx workflow.Context, in LaunchFleetInput) (*fleet, error) {
	info := workflow.GetInfo(ctx)
	f := &fleet{in: in, tune: in.Tuning, log: workflow.GetLogger(ctx)}
	if in.Resume != nil {
		f.st = *in.Resume
		f.st.Runs++
		f.in.Resume = nil
	} else {
		origin := info.FirstRunID
		if origin == "" {
			origin = info.WorkflowExecution.RunID
		}
		f.st = FleetState{Origin: origin, StartedAt: info.WorkflowStartTime, Phase: PhaseValidating, Target: in.Target}
	}
	if f.tune.PollInterval <= 0 {
		f.tune.PollInterval = defaultPollInterval
	}
	if f.tune.IdlePollInterval <= 0 {
		f.tune.IdlePollInterval = defaultIdlePollInterval
	}
	if f.tune.MaxFillInFlight <= 0 {
		f.tune.MaxFillInFlight = defaultMaxFillInFlight
	}
	if f.tune.ContinueAsNewAfter <= 0 {
		f.tune.ContinueAsNewAfter = defaultContinueAsNewAfter
	}
	if f.tune.UnavailableTTL <= 0 {
		f.tune.UnavailableTTL = DefaultUnavailableTTL
	}
	if f.tune.ReconcileInterval <= 0 {
		f.tune.ReconcileInterval = defaultReconcileInterval
	}
	f.tags = in.launchTags(f.st.Origin)
	if err := f.registerHandlers(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fleet) terminal() bool {
	switch f.st.Phase {
	case PhaseFulfilled, PhaseInsufficientCapacity, PhaseCancelled, PhaseFailed:
		return true
	}
	return false
}

// run drives the phases in order: validating → reserving → bursting →
// filling. A run resumed by continue-as-new starts at the phase it was in.
// Each phase returns a non-nil *stop when the fleet must leave the normal
// path (a terminal state or continue-as-new).
func (f *fleet) run(ctx workflow.Context) (FleetResult, error) {
	// A chain is a fleet of offerings from its first run on, or never: a
	// run resumed from a one-type run stays one-type.
	v := workflow.GetVersion(ctx, versionOfferings, workflow.DefaultVersion, fleetLocalReserve)
	if v >= 1 && (f.st.Phase == PhaseValidating || len(f.st.Offerings) > 0) {
		f.offerings = true
		f.fastStart = v >= fleetFastStart
		f.eventsFirst = v >= fleetEventsFirst
		f.localReserve = v >= fleetLocalReserve
		f.settleEnd = v >= fleetLocalReserve
		f.maintain = f.in.OnLost == OnLostReplace
		f.states = make(map[string]string, len(f.st.InstanceIDs))
		f.early = map[string]string{}
		for _, id := range f.st.InstanceIDs {
			f.states[id] = ""
		}
		if len(f.st.Unavailable) > 0 {
			f.armAvailability(ctx)
		}
	}
	if f.st.Phase == PhaseValidating {
		if err := f.validate(ctx); err != nil {
			return f.stopped(ctx, stopWith(err))
		}
		f.setPhase(PhaseReserving)
	}
	if f.cancelReq != nil {
		return f.stopped(ctx, stopCancel())
	}
	if f.st.Phase == PhaseReserving {
		if s := f.reserve(ctx); s != nil {
			return f.stopped(ctx, s)
		}
		if f.in.Burst {
			f.setPhase(PhaseBursting)
		} else {
			f.setPhase(PhaseFilling)
			f.st.BurstDone = true
		}
	}
	f.startWatcher(ctx)
	if f.st.Phase == PhaseBursting {
		if s := f.burst(ctx); s != nil {
			return f.stopped(ctx, s)
		}
		f.setPhase(PhaseFilling)
	}
	return f.stopped(ctx, f.fill(ctx))
}

// stop says why the normal path ended.
type stop struct {
	state         string // a terminal phase, or "" for continue-as-new or err
	message       string
	continueAsNew bool
	err           error
}

func stopWith(err error) *stop { return &stop{err: err} }
func stopCancel() *stop        { return &stop{state: PhaseCancelled} }

// stopped turns a stop into the workflow's return: it cleans up for terminal
// states, waits for handlers, and continues as new when asked to.
func (f *fleet) stopped(ctx workflow.Context, s *stop) (FleetResult, error) {
	f.stopping = true
	wfCancelled := ctx.Err() != nil
	if wfCancelled {
		// The workflow itself was cancelled: clean up like a cancel request,
		// on a context that is still allowed to run activities.
		s = stopCancel()
		ctx, _ = workflow.NewDisconnectedContext(ctx)
		f.requestCancel(CancelInput{})
	}
	f.stopWatcher()
	if s.continueAsNew {
		// The caller checked workflow.AllHandlersFinished and nothing blocked
		// since, so no handler is cut short.
		next := f.in
		snapshot := f.st
		next.Resume = &snapshot
		f.log.Info("fleet continuing as new", "Runs", f.st.Runs, "Launched", len(f.st.InstanceIDs), "Round", f.st.FillRound)
		return FleetResult{}, workflow.NewContinueAsNewError(ctx, LaunchFleetWorkflow, next)
	}

	// Enter the terminal phase before anything blocks, so the validators
	// reject updates that arrive during cleanup.
	launched := f.st.Phase == PhaseBursting || f.st.Phase == PhaseFilling || f.maintain && f.st.Phase == PhaseFulfilled
	if s.err != nil {
		f.setPhase(PhaseFailed)
		if s.message == "" {
			s.message = s.err.Error()
		}
	} else {
		f.setPhase(s.state)
	}
	f.message = s.message
	f.cleanUp(ctx, s, launched)
	f.done = true
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })

	var appErr *temporal.ApplicationError
	if s.err != nil && errors.As(s.err, &appErr) && appErr.Type() == providers.ErrTypeInvalid && f.launchedTotal() == 0 {
		// A rejected request: nothing was launched, and any reservation is
		// released.
		return FleetResult{}, s.err
	}
	res := f.result(ctx)
	switch {
	case wfCancelled:
		return res, temporal.NewCanceledError(res)
	case f.st.Phase == PhaseFailed:
		// The cause carries the reason; the message does not repeat it.
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("fleet %s failed", f.in.FleetID), ErrTypeFleetFailed, s.err, res)
	}
	f.log.Info("fleet finished", "State", res.State, "Running", res.Running, "Launched", res.Launched)
	return res, nil
}

func (f *fleet) launchedTotal() int { return len(f.st.InstanceIDs) + f.st.Terminated }

func (f *fleet) shouldContinueAsNew(ctx workflow.Context) bool {
	if f.activitiesThisRun == 0 {
		return false
	}
	return f.activitiesThisRun >= f.tune.ContinueAsNewAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

func (f *fleet) status(ctx workflow.Context) FleetStatus {
	s := FleetStatus{
		FleetID:         f.in.FleetID,
		Tenant:          f.in.Tenant,
		Phase:           f.st.Phase,
		Min:             f.in.Min,
		Target:          f.st.Target,
		Burst:           f.in.Burst,
		Launched:        len(f.st.InstanceIDs),
		Running:         f.st.Running,
		Pending:         f.st.Pending,
		Terminated:      f.st.Terminated,
		Kept:            f.cancelRes.Kept,
		Lost:            max(0, f.st.Gone-f.st.Terminated),
		BurstLaunched:   f.st.BurstLaunched,
		BurstFailed:     f.st.BurstFailed,
		FillLaunched:    f.st.FillLaunched,
		FillRounds:      f.st.FillRound,
		Adopted:         f.st.Adopted,
		InFlight:        f.flight.fillRequested,
		CapacityRetries: f.st.CapacityRetries,
		ReservationID:   f.st.ReservationID,
		StartedAt:       f.st.StartedAt,
		Runs:            f.st.Runs,
		HistoryLength:   workflow.GetInfo(ctx).GetCurrentHistoryLength(),
		Message:         f.message,
	}
	if at := f.st.MinReachedAt; !at.IsZero() {
		s.MinReachedAt = &at
		s.TimeToMinMS = at.Sub(f.st.StartedAt).Milliseconds()
	}
	if at := f.st.TargetReachedAt; !at.IsZero() {
		s.TargetReachedAt = &at
		s.TimeToTargetMS = at.Sub(f.st.StartedAt).Milliseconds()
	}
	if f.flight.burst > 0 {
		s.InFlight += f.in.Min - f.st.BurstLaunched - f.st.BurstFailed
	}
	s.Units, s.OnDemandUnits, s.SpotUnits = f.units()
	s.Replaced = f.st.Replaced
	s.EventDriven = f.eventsActive
	if f.offerings {
		s.Lost = f.st.Gone + f.st.Replaced
		f.offeringStatus(ctx, &s)
	}
	return s
}

// offeringStatus fills the per-offering counts and the unavailable
// offerings of a fleet of offerings.
func (f *fleet) offeringStatus(ctx workflow.Context, s *FleetStatus) {
	s.Offerings = make([]OfferingStatus, len(f.st.Offerings))
	for i, o := range f.st.Offerings {
		s.Offerings[i] = OfferingStatus{InstanceType: o.InstanceType, Zone: o.Zone, SubnetID: o.SubnetID, Weight: max(1, o.Weight)}
	}
	for _, p := range f.st.Placements {
		if p.Offering >= len(s.Offerings) {
			continue
		}
		if p.Spot {
			s.Offerings[p.Offering].Spot++
		} else {
			s.Offerings[p.Offering].OnDemand++
		}
	}
	now := workflow.Now(ctx)
	for _, u := range f.st.Unavailable {
		if !now.Before(u.Until) || u.Offering >= len(f.st.Offerings) {
			continue
		}
		o := f.st.Offerings[u.Offering]
		market := providers.MarketOnDemand
		if u.Spot {
			market = providers.MarketSpot
		}
		s.Unavailable = append(s.Unavailable, UnavailableOffering{InstanceType: o.InstanceType, Zone: o.Zone, Market: market, LeftMS: u.Until.Sub(now).Milliseconds()})
	}
}

func (f *fleet) result(ctx workflow.Context) FleetResult {
	s := f.status(ctx)
	ids := append([]string{}, f.st.InstanceIDs...)
	return FleetResult{
		FleetID:        f.in.FleetID,
		State:          f.st.Phase,
		Min:            f.in.Min,
		Target:         f.st.Target,
		Running:        f.st.Running,
		InstanceIDs:    ids,
		TimeToMinMS:    s.TimeToMinMS,
		TimeToTargetMS: s.TimeToTargetMS,
		Launched:       len(ids),
		BurstLaunched:  f.st.BurstLaunched,
		BurstFailed:    f.st.BurstFailed,
		FillLaunched:   f.st.FillLaunched,
		FillRounds:     f.st.FillRound,
		Adopted:        f.st.Adopted,
		Terminated:     f.st.Terminated,
		Kept:           f.cancelRes.Kept,
		Burst:          f.in.Burst,
		Runs:           f.st.Runs,
		HistoryEvents:  s.HistoryLength,
		Message:        f.message,
		Tenant:         f.in.Tenant,
		Units:          s.Units,
		Replaced:       s.Replaced,
	}
}
