package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// The launch side of a fleet of offerings: PrepareFleet, the reservation
// of the minimum across offerings, the burst into the reservations (and
// the minimum's spot part), and the fill rounds with instant fallback.

// launchParams are the parameters every launch of the fleet passes on.
func (f *fleet) launchParams() providers.LaunchParams {
	p := f.in.Launch
	p.ImageID = f.in.ImageID
	return p
}

// prepare checks the request against the cloud and keeps its offerings.
func (f *fleet) prepare(ctx workflow.Context) error {
	var a *activities.Fleet
	in := activities.PrepareFleetInput{
		Tenant:    f.in.Tenant,
		Offerings: f.in.offeringSpecs(),
		SubnetIDs: f.in.SubnetIDs,
		Markets:   f.in.markets(),
		Params:    f.launchParams(),
	}
	f.activitiesThisRun++
	var res activities.PrepareFleetResult
	var fut workflow.Future
	if f.fastStart {
		// Only reads: run again after a lost workflow task, it does no
		// harm.
		fut = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, prepareOptions()), a.PrepareFleet, in)
	} else {
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, controlOptions(fmt.Sprintf("check %d offerings", len(in.Offerings)))), a.PrepareFleet, in)
	}
	if err := fut.Get(ctx, &res); err != nil {
		return err
	}
	if len(res.Problems) > 0 {
		return invalidRequest(strings.Join(res.Problems, "; "))
	}
	if len(res.Offerings) == 0 || len(res.Offerings) > 4*MaxOfferings {
		return invalidRequest(fmt.Sprintf("the request makes %d offerings; between 1 and %d are allowed", len(res.Offerings), 4*MaxOfferings))
	}
	f.st.Offerings = res.Offerings
	if f.eventsFirst && res.EventsActive {
		// The watcher's first count waits (startWatcher).
		f.eventsActive = true
		f.log.Info("instance events", "Active", true)
	}
	return nil
}

// reserveOfferings reserves the minimum's on-demand units across the
// on-demand offerings, all or nothing; a capacity error is for the
// caller's capacity policy.
func (f *fleet) reserveOfferings(ctx workflow.Context) error {
	odMin, _ := splitMarkets(f.in.Min, f.in.OnDemandBase, f.in.SpotShare)
	if odMin == 0 {
		return nil // all spot: a spot launch is its own verification
	}
	var a *activities.Fleet
	order, _ := f.candidates(workflow.Now(ctx), false)
	in := activities.ReserveOfferingsInput{
		Tenant:      f.in.Tenant,
		FleetID:     f.in.FleetID,
		Units:       odMin,
		ClientToken: fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("reserve-%d", f.st.ReserveAttempts)),
		Tags:        f.tags,
	}
	for _, i := range order {
		o := f.st.Offerings[i]
		in.Offerings = append(in.Offerings, activities.ReserveOffering{Offering: i, InstanceType: o.InstanceType, Zone: o.Zone, Weight: max(1, o.Weight)})
	}
	summary := fmt.Sprintf("reserve %d units over %d offerings (attempt %d)", odMin, len(order), f.st.ReserveAttempts)
	var fut workflow.Future
	if f.localReserve {
		fut = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, reserveLocalOptions(summary)), a.ReserveOfferings, in)
	} else {
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, reserveOptions(summary)), a.ReserveOfferings, in)
	}
	var res activities.ReserveOfferingsResult
	if err := fut.Get(ctx, &res); err != nil {
		return err
	}
	f.markUnavailable(ctx, res.Unavailable, false)
	for _, r := range res.Reservations {
		f.st.Reservations = append(f.st.Reservations, HeldReservation{Offering: r.Offering, ID: r.ReservationID, Zone: r.Zone, Left: r.Count})
	}
	f.st.Backoff = 0
	f.message = ""
	return nil
}

// burstOfferings starts the burst's chunks: each reservation's instances
// in chunks against it, and the minimum's spot units in the first open
// spot offering. A chunk that fails leaves its units to the fill path,
// which falls back to the next offering at once.
func (f *fleet) burstOfferings(ctx, bctx workflow.Context) {
	_, spotMin := splitMarkets(f.in.Min, f.in.OnDemandBase, f.in.SpotShare)
	total := 0
	for _, r := range f.st.Reservations {
		total += r.Left
	}
	spotOffering, spotCount := -1, 0
	if spotMin > 0 {
		order, _ := f.candidates(workflow.Now(ctx), true)
		spotOffering = order[0]
		spotCount = ceilDiv(spotMin, max(1, f.st.Offerings[spotOffering].Weight))
		total += spotCount
	}
	size := burstChunkSize(total, f.tune.BurstChunk)
	n := 0
	for i := range f.st.Reservations {
		r := &f.st.Reservations[i]
		for left := r.Left; left > 0; left -= size {
			f.burstChunk(ctx, bctx, n, r.Offering, min(size, left), false, r.ID, r.Zone)
			n++
		}
		r.Left = 0 // the burst uses the reservation; what fails goes to the fill
	}
	for left := spotCount; left > 0; left -= size {
		f.burstChunk(ctx, bctx, n, spotOffering, min(size, left), true, "", f.st.Offerings[spotOffering].Zone)
		n++
	}
}

// burstChunk starts one all-or-nothing chunk of count instances of
// offering o.
func (f *fleet) burstChunk(ctx, bctx workflow.Context, n, o, count int, spot bool, reservationID, zone string) {
	var a *activities.Fleet
	off := f.st.Offerings[o]
	market := providers.MarketOnDemand
	if spot {
		market = providers.MarketSpot
	}
	in := activities.LaunchInput{
		Tenant:        f.in.Tenant,
		FleetID:       f.in.FleetID,
		InstanceType:  off.InstanceType,
		ImageID:       f.in.ImageID,
		Zone:          zone,
		MinCount:      count,
		MaxCount:      count,
		ClientToken:   fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("burst-%d", n)),
		ReservationID: reservationID,
		Tags:          f.tags,
		Market:        market,
		SubnetID:      off.SubnetID,
		Params:        f.launchParams(),
		RunTag:        f.st.Origin,
	}
	units := count * max(1, off.Weight)
	actx := workflow.WithActivityOptions(bctx, burstOptions(fmt.Sprintf("burst chunk %d: %d × %s %s", n+1, count, off.InstanceType, market)))
	fut := workflow.ExecuteActivity(actx, a.LaunchBurstChunk, in)
	f.flight.burst++
	f.flight.burstUnits += units
	f.activitiesThisRun++
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res activities.LaunchResult
		err := fut.Get(ctx, &res)
		f.flight.burst--
		f.flight.burstUnits -= units
		f.changed = true
		f.addPlaced(ctx, res.InstanceIDs, o, spot)
		got := len(res.InstanceIDs) * max(1, off.Weight)
		f.st.BurstLaunched += got
		if err == nil {
			return
		}
		f.st.BurstFailed += units - got
		switch classifyLaunchError(err, reservationID != "") {
		case launchCancelled:
		case launchPermanent:
			f.fatal = err
		case launchNoCapacity:
			f.markUnavailable(ctx, []int{o}, spot)
			fallthrough
		default:
			f.log.Warn("burst chunk failed; the fill path makes up for it", "Chunk", in.ClientToken, "Count", count, "Error", err)
		}
	})
}

// reservedLeft is what the fill may still launch into the reservations, in
// units.
func (f *fleet) reservedLeft() int {
	left := 0
	for _, r := range f.st.Reservations {
		if !r.Released {
			left += r.Left * max(1, f.st.Offerings[r.Offering].Weight)
		}
	}
	return left
}

// holdsReservation reports whether a reservation is not yet released.
func (f *fleet) holdsReservation() bool {
	return slices.ContainsFunc(f.st.Reservations, func(r HeldReservation) bool { return !r.Released })
}

// startOfferingsRound schedules one fill round of a fleet of offerings:
// LaunchFill into a reservation (no burst), or LaunchOfferings over the
// market's open offerings in allocation order.
func (f *fleet) startOfferingsRound(ctx, lctx workflow.Context, r fillRound) {
	var a *activities.Fleet
	f.st.FillRound++
	round := f.st.FillRound
	market := providers.MarketOnDemand
	if r.Spot {
		market = providers.MarketSpot
	}
	token := fleetToken(f.in.FleetID, f.st.Origin, fmt.Sprintf("fill-%d", round))
	var fut workflow.Future
	var summary string
	res := -1 // the reservation the round launches into
	units := r.Count
	if r.Reserved {
		for i, h := range f.st.Reservations {
			if !h.Released && h.Left > 0 {
				res = i
				break
			}
		}
	}
	rctx, cancel := workflow.WithCancel(lctx)
	if res >= 0 {
		h := &f.st.Reservations[res]
		off := f.st.Offerings[h.Offering]
		count := min(h.Left, ceilDiv(r.Count, max(1, off.Weight)))
		units = count * max(1, off.Weight)
		h.Left -= count
		in := activities.LaunchInput{
			Tenant: f.in.Tenant, FleetID: f.in.FleetID, InstanceType: off.InstanceType, ImageID: f.in.ImageID,
			Zone: h.Zone, MinCount: 1, MaxCount: count, ClientToken: token, ReservationID: h.ID, Tags: f.tags,
			Market: providers.MarketOnDemand, SubnetID: off.SubnetID, Params: f.launchParams(), RunTag: f.st.Origin,
		}
		summary = fmt.Sprintf("fill round %d: up to %d × %s (reserved)", round, count, off.InstanceType)
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(rctx, fillOptions(summary, f.st.Origin)), a.LaunchFill, in)
	} else {
		order, probe := f.candidates(workflow.Now(ctx), r.Spot)
		in := activities.LaunchOfferingsInput{
			Tenant: f.in.Tenant, FleetID: f.in.FleetID, Units: r.Count, Market: market,
			Strategy: f.in.AllocationStrategy, ClientToken: token, Tags: f.tags, Params: f.launchParams(),
		}
		for _, i := range order {
			o := f.st.Offerings[i]
			in.Candidates = append(in.Candidates, activities.LaunchCandidate{
				Offering: i, InstanceType: o.InstanceType, Zone: o.Zone, SubnetID: o.SubnetID, Weight: max(1, o.Weight), Priority: f.priority(i),
			})
		}
		first := f.st.Offerings[order[0]]
		summary = fmt.Sprintf("fill round %d: %d units %s, %s first", round, r.Count, market, first.InstanceType)
		if probe {
			summary += " (probe)"
		}
		fut = workflow.ExecuteActivity(workflow.WithActivityOptions(rctx, fillOptions(summary, f.st.Origin)), a.LaunchOfferings, in)
	}
	inFlight := &fillInFlight{count: units, cancel: cancel}
	f.flight.rounds = append(f.flight.rounds, inFlight)
	f.flight.fill++
	f.flight.fillRequested += units
	if r.Spot {
		f.flight.spotRequested += units
	}
	reserved := 0
	if res >= 0 {
		reserved = units
		f.flight.reserved += reserved
	}
	f.activitiesThisRun++
	workflow.Go(ctx, func(ctx workflow.Context) {
		var launched []activities.LaunchedInstance
		var unavailable []int
		var err error
		if res >= 0 {
			var lr activities.LaunchResult
			err = fut.Get(ctx, &lr)
			for _, id := range lr.InstanceIDs {
				launched = append(launched, activities.LaunchedInstance{ID: id, Offering: f.st.Reservations[res].Offering})
			}
		} else {
			var lr activities.LaunchOfferingsResult
			err = fut.Get(ctx, &lr)
			launched, unavailable = lr.Instances, lr.Unavailable
		}
		f.flight.rounds = slices.DeleteFunc(f.flight.rounds, func(r *fillInFlight) bool { return r == inFlight })
		f.flight.fill--
		f.flight.fillRequested -= units
		f.flight.reserved -= reserved
		if r.Spot {
			f.flight.spotRequested -= units
		}
		f.changed = true
		got := 0
		for _, l := range launched {
			f.addPlaced(ctx, []string{l.ID}, l.Offering, r.Spot)
			got += max(1, f.st.Offerings[l.Offering].Weight)
		}
		f.st.FillLaunched += got
		f.markUnavailable(ctx, unavailable, r.Spot)
		if res >= 0 {
			// The reservation keeps what the round did not use, unless it
			// cannot deliver.
			h := &f.st.Reservations[res]
			switch outcome := classifyLaunchError(err, true); {
			case err != nil && outcome == launchNoCapacity:
				h.Left = 0
			case err != nil && outcome == launchReservationGone:
				h.Left, h.Released = 0, true
			default:
				h.Left += ceilDiv(max(0, units-got), max(1, f.st.Offerings[h.Offering].Weight))
			}
		}
		switch {
		case err == nil && got > 0:
			f.resetBackoff(r.Spot)
		case err == nil && res < 0 && len(unavailable) > 0 && got == 0:
			// Every candidate was out of capacity: back off this market
			// until an offering is open again or the backoff ends.
			f.st.CapacityRetries++
			f.startMarketBackoff(ctx, r.Spot)
		case err != nil:
			switch classifyLaunchError(err, res >= 0) {
			case launchCancelled, launchReservationGone:
			case launchPermanent:
				f.fatal = err
			default:
				f.st.CapacityRetries++
				f.log.Warn("fill round failed", "Round", round, "Error", err)
				f.startMarketBackoff(ctx, r.Spot)
			}
		}
	})
}

// resetBackoff clears a market's backoff after a round launched.
func (f *fleet) resetBackoff(spot bool) {
	if spot {
		f.st.SpotBackoff = 0
	} else {
		f.st.Backoff = 0
	}
}

// startMarketBackoff pauses the market's rounds (while none of its
// offerings is open) for its next backoff.
func (f *fleet) startMarketBackoff(ctx workflow.Context, spot bool) {
	if !spot {
		if !f.backingOff {
			f.st.Backoff = nextBackoff(f.st.Backoff)
			f.startBackoff(ctx, f.st.Backoff)
		}
		return
	}
	if f.spotBackingOff {
		return
	}
	f.st.SpotBackoff = nextBackoff(f.st.SpotBackoff)
	f.startSpotBackoff(ctx, f.st.SpotBackoff)
}

// startSpotBackoff is startBackoff for spot rounds.
func (f *fleet) startSpotBackoff(ctx workflow.Context, d time.Duration) {
	f.spotBackingOff = true
	f.st.SpotBackoffUntil = workflow.Now(ctx).Add(d)
	f.log.Info("fleet waiting for spot capacity", "NextSpotRoundIn", d)
	timer := workflow.NewTimerWithOptions(ctx, d, workflow.TimerOptions{Summary: fmt.Sprintf("spot capacity backoff %s", d)})
	workflow.Go(ctx, func(ctx workflow.Context) {
		_ = timer.Get(ctx, nil)
		f.spotBackingOff = false
		f.st.SpotBackoffUntil = time.Time{}
		f.changed = true
	})
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
