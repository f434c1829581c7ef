package fake

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/providers"
)

func TestOfferingCapacityAndMarkets(t *testing.T) {
	ctx := context.Background()
	c := NewCompute()
	c.SetCapacity("m5.large", 2)
	c.SetOfferingCapacity("m5.large", "us-east-1b", providers.MarketSpot, 3)
	c.AddSubnet("subnet-b", "us-east-1b")

	// Spot in us-east-1b draws from its own capacity, not the type's.
	got, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 5, Market: providers.MarketSpot, SubnetID: "subnet-b"})
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, providers.MarketSpot, got[0].Market)
	assert.Equal(t, "us-east-1b", got[0].Zone, "the subnet's zone")
	assert.Equal(t, 2, c.Capacity("m5.large"))
	_, err = c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Market: providers.MarketSpot, Zone: "us-east-1b"})
	assert.True(t, providers.IsInsufficientCapacity(err), "that offering is empty: %v", err)

	// Spot elsewhere and on-demand share the type's capacity.
	spot, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Market: providers.MarketSpot, Zone: "us-east-1a"})
	require.NoError(t, err)
	od, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	require.NoError(t, err)
	assert.Equal(t, providers.MarketOnDemand, od[0].Market)
	_, err = c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Zone: "us-east-1c"})
	assert.True(t, providers.IsInsufficientCapacity(err))

	// Capacity returns where it came from.
	c.Interrupt(got[0].ID)
	in, _ := c.Instance(got[0].ID)
	assert.True(t, in.Interrupted)
	assert.Equal(t, providers.StateRunning, in.State)
	assert.Equal(t, SpotInterruptionCode, in.StateReason)
	c.SetState(providers.StateTerminated, got[0].ID)
	in, _ = c.Instance(got[0].ID)
	assert.False(t, in.Interrupted, "reclaimed, no longer under notice")
	n, _ := c.OfferingCapacity("m5.large", "us-east-1b", providers.MarketSpot)
	assert.Equal(t, 1, n)
	require.NoError(t, c.Terminate(ctx, []string{spot[0].ID}))
	assert.Equal(t, 1, c.Capacity("m5.large"))
	assert.Panics(t, func() { c.Interrupt(od[0].ID) }, "on-demand instances get no notice")

	// A zone-less launch goes to the first zone that can hold it.
	c.SetOfferingCapacity("c5.large", "us-east-1a", providers.MarketOnDemand, 0)
	c.SetOfferingCapacity("c5.large", "us-east-1b", providers.MarketOnDemand, 0)
	c.SetOfferingCapacity("c5.large", "us-east-1c", providers.MarketOnDemand, 4)
	got, err = c.Run(ctx, providers.RunInput{InstanceType: "c5.large", MinCount: 2, MaxCount: 2})
	require.NoError(t, err)
	assert.Equal(t, "us-east-1c", got[0].Zone)
	r, err := c.Reserve(ctx, providers.ReserveInput{InstanceType: "c5.large", Count: 2})
	require.NoError(t, err)
	assert.Equal(t, "us-east-1c", r.Zone)
	require.NoError(t, c.CancelReservation(ctx, r.ID))
	n, _ = c.OfferingCapacity("c5.large", "us-east-1c", providers.MarketOnDemand)
	assert.Equal(t, 2, n, "a cancelled reservation returns to its offering")
	typesOffered, _ := c.InstanceTypes(ctx)
	assert.Equal(t, []string{"c5.large", "m5.large"}, typesOffered)
}

func TestRunValidatesAndDryRuns(t *testing.T) {
	ctx := context.Background()
	c := NewCompute()
	c.SetCapacity("m5.large", 0)
	c.AddSubnet("subnet-a", "us-east-1a")
	c.RejectParam("ami-bad", "sg-bad")

	got, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, DryRun: true, SubnetID: "subnet-a"})
	require.NoError(t, err, "a dry run does not check capacity")
	assert.Nil(t, got)
	cases := []struct {
		in providers.RunInput
		is func(error) bool
	}{
		{providers.RunInput{InstanceType: "x1.nope"}, providers.IsInvalid},
		{providers.RunInput{InstanceType: "m5.large", Params: providers.LaunchParams{ImageID: "ami-bad"}}, providers.IsInvalid},
		{providers.RunInput{InstanceType: "m5.large", Params: providers.LaunchParams{SecurityGroupIDs: []string{"sg-ok", "sg-bad"}}}, providers.IsInvalid},
		{providers.RunInput{InstanceType: "m5.large", SubnetID: "subnet-nope"}, providers.IsNotFound},
		{providers.RunInput{InstanceType: "m5.large", SubnetID: "subnet-a", Zone: "us-east-1b"}, providers.IsInvalid},
		{providers.RunInput{InstanceType: "m5.large", Market: "cheap"}, providers.IsInvalid},
		{providers.RunInput{InstanceType: "m5.large", Market: providers.MarketSpot, ReservationID: "cr-1"}, providers.IsInvalid},
	}
	for i, tc := range cases {
		tc.in.MinCount, tc.in.MaxCount, tc.in.DryRun = 1, 1, true
		_, err := c.Run(ctx, tc.in)
		assert.True(t, tc.is(err), "case %d: %v", i, err)
	}
	assert.Empty(t, c.Instances())
}

func TestLaunchFleet(t *testing.T) {
	ctx := context.Background()
	lt := providers.LaunchParams{LaunchTemplate: providers.LaunchTemplateRef{Name: "lt"}}
	c := NewCompute()
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 0)
	c.SetOfferingCapacity("m5.large", "us-east-1b", providers.MarketOnDemand, 3)
	c.SetOfferingCapacity("m5.xlarge", "us-east-1a", providers.MarketOnDemand, 10)
	c.SetOfferingInfo(
		providers.OfferingInfo{Offering: providers.Offering{InstanceType: "m5.large", Zone: "us-east-1b", Market: providers.MarketOnDemand}, Price: 0.10},
		providers.OfferingInfo{Offering: providers.Offering{InstanceType: "m5.xlarge", Zone: "us-east-1a", Market: providers.MarketOnDemand}, Price: 0.18},
	)
	overrides := []providers.FleetLaunchOverride{
		{InstanceType: "m5.xlarge", Zone: "us-east-1a", Weight: 2, Priority: 2},
		{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1, Priority: 0},
		{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1, Priority: 1},
	}
	in := providers.FleetLaunchInput{Overrides: overrides, TotalUnits: 8, Strategy: "prioritized", ClientToken: "t1", Params: lt,
		Tags: map[string]string{providers.FleetTagKey: "f"}}
	res, err := c.LaunchFleet(ctx, in)
	require.NoError(t, err)
	perOverride := map[int]int{}
	for _, l := range res.Instances {
		perOverride[l.Override]++
		assert.Equal(t, "f", l.Instance.Tags[providers.FleetTagKey])
	}
	assert.Equal(t, map[int]int{2: 3, 0: 3}, perOverride, "priority 0 has none, priority 1 gives 3, priority 2 the other 5 units in 3 instances")
	assert.Equal(t, []providers.FleetLaunchError{iceError(1)}, res.Errors)
	again, err := c.LaunchFleet(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, res, again, "same token, same result")
	assert.Len(t, c.Live(nil), 6)
	in.TotalUnits = 9
	_, err = c.LaunchFleet(ctx, in)
	assert.True(t, providers.IsIdempotencyMismatch(err))

	// Lowest price per unit: m5.xlarge at 0.09 a unit before m5.large at 0.10.
	c.SetOfferingCapacity("m5.large", "us-east-1b", providers.MarketOnDemand, 3)
	res, err = c.LaunchFleet(ctx, providers.FleetLaunchInput{Overrides: overrides, TotalUnits: 4, Strategy: "lowest-price", Params: lt})
	require.NoError(t, err)
	require.Len(t, res.Instances, 2)
	assert.Equal(t, 0, res.Instances[0].Override)

	// MinUnits is all or nothing.
	before := len(c.Live(nil))
	res, err = c.LaunchFleet(ctx, providers.FleetLaunchInput{Overrides: overrides[1:], TotalUnits: 5, MinUnits: 5, Params: lt})
	require.NoError(t, err)
	assert.Empty(t, res.Instances)
	assert.Len(t, res.Errors, 2)
	assert.Len(t, c.Live(nil), before)
	n, _ := c.OfferingCapacity("m5.large", "us-east-1b", providers.MarketOnDemand)
	assert.Equal(t, 3, n, "nothing taken")

	_, err = c.LaunchFleet(ctx, providers.FleetLaunchInput{Overrides: overrides, TotalUnits: 1})
	assert.True(t, providers.IsInvalid(err), "no template")
	assert.Equal(t, 6, c.CallCount(MethodLaunchFleet))
}

func TestDescribeOfferingsAndSubnets(t *testing.T) {
	ctx := context.Background()
	c := NewCompute()
	spot := func(zone string) providers.Offering {
		return providers.Offering{InstanceType: "m5.large", Zone: zone, Market: providers.MarketSpot}
	}
	c.SetOfferingInfo(providers.OfferingInfo{Offering: spot("us-east-1a"), Price: 0.04, Score: 3},
		providers.OfferingInfo{Offering: spot("us-east-1b"), Price: 0.03, Score: 7})
	got, err := c.DescribeOfferings(ctx, []providers.Offering{spot("us-east-1a"), spot(""), spot("us-east-1c")})
	require.NoError(t, err)
	assert.Equal(t, []providers.OfferingInfo{{Offering: spot("us-east-1a"), Price: 0.04, Score: 3},
		{Offering: spot(""), Price: 0.03, Score: 7}, {Offering: spot("us-east-1c")}}, got)

	c.AddSubnet("subnet-a", "us-east-1a")
	subnets, err := c.Subnets(ctx, []string{"subnet-a"})
	require.NoError(t, err)
	assert.Equal(t, []providers.Subnet{{ID: "subnet-a", Zone: "us-east-1a"}}, subnets)
	_, err = c.Subnets(ctx, []string{"subnet-a", "subnet-x"})
	assert.True(t, providers.IsNotFound(err))
}
