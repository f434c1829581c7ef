package activities

import (
	"context"
	"slices"

	"go.temporal.io/sdk/activity"

	"github.com/gust-dev/gust/providers"
)

// ReserveTagKey tags every reservation ReserveOfferings makes with the
// attempt's ClientToken (the fleet's "reserve-N" token, unique to the
// fleet chain and the attempt), so that a run as a local activity can list
// what an earlier run of the same attempt made.
const ReserveTagKey = "gust:reserve"

// Run as a local activity (the fleet's fleetLocalReserve), ReserveOfferings
// has no heartbeat record: a workflow task lost with the activity's result
// (its worker died) runs it again from the start. It first lists the live
// reservations tagged with its token (find) and treats them as the record
// below: the plan keeps those it returns again and cancels the rest. The
// guarantee is then the stronger one, with no throttle window: what a run
// made is returned or cancelled by a later run, unless the cloud's listing
// lags the Reserve (EC2's is eventually consistent; the next run starts
// only after the lost task's timeout, 10s by default).
//
// As a regular activity, ReserveOfferings keeps, as its heartbeat
// details, the ids of every reservation it may hold, so that a retry
// whose plan differs from the attempt that died (the cloud's capacity changed in between, so the
// retry asks other questions with other client tokens) still finds the
// reservations the dead attempt made and cancels those it does not
// return again. This predates ListReservations; it stays for the fleets
// on fleet-offerings version 3 and older, which still schedule
// ReserveOfferings as an activity.
//
// What reaches the server, and so the retry (SDK v1.50, server 1.32):
//
//   - RecordHeartbeat sends its details at once only when no throttle
//     window is open; otherwise it keeps the latest and sends them when
//     the window ends (0.8 × the activity's HeartbeatTimeout, at most 60s;
//     without a HeartbeatTimeout, the worker's default throttle interval,
//     30s), when the worker starts to stop, or when the attempt returns
//     an error. Nothing is flushed when an attempt completes, nor when
//     its worker is killed.
//   - The server replaces the details with each heartbeat it gets, empty
//     ones included (hence keepAliveWith), and gives the last ones to the
//     next attempt. A heartbeat of an attempt that already timed out is
//     refused.
//
// So the guarantee: a reservation an attempt made is returned or
// cancelled by that attempt or, if it failed, by a later one, provided
// the attempt returned or its record was flushed before its worker died. A worker killed between
// a Reserve succeeding and the flush of the heartbeat that names it (up to
// one throttle window; a Reserve whose response never arrived counts
// too) leaks that reservation unless the retry's plan asks the same
// client token again. With the workflow's reserveOptions as they are (no
// HeartbeatTimeout, a 30s StartToCloseTimeout) the window is the whole
// attempt after its first heartbeat: a HeartbeatTimeout of a few seconds
// (workflows.launchHeartbeat) bounds it to 0.8 × that. The SDK's batching
// can also, in a rare race between its flush and a new heartbeat, send an
// older record after a newer one; the next heartbeat, if the attempt
// lives to send one (keepAliveWith beats every second during each cloud
// call), corrects it.

// reserveProgress is ReserveOfferings' heartbeat details.
type reserveProgress struct {
	// Held are the ids of the reservations the activity may hold: those
	// an earlier attempt recorded and this one has not yet cancelled, and
	// those this attempt made. Its size is bounded by the server's limit on
	// heartbeat details, which a real record stays far below.
	Held []string `json:"held"`
}

// heldRecord is the attempt's reserveProgress and the set of its ids.
type heldRecord struct {
	ctx  context.Context
	prog reserveProgress
	ids  map[string]bool
}

// newHeldRecord starts the attempt's record with what the earlier attempt
// recorded. Details that do not decode are logged and ignored: the
// activity has no other way to find those reservations.
func newHeldRecord(ctx context.Context) *heldRecord {
	h := &heldRecord{ctx: ctx, ids: map[string]bool{}}
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return h
	}
	var earlier reserveProgress
	if err := activity.GetHeartbeatDetails(ctx, &earlier); err != nil {
		activity.GetLogger(ctx).Warn("earlier attempt's reservations unreadable; they may stay held", "Error", err)
		return h
	}
	for _, id := range earlier.Held {
		if id != "" {
			h.put(id)
		}
	}
	return h
}

// find adds to the record the live reservations tagged with the attempt's
// token (ReserveTagKey): those an earlier run of the attempt made. A
// local activity has no heartbeat record, and a workflow task that is
// lost with its local activity's result runs the activity again from the
// start, as attempt 1.
func (h *heldRecord) find(ctx context.Context, compute providers.Compute, token string) error {
	found, err := retryThrottled(ctx, h.details(), func() ([]providers.Reservation, error) {
		return compute.ListReservations(ctx, map[string]string{ReserveTagKey: token})
	})
	if err != nil {
		return ProviderErrorf("listing the reservations of "+token, err)
	}
	for _, r := range found {
		h.put(r.ID)
	}
	if len(found) > 0 {
		activity.GetLogger(ctx).Info("earlier run's reservations found", "Token", token, "Reservations", len(found))
	}
	return nil
}

func (h *heldRecord) put(id string) {
	if !h.ids[id] {
		h.ids[id] = true
		h.prog.Held = append(h.prog.Held, id)
	}
}

// add records a reservation this attempt holds and heartbeats the record.
func (h *heldRecord) add(id string) {
	h.put(id)
	if activity.IsActivity(h.ctx) {
		recordHeartbeat(h.ctx, h.details())
	}
}

// drop forgets a reservation that is cancelled and heartbeats the record.
func (h *heldRecord) drop(id string) {
	if !h.ids[id] {
		return
	}
	delete(h.ids, id)
	h.prog.Held = slices.DeleteFunc(h.prog.Held, func(s string) bool { return s == id })
	if activity.IsActivity(h.ctx) {
		recordHeartbeat(h.ctx, h.details())
	}
}

// details is the record for a heartbeat: a copy, so that later adds do
// not change what a background heartbeat sends.
func (h *heldRecord) details() reserveProgress {
	return reserveProgress{Held: append([]string(nil), h.prog.Held...)}
}

// except returns the recorded ids that are not in keep, in record order.
func (h *heldRecord) except(keep []HeldReservation) []string {
	kept := map[string]bool{}
	for _, r := range keep {
		kept[r.ReservationID] = true
	}
	var out []string
	for _, id := range h.prog.Held {
		if !kept[id] {
			out = append(out, id)
		}
	}
	return out
}
