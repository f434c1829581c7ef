package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
)

// Cleanup: the terminations of a scale down, the release of the
// reservation, and the final sweep of a fleet that ends.

// cleanUp runs the cleanup of the terminal state s: a cancelled fleet
// terminates its instances (or keeps them), a failed one terminates them
// rather than leak them once its workflow is closed, and any other ending
// releases the reservation and keeps its instances. A sweep that fails is
// said in the message and kept in cleanupErr, never reported as clean.
func (f *fleet) cleanUp(ctx workflow.Context, s *stop, launched bool) {
	var err error
	switch {
	case s.state == PhaseCancelled:
		err = f.terminateAll(ctx, launched, f.cancelReq != nil && f.cancelReq.Keep)
	case s.err != nil:
		err = f.terminateAll(ctx, launched, false)
	default:
		f.releaseReservation(ctx)
	}
	if err == nil {
		return
	}
	f.cleanupErr = err
	note := fmt.Sprintf("could not terminate the fleet's %d instances: %v", len(f.st.InstanceIDs), err)
	if f.message == "" {
		f.message = note
	} else {
		f.message += "; " + note
	}
}

// terminateNewest terminates the n newest instances (scale down) and
// reports whether it did; a failure is fatal to the fleet.
func (f *fleet) terminateNewest(ctx workflow.Context, n int) bool {
	var a *activities.Fleet
	victims := f.victims(n)
	actx := workflow.WithActivityOptions(ctx, terminateOptions(fmt.Sprintf("terminate %d newest (scale down to %d)", len(victims), f.st.Target)))
	f.activitiesThisRun++
	var res activities.TerminateResult
	if err := workflow.ExecuteActivity(actx, a.TerminateInstances, activities.TerminateInput{Tenant: f.in.Tenant, IDs: victims}).Get(ctx, &res); err != nil {
		if ctx.Err() == nil {
			f.fatal = err
		}
		return false
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
	f.removeInstances(gone)
	f.st.Terminated += len(victims)
	f.w.epoch++
	f.pokeWatcher()
	return true
}

// releaseReservation cancels the reservation if the fleet holds one, and
// reports whether it released one now.
func (f *fleet) releaseReservation(ctx workflow.Context) bool {
	if f.offerings {
		return f.releaseReservations(ctx)
	}
	if f.st.ReservationID == "" || f.st.ReservationReleased {
		return false
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, controlOptions("release reservation "+f.st.ReservationID))
	f.activitiesThisRun++
	if err := workflow.ExecuteActivity(actx, a.ReleaseReservation, activities.ReleaseReservationInput{Tenant: f.in.Tenant, ReservationID: f.st.ReservationID}).Get(ctx, nil); err != nil {
		f.log.Warn("releasing the reservation failed", "ReservationID", f.st.ReservationID, "Error", err)
		return false
	}
	f.st.ReservationReleased = true
	f.st.ReservedLeft = 0
	return true
}

// terminateAll releases the reservation and, unless keep, terminates every
// instance carrying the fleet's tags (launched says whether any launch was
// attempted). It returns the error of a sweep that failed; the fleet's
// instances then stay listed.
func (f *fleet) terminateAll(ctx workflow.Context, launched, keep bool) error {
	// Launches in flight were cancelled; those that had started finish, and
	// their instances must be known before the sweep.
	_ = workflow.Await(ctx, func() bool { return f.flight.total() == 0 })
	f.releaseReservation(ctx)
	if keep {
		f.cancelRes = CancelResult{Kept: len(f.st.InstanceIDs)}
		// The last poll may predate the kept instances' boot: count them
		// once more, so the fleet's final status says what it leaves
		// running rather than what an older poll saw.
		if f.version(ctx, "fleet-keep-count") == 1 {
			f.countKept(ctx)
		}
		return nil
	}
	if !launched {
		return nil
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, terminateOptions("terminate the whole fleet ("+f.st.Phase+")"))
	var res activities.TerminateResult
	err := workflow.ExecuteActivity(actx, a.TerminateFleet, activities.TerminateFleetInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}).Get(ctx, &res)
	if err != nil {
		f.log.Error("terminating the fleet failed", "Error", err)
		return err
	}
	f.cancelRes = CancelResult{Terminated: res.Terminated}
	f.st.Terminated += len(f.st.InstanceIDs)
	f.st.InstanceIDs, f.st.Placements = nil, nil
	if f.states != nil {
		clear(f.states)
	}
	f.st.Running, f.st.Pending = 0, 0
	return nil
}

// countKept counts the instances a cancel with keep leaves running. A
// failed count leaves the last poll's numbers, and says so in the log.
func (f *fleet) countKept(ctx workflow.Context) {
	if len(f.st.InstanceIDs) == 0 {
		return
	}
	if f.offerings {
		if _, err := f.reconcile(ctx, workflow.WithActivityOptions(ctx, countOptions())); err != nil {
			f.log.Warn("counting the kept instances failed", "Error", err)
		}
		return
	}
	var a *activities.Fleet
	actx := workflow.WithActivityOptions(ctx, countOptions())
	in := activities.CountRunningInput{Tenant: f.in.Tenant, FleetID: f.in.FleetID, RunTag: f.st.Origin}
	var res activities.CountRunningResult
	if err := workflow.ExecuteActivity(actx, a.CountRunning, in).Get(ctx, &res); err != nil {
		f.log.Warn("counting the kept instances failed", "Error", err)
		return
	}
	f.st.Running, f.st.Pending, f.st.Gone = res.Running, res.Pending, res.Total-res.Running-res.Pending
}

// releaseReservations cancels every reservation a fleet of offerings still
// holds, and reports whether it released any now. One that fails to
// release stays held, to be tried again.
func (f *fleet) releaseReservations(ctx workflow.Context) bool {
	var a *activities.Fleet
	released := false
	for i := range f.st.Reservations {
		r := &f.st.Reservations[i]
		if r.Released {
			continue
		}
		actx := workflow.WithActivityOptions(ctx, controlOptions("release reservation "+r.ID))
		f.activitiesThisRun++
		if err := workflow.ExecuteActivity(actx, a.ReleaseReservation, activities.ReleaseReservationInput{Tenant: f.in.Tenant, ReservationID: r.ID}).Get(ctx, nil); err != nil {
			f.log.Warn("releasing a reservation failed", "ReservationID", r.ID, "Error", err)
			continue
		}
		r.Released, r.Left = true, 0
		released = true
	}
	return released
}
