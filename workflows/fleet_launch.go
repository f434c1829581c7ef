package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// The launch side of a fleet: validation, the capacity reservation, the
// burst, and the fill loop with its rounds and backoff.

// validate checks the input and that the cloud offers the instance type.
func (f *fleet) validate(ctx workflow.Context) error {
	if err := f.in.Validate(); err != nil {
		return invalidRequest(err.Error())
	}
	if f.offerings {
		return f.prepare(ctx)
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
// under CapacityPolicyWait until the deadline. Only a capacity error is
// retried or ends the fleet insufficient_capacity; any other error fails it.
func (f *fleet) reserve(ctx workflow.Context) *stop {
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
		var err error
		if f.offerings {
			err = f.reserveOfferings(ctx)
		} else {
			err = f.reserveOneType(ctx)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return stopCancel()
		}
		if !isCapacityError(err) {
			return stopWith(err)
		}
		if s := f.capacityWait(ctx, deadline); s != nil {
			return s
		}
	}
}

// reserveOneType reserves Min of the one instance type, in one of Zones:
// the reservation of a fleet started before offerings existed.
func (f *fleet) reserveOneType(ctx workflow.Context) error {
	var a *activities.Fleet
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
	if err := workflow.ExecuteActivity(actx, a.ReserveCapacity, in).Get(ctx, &res); err != nil {
		return err
	}
	f.st.ReservationID, f.st.ReservationZone, f.st.ReservedLeft = res.ReservationID, res.Zone, res.Count
	f.st.Backoff = 0
	f.message = ""
	return nil
}

// capacityWait is the capacity policy after a reservation found no
// capacity: end the fleet insufficient_capacity, or wait the next backoff
// (nil) under CapacityPolicyWait until the deadline.
func (f *fleet) capacityWait(ctx workflow.Context, deadline time.Time) *stop {
	f.st.CapacityRetries++
	now := workflow.Now(ctx)
	what := fmt.Sprintf("%d %s", f.in.Min, f.in.InstanceType)
	if f.offerings {
		what = fmt.Sprintf("%d units over %d offerings", f.in.Min, len(f.st.Offerings))
	}
	if f.in.CapacityPolicy != CapacityPolicyWait || !now.Before(deadline) {
		return &stop{state: PhaseInsufficientCapacity, message: "no zone has capacity for " + what}
	}
	wait := min(nextBackoff(f.st.Backoff), deadline.Sub(now))
	f.st.Backoff = nextBackoff(f.st.Backoff)
	f.message = fmt.Sprintf("no capacity for %s; retrying in %s", what, wait)
	f.log.Info("fleet waiting for capacity", "Min", f.in.Min, "InstanceType", f.in.InstanceType, "RetryIn", wait)
	if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
		Timeout:      wait,
		TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("capacity backoff %s", wait)},
	}, func() bool { return f.cancelReq != nil }); err != nil {
		return stopCancel()
	}
	return nil
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
	if f.offerings {
		f.burstOfferings(ctx, bctx)
		return f.burstWait(ctx, cancelBurst)
	}
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
		f.flight.burst++
		f.activitiesThisRun++
		workflow.Go(ctx, func(ctx workflow.Context) {
			var res activities.LaunchResult
			err := fut.Get(ctx, &res)
			f.flight.burst--
			f.changed = true
			f.addInstances(res.InstanceIDs)
			f.st.BurstLaunched += len(res.InstanceIDs)
			if err == nil {
				return
			}
			f.st.BurstFailed += count - len(res.InstanceIDs)
			switch classifyLaunchError(err, false) {
			case launchCancelled:
			case launchPermanent:
				f.fatal = err
			default:
				f.log.Warn("burst chunk failed; the fill path makes up for it", "Chunk", in.ClientToken, "Count", count, "Error", err)
			}
		})
	}
	return f.burstWait(ctx, cancelBurst)
}

// burstWait waits for the burst's chunks, then releases what the
// reservation has left.
func (f *fleet) burstWait(ctx workflow.Context, cancelBurst workflow.CancelFunc) *stop {
	for f.flight.burst > 0 {
		if err := workflow.Await(ctx, func() bool { return f.flight.burst == 0 || f.cancelReq != nil }); err != nil {
			break
		}
		if f.cancelReq != nil {
			// Cancel what has not started; wait for what has, so every
			// launched instance is known (the cancel sweep also finds them).
			cancelBurst()
			_ = workflow.Await(ctx, func() bool { return f.flight.burst == 0 })
		}
	}
	if ctx.Err() != nil || f.cancelReq != nil {
		// Chunks are cancelled with ctx; the sweep terminates what they launched.
		_ = workflow.Await(ctx, func() bool { return f.flight.burst == 0 })
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

// launchOutcome is what a failed launch (burst chunk or fill round) means
// for the fleet.
type launchOutcome int

const (
	// launchCancelled: the fleet cancelled it; nothing to do.
	launchCancelled launchOutcome = iota
	// launchNoCapacity: back off (fill); the reservation, if the round
	// used it, cannot deliver and is no longer used.
	launchNoCapacity
	// launchReservationGone: the round's reservation expired or was
	// cancelled outside gust; fill from open capacity.
	launchReservationGone
	// launchPermanent: no later round can fix it; the fleet fails.
	launchPermanent
	// launchUnexpected: anything else (retryable errors were retried by
	// the activity's policy); back off so it cannot spin.
	launchUnexpected
)

// classifyLaunchError sorts a launch activity's error; reserved says the
// launch was against the reservation.
func classifyLaunchError(err error, reserved bool) launchOutcome {
	switch typ := activities.ErrorType(err); {
	case temporal.IsCanceledError(err):
		return launchCancelled
	case typ == providers.ErrTypeInsufficientCapacity:
		return launchNoCapacity
	case reserved && typ == providers.ErrTypeNotFound:
		return launchReservationGone
	case isPermanentLaunchError(err):
		return launchPermanent
	}
	return launchUnexpected
}

// isPermanentLaunchError reports launch errors that no later round can fix.
func isPermanentLaunchError(err error) bool {
	switch activities.ErrorType(err) {
	case providers.ErrTypeInvalid, providers.ErrTypeIdempotencyMismatch, providers.ErrTypeTooManyInstances:
		return true
	}
	return false
}

// isCapacityError reports an error that says the cloud has no capacity now,
// which waiting may fix.
func isCapacityError(err error) bool {
	return activities.ErrorType(err) == providers.ErrTypeInsufficientCapacity
}

// fill launches toward the target through LaunchTaskQueue until the target
// is running, keeping up to MaxFillInFlight rounds outstanding. It also
// terminates extras after a scale down, handles cancel, and continues as new
// when the run's history grows. What it does at each wake-up is decide's
// answer (fleet_decide.go); fill only carries it out.
func (f *fleet) fill(ctx workflow.Context) *stop {
	lctx, cancelLaunches := workflow.WithCancel(ctx)
	if left := backoffLeft(workflow.Now(ctx), f.st.BackoffUntil); left > 0 {
		// The previous run was backing off when it continued as new.
		f.startBackoff(ctx, left)
	}
	if left := backoffLeft(workflow.Now(ctx), f.st.SpotBackoffUntil); left > 0 {
		f.startSpotBackoff(ctx, left)
	}
	f.startFillDeadline(ctx)
	lookAgain := f.version(ctx, versionLookAgain) >= 1
	f.dropSurplus = f.version(ctx, versionDropSurplus) >= 1
	for {
		if ctx.Err() != nil {
			return stopCancel()
		}
		d := decide(f.view(ctx))
		f.lostSince = d.LostSince
		if d.MarkTargetReached {
			f.st.TargetReachedAt = workflow.Now(ctx)
		}
		switch d.Action {
		case actCancelled:
			cancelLaunches()
			return stopCancel()
		case actFail:
			cancelLaunches()
			return stopWith(f.fatal)
		case actDrain:
			cancelLaunches()
		case actTerminateExtras:
			// Rounds may land while it runs: decide again at once.
			if f.terminateNewest(ctx, d.Count) && lookAgain {
				continue
			}
		case actReleaseReservation:
			if f.releaseReservation(ctx) && lookAgain {
				continue
			}
		case actFulfilled:
			return &stop{state: PhaseFulfilled}
		case actSettle:
			f.requestSettledCount()
		case actMaintain:
			if f.st.Phase != PhaseFulfilled {
				f.setPhase(PhaseFulfilled)
				f.message = ""
				f.log.Info("fleet fulfilled; maintaining its target until cancelled", "Target", f.st.Target)
			}
		case actLost:
			return stopWith(fmt.Errorf("%d of %d instances are not running and none is pending: they were terminated outside gust",
				d.Count, len(f.st.InstanceIDs)))
		case actFillTimeout:
			return &stop{state: PhaseInsufficientCapacity,
				message: fmt.Sprintf("fill timeout: %d of %d launched", len(f.st.InstanceIDs), f.st.Target)}
		case actContinueAsNew:
			return &stop{continueAsNew: true}
		case actDropRounds:
			f.dropNewestRounds(d.Count)
		case actLaunch:
			for _, r := range d.Rounds {
				f.startFillRound(ctx, lctx, r)
			}
		}
		f.changed = false
		if err := workflow.Await(ctx, func() bool { return f.changed }); err != nil {
			return stopCancel()
		}
	}
}

// view is the fleet as decide sees it now.
func (f *fleet) view(ctx workflow.Context) fleetView {
	counts, dropping := f.flight.droppable()
	live, liveOD, liveSpot := f.units()
	v := fleetView{
		RoundCounts:      counts,
		Dropping:         dropping,
		DropSurplus:      f.dropSurplus,
		Now:              workflow.Now(ctx),
		Target:           f.st.Target,
		Live:             live,
		Running:          f.st.Running,
		Pending:          f.st.Pending,
		Fresh:            f.w.obsEpoch == f.w.epoch,
		FillInFlight:     f.flight.fill,
		FillRequested:    f.flight.fillRequested,
		ReservedInFlight: f.flight.reserved,
		BurstInFlight:    f.flight.burst,
		MaxFillInFlight:  f.tune.MaxFillInFlight,
		HoldsReservation: f.st.ReservationID != "" && !f.st.ReservationReleased,
		ReservedLeft:     f.st.ReservedLeft,
		Adopting:         f.w.adopting,
		BackingOff:       f.backingOff,
		FillDeadlineHit:  f.fillDeadlineHit,
		CancelRequested:  f.cancelReq != nil,
		Fatal:            f.fatal != nil,
		ContinueAsNewDue: f.shouldContinueAsNew(ctx),
		HandlersFinished: workflow.AllHandlersFinished(ctx),
		TargetReached:    !f.st.TargetReachedAt.IsZero(),
		LostSince:        f.lostSince,
	}
	if f.offerings {
		now := v.Now
		v.Markets, v.Maintain = true, f.maintain
		v.Surplus = f.surplus(live)
		v.Fresh = f.statesKnown || f.eventsFirst && f.statesFromEvents()
		v.Unsettled = f.unsettled()
		v.OnDemandWant, v.SpotWant = splitMarkets(f.st.Target, f.in.OnDemandBase, f.in.SpotShare)
		v.LiveOnDemand, v.LiveSpot = liveOD, liveSpot
		v.RequestedSpot = f.flight.spotRequested
		v.RequestedOnDemand = f.flight.fillRequested - f.flight.spotRequested
		v.SpotBackingOff = f.spotBackingOff
		_, odProbe := f.candidates(now, false)
		_, spotProbe := f.candidates(now, true)
		v.OnDemandOpen, v.SpotOpen = !odProbe, !spotProbe
		v.ReservedLeft = f.reservedLeft()
		v.HoldsReservation = f.holdsReservation()
	}
	return v
}

// startFillRound schedules one LaunchFill activity for r: from the
// reservation (no-burst mode) when r.Reserved, else from open capacity in
// the next zone.
func (f *fleet) startFillRound(ctx, lctx workflow.Context, r fillRound) {
	if f.offerings {
		f.startOfferingsRound(ctx, lctx, r)
		return
	}
	var a *activities.Fleet
	f.st.FillRound++
	round := f.st.FillRound
	k := r.Count
	in := activities.LaunchInput{
		Tenant:       f.in.Tenant,
		FleetID:      f.in.FleetID,
		InstanceType: f.in.InstanceType,
		ImageID:      f.in.ImageID,
		MinCount:     1,
		MaxCount:     k,
		ClientToken:  fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("fill-%d", round)),
		Tags:         f.tags,
	}
	reserved := 0
	if r.Reserved {
		reserved = k
		f.st.ReservedLeft -= reserved
		in.ReservationID, in.Zone = f.st.ReservationID, f.st.ReservationZone
	} else if len(f.in.Zones) > 0 {
		in.Zone = f.in.Zones[round%len(f.in.Zones)]
	}
	summary := fmt.Sprintf("fill round %d: up to %d × %s", round, k, f.in.InstanceType)
	if reserved > 0 {
		summary += " (reserved)"
	}
	// A round gets its own context only where it may be dropped: a child
	// context changes the order in which a drain's cancels are sent, so
	// runs recorded before versionDropSurplus keep the shared one.
	rctx, cancel := lctx, workflow.CancelFunc(func() {})
	if f.dropSurplus {
		rctx, cancel = workflow.WithCancel(lctx)
	}
	actx := workflow.WithActivityOptions(rctx, fillOptions(summary, f.st.Origin))
	fut := workflow.ExecuteActivity(actx, a.LaunchFill, in)
	inFlight := &fillInFlight{count: k, cancel: cancel}
	f.flight.rounds = append(f.flight.rounds, inFlight)
	f.flight.fill++
	f.flight.fillRequested += k
	f.flight.reserved += reserved
	f.activitiesThisRun++
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res activities.LaunchResult
		err := fut.Get(ctx, &res)
		f.flight.rounds = slices.DeleteFunc(f.flight.rounds, func(r *fillInFlight) bool { return r == inFlight })
		f.flight.fill--
		f.flight.fillRequested -= k
		f.flight.reserved -= reserved
		f.changed = true
		got := len(res.InstanceIDs)
		f.addInstances(res.InstanceIDs)
		f.st.FillLaunched += got
		if err == nil {
			if reserved > 0 {
				// The reservation gives back what the round did not use.
				f.st.ReservedLeft += reserved - got
			}
			f.st.Backoff = 0
			return
		}
		switch classifyLaunchError(err, reserved > 0) {
		case launchCancelled:
			// Dropped by a scale down, or drained: the reservation keeps
			// what the round did not use.
			f.st.ReservedLeft += reserved - got
		case launchNoCapacity:
			f.st.CapacityRetries++
			if reserved > 0 {
				// The reservation cannot deliver; stop using it.
				f.st.ReservedLeft = 0
			}
			if !f.backingOff {
				f.st.Backoff = nextBackoff(f.st.Backoff)
				f.startBackoff(ctx, f.st.Backoff)
			}
		case launchReservationGone:
			f.log.Warn("reservation is gone; filling from open capacity", "ReservationID", in.ReservationID, "Error", err)
			f.st.ReservedLeft = 0
			f.st.ReservationReleased = true
		case launchPermanent:
			f.fatal = err
		case launchUnexpected:
			f.log.Warn("fill round failed", "Round", round, "Error", err)
			if !f.backingOff {
				f.st.Backoff = nextBackoff(f.st.Backoff)
				f.startBackoff(ctx, f.st.Backoff)
			}
		}
	})
}

// dropNewestRounds cancels the n newest fill rounds not already being
// dropped. A round still queued behind the rate limiter ends without
// launching; one already running may still launch (its instances are then
// terminated as extras, or adopted if its response is lost).
func (f *fleet) dropNewestRounds(n int) {
	for i := len(f.flight.rounds) - 1; i >= 0 && n > 0; i-- {
		if r := f.flight.rounds[i]; !r.dropping {
			r.dropping = true
			r.cancel()
			n--
		}
	}
	f.log.Info("fill rounds dropped: the target no longer needs them", "Target", f.st.Target)
}

// backoffLeft is how much of a capacity backoff that lasts until until is
// left at now; 0 if none.
func backoffLeft(now, until time.Time) time.Duration {
	if until.IsZero() || !now.Before(until) {
		return 0
	}
	return until.Sub(now)
}

// startBackoff pauses new fill rounds for d on a durable timer.
func (f *fleet) startBackoff(ctx workflow.Context, d time.Duration) {
	f.backingOff = true
	f.st.BackoffUntil = workflow.Now(ctx).Add(d)
	f.message = fmt.Sprintf("capacity short; next fill round in %s", d)
	f.log.Info("fleet waiting for capacity", "Running", f.st.Running, "Target", f.st.Target, "NextFillRoundIn", d)
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
