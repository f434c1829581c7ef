package activities

import (
	"context"
	"fmt"

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
	var res ReserveOfferingsResult
	missing := in.Units
	for _, o := range in.Offerings {
		if missing <= 0 {
			break
		}
		var zones []string
		if o.Zone != "" {
			zones = []string{o.Zone}
		}
		held := 0
		for ask := ceilDiv(missing, o.Weight); missing > 0 && ask > 0; {
			token := fmt.Sprintf("%s-o%d-%dx%d", in.ClientToken, o.Offering, held, ask)
			r, err := keepAlive(ctx, func() (providers.Reservation, error) {
				return compute.Reserve(ctx, providers.ReserveInput{InstanceType: o.InstanceType, Zones: zones, Count: ask, ClientToken: token, Tags: in.Tags})
			})
			switch {
			case err == nil && (r.State == "" || r.State == "active" || r.State == "pending"):
				res.Reservations = append(res.Reservations, HeldReservation{Offering: o.Offering, ReservationID: r.ID, Zone: r.Zone, Count: r.Count})
				held++
				missing -= r.Count * o.Weight
				ask = ceilDiv(missing, o.Weight)
			case err == nil || providers.IsInsufficientCapacity(err):
				ask /= 2
			case providers.IsInvalid(err) || providers.IsIdempotencyMismatch(err):
				// No retry can fix it: give back what is held.
				if cerr := cancelHeld(ctx, compute, res.Reservations); cerr != nil {
					return ReserveOfferingsResult{}, cerr
				}
				return ReserveOfferingsResult{}, ProviderErrorf(fmt.Sprintf("reserving %d %s", ask, o.InstanceType), err)
			default:
				// A retry asks again with the same tokens and finds what
				// is held now.
				return ReserveOfferingsResult{}, ProviderErrorf(fmt.Sprintf("reserving %d %s", ask, o.InstanceType), err)
			}
		}
		if missing > 0 {
			res.Unavailable = append(res.Unavailable, o.Offering)
		}
	}
	if missing > 0 {
		if err := cancelHeld(ctx, compute, res.Reservations); err != nil {
			return ReserveOfferingsResult{}, err
		}
		return ReserveOfferingsResult{}, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("reserving %d units for fleet %s: the offerings hold %d of them", in.Units, in.FleetID, in.Units-missing),
			providers.ErrTypeInsufficientCapacity, temporal.ApplicationErrorOptions{Details: []any{ReserveOfferingsResult{Unavailable: res.Unavailable}}})
	}
	activity.GetLogger(ctx).Info("offerings reserved", "FleetID", in.FleetID, "Units", in.Units, "Reservations", len(res.Reservations))
	return res, nil
}

// cancelHeld cancels reservations; one already gone is fine.
func cancelHeld(ctx context.Context, compute providers.Compute, held []HeldReservation) error {
	for _, h := range held {
		err := compute.CancelReservation(ctx, h.ReservationID)
		if err != nil && !providers.IsNotFound(err) {
			return ProviderErrorf("cancelling reservation "+h.ReservationID, err)
		}
	}
	return nil
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
