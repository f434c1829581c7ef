package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

func TestSplitMarkets(t *testing.T) {
	cases := []struct {
		units, base, share int
		od, spot           int
	}{
		{10, 0, 0, 10, 0},
		{10, 0, 100, 0, 10},
		{10, 4, 50, 7, 3}, // 4 base + half of 6
		{10, 4, 75, 6, 4}, // 4 base + a quarter of 6, rounded up for on-demand
		{3, 4, 100, 3, 0}, // all within the base
		{100, 20, 80, 36, 64},
		{1, 0, 50, 1, 0}, // half a unit of spot rounds down
	}
	for _, c := range cases {
		od, spot := splitMarkets(c.units, c.base, c.share)
		require.Equal(t, [2]int{c.od, c.spot}, [2]int{od, spot}, "splitMarkets(%d, base %d, share %d)", c.units, c.base, c.share)
		require.Equal(t, c.units, od+spot)
	}
}

func TestAllocationOrder(t *testing.T) {
	offs := []activities.PreparedOffering{
		{InstanceType: "m5.large", Weight: 1, OnDemandPrice: 0.096, SpotPrice: 0.03, SpotScore: 3},
		{InstanceType: "m5.xlarge", Weight: 2, OnDemandPrice: 0.18, SpotPrice: 0.07, SpotScore: 9},
		{InstanceType: "c5.large", Weight: 1, OnDemandPrice: 0.085, SpotPrice: 0, SpotScore: 0},
		{InstanceType: "t3.medium", Weight: 1, OnDemandPrice: 0.0416, SpotPrice: 0.0125, SpotScore: 9},
	}
	prio := func(i int) int { return []int{2, 1, 0, 1}[i] }
	cases := []struct {
		strategy string
		spot     bool
		want     []int
	}{
		{AllocationPrioritized, false, []int{2, 1, 3, 0}},       // by priority, ties in order
		{"", true, []int{2, 1, 3, 0}},                           // the default; the market does not matter
		{AllocationLowestPrice, false, []int{3, 2, 1, 0}},       // per unit: m5.xlarge is 0.09 a unit
		{AllocationLowestPrice, true, []int{3, 0, 1, 2}},        // an unknown price sorts last
		{AllocationCapacityOptimized, true, []int{1, 3, 0, 2}},  // score 9 (priority breaks the tie), 3, unknown
		{AllocationCapacityOptimized, false, []int{2, 1, 3, 0}}, // no on-demand scores: priority
	}
	for _, c := range cases {
		require.Equal(t, c.want, allocationOrder(offs, prio, c.strategy, c.spot), "%s spot=%v", c.strategy, c.spot)
	}
}

// TestFallbackAndTTL: an offering marked unavailable is skipped until its
// TTL passes; when every offering of a market is, all are tried (a probe).
func TestFallbackAndTTL(t *testing.T) {
	t0 := time.Unix(5000, 0)
	f := &fleet{offerings: true, in: LaunchFleetInput{Offerings: []Offering{{InstanceType: "m5.large"}, {InstanceType: "c5.large"}, {InstanceType: "t3.medium"}}}}
	f.st.Offerings = []activities.PreparedOffering{{InstanceType: "m5.large", Source: 0}, {InstanceType: "c5.large", Source: 1}, {InstanceType: "t3.medium", Source: 2}}
	order, probe := f.candidates(t0, false)
	require.Equal(t, []int{0, 1, 2}, order)
	require.False(t, probe)

	// The first has no on-demand capacity for 3 minutes: the next launch
	// goes straight to the second. Spot is another market.
	f.st.Unavailable = []Unavailability{{Offering: 0, Until: t0.Add(3 * time.Minute)}}
	order, probe = f.candidates(t0, false)
	require.Equal(t, []int{1, 2}, order)
	require.False(t, probe)
	order, _ = f.candidates(t0, true)
	require.Equal(t, []int{0, 1, 2}, order)

	// Just before the TTL ends it is still skipped; at its end it is back,
	// first again.
	order, _ = f.candidates(t0.Add(3*time.Minute-time.Millisecond), false)
	require.Equal(t, []int{1, 2}, order)
	order, _ = f.candidates(t0.Add(3*time.Minute), false)
	require.Equal(t, []int{0, 1, 2}, order)

	// All three out: a probe of all of them in order.
	f.st.Unavailable = append(f.st.Unavailable,
		Unavailability{Offering: 1, Until: t0.Add(time.Minute)}, Unavailability{Offering: 2, Until: t0.Add(2 * time.Minute)})
	order, probe = f.candidates(t0, false)
	require.Equal(t, []int{0, 1, 2}, order)
	require.True(t, probe)
	// The soonest back comes back alone.
	order, probe = f.candidates(t0.Add(time.Minute), false)
	require.Equal(t, []int{1}, order)
	require.False(t, probe)
}

// TestDecideMarkets covers rule 8 for fleets of offerings: the on-demand
// base and spot share, backoff per market, and replacement.
func TestDecideMarkets(t *testing.T) {
	base := func() fleetView {
		v := fleetView{
			Now: time.Unix(1000, 0), Target: 20, MaxFillInFlight: 32, HandlersFinished: true, Fresh: true,
			Markets: true, Maintain: true, OnDemandOpen: true, SpotOpen: true,
		}
		v.OnDemandWant, v.SpotWant = splitMarkets(20, 4, 50) // 12 and 8
		return v
	}
	cases := []struct {
		name string
		mod  func(*fleetView)
		want decision
	}{
		{"empty: on-demand rounds, then spot", func(v *fleetView) {},
			decision{Action: actLaunch, Rounds: []fillRound{{Count: 5}, {Count: 5}, {Count: 2}, {Count: 5, Spot: true}, {Count: 3, Spot: true}}}},
		{"on-demand base live: spot only", func(v *fleetView) { v.Live, v.LiveOnDemand = 12, 12 },
			decision{Action: actLaunch, Rounds: []fillRound{{Count: 5, Spot: true}, {Count: 3, Spot: true}}}},
		{"rounds in flight count per market", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.FillInFlight, v.FillRequested, v.RequestedSpot = 12, 12, 1, 5, 5
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 3, Spot: true}}}},
		{"spot reclaimed: replaced in spot", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.TargetReached = 17, 12, 5, 17, true
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 3, Spot: true}}}},
		{"spot backing off with every spot offering out: on-demand goes on", func(v *fleetView) {
			v.SpotBackingOff, v.SpotOpen = true, false
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 5}, {Count: 5}, {Count: 2}}}},
		{"a backoff does not hold a market with an open offering", func(v *fleetView) {
			v.BackingOff, v.SpotBackingOff = true, true
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 5}, {Count: 5}, {Count: 2}, {Count: 5, Spot: true}, {Count: 3, Spot: true}}}},
		{"both markets out and backing off: wait", func(v *fleetView) {
			v.BackingOff, v.SpotBackingOff, v.OnDemandOpen, v.SpotOpen = true, true, false, false
		}, decision{Action: actWait}},
		{"weights overshot the target: fulfilled, maintained", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running = 21, 13, 8, 21
		}, decision{Action: actMaintain, MarkTargetReached: true}},
		{"maintained at target, history long: continue as new", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.TargetReached, v.ContinueAsNewDue = 20, 12, 8, 20, true, true
		}, decision{Action: actContinueAsNew}},
		{"surplus of whole instances: terminate", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.Surplus = 24, 12, 12, 24, 4
		}, decision{Action: actTerminateExtras, Count: 4}},
		{"over target but no instance small enough to go: maintained", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.Surplus = 21, 12, 9, 21, 0
		}, decision{Action: actMaintain, MarkTargetReached: true}},
		{"fill timeout after the target was reached does not end a maintained fleet", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.TargetReached, v.FillDeadlineHit = 17, 12, 5, 17, true, true
		}, decision{Action: actLaunch, Rounds: []fillRound{{Count: 3, Spot: true}}}},
		{"states not known yet: not fulfilled", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.Fresh = 20, 12, 8, 20, false
		}, decision{Action: actWait}},
		{"at target, not maintained, no settled count yet: ask for one", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.Maintain, v.Unsettled = 20, 12, 8, 20, false, true
		}, decision{Action: actSettle, MarkTargetReached: true}},
		{"at target, not maintained, settled: fulfilled", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.Maintain, v.TargetReached = 20, 12, 8, 20, false, true
		}, decision{Action: actFulfilled}},
		{"maintained fleets do not wait for a settled count", func(v *fleetView) {
			v.Live, v.LiveOnDemand, v.LiveSpot, v.Running, v.Unsettled = 20, 12, 8, 20, true
		}, decision{Action: actMaintain, MarkTargetReached: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := base()
			c.mod(&v)
			require.Equal(t, c.want, decide(v), "decide(%+v)", v)
		})
	}
}

func TestVictimsAndSurplus(t *testing.T) {
	f := &fleet{offerings: true}
	f.st.Target = 5
	f.st.Offerings = []activities.PreparedOffering{{Weight: 1}, {Weight: 4}}
	f.st.InstanceIDs = []string{"i-a", "i-b", "i-c", "i-d"}
	f.st.Placements = []Placement{{Offering: 0}, {Offering: 1}, {Offering: 0}, {Offering: 0}} // 1+4+1+1 = 7 units
	live, od, spot := f.units()
	require.Equal(t, [3]int{7, 7, 0}, [3]int{live, od, spot})
	// Two units over: the two newest small ones go, never the 4-unit one.
	require.Equal(t, 2, f.surplus(live))
	require.Equal(t, []string{"i-c", "i-d"}, f.victims(2))
	// Five over: newest first, skipping the 4-unit one that no longer
	// fits. The fleet may stay over its target by less than a weight, as
	// EC2 Fleet may.
	f.st.Target = 2
	require.Equal(t, 3, f.surplus(live))
	require.Equal(t, []string{"i-a", "i-c", "i-d"}, f.victims(3))
}

func TestValidateOfferings(t *testing.T) {
	ok := func() LaunchFleetInput {
		return LaunchFleetInput{FleetID: "f", Min: 1, Target: 2, Offerings: []Offering{{InstanceType: "m5.large"}, {InstanceType: "m5.xlarge", Weight: 2}}}
	}
	require.NoError(t, ok().Validate())
	cases := []struct {
		mod  func(*LaunchFleetInput)
		want string
	}{
		{func(in *LaunchFleetInput) { in.Offerings[1].InstanceType = "m5" }, "offering 2: instance type"},
		{func(in *LaunchFleetInput) { in.Offerings[1] = in.Offerings[0] }, "listed twice"},
		{func(in *LaunchFleetInput) { in.Offerings[1].Weight = 1001 }, "weight 1001"},
		{func(in *LaunchFleetInput) { in.InstanceType = "c5.large" }, "must be the first offering's"},
		{func(in *LaunchFleetInput) { in.Zones = []string{"us-east-1a"} }, "zones belong in the offerings"},
		{func(in *LaunchFleetInput) { in.AllocationStrategy = "cheapest" }, "allocation strategy"},
		{func(in *LaunchFleetInput) { in.SpotShare = 101 }, "spot share 101"},
		{func(in *LaunchFleetInput) { in.OnDemandBase = -1 }, "on-demand base"},
		{func(in *LaunchFleetInput) { in.OnLost = "ignore" }, "on-lost"},
		{func(in *LaunchFleetInput) {
			in.SubnetIDs = []string{"subnet-0123456789abcdef0", "subnet-0123456789abcdef0"}
		}, "listed twice"},
		{func(in *LaunchFleetInput) { in.SubnetIDs = []string{"vpc-1"} }, "not a subnet id"},
		{func(in *LaunchFleetInput) { in.Launch.SecurityGroupIDs = []string{"sg-xyz"} }, "not a security group id"},
		{func(in *LaunchFleetInput) { in.Launch.KeyName = "bad\nkey" }, "key name"},
		{func(in *LaunchFleetInput) { in.Launch.UserData = make([]byte, MaxUserData+1) }, "user data"},
		{func(in *LaunchFleetInput) { in.Launch.IAMInstanceProfile = "arn:aws:iam::12:instance-profile/x" }, "IAM instance profile"},
		{func(in *LaunchFleetInput) {
			in.Launch.LaunchTemplate = providers.LaunchTemplateRef{ID: "lt-0123456789abcdef0", Name: "web"}
		}, "not both"},
		{func(in *LaunchFleetInput) {
			in.Launch.LaunchTemplate = providers.LaunchTemplateRef{Name: "web", Version: "latest"}
		}, "version"},
		{func(in *LaunchFleetInput) { in.Launch.ImageID = "ami-1" }, "launch.image_id"},
	}
	for _, c := range cases {
		in := ok()
		c.mod(&in)
		err := in.Validate()
		require.Error(t, err, c.want)
		require.Contains(t, err.Error(), c.want)
		require.NotContains(t, err.Error(), "\n", "one line")
	}
}

func TestParseOffering(t *testing.T) {
	o, err := ParseOffering("m5.xlarge:2")
	require.NoError(t, err)
	require.Equal(t, Offering{InstanceType: "m5.xlarge", Weight: 2}, o)
	o, err = ParseOffering("m5.large")
	require.NoError(t, err)
	require.Equal(t, Offering{InstanceType: "m5.large"}, o)
	for _, bad := range []string{"m5", "m5.large:0", "m5.large:x", "m5.large:1001", ":2"} {
		_, err := ParseOffering(bad)
		require.Error(t, err, bad)
	}
}
