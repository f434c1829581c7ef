package workflows

import "sync"

// Fleet progress for the worker's logs and metrics.
//
// fleetsInFlight is gust_fleets_in_flight: the fleets by phase. A workflow
// cannot export a count across workflows by itself: the SDK's
// replay-safe metrics handler (workflow.GetMetricsHandler) has gauges
// that each workflow would overwrite with its own value, and counters of
// phase entries and exits, whose difference would be the gauge, lose their
// balance for good when a worker restarts and its counters start at zero
// while the fleets it held go on elsewhere. Activities cannot report it
// either: they do not know the phase, and a fleet waiting for capacity runs
// none. So each worker process mirrors the phase of the fleet runs it
// holds in its workflow cache, set (never added to) at every phase change:
// a replay sets the same phases again and ends at the current one, so
// replaying is harmless; a run that ends, continues as new or is evicted
// from the cache leaves (its coroutine unwinds, and deferred calls run);
// and a fleet held by no worker (after a restart, until its next workflow
// task, at most the watcher's idle poll interval away) is missing for that
// while. Summed over the workers, the series count every fleet in flight
// once. This is workflow code writing to process state, which is safe only
// because nothing the workflow decides reads it.
var fleetsInFlight = fleetPhases{runs: map[*fleet]string{}}

type fleetPhases struct {
	mu   sync.Mutex
	runs map[*fleet]string // each run's phase; guarded by mu
}

// FleetsInFlight returns the number of fleet runs this process holds, by
// phase. A phase without fleets is absent.
func FleetsInFlight() map[string]int {
	fleetsInFlight.mu.Lock()
	defer fleetsInFlight.mu.Unlock()
	out := map[string]int{}
	for _, phase := range fleetsInFlight.runs { // counting only: order does not matter
		out[phase]++
	}
	return out
}

// update sets f's phase if f is tracked; track adds it.
func (p *fleetPhases) update(f *fleet, phase string, track bool) {
	p.mu.Lock()
	if _, ok := p.runs[f]; ok || track {
		p.runs[f] = phase
	}
	p.mu.Unlock()
}

func (p *fleetPhases) remove(f *fleet) {
	p.mu.Lock()
	delete(p.runs, f)
	p.mu.Unlock()
}

// trackFleet enters f's run in fleetsInFlight and returns the function that
// takes it out, for LaunchFleetWorkflow to defer.
func trackFleet(f *fleet) func() {
	fleetsInFlight.update(f, f.st.Phase, true)
	return func() { fleetsInFlight.remove(f) }
}

// setPhase moves the fleet to phase, logging the change at info (the
// workflow logger skips replays) and mirroring it in fleetsInFlight.
func (f *fleet) setPhase(phase string) {
	if phase == f.st.Phase {
		return
	}
	f.log.Info("fleet phase changed", "From", f.st.Phase, "To", phase, "Running", f.st.Running, "Target", f.st.Target)
	f.st.Phase = phase
	fleetsInFlight.update(f, phase, false)
}
