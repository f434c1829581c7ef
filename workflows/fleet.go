package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// Defaults of FleetTuning and the fleet's other timings.
const (
	defaultPollInterval       = 500 * time.Millisecond
	defaultIdlePollInterval   = 10 * time.Second
	defaultMaxFillInFlight    = 32
	defaultContinueAsNewAfter = 500
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
	return f.run(ctx)
}

// fleet is one run of LaunchFleetWorkflow. Its fields are touched only by
// workflow coroutines, which never run in parallel.
type fleet struct {
	in   LaunchFleetInput
	tune FleetTuning // in.Tuning with defaults filled in
	tags map[string]string
	st   FleetState // carried through continue-as-new
	log  log.Logger

	// changed wakes the main loop; every coroutine that changes state sets it.
	changed bool
	// cancelReq is the pending cancel request, if any.
	cancelReq *CancelInput
	cancelRes CancelResult
	// done is set once the fleet reached a terminal state and cleaned up;
	// handlers waiting on it may return.
	done bool

	burstInFlight    int
	fillInFlight     int // fill activities outstanding
	fillRequested    int // instances they asked for (sum of MaxCount)
	reservedInFlight int // of which against the reservation
	backingOff       bool
	fatal            error

	// adopting is set while the watcher looks for instances no launch
	// reported; the fleet can't be done while it does.
	adopting bool
	// terminatedHere holds the ids this run terminated, so a cloud that
	// still lists them as running for a while after (EC2's eventual
	// consistency) does not get them adopted back.
	terminatedHere map[string]bool

	// epoch counts launch and terminate results; a running count is fresh
	// only if no launch or terminate landed since it was scheduled.
	epoch, obsEpoch int
	lostSince       time.Time

	activitiesThisRun int
	watcherStop       bool
	watcherIdle       bool
	watcherPoke       bool
	watcherCancel     workflow.CancelFunc
	fillDeadlineHit   bool
	message           string
}

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
	f.tags = in.launchTags(f.st.Origin)
	if err := f.registerHandlers(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fleet) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (FleetStatus, error) {
		return f.status(ctx), nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ScaleUpdate, f.scale, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, in ScaleInput) error {
			if f.terminal() {
				return fmt.Errorf("fleet %s is %s", f.in.FleetID, f.st.Phase)
			}
			if f.cancelReq != nil {
				return fmt.Errorf("fleet %s is being cancelled", f.in.FleetID)
			}
			return in.Validate(f.in.Min)
		},
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, CancelUpdate, f.cancel, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, in CancelInput) error {
			if f.terminal() && f.st.Phase != PhaseCancelled {
				return fmt.Errorf("fleet %s is already %s", f.in.FleetID, f.st.Phase)
			}
			return nil
		},
	}); err != nil {
		return err
	}
	signals := workflow.GetSignalChannel(ctx, CancelSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var in CancelInput
			if more := signals.Receive(ctx, &in); !more {
				return
			}
			f.requestCancel(in)
		}
	})
	return nil
}

// scale is the ScaleUpdate handler. Raising the target returns at once; the
// fill loop launches the difference. Lowering it waits until the fill loop
// terminated the extra instances.
func (f *fleet) scale(ctx workflow.Context, in ScaleInput) (ScaleResult, error) {
	prev := f.st.Target
	f.st.Target = in.Target
	f.changed = true
	defer func() { f.changed = true }() // the main loop waits for handlers before it ends
	f.log.Info("fleet scaled", "From", prev, "To", in.Target)
	if in.Target < prev {
		if err := workflow.Await(ctx, func() bool {
			return len(f.st.InstanceIDs) <= f.st.Target || f.done || f.cancelReq != nil
		}); err != nil {
			return ScaleResult{}, err
		}
	}
	return ScaleResult{PreviousTarget: prev, Target: f.st.Target, Launched: len(f.st.InstanceIDs)}, nil
}

// cancel is the CancelUpdate handler: it returns once the fleet cleaned up.
func (f *fleet) cancel(ctx workflow.Context, in CancelInput) (CancelResult, error) {
	f.requestCancel(in)
	defer func() { f.changed = true }()
	if err := workflow.Await(ctx, func() bool { return f.done }); err != nil {
		return CancelResult{}, err
	}
	return f.cancelRes, nil
}

func (f *fleet) requestCancel(in CancelInput) {
	if f.cancelReq == nil {
		f.cancelReq = &in
		f.changed = true
		f.log.Info("fleet cancel requested", "Keep", in.Keep)
	}
}

func (f *fleet) terminal() bool {
	switch f.st.Phase {
	case PhaseFulfilled, PhaseInsufficientCapacity, PhaseCancelled, PhaseFailed:
		return true
	}
	return false
}

// run drives the phases. Each phase returns a non-nil *stop when the fleet
// must leave the normal path (a terminal state or continue-as-new).
func (f *fleet) run(ctx workflow.Context) (FleetResult, error) {
	if f.st.Phase == PhaseValidating {
		if err := f.validate(ctx); err != nil {
			return f.stopped(ctx, stopWith(err))
		}
		f.st.Phase = PhaseReserving
	}
	if f.cancelReq != nil {
		return f.stopped(ctx, stopCancel())
	}
	if f.st.Phase == PhaseReserving {
		if s := f.reserve(ctx); s != nil {
			return f.stopped(ctx, s)
		}
		if f.in.Burst {
			f.st.Phase = PhaseBursting
		} else {
			f.st.Phase = PhaseFilling
			f.st.BurstDone = true
		}
	}
	f.startWatcher(ctx)
	if f.st.Phase == PhaseBursting {
		if s := f.burst(ctx); s != nil {
			return f.stopped(ctx, s)
		}
		f.st.Phase = PhaseFilling
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
	launched := f.st.Phase == PhaseBursting || f.st.Phase == PhaseFilling
	if s.err != nil {
		f.st.Phase = PhaseFailed
		if s.message == "" {
			s.message = s.err.Error()
		}
	} else {
		f.st.Phase = s.state
	}
	switch {
	case s.state == PhaseCancelled:
		f.terminateAll(ctx, launched, f.cancelReq != nil && f.cancelReq.Keep)
	case s.err != nil:
		// A failed fleet's workflow is closed, so nothing could scale or
		// cancel its instances any more: terminate them rather than leak.
		f.terminateAll(ctx, launched, false)
	default:
		f.releaseReservation(ctx)
	}
	f.message = s.message
	f.done = true
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })

	var appErr *temporal.ApplicationError
	if s.err != nil && errors.As(s.err, &appErr) && appErr.Type() == providers.ErrTypeInvalid && f.launchedTotal() == 0 {
		// A rejected request: nothing was launched, and any reservation is
		// released.
		return FleetResult{}, s.err
	}
	res := f.result(ctx, s.message)
	switch {
	case wfCancelled:
		return res, temporal.NewCanceledError(res)
	case f.st.Phase == PhaseFailed:
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("fleet %s failed: %s", f.in.FleetID, s.message), ErrTypeFleetFailed, s.err, res)
	}
	f.log.Info("fleet finished", "State", res.State, "Running", res.Running, "Launched", res.Launched)
	return res, nil
}

// validate checks the input and that the cloud offers the instance type.
func (f *fleet) validate(ctx workflow.Context) error {
	if err := f.in.Validate(); err != nil {
		return invalidRequest(err.Error())
	}
	var a *activities.Fleet
	var res activities.CheckInstanceTypeResult
	actx := workflow.WithActivityOptions(ctx, controlOptions("check instance type "+f.in.InstanceType))
	f.activitiesThisRun++
	if err := workflow.ExecuteActivity(actx, a.CheckInstanceType, activities.CheckInstanceTypeInput{Tenant: f.in.Tenant, InstanceType: f.in.InstanceType}).Get(ctx, &res); err != nil {
		return err
	}
	if !res.Known {
		return invalidRequest(fmt.Sprintf("instance type %q is not offered by the cloud (%d types are)", f.in.InstanceType, res.Offered))
	}
	return nil
}

func invalidRequest(msg string) error {
	return temporal.NewNonRetryableApplicationError("invalid fleet request: "+msg, providers.ErrTypeInvalid, nil)
}

// reserve verifies capacity for Min with a capacity reservation, retrying
// under CapacityPolicyWait until the deadline.
func (f *fleet) reserve(ctx workflow.Context) *stop {
	var a *activities.Fleet
	deadline := f.waitDeadline()
	for {
		if f.cancelReq != nil {
			return stopCancel()
		}
		if f.shouldContinueAsNew(ctx) && workflow.AllHandlersFinished(ctx) {
			return &stop{continueAsNew: true}
		}
		f.st.ReserveAttempts++
		f.activitiesThisRun++
		in := activities.ReserveCapacityInput{
			Tenant:       f.in.Tenant,
			FleetID:      f.in.FleetID,
			InstanceType: f.in.InstanceType,
			Zones:        f.in.Zones,
			Count:        f.in.Min,
			ClientToken:  fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("reserve-%d", f.st.ReserveAttempts)),
			Tags:         f.tags,
		}
		actx := workflow.WithActivityOptions(ctx, reserveOptions(fmt.Sprintf("reserve %d × %s (attempt %d)", f.in.Min, f.in.InstanceType, f.st.ReserveAttempts)))
		var res activities.ReserveCapacityResult
		err := workflow.ExecuteActivity(actx, a.ReserveCapacity, in).Get(ctx, &res)
		if err == nil {
			f.st.ReservationID, f.st.ReservationZone, f.st.ReservedLeft = res.ReservationID, res.Zone, res.Count
			f.st.Backoff = 0
			f.message = ""
			return nil
		}
		if ctx.Err() != nil {
			return stopCancel()
		}
		if activities.ErrorType(err) != providers.ErrTypeInsufficientCapacity {
			return stopWith(err)
		}
		f.st.CapacityRetries++
		now := workflow.Now(ctx)
		if f.in.CapacityPolicy != CapacityPolicyWait || !now.Before(deadline) {
			return &stop{state: PhaseInsufficientCapacity, message: fmt.Sprintf("no zone has capacity for %d %s", f.in.Min, f.in.InstanceType)}
		}
		wait := min(nextBackoff(f.st.Backoff), deadline.Sub(now))
		f.st.Backoff = nextBackoff(f.st.Backoff)
		f.message = fmt.Sprintf("no capacity for %d %s; retrying in %s", f.in.Min, f.in.InstanceType, wait)
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      wait,
			TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("capacity backoff %s", wait)},
		}, func() bool { return f.cancelReq != nil }); err != nil {
			return stopCancel()
		}
	}
}

// waitDeadline is when CapacityPolicyWait gives up.
func (f *fleet) waitDeadline() time.Time {
	timeout := f.in.WaitTimeout
	if timeout == 0 && f.in.WaitDeadline.IsZero() {
		timeout = DefaultWaitTimeout
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = f.st.StartedAt.Add(timeout)
	}
	if !f.in.WaitDeadline.IsZero() && (deadline.IsZero() || f.in.WaitDeadline.Before(deadline)) {
		deadline = f.in.WaitDeadline
	}
	return deadline
}

// nextBackoff doubles the capacity backoff from 1s up to capacityBackoffMax.
func nextBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return min(2*d, capacityBackoffMax)
}

// burst launches Min against the reservation as parallel all-or-nothing
// chunks on TaskQueue, then releases what the reservation has left. Chunks
// that fail for good (no capacity, or throttled past their schedule-to-close
// timeout) leave their count to the fill path; successful chunks are never
// re-sent.
func (f *fleet) burst(ctx workflow.Context) *stop {
	var a *activities.Fleet
	bctx, cancelBurst := workflow.WithCancel(ctx)
	size := burstChunkSize(f.in.Min, f.tune.BurstChunk)
	chunks := (f.in.Min + size - 1) / size
	for i := 0; i < chunks; i++ {
		count := min(size, f.in.Min-i*size)
		in := activities.LaunchInput{
			Tenant:        f.in.Tenant,
			FleetID:       f.in.FleetID,
			InstanceType:  f.in.InstanceType,
			ImageID:       f.in.ImageID,
			Zone:          f.st.ReservationZone,
			MinCount:      count,
			MaxCount:      count,
			ClientToken:   fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("burst-%d", i)),
			ReservationID: f.st.ReservationID,
			Tags:          f.tags,
		}
		actx := workflow.WithActivityOptions(bctx, burstOptions(fmt.Sprintf("burst chunk %d/%d: %d × %s", i+1, chunks, count, f.in.InstanceType)))
		fut := workflow.ExecuteActivity(actx, a.LaunchBurstChunk, in)
		f.burstInFlight++
		f.activitiesThisRun++
		workflow.Go(ctx, func(ctx workflow.Context) {
			var res activities.LaunchResult
			err := fut.Get(ctx, &res)
			f.burstInFlight--
			f.changed = true
			f.addInstances(res.InstanceIDs)
			f.st.BurstLaunched += len(res.InstanceIDs)
			switch {
			case err == nil:
			case temporal.IsCanceledError(err):
				f.st.BurstFailed += count - len(res.InstanceIDs)
			case isPermanentLaunchError(err):
				f.st.BurstFailed += count - len(res.InstanceIDs)
				f.fatal = err
			default:
				f.st.BurstFailed += count - len(res.InstanceIDs)
				f.log.Warn("burst chunk failed; the fill path makes up for it", "Chunk", in.ClientToken, "Count", count, "Error", err)
			}
		})
	}
	for f.burstInFlight > 0 {
		if err := workflow.Await(ctx, func() bool { return f.burstInFlight == 0 || f.cancelReq != nil }); err != nil {
			break
		}
		if f.cancelReq != nil {
			// Cancel what has not started; wait for what has, so every
			// launched instance is known (the cancel sweep also finds them).
			cancelBurst()
			_ = workflow.Await(ctx, func() bool { return f.burstInFlight == 0 })
		}
	}
	if ctx.Err() != nil || f.cancelReq != nil {
		// Chunks are cancelled with ctx; the sweep terminates what they launched.
		_ = workflow.Await(ctx, func() bool { return f.burstInFlight == 0 })
		return stopCancel()
	}
	f.st.BurstDone = true
	// The burst used what it could of the reservation; release the rest so
	// the fill path's open-capacity launches can use it.
	f.releaseReservation(ctx)
	if f.fatal != nil {
		return stopWith(f.fatal)
	}
	return nil
}

// isPermanentLaunchError reports launch errors that no later round can fix.
func isPermanentLaunchError(err error) bool {
	switch activities.ErrorType(err) {
	case providers.ErrTypeInvalid, providers.ErrTypeIdempotencyMismatch, "TooManyInstances":
		return true
	}
	return false
}

// burstChunkSize is the number of instances per burst chunk. EC2's
// RunInstances request bucket holds 5 calls (refilling 2 per second), so a
// burst of at most 5 chunks is never request-throttled: chunks are
// ceil(min/5), but at least 100 (a chunk is all-or-nothing, so smaller
// chunks only add calls) and at most 1000 (EC2's RunInstances resource
// bucket holds 1000 instances; a chunk larger than that could never pass).
// A minimum above 5000 therefore bursts in more than 5 chunks, and the
// throttled ones retry with backoff.
func burstChunkSize(minimum, override int) int {
	if override > 0 {
		return override
	}
	return min(max(100, (minimum+4)/5), 1000)
}

// fill launches toward the target through LaunchTaskQueue until the target
// is running, keeping up to MaxFillInFlight rounds outstanding. It also
// terminates extras after a scale down, handles cancel, and continues as new
// when the run's history grows.
func (f *fleet) fill(ctx workflow.Context) *stop {
	lctx, cancelLaunches := workflow.WithCancel(ctx)
	if !f.st.BackoffUntil.IsZero() && workflow.Now(ctx).Before(f.st.BackoffUntil) {
		f.startBackoff(ctx, f.st.BackoffUntil.Sub(workflow.Now(ctx)))
	}
	f.startFillDeadline(ctx)
	for {
		if ctx.Err() != nil {
			return stopCancel()
		}
		inFlight := f.fillInFlight + f.burstInFlight
		switch {
		case f.cancelReq != nil:
			cancelLaunches()
			if inFlight == 0 {
				return stopCancel()
			}
		case f.fatal != nil:
			cancelLaunches()
			if inFlight == 0 {
				return stopWith(f.fatal)
			}
		default:
			if s := f.reconcile(ctx, lctx); s != nil {
				return s
			}
		}
		f.changed = false
		if err := workflow.Await(ctx, func() bool { return f.changed }); err != nil {
			return stopCancel()
		}
	}
}

// reconcile is one pass of the fill loop without a cancel or fatal error:
// terminate extras, decide whether the fleet is done, start rounds.
func (f *fleet) reconcile(ctx, lctx workflow.Context) *stop {
	live := len(f.st.InstanceIDs)
	if live > f.st.Target {
		f.terminateNewest(ctx, live-f.st.Target)
		f.changed = true // look again: rounds may have landed meanwhile
		return nil
	}
	if f.st.ReservedLeft == 0 && f.reservedInFlight == 0 && f.st.ReservationID != "" && !f.st.ReservationReleased {
		f.releaseReservation(ctx)
		f.changed = true // rounds may have landed while it ran: look again
		return nil
	}
	idle := f.fillInFlight == 0 && !f.adopting
	fresh := f.obsEpoch == f.epoch
	if idle && live == f.st.Target && fresh {
		if f.st.Running >= f.st.Target {
			if f.st.TargetReachedAt.IsZero() {
				f.st.TargetReachedAt = workflow.Now(ctx)
			}
			if workflow.AllHandlersFinished(ctx) {
				return &stop{state: PhaseFulfilled}
			}
			return nil
		}
		if f.st.Pending == 0 {
			now := workflow.Now(ctx)
			if f.lostSince.IsZero() {
				f.lostSince = now
			} else if now.Sub(f.lostSince) >= lostGrace {
				return stopWith(fmt.Errorf("%d of %d instances are not running and none is pending: they were terminated outside gust",
					live-f.st.Running, live))
			}
			return nil
		}
	}
	f.lostSince = time.Time{}
	if f.fillDeadlineHit && live < f.st.Target {
		if idle {
			return &stop{state: PhaseInsufficientCapacity,
				message: fmt.Sprintf("fill timeout: %d of %d launched", live, f.st.Target)}
		}
		return nil
	}
	if f.shouldContinueAsNew(ctx) {
		if idle && f.burstInFlight == 0 && workflow.AllHandlersFinished(ctx) {
			return &stop{continueAsNew: true}
		}
		return nil // drain the rounds in flight and let handlers finish first
	}
	// Nothing above blocked since live was read, so it is still current.
	for !f.backingOff && f.fillInFlight < f.tune.MaxFillInFlight && live+f.fillRequested < f.st.Target {
		f.startFillRound(ctx, lctx, min(FillBatchSize, f.st.Target-live-f.fillRequested))
	}
	return nil
}

// startFillRound schedules one LaunchFill activity for up to k instances,
// from the reservation while it has capacity left (no-burst mode), else from
// open capacity in the next zone.
func (f *fleet) startFillRound(ctx, lctx workflow.Context, k int) {
	var a *activities.Fleet
	f.st.FillRound++
	round := f.st.FillRound
	in := activities.LaunchInput{
		Tenant:       f.in.Tenant,
		FleetID:      f.in.FleetID,
		InstanceType: f.in.InstanceType,
		ImageID:      f.in.ImageID,
		MinCount:     1,
		ClientToken:  fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("fill-%d", round)),
		Tags:         f.tags,
	}
	reserved := 0
	if f.st.ReservedLeft > 0 && !f.st.ReservationReleased {
		reserved = min(k, f.st.ReservedLeft)
		k = reserved
		f.st.ReservedLeft -= reserved
		in.ReservationID, in.Zone = f.st.ReservationID, f.st.ReservationZone
	} else if len(f.in.Zones) > 0 {
		in.Zone = f.in.Zones[round%len(f.in.Zones)]
	}
	in.MaxCount = k
	summary := fmt.Sprintf("fill round %d: up to %d × %s", round, k, f.in.InstanceType)
	if reserved > 0 {
		summary += " (reserved)"
	}
	actx := workflow.WithActivityOptions(lctx, fillOptions(summary))
	fut := workflow.ExecuteActivity(actx, a.LaunchFill, in)
	f.fillInFlight++
	f.fillRequested += k
	f.reservedInFlight += reserved
	f.activitiesThisRun++
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res activities.LaunchResult
		err := fut.Get(ctx, &res)
		f.fillInFlight--
		f.fillRequested -= k
		f.reservedInFlight -= reserved
		f.changed = true
		got := len(res.InstanceIDs)
		f.addInstances(res.InstanceIDs)
		f.st.FillLaunched += got
		if reserved > 0 && err == nil {
			f.st.ReservedLeft += reserved - got
		}
		switch {
		case err == nil:
			f.st.Backoff = 0
		case temporal.IsCanceledError(err):
		case activities.ErrorType(err) == providers.ErrTypeInsufficientCapacity:
			f.st.CapacityRetries++
			if reserved > 0 {
				// The reservation cannot deliver; stop using it.
				f.st.ReservedLeft = 0
			}
			if !f.backingOff {
				f.st.Backoff = nextBackoff(f.st.Backoff)
				f.startBackoff(ctx, f.st.Backoff)
			}
		case reserved > 0 && activities.ErrorType(err) == providers.ErrTypeNotFound:
			// The reservation expired or was cancelled outside gust; fill
			// from open capacity.
			f.log.Warn("reservation is gone; filling from open capacity", "ReservationID", in.ReservationID, "Error", err)
			f.st.ReservedLeft = 0
			f.st.ReservationReleased = true
		case isPermanentLaunchError(err):
			f.fatal = err
		default:
			// Unexpected (retryable errors are retried by the activity's
			// policy). Back off so a persistent error cannot spin.
			f.log.Warn("fill round failed", "Round", round, "Error", err)
			if !f.backingOff {
				f.st.Backoff = nextBackoff(f.st.Backoff)
				f.startBackoff(ctx, f.st.Backoff)
			}
		}
	})
}

// startBackoff pauses new fill rounds for d on a durable timer.
func (f *fleet) startBackoff(ctx workflow.Context, d time.Duration) {
	f.backingOff = true
	f.st.BackoffUntil = workflow.Now(ctx).Add(d)
	f.message = fmt.Sprintf("capacity short; next fill round in %s", d)
	f.activitiesThisRun++
	timer := workflow.NewTimerWithOptions(ctx, d, workflow.TimerOptions{Summary: fmt.Sprintf("capacity backoff %s", d)})
	workflow.Go(ctx, func(ctx workflow.Context) {
		_ = timer.Get(ctx, nil)
		f.backingOff = false
		f.st.BackoffUntil = time.Time{}
		f.message = ""
		f.changed = true
	})
}

// startFillDeadline arms FillTimeout, if any.
func (f *fleet) startFillDeadline(ctx workflow.Context) {
	if f.in.FillTimeout <= 0 {
		return
	}
	left := f.st.StartedAt.Add(f.in.FillTimeout).Sub(workflow.Now(ctx))
	if left <= 0 {
		f.fillDeadlineHit = true
		return
	}
	timer := workflow.NewTimerWithOptions(ctx, left, workflow.TimerOptions{Summary: "fill timeout"})
	workflow.Go(ctx, func(ctx workflow.Context) {
		if timer.Get(ctx, nil) == nil {
			f.fillDeadlineHit = true
			f.changed = true
		}
	})
}

// terminateNewest terminates the n newest instances (scale down).
func (f *fleet) terminateNewest(ctx workflow.Context, n int) {
	var a *activities.Fleet
	ids := f.st.InstanceIDs[len(f.st.InstanceIDs)-n:]
	victims := append([]string(nil), ids...)
	actx := workflow.WithActivityOptions(ctx, terminateOptions(fmt.Sprintf("terminate %d newest (scale down to %d)", n, f.st.Target)))
	f.activitiesThisRun++
	var res activities.TerminateResult
	if err := workflow.ExecuteActivity(actx, a.TerminateInstances, activities.TerminateInput{Tenant: f.in.Tenant, IDs: victims}).Get(ctx, &res); err != nil {
		if ctx.Err() == nil {
			f.fatal = err
		}
		return
	}
	// Remove exactly the victims: rounds that landed meanwhile appended
	// after them.
	gone := make(map[string]bool, len(victims))
	if f.terminatedHere == nil {
		f.terminatedHere = make(map[string]bool, len(victims))
	}
	for _, id := range victims {
		gone[id] = true
		f.terminatedHere[id] = true
	}
	kept := f.st.InstanceIDs[:0]
	for _, id := range f.st.InstanceIDs {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	f.st.InstanceIDs = kept
	f.st.Terminated += len(victims)
	f.epoch++
	f.pokeWatcher()
}

// releaseReservation cancels the reservation if the fleet holds one.
func (f *fleet) releaseReservation(ctx workflow.Context) {
	if f.st.ReservationID == "" || f.st.ReservationReleased {
		return
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, controlOptions("release reservation "+f.st.ReservationID))
	f.activitiesThisRun++
	if err := workflow.ExecuteActivity(actx, a.ReleaseReservation, activities.ReleaseReservationInput{Tenant: f.in.Tenant, ReservationID: f.st.ReservationID}).Get(ctx, nil); err != nil {
		f.log.Warn("releasing the reservation failed", "ReservationID", f.st.ReservationID, "Error", err)
		return
	}
	f.st.ReservationReleased = true
	f.st.ReservedLeft = 0
}

// terminateAll releases the reservation and, unless keep, terminates every
// instance carrying the fleet's tags (launched says whether any launch was
// attempted).
func (f *fleet) terminateAll(ctx workflow.Context, launched, keep bool) {
	// Launches in flight were cancelled; those that had started finish, and
	// their instances must be known before the sweep.
	_ = workflow.Await(ctx, func() bool { return f.burstInFlight == 0 && f.fillInFlight == 0 })
	f.releaseReservation(ctx)
	if keep {
		f.cancelRes = CancelResult{Kept: len(f.st.InstanceIDs)}
		return
	}
	if !launched {
		return
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, terminateOptions("terminate the whole fleet ("+f.st.Phase+")"))
	var res activities.TerminateResult
	err := workflow.ExecuteActivity(actx, a.TerminateFleet, activities.TerminateFleetInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}).Get(ctx, &res)
	if err != nil {
		f.log.Error("terminating the fleet failed", "Error", err)
		f.message = "could not terminate every instance: " + err.Error()
		return
	}
	f.cancelRes = CancelResult{Terminated: res.Terminated}
	f.st.Terminated += len(f.st.InstanceIDs)
	f.st.InstanceIDs = nil
	f.st.Running, f.st.Pending = 0, 0
}

func (f *fleet) addInstances(ids []string) {
	if len(ids) == 0 {
		return
	}
	f.st.InstanceIDs = append(f.st.InstanceIDs, ids...)
	f.epoch++
	f.pokeWatcher()
}

func (f *fleet) launchedTotal() int { return len(f.st.InstanceIDs) + f.st.Terminated }

func (f *fleet) shouldContinueAsNew(ctx workflow.Context) bool {
	if f.activitiesThisRun == 0 {
		return false
	}
	return f.activitiesThisRun >= f.tune.ContinueAsNewAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// startWatcher polls the running count: every PollInterval while anything
// is launching or booting, every IdlePollInterval otherwise. Time to min is
// the first poll that sees Min running.
func (f *fleet) startWatcher(ctx workflow.Context) {
	wctx, cancel := workflow.WithCancel(ctx)
	f.watcherCancel = cancel
	workflow.Go(wctx, func(ctx workflow.Context) {
		var a *activities.Fleet
		actx := workflow.WithActivityOptions(ctx, countOptions())
		in := activities.CountRunningInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}
		for !f.watcherStop && ctx.Err() == nil {
			epoch, quiet := f.epoch, f.launchesSettled()
			f.activitiesThisRun++
			var res activities.CountRunningResult
			began := workflow.Now(ctx)
			err := workflow.ExecuteActivity(actx, a.CountRunning, in).Get(ctx, &res)
			took := workflow.Now(ctx).Sub(began)
			if err == nil {
				f.st.Running, f.st.Pending, f.st.Gone = res.Running, res.Pending, res.Total-res.Running-res.Pending
				f.obsEpoch = epoch
				if f.st.MinReachedAt.IsZero() && res.Running >= f.in.Min {
					f.st.MinReachedAt = workflow.Now(ctx)
				}
				f.changed = true
				if quiet && f.launchesSettled() && epoch == f.epoch && res.Running+res.Pending > len(f.st.InstanceIDs) {
					// Set before the main loop can see this count: the
					// running instances it counts include the orphans.
					f.adopting = true
					f.adoptOrphans(ctx)
					f.adopting = false
					f.changed = true
				}
			} else if ctx.Err() == nil {
				f.log.Warn("counting running instances failed", "Error", err)
			}
			if f.watcherStop || ctx.Err() != nil {
				return
			}
			interval := f.tune.IdlePollInterval
			if f.busy() {
				// A count of a large fleet is a heavy DescribeInstances;
				// waiting at least twice its duration keeps polling under
				// a third of the cloud's and the worker's time.
				interval = max(f.tune.PollInterval, 2*took)
			}
			f.watcherIdle, f.watcherPoke = interval > f.tune.PollInterval, false
			_, _ = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      interval,
				TimerOptions: workflow.TimerOptions{Summary: "next running count"},
			}, func() bool { return f.watcherStop || f.watcherPoke })
			f.watcherIdle = false
		}
	})
}

// launchesSettled reports whether every launch the fleet made has
// reported: no burst chunk or fill round is in flight, and no cancel is
// under way. Only then does the cloud hold no instance of the fleet that a
// launch is still about to report.
func (f *fleet) launchesSettled() bool {
	return f.st.BurstDone && f.burstInFlight == 0 && f.fillInFlight == 0 && f.cancelReq == nil
}

// adoptOrphans is called when a count, taken while launches were settled,
// found more live instances with the fleet's tags than the fleet knows of.
// They come from a launch whose response was lost and whose retries gave
// up (a burst chunk past its schedule-to-close timeout): EC2 launched them,
// nobody reported them. The fleet adopts them instead of leaking them; if
// that puts it over target, reconcile terminates the newest, as for a
// scale down.
func (f *fleet) adoptOrphans(ctx workflow.Context) {
	// Workflows started before adoption existed never scheduled this
	// activity; replaying their histories must not either.
	if workflow.GetVersion(ctx, "adopt-orphans", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, controlOptions("find instances no launch reported"))
	epoch := f.epoch
	f.activitiesThisRun++
	var res activities.ListFleetResult
	err := workflow.ExecuteActivity(actx, a.ListFleetInstances, activities.ListFleetInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}).Get(ctx, &res)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("listing the fleet's instances failed; the next count looks again", "Error", err)
		}
		return
	}
	if epoch != f.epoch || !f.launchesSettled() {
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
	f.addInstances(orphans)
	f.changed = true
}

// busy reports whether instances are launching or booting.
func (f *fleet) busy() bool {
	return f.fillInFlight > 0 || f.burstInFlight > 0 || f.obsEpoch != f.epoch ||
		f.st.Pending > 0 || f.st.Running < len(f.st.InstanceIDs)
}

// pokeWatcher ends an idle wait between polls early.
func (f *fleet) pokeWatcher() {
	if f.watcherIdle {
		f.watcherPoke = true
	}
}

func (f *fleet) stopWatcher() {
	f.watcherStop = true
	if f.watcherCancel != nil {
		f.watcherCancel()
	}
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
		Lost:            max(0, f.st.Gone-f.st.Terminated),
		BurstLaunched:   f.st.BurstLaunched,
		BurstFailed:     f.st.BurstFailed,
		FillLaunched:    f.st.FillLaunched,
		FillRounds:      f.st.FillRound,
		Adopted:         f.st.Adopted,
		InFlight:        f.fillRequested,
		CapacityRetries: f.st.CapacityRetries,
		ReservationID:   f.st.ReservationID,
		StartedAt:       f.st.StartedAt,
		MinReachedAt:    f.st.MinReachedAt,
		TargetReachedAt: f.st.TargetReachedAt,
		Runs:            f.st.Runs,
		HistoryLength:   workflow.GetInfo(ctx).GetCurrentHistoryLength(),
		Message:         f.message,
	}
	if !f.st.MinReachedAt.IsZero() {
		s.TimeToMin = f.st.MinReachedAt.Sub(f.st.StartedAt)
	}
	if !f.st.TargetReachedAt.IsZero() {
		s.TimeToTarget = f.st.TargetReachedAt.Sub(f.st.StartedAt)
	}
	if f.burstInFlight > 0 {
		s.InFlight += f.in.Min - f.st.BurstLaunched - f.st.BurstFailed
	}
	return s
}

func (f *fleet) result(ctx workflow.Context, msg string) FleetResult {
	s := f.status(ctx)
	ids := append([]string{}, f.st.InstanceIDs...)
	return FleetResult{
		FleetID:        f.in.FleetID,
		State:          f.st.Phase,
		Min:            f.in.Min,
		Target:         f.st.Target,
		Running:        f.st.Running,
		InstanceIDs:    ids,
		TimeToMinMS:    s.TimeToMin.Milliseconds(),
		TimeToTargetMS: s.TimeToTarget.Milliseconds(),
		Launched:       len(ids),
		BurstLaunched:  f.st.BurstLaunched,
		BurstFailed:    f.st.BurstFailed,
		FillLaunched:   f.st.FillLaunched,
		FillRounds:     f.st.FillRound,
		Adopted:        f.st.Adopted,
		Terminated:     f.st.Terminated,
		Burst:          f.in.Burst,
		Runs:           f.st.Runs,
		HistoryEvents:  s.HistoryLength,
		Message:        msg,
		Tenant:         f.in.Tenant,
	}
}
