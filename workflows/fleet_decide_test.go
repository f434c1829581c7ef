package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
)

// settled is a fleet of 10 at its target, counted fresh, nothing in
// flight: decide's quiet state. Each case changes what it tests.
func settled() fleetView {
	return fleetView{
		Now: time.Unix(1000, 0), Target: 10, Live: 10, Running: 10, Fresh: true,
		MaxFillInFlight: 32, HandlersFinished: true,
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name string
		mod  func(*fleetView)
		want decision
	}{
		{"target running: fulfilled", func(v *fleetView) {},
			decision{Action: actFulfilled, MarkTargetReached: true}},
		{"target running, already marked", func(v *fleetView) { v.TargetReached = true },
			decision{Action: actFulfilled}},
		{"target running but an update handler runs: wait", func(v *fleetView) { v.HandlersFinished = false },
			decision{Action: actWait, MarkTargetReached: true}},
		{"count is stale: wait for a fresh one", func(v *fleetView) { v.Fresh = false },
			decision{Action: actWait}},
		{"adopting: not done yet", func(v *fleetView) { v.Adopting = true },
			decision{Action: actWait}},
		{"booting: wait", func(v *fleetView) { v.Running, v.Pending = 7, 3 },
			decision{Action: actWait}},
		{"booting clears a lost mark", func(v *fleetView) { v.Running, v.Pending, v.LostSince = 7, 3, t0.Add(-time.Hour) },
			decision{Action: actWait}},
		{"first seen missing: start the grace", func(v *fleetView) { v.Running = 7 },
			decision{Action: actWait, LostSince: t0}},
		{"missing within the grace: wait", func(v *fleetView) { v.Running, v.LostSince = 7, t0.Add(-lostGrace+time.Second) },
			decision{Action: actWait, LostSince: t0.Add(-lostGrace + time.Second)}},
		{"missing past the grace: lost", func(v *fleetView) { v.Running, v.LostSince = 7, t0.Add(-lostGrace) },
			decision{Action: actLost, Count: 3, LostSince: t0.Add(-lostGrace)}},
		{"scaled down: terminate extras", func(v *fleetView) { v.Target = 6 },
			decision{Action: actTerminateExtras, Count: 4}},
		{"extras first, even with rounds in flight", func(v *fleetView) { v.Target, v.FillInFlight, v.FillRequested = 6, 1, 5 },
			decision{Action: actTerminateExtras, Count: 4}},
		{"scaled down with rounds queued: drop the newest surplus rounds", func(v *fleetView) {
			v.Target, v.Live, v.FillInFlight, v.FillRequested, v.RoundCounts, v.DropSurplus = 12, 10, 3, 15, []int{5, 5, 5}, true
		}, decision{Action: actDropRounds, Count: 2}},
		{"a round only partly surplus is kept", func(v *fleetView) {
			v.Target, v.Live, v.FillInFlight, v.FillRequested, v.RoundCounts, v.DropSurplus = 16, 10, 2, 10, []int{5, 5}, true
		}, decision{Action: actWait}},
		{"rounds being dropped are not counted twice", func(v *fleetView) {
			v.Target, v.Live, v.FillInFlight, v.FillRequested, v.RoundCounts, v.Dropping, v.DropSurplus = 12, 10, 3, 15, []int{5}, 10, true
		}, decision{Action: actWait}},
		{"extras and surplus rounds: drop the rounds first", func(v *fleetView) {
			v.Target, v.FillInFlight, v.FillRequested, v.RoundCounts, v.DropSurplus = 6, 1, 5, []int{5}, true
		}, decision{Action: actDropRounds, Count: 1}},
		{"runs recorded before the drop never drop", func(v *fleetView) {
			v.Target, v.Live, v.FillInFlight, v.FillRequested, v.RoundCounts = 12, 10, 3, 15, []int{5, 5, 5}
		}, decision{Action: actWait}},
		{"reservation used up: release", func(v *fleetView) { v.HoldsReservation = true },
			decision{Action: actReleaseReservation}},
		{"reservation rounds in flight: keep it", func(v *fleetView) {
			v.HoldsReservation, v.ReservedInFlight, v.FillInFlight, v.FillRequested, v.Live = true, 5, 1, 5, 5
		}, decision{Action: actWait}},
		{"short: launch rounds of FillBatchSize", func(v *fleetView) { v.Target = 22 },
			decision{Action: actLaunch, Rounds: []fillRound{{Count: 5, Reserved: false}, {Count: 5, Reserved: false}, {Count: 2, Reserved: false}}}},
		{"short, rounds in flight count toward it", func(v *fleetView) { v.Target, v.FillInFlight, v.FillRequested = 22, 2, 10 },
			decision{Action: actLaunch, Rounds: []fillRound{{Count: 2, Reserved: false}}}},
		{"at most MaxFillInFlight rounds", func(v *fleetView) { v.Target, v.FillInFlight, v.FillRequested, v.MaxFillInFlight = 100, 2, 10, 3 },
			decision{Action: actLaunch, Rounds: []fillRound{{Count: 5, Reserved: false}}}},
		{"from the reservation first", func(v *fleetView) {
			v.Target, v.Live, v.Running, v.HoldsReservation, v.ReservedLeft = 10, 0, 0, true, 7
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 5, Reserved: true}, {Count: 2, Reserved: true}, {Count: 3, Reserved: false}}}},
		{"a released reservation is not used", func(v *fleetView) {
			v.Target, v.Live, v.Running, v.HoldsReservation, v.ReservedLeft = 10, 0, 0, false, 7
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 5, Reserved: false}, {Count: 5, Reserved: false}}}},
		{"backing off: no round", func(v *fleetView) { v.Target, v.BackingOff = 22, true },
			decision{Action: actWait}},
		{"fill deadline, idle: fill timeout", func(v *fleetView) { v.Target, v.FillDeadlineHit = 22, true },
			decision{Action: actFillTimeout}},
		{"fill deadline, rounds in flight: wait for them", func(v *fleetView) { v.Target, v.FillDeadlineHit, v.FillInFlight, v.FillRequested = 22, true, 1, 5 },
			decision{Action: actWait}},
		{"fill deadline at target does not matter", func(v *fleetView) { v.FillDeadlineHit = true },
			decision{Action: actFulfilled, MarkTargetReached: true}},
		{"history long, idle: continue as new", func(v *fleetView) { v.Target, v.ContinueAsNewDue = 22, true },
			decision{Action: actContinueAsNew}},
		{"history long, rounds in flight: drain, no new round", func(v *fleetView) {
			v.Target, v.ContinueAsNewDue, v.FillInFlight, v.FillRequested = 22, true, 1, 5
		}, decision{Action: actWait}},
		{"history long, handler running: wait", func(v *fleetView) { v.Target, v.ContinueAsNewDue, v.HandlersFinished = 22, true, false },
			decision{Action: actWait}},
		{"history long, burst in flight: wait", func(v *fleetView) { v.Target, v.ContinueAsNewDue, v.BurstInFlight = 22, true, 1 },
			decision{Action: actWait}},
		{"cancel, nothing in flight: cancelled", func(v *fleetView) { v.CancelRequested = true },
			decision{Action: actCancelled}},
		{"cancel with rounds in flight: drain", func(v *fleetView) { v.CancelRequested, v.FillInFlight = true, 1 },
			decision{Action: actDrain}},
		{"cancel with a burst chunk in flight: drain", func(v *fleetView) { v.CancelRequested, v.BurstInFlight = true, 1 },
			decision{Action: actDrain}},
		{"cancel wins over a fatal error", func(v *fleetView) { v.CancelRequested, v.Fatal = true, true },
			decision{Action: actCancelled}},
		{"fatal, nothing in flight: fail", func(v *fleetView) { v.Fatal = true },
			decision{Action: actFail}},
		{"fatal with rounds in flight: drain", func(v *fleetView) { v.Fatal, v.FillInFlight = true, 2 },
			decision{Action: actDrain}},
		{"fatal keeps a lost mark", func(v *fleetView) { v.Fatal, v.LostSince = true, t0 },
			decision{Action: actFail, LostSince: t0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := settled()
			c.mod(&v)
			got := decide(v)
			require.Equal(t, c.want, got, "decide(%+v) = %s", v, got.Action)
		})
	}
}

// TestDecideFillsExactlyToTarget runs decide as the loop does, landing
// every round in full, and checks the fleet reaches its target with no
// instance more, whatever the target, reservation and round limit.
func TestDecideFillsExactlyToTarget(t *testing.T) {
	for _, target := range []int{1, 4, 5, 6, 99, 1000} {
		for _, reserved := range []int{0, 3, target} {
			for _, maxInFlight := range []int{1, 3, 32} {
				v := fleetView{Target: target, MaxFillInFlight: maxInFlight, HoldsReservation: reserved > 0, ReservedLeft: reserved, Fresh: true, HandlersFinished: true}
				for step := 0; ; step++ {
					require.Less(t, step, 10000, "no progress")
					d := decide(v)
					switch d.Action {
					case actLaunch:
						for _, r := range d.Rounds {
							if r.Reserved {
								require.LessOrEqual(t, r.Count, v.ReservedLeft)
								v.ReservedLeft -= r.Count
							}
							require.LessOrEqual(t, r.Count, FillBatchSize)
							v.Live += r.Count // lands at once
						}
						require.LessOrEqual(t, len(d.Rounds), maxInFlight)
					case actReleaseReservation:
						v.HoldsReservation = false
					case actWait:
						v.Running = v.Live // the next count sees them all
					case actFulfilled:
						require.Equal(t, target, v.Live)
					default:
						t.Fatalf("target %d: unexpected %s", target, d.Action)
					}
					remember(&v, d)
					if d.Action == actFulfilled {
						break
					}
				}
			}
		}
	}
}

// remember carries d's state into the next view, as the loop does.
func remember(v *fleetView, d decision) {
	if d.MarkTargetReached {
		v.TargetReached = true
	}
	v.LostSince = d.LostSince
}

func TestClassifyLaunchError(t *testing.T) {
	appErr := func(typ string) error { return temporal.NewNonRetryableApplicationError("x", typ, nil) }
	cases := []struct {
		name     string
		err      error
		reserved bool
		want     launchOutcome
	}{
		{"cancelled", temporal.NewCanceledError(), false, launchCancelled},
		{"no capacity", appErr(providers.ErrTypeInsufficientCapacity), false, launchNoCapacity},
		{"no capacity in the reservation", appErr(providers.ErrTypeInsufficientCapacity), true, launchNoCapacity},
		{"reservation gone", appErr(providers.ErrTypeNotFound), true, launchReservationGone},
		{"not found without a reservation", appErr(providers.ErrTypeNotFound), false, launchUnexpected},
		{"invalid", appErr(providers.ErrTypeInvalid), false, launchPermanent},
		{"idempotency mismatch", appErr(providers.ErrTypeIdempotencyMismatch), true, launchPermanent},
		{"too many instances", appErr(providers.ErrTypeTooManyInstances), false, launchPermanent},
		{"anything else", errors.New("boom"), false, launchUnexpected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, classifyLaunchError(c.err, c.reserved))
		})
	}
	require.True(t, isCapacityError(appErr(providers.ErrTypeInsufficientCapacity)))
	require.False(t, isCapacityError(appErr(providers.ErrTypeInvalid)))
	require.False(t, isCapacityError(errors.New("insufficient capacity")), "only the type counts")
}

func TestBackoffLeft(t *testing.T) {
	now := time.Unix(1000, 0)
	require.Zero(t, backoffLeft(now, time.Time{}))
	require.Zero(t, backoffLeft(now, now))
	require.Zero(t, backoffLeft(now, now.Add(-time.Second)))
	require.Equal(t, 7*time.Second, backoffLeft(now, now.Add(7*time.Second)))
}

// TestFleetValidators checks the update validators against each phase.
func TestFleetValidators(t *testing.T) {
	f := &fleet{in: fleetInput(5, 10)}
	f.st.Phase = PhaseFilling
	require.NoError(t, f.validateScale(ScaleInput{Target: 7}))
	require.ErrorContains(t, f.validateScale(ScaleInput{Target: 4}), "min 5")
	require.ErrorContains(t, f.validateScale(ScaleInput{Target: MaxFleetSize + 1}), "between")
	require.NoError(t, f.validateCancel(CancelInput{}))

	f.cancelReq = &CancelInput{}
	require.ErrorContains(t, f.validateScale(ScaleInput{Target: 7}), "being cancelled")
	require.NoError(t, f.validateCancel(CancelInput{}), "a second cancel joins the first")

	for _, phase := range []string{PhaseFulfilled, PhaseInsufficientCapacity, PhaseFailed} {
		f := &fleet{in: fleetInput(5, 10)}
		f.st.Phase = phase
		require.ErrorContains(t, f.validateScale(ScaleInput{Target: 7}), phase)
		require.ErrorContains(t, f.validateCancel(CancelInput{}), "already "+phase)
	}
	f = &fleet{in: fleetInput(5, 10)}
	f.st.Phase = PhaseCancelled
	require.NoError(t, f.validateCancel(CancelInput{}))
	require.ErrorContains(t, f.validateScale(ScaleInput{Target: 7}), PhaseCancelled)
}
