package workflows

import (
	"cmp"
	"hash/fnv"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// Fleets of offerings (versionOfferings): which offering a launch uses,
// how the units split between markets, which offerings are skipped for
// now, and what each live instance counts for. A fleet started before
// offerings existed keeps the one-type path (f.offerings is false) for its
// whole chain of runs.

// offeringSpecs is the request's offerings as PrepareFleet takes them: the
// given ones, or InstanceType in each of Zones (any zone when none).
func (in LaunchFleetInput) offeringSpecs() []activities.OfferingSpec {
	var specs []activities.OfferingSpec
	for _, o := range in.Offerings {
		specs = append(specs, activities.OfferingSpec{InstanceType: o.InstanceType, Zone: o.Zone, Weight: max(1, o.Weight)})
	}
	if len(specs) > 0 {
		return specs
	}
	if len(in.Zones) == 0 {
		return []activities.OfferingSpec{{InstanceType: in.InstanceType, Weight: 1}}
	}
	for _, z := range in.Zones {
		specs = append(specs, activities.OfferingSpec{InstanceType: in.InstanceType, Zone: z, Weight: 1})
	}
	return specs
}

// markets are the markets the request may launch in.
func (in LaunchFleetInput) markets() []string {
	if in.SpotShare > 0 {
		return []string{providers.MarketOnDemand, providers.MarketSpot}
	}
	return []string{providers.MarketOnDemand}
}

// splitMarkets splits units between the markets: the first base units are
// on-demand, and of the rest spotShare percent (rounded down) are spot.
func splitMarkets(units, base, spotShare int) (onDemand, spot int) {
	above := max(0, units-base)
	spot = above * spotShare / 100
	return units - spot, spot
}

// priority is offering i's priority for AllocationPrioritized.
func (f *fleet) priority(i int) int {
	src := f.st.Offerings[i].Source
	if src < len(f.in.Offerings) {
		return f.in.Offerings[src].Priority
	}
	return 0
}

// allocationOrder lists the offerings in the order the fleet's strategy
// uses them in a market. Ties keep the given order, so the order is
// deterministic.
func allocationOrder(offs []activities.PreparedOffering, prio func(int) int, strategy string, spot bool) []int {
	order := make([]int, len(offs))
	for i := range order {
		order[i] = i
	}
	price := func(i int) float64 {
		p := offs[i].OnDemandPrice
		if spot {
			p = offs[i].SpotPrice
		}
		return p / float64(max(1, offs[i].Weight))
	}
	score := func(i int) int {
		if spot {
			return offs[i].SpotScore
		}
		return offs[i].OnDemandScore
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch strategy {
		case AllocationLowestPrice:
			// An unknown price (0) sorts last, not first.
			pa, pb := price(a), price(b)
			switch {
			case pa == 0 && pb != 0:
				return 1
			case pb == 0 && pa != 0:
				return -1
			}
			if c := cmp.Compare(pa, pb); c != 0 {
				return c
			}
		case AllocationCapacityOptimized:
			if c := cmp.Compare(score(b), score(a)); c != 0 {
				return c
			}
		}
		return cmp.Compare(prio(a), prio(b))
	})
	return order
}

// candidates are the offerings a launch in the market tries, in order:
// those not marked unavailable, or, when every one is, all of them (a
// probe; the caller backs off between probes).
func (f *fleet) candidates(now time.Time, spot bool) (order []int, probe bool) {
	all := allocationOrder(f.st.Offerings, f.priority, f.in.AllocationStrategy, spot)
	order = slices.DeleteFunc(slices.Clone(all), func(i int) bool { return f.unavailable(now, i, spot) })
	if len(order) == 0 {
		return all, true
	}
	return order, false
}

// unavailable reports whether offering i is skipped in the market at now.
func (f *fleet) unavailable(now time.Time, i int, spot bool) bool {
	for _, u := range f.st.Unavailable {
		if u.Offering == i && u.Spot == spot && now.Before(u.Until) {
			return true
		}
	}
	return false
}

// markUnavailable skips the offerings in the market for the TTL, and arms
// a timer that wakes the fill loop when the first of them is back.
func (f *fleet) markUnavailable(ctx workflow.Context, offerings []int, spot bool) {
	if len(offerings) == 0 {
		return
	}
	now := workflow.Now(ctx)
	until := now.Add(f.tune.UnavailableTTL)
	f.st.Unavailable = slices.DeleteFunc(f.st.Unavailable, func(u Unavailability) bool {
		return !now.Before(u.Until) || u.Spot == spot && slices.Contains(offerings, u.Offering)
	})
	for _, i := range offerings {
		f.st.Unavailable = append(f.st.Unavailable, Unavailability{Offering: i, Spot: spot, Until: until})
		o := f.st.Offerings[i]
		f.log.Info("offering has no capacity; skipping it", "InstanceType", o.InstanceType, "Zone", o.Zone, "Spot", spot, "For", f.tune.UnavailableTTL)
	}
	f.armAvailability(ctx)
}

// armAvailability makes sure the fill loop wakes when the earliest
// unavailable offering is back.
func (f *fleet) armAvailability(ctx workflow.Context) {
	var next time.Time
	for _, u := range f.st.Unavailable {
		if next.IsZero() || u.Until.Before(next) {
			next = u.Until
		}
	}
	now := workflow.Now(ctx)
	if next.IsZero() || !now.Before(next) || !f.availableAt.IsZero() && !f.availableAt.After(next) && f.availableAt.After(now) {
		return
	}
	f.availableAt = next
	timer := workflow.NewTimerWithOptions(ctx, next.Sub(now), workflow.TimerOptions{Summary: "offering available again"})
	workflow.Go(ctx, func(ctx workflow.Context) {
		if timer.Get(ctx, nil) == nil {
			f.changed = true
			if !f.availableAt.After(workflow.Now(ctx)) {
				f.availableAt = time.Time{}
				f.armAvailability(ctx)
			}
		}
	})
}

// weightOf is the units instance i of InstanceIDs counts for.
func (f *fleet) weightOf(i int) int {
	if !f.offerings || i >= len(f.st.Placements) {
		return 1
	}
	return max(1, f.st.Offerings[f.st.Placements[i].Offering].Weight)
}

// units sums the live instances' units, and their split by market.
func (f *fleet) units() (total, onDemand, spot int) {
	for i := range f.st.InstanceIDs {
		w := f.weightOf(i)
		total += w
		if f.offerings && i < len(f.st.Placements) && f.st.Placements[i].Spot {
			spot += w
		} else {
			onDemand += w
		}
	}
	return total, onDemand, spot
}

// addPlaced records instances launched from offering o in a market.
func (f *fleet) addPlaced(ctx workflow.Context, ids []string, o int, spot bool) {
	if len(ids) == 0 {
		return
	}
	for range ids {
		f.st.Placements = append(f.st.Placements, Placement{Offering: o, Spot: spot})
	}
	f.addInstances(ids)
	f.afterStates(ctx)
}

// removeInstances drops the ids from the live list (and their placements,
// states), keeping the order of the rest.
func (f *fleet) removeInstances(gone map[string]bool) {
	ids, places := f.st.InstanceIDs[:0], f.st.Placements[:0]
	for i, id := range f.st.InstanceIDs {
		if gone[id] {
			delete(f.states, id)
			continue
		}
		ids = append(ids, id)
		if i < len(f.st.Placements) {
			places = append(places, f.st.Placements[i])
		}
	}
	f.st.InstanceIDs = ids
	if f.offerings {
		f.st.Placements = places
	}
}

// victims are the newest instances a scale down terminates to remove up to
// units units without going under the target: newest first, skipping an
// instance heavier than what is left to remove.
func (f *fleet) victims(units int) []string {
	var out []string
	for i := len(f.st.InstanceIDs) - 1; i >= 0 && units > 0; i-- {
		if w := f.weightOf(i); w <= units {
			out = append(out, f.st.InstanceIDs[i])
			units -= w
		}
	}
	slices.Reverse(out)
	return out
}

// surplus is how many units over the target the fleet can terminate
// without going under it.
func (f *fleet) surplus(live int) int {
	over := live - f.st.Target
	if over <= 0 {
		return 0
	}
	if !f.offerings {
		return over
	}
	removable := 0
	for i := len(f.st.InstanceIDs) - 1; i >= 0 && removable < over; i-- {
		if w := f.weightOf(i); removable+w <= over {
			removable += w
		}
	}
	return removable
}

// jitter spreads the reconciling counts of fleets started together: up to
// a fifth of d, derived from the fleet and the count's number so that it is
// the same on replay.
func jitter(d time.Duration, fleetID string, n int) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(fleetID))
	_, _ = h.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	span := int64(d / 5)
	if span <= 0 {
		return 0
	}
	return time.Duration(int64(h.Sum32()) % span)
}
