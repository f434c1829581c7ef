package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// Instance states of a fleet of offerings: what the cloud's events
// (InstanceEventsSignal) and the reconciling counts say of each live
// instance, and the replacement of the instances lost outside gust.

// stateInterrupted is the state of a running instance that has its spot
// interruption notice.
const stateInterrupted = "interrupted"

// maxEarlyEvents bounds the events kept for instances no launch has
// reported yet (their event came before the launch's answer).
const maxEarlyEvents = 4096

// stateRank orders states so that a late or repeated event never moves an
// instance back (EventBridge does not keep order).
func stateRank(s string) int {
	switch s {
	case "":
		return 0
	case providers.StatePending:
		return 1
	case providers.StateRunning:
		return 2
	case stateInterrupted:
		return 3
	case "stopping", "stopped":
		return 4
	case providers.StateShuttingDown:
		return 5
	case providers.StateTerminated:
		return 6
	}
	return 0
}

// gone reports a state in which an instance no longer counts: it is lost.
func gone(s string) bool { return stateRank(s) >= stateRank(stateInterrupted) }

// setState records id's state unless it would move it back; it reports
// whether it changed.
func (f *fleet) setState(id, s string) bool {
	old, live := f.states[id]
	if !live || stateRank(s) <= stateRank(old) {
		return false
	}
	f.states[id] = s
	return true
}

// eventState is an event's state in the fleet's terms.
func eventState(e InstanceEvent) string {
	if e.Interrupted {
		return stateInterrupted
	}
	return e.State
}

// applyEvents handles an InstanceEventsSignal.
func (f *fleet) applyEvents(ctx workflow.Context, in InstanceEventsInput) {
	if !f.offerings || in.RunTag != f.st.Origin || f.states == nil {
		return // another launch of this fleet id, or a fleet that polls
	}
	changed := false
	for _, e := range in.Events {
		s := eventState(e)
		if _, live := f.states[e.ID]; live {
			changed = f.setState(e.ID, s) || changed
			continue
		}
		if f.terminatedHere[e.ID] {
			continue
		}
		// Not reported by its launch yet: keep it for addInstances.
		if old, ok := f.early[e.ID]; !ok && len(f.early) < maxEarlyEvents || ok && stateRank(s) > stateRank(old) {
			f.early[e.ID] = s
		}
	}
	if changed {
		f.afterStates(ctx)
	}
}

// statesFromEvents reports whether events gave every live instance its
// state, so the fleet knows them all without a reconciling count
// (fleetEventsFirst). An event is as recent as a count taken when it was
// sent, and a state an event never gave waits for the count.
func (f *fleet) statesFromEvents() bool {
	if len(f.st.InstanceIDs) == 0 {
		return false
	}
	for _, id := range f.st.InstanceIDs {
		if f.states[id] == "" {
			return false
		}
	}
	return true
}

// applyReconcile handles a reconciling count taken of the instances in
// known (the live ids when it was scheduled).
func (f *fleet) applyReconcile(ctx workflow.Context, known []string, res activities.ReconcileFleetResult) {
	listed := make(map[string]string, len(res.NotRunning))
	for _, s := range res.NotRunning {
		st := s.State
		if s.Interrupted {
			st = stateInterrupted
		}
		listed[s.ID] = st
	}
	for _, id := range known {
		s, ok := listed[id]
		if !ok {
			s = providers.StateRunning
		}
		f.setState(id, s)
	}
	f.statesKnown = true
	f.afterStates(ctx)
}

// afterStates recounts the running and pending units, notes when min is
// first running, and, under OnLostReplace, drops the lost instances so the
// fill path replaces them.
func (f *fleet) afterStates(ctx workflow.Context) {
	if f.maintain {
		lost := map[string]bool{}
		for _, id := range f.st.InstanceIDs { // a slice: deterministic
			if gone(f.states[id]) && !f.terminatedHere[id] {
				lost[id] = true
				if f.terminatedHere == nil {
					f.terminatedHere = map[string]bool{}
				}
				f.terminatedHere[id] = true // never adopt it back
			}
		}
		if len(lost) > 0 {
			f.removeInstances(lost)
			f.st.Replaced += len(lost)
			f.w.epoch++
			f.log.Info("instances lost outside gust; replacing them", "Count", len(lost), "Replaced", f.st.Replaced)
		}
	}
	f.recount(ctx)
	f.changed = true
}

// recount sets Running and Pending (in units) from the instances' states.
func (f *fleet) recount(ctx workflow.Context) {
	running, pending, lost := 0, 0, 0
	for i, id := range f.st.InstanceIDs {
		w := f.weightOf(i)
		switch s := f.states[id]; {
		case s == providers.StateRunning:
			running += w
		case gone(s):
			lost++
		default:
			pending += w
		}
	}
	f.st.Running, f.st.Pending, f.st.Gone = running, pending, lost
	if f.st.MinReachedAt.IsZero() && running >= f.in.Min {
		f.st.MinReachedAt = workflow.Now(ctx)
	}
}
