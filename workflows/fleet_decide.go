package workflows

import "time"

// The fill loop's decision.
//
// After the burst, a fleet is one loop: wake up when something changed (a
// launch or terminate landed, a running count came back, a handler ran, a
// timer fired), take a fleetView of the state, and do what decide says.
// decide is a pure function of the view, so every rule of what a fleet does
// next is in this file and is table-tested without a Temporal environment
// (fleet_decide_test.go). The executor (fleet_launch.go's fill) only carries
// out the action.

// fleetView is the fleet as the fill loop sees it at one wake-up.
type fleetView struct {
	Now    time.Time
	Target int
	// Live counts the instances launched and not terminated by gust.
	Live int
	// Running and Pending are the last running count's. Fresh says no
	// launch or terminate landed since that count was scheduled, so it
	// describes Live's instances. In a fleet of offerings, whose counts
	// come from each instance's state, Fresh says a reconciling count came
	// back or (fleetEventsFirst) events gave every live instance its
	// state.
	Running, Pending int
	Fresh            bool

	// FillInFlight fill rounds are outstanding, asking for FillRequested
	// instances, ReservedInFlight of them against the reservation.
	FillInFlight, FillRequested, ReservedInFlight int
	BurstInFlight                                 int
	MaxFillInFlight                               int
	// RoundCounts are the counts of the fill rounds in flight that are not
	// being dropped, oldest first; Dropping is what the rounds being
	// dropped asked for. DropSurplus says this run may drop rounds (a
	// version gate: runs recorded before it never did).
	RoundCounts []int
	Dropping    int
	DropSurplus bool

	// HoldsReservation: the fleet has a reservation it has not released;
	// ReservedLeft is what the fill may still launch into it.
	HoldsReservation bool
	ReservedLeft     int

	// Adopting: the watcher is looking for instances no launch reported;
	// until it is done the fleet's instance list may be short.
	Adopting bool
	// BackingOff: a capacity backoff timer holds new fill rounds.
	BackingOff bool
	// FillDeadlineHit: FillTimeout passed.
	FillDeadlineHit bool
	// CancelRequested and Fatal end the fleet once nothing is in flight.
	CancelRequested, Fatal bool
	// ContinueAsNewDue: the run's history is long enough to continue as
	// new; HandlersFinished: no update handler is running.
	ContinueAsNewDue, HandlersFinished bool
	// TargetReached: TargetReachedAt is already set.
	TargetReached bool
	// LostSince is when the fleet first saw fewer instances running than
	// it launched with none pending; zero if it does not now.
	LostSince time.Time
	// Unsettled: no count was taken, since the last launch or terminate,
	// while every launch had settled, so an instance a lost launch
	// response left behind may be unknown yet; the fleet must not end on
	// it (fleetLocalReserve). Runs recorded before never set it.
	Unsettled bool

	// Surplus is how many units over the target a fleet of offerings can
	// terminate without going under it (whole instances of their weight).
	Surplus int

	// Markets: a fleet of offerings. Its counts (Live, Running, Pending,
	// Target, FillRequested, RoundCounts) are capacity units, and its
	// rounds are planned per market: OnDemandWant and SpotWant split the
	// target, LiveOnDemand/LiveSpot and RequestedOnDemand/RequestedSpot
	// split Live and FillRequested. BackingOff then holds on-demand rounds
	// only, SpotBackingOff spot ones, and each only while its market has
	// no offering left to try (OnDemandOpen, SpotOpen).
	Markets                          bool
	OnDemandWant, SpotWant           int
	LiveOnDemand, LiveSpot           int
	RequestedOnDemand, RequestedSpot int
	SpotBackingOff                   bool
	OnDemandOpen, SpotOpen           bool
	// Maintain: reaching the target does not end the fleet; it stays
	// fulfilled and replaces what it loses until it is cancelled.
	Maintain bool
}

// action is what the fill loop does next.
type action int

const (
	// actWait: nothing to do until something changes.
	actWait action = iota
	// actLaunch: start decision.Rounds fill rounds.
	actLaunch
	// actTerminateExtras: terminate the decision.Count newest instances
	// (the target was lowered, or adoption went over it).
	actTerminateExtras
	// actReleaseReservation: the reservation has nothing left to give.
	actReleaseReservation
	// actFulfilled: the target is running; the fleet completes.
	actFulfilled
	// actLost: decision.Count instances stopped running without gust
	// terminating them, for longer than lostGrace; the fleet fails.
	actLost
	// actFillTimeout: FillTimeout passed before the target was launched;
	// the fleet ends insufficient_capacity and keeps what it has.
	actFillTimeout
	// actContinueAsNew: hand the state to a new run.
	actContinueAsNew
	// actDrain: a cancel or a fatal error is pending; cancel the launches
	// in flight and wait for them to report.
	actDrain
	// actCancelled: cancelled, and nothing is in flight.
	actCancelled
	// actFail: a fatal error, and nothing is in flight.
	actFail
	// actDropRounds: cancel the decision.Count newest fill rounds in
	// flight; the target no longer needs them (a scale down). A round still
	// queued behind the rate limiter is dropped before it launches.
	actDropRounds
	// actMaintain: the target runs; a maintained fleet is fulfilled and
	// keeps watching its instances.
	actMaintain
	// actSettle: the target runs, but the fleet may end only on a count
	// taken with every launch settled (which adopts what lost responses
	// left behind): ask the watcher for one.
	actSettle
)

var actionNames = [...]string{
	actWait: "wait", actLaunch: "launch", actTerminateExtras: "terminate extras",
	actReleaseReservation: "release reservation", actFulfilled: "fulfilled", actLost: "lost",
	actFillTimeout: "fill timeout", actContinueAsNew: "continue as new", actDrain: "drain",
	actCancelled: "cancelled", actFail: "fail", actDropRounds: "drop rounds", actMaintain: "maintain",
	actSettle: "settle",
}

func (a action) String() string { return actionNames[a] }

// fillRound is one fill activity to start: Count instances (units, in a
// fleet of offerings), against the reservation when Reserved, in the spot
// market when Spot.
type fillRound struct {
	Count    int
	Reserved bool
	Spot     bool
}

// decision is decide's answer: the action and the two pieces of state the
// loop keeps between wake-ups.
type decision struct {
	Action action
	// Count: instances to terminate (actTerminateExtras) or missing
	// (actLost).
	Count int
	// Rounds are the fill rounds to start (actLaunch), in order.
	Rounds []fillRound
	// LostSince is the view's LostSince as it should be from now on.
	LostSince time.Time
	// MarkTargetReached: set TargetReachedAt to now.
	MarkTargetReached bool
}

// decide is the fill loop's rule. In order:
//
//  1. A cancel, then a fatal error, ends the fleet once no launch is in
//     flight; until then the launches are cancelled and drained.
//  2. Fill rounds in flight that the target no longer needs (a scale
//     down): drop the newest of them, whole rounds, while what is live and
//     what the rest ask for still reaches the target.
//  3. More live instances than the target: terminate the newest extras.
//  4. A held reservation with nothing left to launch into: release it.
//  5. The target launched, nothing in flight, and a fresh count: fulfilled
//     once that many run (and no handler runs); if some are neither
//     running nor pending for lostGrace, they were lost.
//  6. Past the fill deadline below target: end with fill timeout once no
//     fill round is in flight.
//  7. History long enough: continue as new once nothing is in flight and
//     no handler runs; start no new round meanwhile.
//  8. Otherwise, unless backing off, start rounds of up to FillBatchSize
//     toward the target, at most MaxFillInFlight outstanding, from the
//     reservation while it has capacity left.
func decide(v fleetView) decision {
	d := decision{LostSince: v.LostSince}
	inFlight := v.FillInFlight + v.BurstInFlight
	switch {
	case v.CancelRequested && inFlight == 0:
		d.Action = actCancelled
		return d
	case v.CancelRequested:
		d.Action = actDrain
		return d
	case v.Fatal && inFlight == 0:
		d.Action = actFail
		return d
	case v.Fatal:
		d.Action = actDrain
		return d
	}
	if v.DropSurplus {
		surplus := v.Live + v.FillRequested - v.Dropping - v.Target
		for i := len(v.RoundCounts) - 1; i >= 0 && v.RoundCounts[i] <= surplus; i-- {
			surplus -= v.RoundCounts[i]
			d.Count++
		}
		if d.Count > 0 {
			d.Action = actDropRounds
			return d
		}
	}
	surplus := v.Live - v.Target
	if v.Markets {
		surplus = v.Surplus // weights: only whole instances go
	}
	if surplus > 0 {
		d.Action, d.Count = actTerminateExtras, surplus
		return d
	}
	if v.HoldsReservation && v.ReservedLeft == 0 && v.ReservedInFlight == 0 {
		d.Action = actReleaseReservation
		return d
	}
	idle := v.FillInFlight == 0 && !v.Adopting
	atTarget := v.Live == v.Target || v.Markets && v.Live >= v.Target
	if idle && atTarget && v.Fresh {
		if v.Running >= v.Target {
			d.MarkTargetReached = !v.TargetReached
			switch {
			case v.Maintain && v.ContinueAsNewDue && v.HandlersFinished && v.BurstInFlight == 0:
				d.Action = actContinueAsNew
			case v.Maintain:
				d.Action = actMaintain
			case v.HandlersFinished && v.Unsettled:
				d.Action = actSettle
			case v.HandlersFinished:
				d.Action = actFulfilled
			}
			return d
		}
		if v.Pending == 0 {
			switch {
			case v.LostSince.IsZero():
				d.LostSince = v.Now
			case v.Now.Sub(v.LostSince) >= lostGrace:
				d.Action, d.Count = actLost, v.Live-v.Running
			}
			return d
		}
	}
	// Instances are pending, or the fleet is short: nothing is lost yet.
	d.LostSince = time.Time{}
	if v.FillDeadlineHit && v.Live < v.Target && !(v.Maintain && v.TargetReached) {
		if idle {
			d.Action = actFillTimeout
		}
		return d
	}
	if v.ContinueAsNewDue {
		if idle && v.BurstInFlight == 0 && v.HandlersFinished {
			d.Action = actContinueAsNew
		}
		return d // drain the rounds in flight and let handlers finish first
	}
	if v.Markets {
		d.Rounds = planMarkets(v)
		if len(d.Rounds) > 0 {
			d.Action = actLaunch
		}
		return d
	}
	if v.BackingOff {
		return d
	}
	need := v.Target - v.Live - v.FillRequested
	reservedLeft := 0
	if v.HoldsReservation {
		reservedLeft = v.ReservedLeft
	}
	for slots := v.MaxFillInFlight - v.FillInFlight; slots > 0 && need > 0; slots-- {
		r := fillRound{Count: min(FillBatchSize, need)}
		if reservedLeft > 0 {
			r.Count, r.Reserved = min(r.Count, reservedLeft), true
			reservedLeft -= r.Count
		}
		d.Rounds = append(d.Rounds, r)
		need -= r.Count
	}
	if len(d.Rounds) > 0 {
		d.Action = actLaunch
	}
	return d
}

// planMarkets is rule 8 for a fleet of offerings: the units missing from
// the target, split by market (on-demand first), in rounds of up to
// FillBatchSize units, the reservation's first. A market backing off gets
// no round unless an offering of it is open again.
func planMarkets(v fleetView) []fillRound {
	// The shortfalls of the two markets add up to at least need (their
	// wants add up to the target), so need caps them.
	need := v.Target - v.Live - v.FillRequested
	odNeed := max(0, min(need, v.OnDemandWant-v.LiveOnDemand-v.RequestedOnDemand))
	spotNeed := max(0, min(need-odNeed, v.SpotWant-v.LiveSpot-v.RequestedSpot))
	if v.BackingOff && !v.OnDemandOpen {
		odNeed = 0
	}
	if v.SpotBackingOff && !v.SpotOpen {
		spotNeed = 0
	}
	var rounds []fillRound
	reservedLeft := 0
	if v.HoldsReservation {
		reservedLeft = v.ReservedLeft
	}
	slots := v.MaxFillInFlight - v.FillInFlight
	for ; slots > 0 && odNeed > 0; slots-- {
		r := fillRound{Count: min(FillBatchSize, odNeed)}
		if reservedLeft > 0 {
			r.Count, r.Reserved = min(r.Count, reservedLeft), true
			reservedLeft -= r.Count
		}
		rounds = append(rounds, r)
		odNeed -= r.Count
	}
	for ; slots > 0 && spotNeed > 0; slots-- {
		r := fillRound{Count: min(FillBatchSize, spotNeed), Spot: true}
		rounds = append(rounds, r)
		spotNeed -= r.Count
	}
	return rounds
}
