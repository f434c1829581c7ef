package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
)

// maxReserveOfferings bounds the offerings of one ReserveOfferings or
// LaunchOfferings call.
const maxReserveOfferings = 500

// reserveOfferings implements ReserveOfferings.
//
// Each reservation's client token is the input's ClientToken, the
// offering's index, how many reservations the offering already holds
// and the count asked: a retried activity that the cloud answers as
// before asks the same questions with the same tokens and gets the same
// reservations back. A reservation a token gives back that is no longer
// active (the first attempt cancelled it) counts as no capacity.
//
// A retry that the cloud answers otherwise (its capacity changed) asks
// other questions, so it would not get back what the attempt before it
// held: the heartbeat record, or, run as a local activity, the listing by
// the attempt's tag (fleet_reserve_record.go) names those. Before
// it returns, an attempt cancels every recorded reservation it does not
// return: on success and on a capacity or invalid-input failure alike, so
// then exactly the returned reservations are held. A recorded one the plan
// returns again (same token) is kept. Only a retryable failure leaves them
// held, for the retry to reconcile; if that was the last attempt they stay
// held. Stale reservations hold their capacity while the retry plans, so
// it may find less than the cloud has once they are cancelled.
func (a *Fleet) reserveOfferings(ctx context.Context, in ReserveOfferingsInput) (ReserveOfferingsResult, error) {
	if err := checkOfferingsInput(in.FleetID, in.ClientToken, in.Units, len(in.Offerings)); err != nil {
		return ReserveOfferingsResult{}, err
	}
	for i, o := range in.Offerings {
		if o.InstanceType == "" || o.Weight < 1 {
			return ReserveOfferingsResult{}, invalidInput("reserving offerings: offering %d needs an instance type and a weight >= 1", i)
		}
	}
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return ReserveOfferingsResult{}, err
	}
	rec := newHeldRecord(ctx)
	if activity.IsActivity(ctx) && activity.GetInfo(ctx).IsLocalActivity {
		// No heartbeat record: find what an earlier run of this attempt
		// reserved by its tag (fleet_reserve_record.go).
		if err := rec.find(ctx, compute, in.ClientToken); err != nil {
			return ReserveOfferingsResult{}, err
		}
	}
	tags := maps.Clone(in.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[ReserveTagKey] = in.ClientToken
	var res ReserveOfferingsResult
	missing := in.Units
	reserve := func(o ReserveOffering, held, ask int) (providers.Reservation, error) {
		var zones []string
		if o.Zone != "" {
			zones = []string{o.Zone}
		}
		token := fmt.Sprintf("%s-o%d-%dx%d", in.ClientToken, o.Offering, held, ask)
		return retryThrottled(ctx, rec.details(), func() (providers.Reservation, error) {
			return keepAliveWith(ctx, rec.details(), func() (providers.Reservation, error) {
				return compute.Reserve(ctx, providers.ReserveInput{InstanceType: o.InstanceType, Zones: zones, Count: ask, ClientToken: token, Tags: tags})
			})
		})
	}
	// First pass: the whole minimum from one offering, each in turn, so
	// the common cases (the first has room; it has none and the next
	// has) cost one or two calls, well within EC2's request bucket.
	full := make([]bool, len(in.Offerings)) // the first pass asked it for everything
	for i, o := range in.Offerings {
		ask := ceilDiv(missing, o.Weight)
		r, err := reserve(o, 0, ask)
		if err == nil && (r.State == "" || r.State == "active" || r.State == "pending") {
			res.Reservations = append(res.Reservations, HeldReservation{Offering: o.Offering, ReservationID: r.ID, Zone: r.Zone, Count: r.Count})
			rec.add(r.ID)
			missing -= r.Count * o.Weight
			break
		}
		if err != nil && !providers.IsInsufficientCapacity(err) {
			return ReserveOfferingsResult{}, giveUp(ctx, compute, rec, err, fmt.Sprintf("reserving %d %s", ask, o.InstanceType))
		}
		full[i] = true
		if err != nil {
			// It answered InsufficientInstanceCapacity: the fleet skips it
			// for a while, even if the second pass finds some room in it.
			res.Unavailable = append(res.Unavailable, o.Offering)
		}
	}
	// Second pass: what is still missing, from each offering in turn,
	// halving what an offering cannot hold.
	for i, o := range in.Offerings {
		if missing <= 0 {
			break
		}
		held := 0
		ask := ceilDiv(missing, o.Weight)
		if full[i] && ask == ceilDiv(in.Units, o.Weight) {
			ask /= 2 // the first pass asked for all of it already
		}
		for missing > 0 && ask > 0 {
			r, err := reserve(o, held, ask)
			switch {
			case err == nil && (r.State == "" || r.State == "active" || r.State == "pending"):
				res.Reservations = append(res.Reservations, HeldReservation{Offering: o.Offering, ReservationID: r.ID, Zone: r.Zone, Count: r.Count})
				rec.add(r.ID)
				held++
				missing -= r.Count * o.Weight
				ask = ceilDiv(missing, o.Weight)
			case err == nil || providers.IsInsufficientCapacity(err):
				ask /= 2
			default:
				return ReserveOfferingsResult{}, giveUp(ctx, compute, rec, err, fmt.Sprintf("reserving %d %s", ask, o.InstanceType))
			}
		}
		if missing > 0 && !slices.Contains(res.Unavailable, o.Offering) {
			res.Unavailable = append(res.Unavailable, o.Offering)
		}
	}
	if missing > 0 {
		if err := cancelHeld(ctx, compute, rec, rec.except(nil)); err != nil {
			return ReserveOfferingsResult{}, err
		}
		return ReserveOfferingsResult{}, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("reserving %d units for fleet %s: the offerings hold %d of them", in.Units, in.FleetID, in.Units-missing),
			providers.ErrTypeInsufficientCapacity, temporal.ApplicationErrorOptions{Details: []any{ReserveOfferingsResult{Unavailable: res.Unavailable}}})
	}
	if err := cancelHeld(ctx, compute, rec, rec.except(res.Reservations)); err != nil {
		// The retry replays this plan's tokens and cancels the rest again.
		return ReserveOfferingsResult{}, err
	}
	activity.GetLogger(ctx).Info("offerings reserved", "FleetID", in.FleetID, "Units", in.Units, "Reservations", len(res.Reservations))
	return res, nil
}

// giveUp is the error of a Reserve that failed for a reason other than
// capacity. Invalid input and a token mismatch no retry can fix: what is
// held is given back first. Any other error a retry asks again with the
// same tokens and finds what is held now; the heartbeat record names the
// rest.
func giveUp(ctx context.Context, compute providers.Compute, rec *heldRecord, err error, doing string) error {
	if providers.IsInvalid(err) || providers.IsIdempotencyMismatch(err) {
		if cerr := cancelHeld(ctx, compute, rec, rec.except(nil)); cerr != nil {
			return cerr
		}
	}
	return ProviderErrorf(doing, err)
}

// cancelHeld cancels the reservations ids; one already gone is fine. It
// tries them all and returns the first error. rec forgets each one
// cancelled and goes on naming the others, so a retry finds those.
func cancelHeld(ctx context.Context, compute providers.Compute, rec *heldRecord, ids []string) error {
	var first error
	for _, id := range ids {
		_, err := keepAliveWith(ctx, rec.details(), func() (struct{}, error) {
			return struct{}{}, compute.CancelReservation(ctx, id)
		})
		switch {
		case err == nil || providers.IsNotFound(err):
			rec.drop(id)
		case first == nil:
			first = ProviderErrorf("cancelling reservation "+id, err)
		}
	}
	return first
}

// checkOfferingsInput validates what ReserveOfferings and LaunchOfferings
// inputs share.
func checkOfferingsInput(fleetID, token string, units, offerings int) error {
	if fleetID == "" || token == "" || units < 1 || offerings < 1 || offerings > maxReserveOfferings {
		return invalidInput("bad offerings input (fleet %q, token %q, %d units, %d offerings; at most %d)",
			fleetID, token, units, offerings, maxReserveOfferings)
	}
	return nil
}

func invalidInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), providers.ErrTypeInvalid, nil)
}

// ceilDiv is ceil(a/b) for a >= 0 and b > 0.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// retryThrottled calls fn until the cloud stops throttling it, waiting
// half a second (EC2's request bucket refills two calls a second) doubling
// to 8s in between, for as long as ctx allows. A throttled call
// changed nothing, so calling again is safe; retrying here rather than
// failing the attempt keeps a retried attempt from replaying every call
// before it into the same empty request bucket. It heartbeats details
// while it waits (keepAliveWith), so the attempt's heartbeat timeout does
// not end it and the heartbeat record is kept, not wiped.
func retryThrottled[T any](ctx context.Context, details any, fn func() (T, error)) (T, error) {
	wait := 500 * time.Millisecond
	for {
		v, err := fn()
		if !providers.IsThrottled(err) {
			return v, err
		}
		_, _ = keepAliveWith(ctx, details, func() (struct{}, error) {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			return struct{}{}, nil
		})
		if ctx.Err() != nil {
			return v, err
		}
		wait = min(2*wait, 8*time.Second)
	}
}
