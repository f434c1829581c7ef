package activities

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

type fakeEvents struct {
	active  bool
	watched []string
	learned map[string][]string // run tag -> ids
}

func (e *fakeEvents) Watch(tenant string) bool {
	e.watched = append(e.watched, tenant)
	return e.active
}
func (e *fakeEvents) Learn(tenant, fleetID, runTag string, ids []string) {
	if e.learned == nil {
		e.learned = map[string][]string{}
	}
	e.learned[runTag] = append(e.learned[runTag], ids...)
}

func offeringsCompute() *fake.Compute {
	c := fake.NewCompute()
	c.SetCapacity("m5.large", fake.Unlimited)
	c.SetCapacity("c5.large", fake.Unlimited)
	c.AddSubnet("subnet-a", "us-east-1a")
	c.AddSubnet("subnet-b", "us-east-1b")
	return c
}

func TestPrepareFleetExpandsBySubnetAndPrices(t *testing.T) {
	c := offeringsCompute()
	c.SetOfferingInfo(
		providers.OfferingInfo{Offering: providers.Offering{InstanceType: "m5.large", Zone: "us-east-1b", Market: providers.MarketSpot}, Price: 0.03, Score: 7},
		providers.OfferingInfo{Offering: providers.Offering{InstanceType: "m5.large", Zone: "us-east-1b", Market: providers.MarketOnDemand}, Price: 0.096},
	)
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	params := providers.LaunchParams{KeyName: "k"}
	v, err := env.ExecuteActivity(a.PrepareFleet, PrepareFleetInput{
		Offerings: []OfferingSpec{{InstanceType: "m5.large", Weight: 1}, {InstanceType: "c5.large", Zone: "us-east-1a", Weight: 2}},
		SubnetIDs: []string{"subnet-b", "subnet-a"}, Markets: []string{providers.MarketOnDemand, providers.MarketSpot}, Params: params,
	})
	require.NoError(t, err)
	var res PrepareFleetResult
	require.NoError(t, v.Get(&res))
	assert.Empty(t, res.Problems)
	assert.Equal(t, []PreparedOffering{
		{InstanceType: "m5.large", Zone: "us-east-1b", SubnetID: "subnet-b", Weight: 1, Source: 0, OnDemandPrice: 0.096, SpotPrice: 0.03, SpotScore: 7},
		{InstanceType: "m5.large", Zone: "us-east-1a", SubnetID: "subnet-a", Weight: 1, Source: 0},
		{InstanceType: "c5.large", Zone: "us-east-1a", SubnetID: "subnet-a", Weight: 2, Source: 1},
	}, res.Offerings, "subnet order; a zoned offering takes the subnet in its zone")

	var dry []providers.RunInput
	for _, call := range c.Calls() {
		if in, ok := call.Input.(providers.RunInput); ok {
			require.True(t, in.DryRun)
			dry = append(dry, in)
		}
	}
	require.Len(t, dry, 4, "one dry run per type and market")
	assert.Equal(t, params, dry[0].Params)
	assert.Equal(t, "subnet-b", dry[0].SubnetID)
	assert.Equal(t, providers.MarketSpot, dry[1].Market)
	assert.Empty(t, c.Instances(), "nothing launched")
}

func TestPrepareFleetProblems(t *testing.T) {
	c := offeringsCompute()
	c.RejectParam("bad-key")
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	v, err := env.ExecuteActivity(a.PrepareFleet, PrepareFleetInput{
		Offerings: []OfferingSpec{{InstanceType: "m5.large", Weight: 1}, {InstanceType: "z9.huge", Weight: 1},
			{InstanceType: "c5.large", Zone: "us-east-1c", Weight: 1}},
		SubnetIDs: []string{"subnet-a", "subnet-gone"}, Markets: []string{providers.MarketOnDemand, providers.MarketSpot},
		Params: providers.LaunchParams{KeyName: "bad-key"},
	})
	require.NoError(t, err, "a bad request is a result, not an error")
	var res PrepareFleetResult
	require.NoError(t, v.Get(&res))
	assert.Empty(t, res.Offerings)
	require.Len(t, res.Problems, 4, "%q", res.Problems)
	assert.Contains(t, res.Problems[0], `"z9.huge"`)
	assert.Contains(t, res.Problems[1], `"subnet-gone"`)
	assert.Contains(t, res.Problems[2], "us-east-1c")
	assert.Contains(t, res.Problems[3], `"bad-key"`, "one line for the key, not one per type and market")
	assert.Equal(t, 0, c.CallCount(fake.MethodDescribeOfferings), "a rejected fleet is not priced")
}

// TestPrepareFleetWaitsOutThrottledDryRuns: dry runs that the request
// bucket throttles are asked again once it refills, within the attempt;
// before, each attempt failed at the first throttled one, so a fleet with
// more types and markets than the bucket holds never started.
func TestPrepareFleetWaitsOutThrottledDryRuns(t *testing.T) {
	c := offeringsCompute()
	c.FailNext(fake.MethodRun, providers.NewThrottledError(errors.New("Request limit exceeded")))
	c.FailNext(fake.MethodRun, providers.NewThrottledError(errors.New("Request limit exceeded")))
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	v, err := env.ExecuteActivity(a.PrepareFleet, PrepareFleetInput{
		Offerings: []OfferingSpec{{InstanceType: "m5.large", Weight: 1}, {InstanceType: "c5.large", Weight: 1}},
		Markets:   []string{providers.MarketOnDemand},
	})
	require.NoError(t, err)
	var res PrepareFleetResult
	require.NoError(t, v.Get(&res))
	assert.Empty(t, res.Problems)
	assert.Len(t, res.Offerings, 2)
	assert.Equal(t, 4, c.CallCount(fake.MethodRun), "two dry runs, the first asked three times")
}

func reserveInput(units int, offerings ...ReserveOffering) ReserveOfferingsInput {
	return ReserveOfferingsInput{FleetID: "f1", Offerings: offerings, Units: units, ClientToken: "f1-r1", Tags: map[string]string{providers.FleetTagKey: "f1"}}
}

func TestReserveOfferingsHalvesWeighsAndIsIdempotent(t *testing.T) {
	c := fake.NewCompute()
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 3)
	c.SetOfferingCapacity("m5.xlarge", "us-east-1b", providers.MarketOnDemand, 4)
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	in := reserveInput(9,
		ReserveOffering{Offering: 4, InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
		ReserveOffering{Offering: 7, InstanceType: "m5.xlarge", Zone: "us-east-1b", Weight: 2})
	v, err := env.ExecuteActivity(a.ReserveOfferings, in)
	require.NoError(t, err)
	var res ReserveOfferingsResult
	require.NoError(t, v.Get(&res))
	// First pass: 9 of m5.large and 5 of m5.xlarge (10 units) both fail.
	// Then m5.large: 4 fails, 2 holds, then 7 left: 7, 3 fail, 1 holds;
	// 6 left: ceil(6/2) = 3 m5.xlarge.
	units := 0
	for _, r := range res.Reservations {
		w := 1
		if r.Offering == 7 {
			w = 2
		}
		units += r.Count * w
	}
	assert.Equal(t, 9, units, "never fewer than asked")
	assert.Equal(t, []int{4, 7}, res.Unavailable, "both refused the first pass's ask")
	assert.Equal(t, 3, res.Reservations[len(res.Reservations)-1].Count)
	made := len(c.Reservations())

	v, err = env.ExecuteActivity(a.ReserveOfferings, in)
	require.NoError(t, err)
	var again ReserveOfferingsResult
	require.NoError(t, v.Get(&again))
	assert.Equal(t, res, again, "a retry gets the same reservations")
	assert.Len(t, c.Reservations(), made, "and makes none")
}

func TestReserveOfferingsIsAllOrNothing(t *testing.T) {
	c := fake.NewCompute()
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 3)
	c.SetOfferingCapacity("m5.large", "us-east-1b", providers.MarketOnDemand, 2)
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	_, err := env.ExecuteActivity(a.ReserveOfferings, reserveInput(6,
		ReserveOffering{Offering: 0, InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
		ReserveOffering{Offering: 1, InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1}))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, providers.ErrTypeInsufficientCapacity, appErr.Type())
	var details ReserveOfferingsResult
	require.NoError(t, appErr.Details(&details))
	assert.Equal(t, []int{0, 1}, details.Unavailable)
	require.NotEmpty(t, c.Reservations())
	for _, r := range c.Reservations() {
		assert.Equal(t, "cancelled", r.State, "no reservation is left held")
	}
	n, _ := c.OfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand)
	assert.Equal(t, 3, n)
}

func candidates() []LaunchCandidate {
	return []LaunchCandidate{
		{Offering: 2, InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
		{Offering: 5, InstanceType: "m5.xlarge", Zone: "us-east-1b", Weight: 2, Priority: 1},
		{Offering: 6, InstanceType: "c5.large", Zone: "us-east-1c", Weight: 3, Priority: 2},
	}
}

func TestLaunchOfferingsFallsBackAtOnce(t *testing.T) {
	c := fake.NewCompute()
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketSpot, 0)
	c.SetOfferingCapacity("m5.xlarge", "us-east-1b", providers.MarketSpot, 2)
	c.SetOfferingCapacity("c5.large", "us-east-1c", providers.MarketSpot, 10)
	events := &fakeEvents{}
	a := &Fleet{Accounts: providers.OneAccount(c), Events: events}
	env := newActivityEnv(t, a)
	in := LaunchOfferingsInput{FleetID: "f1", Candidates: candidates(), Units: 9, Market: providers.MarketSpot, ClientToken: "f1-fill-1",
		Tags: map[string]string{FleetRunTagKey: "run1"}}
	v, err := env.ExecuteActivity(a.LaunchOfferings, in)
	require.NoError(t, err)
	var res LaunchOfferingsResult
	require.NoError(t, v.Get(&res))
	// 9 units: m5.large none; m5.xlarge ceil(9/2)=5 asked, 2 got (4
	// units); c5.large ceil(5/3)=2.
	per := map[int]int{}
	for _, l := range res.Instances {
		per[l.Offering]++
	}
	assert.Equal(t, map[int]int{5: 2, 6: 2}, per)
	assert.Equal(t, []int{2}, res.Unavailable)
	var runs []providers.RunInput
	for _, call := range c.Calls() {
		runs = append(runs, call.Input.(providers.RunInput))
	}
	require.Len(t, runs, 3, "one call per candidate, in order")
	assert.Equal(t, []string{"f1-fill-1-o2", "f1-fill-1-o5", "f1-fill-1-o6"}, []string{runs[0].ClientToken, runs[1].ClientToken, runs[2].ClientToken})
	assert.Equal(t, []int{9, 5, 2}, []int{runs[0].MaxCount, runs[1].MaxCount, runs[2].MaxCount})
	assert.Equal(t, 1, runs[2].MinCount)
	assert.Equal(t, providers.MarketSpot, runs[2].Market)
	assert.Len(t, events.learned["run1"], 4, "the event router learns the instances")
	for _, inst := range c.Instances() {
		assert.Equal(t, "f1", inst.Tags[providers.FleetTagKey])
	}

	v, err = env.ExecuteActivity(a.LaunchOfferings, in)
	require.NoError(t, err)
	var again LaunchOfferingsResult
	require.NoError(t, v.Get(&again))
	assert.Equal(t, res.Instances, again.Instances, "a retry launches nothing more")
	assert.Len(t, c.Instances(), 4)
}

func TestLaunchOfferingsWithoutCapacityOrValidity(t *testing.T) {
	c := fake.NewCompute()
	for _, cand := range candidates() {
		c.SetOfferingCapacity(cand.InstanceType, cand.Zone, providers.MarketOnDemand, 0)
	}
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	in := LaunchOfferingsInput{FleetID: "f1", Candidates: candidates(), Units: 3, Market: providers.MarketOnDemand, ClientToken: "t"}
	v, err := env.ExecuteActivity(a.LaunchOfferings, in)
	require.NoError(t, err, "no capacity anywhere is no error")
	var res LaunchOfferingsResult
	require.NoError(t, v.Get(&res))
	assert.Empty(t, res.Instances)
	assert.Equal(t, []int{2, 5, 6}, res.Unavailable)

	c.RejectParam("ami-bad")
	in.Params.ImageID, in.ClientToken = "ami-bad", "t2"
	_, err = env.ExecuteActivity(a.LaunchOfferings, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, providers.ErrTypeInvalid, appErr.Type())
	assert.True(t, appErr.NonRetryable())
}

func TestLaunchOfferingsUsesCreateFleetWithATemplate(t *testing.T) {
	c := fake.NewCompute()
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 0)
	c.SetOfferingCapacity("m5.xlarge", "us-east-1b", providers.MarketOnDemand, 1)
	c.SetOfferingCapacity("c5.large", "us-east-1c", providers.MarketOnDemand, 10)
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	in := LaunchOfferingsInput{FleetID: "f1", Candidates: candidates(), Units: 5, Market: providers.MarketOnDemand, Strategy: "prioritized",
		ClientToken: "t", Params: providers.LaunchParams{LaunchTemplate: providers.LaunchTemplateRef{Name: "lt"}}}
	v, err := env.ExecuteActivity(a.LaunchOfferings, in)
	require.NoError(t, err)
	var res LaunchOfferingsResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, 1, c.CallCount(fake.MethodLaunchFleet))
	assert.Equal(t, 0, c.CallCount(fake.MethodRun))
	per := map[int]int{}
	for _, l := range res.Instances {
		per[l.Offering]++
	}
	assert.Equal(t, map[int]int{5: 1, 6: 1}, per, "2 units of m5.xlarge, then ceil(3/3) c5.large")
	assert.Equal(t, []int{2}, res.Unavailable)
	fin := c.Calls()[0].Input.(providers.FleetLaunchInput)
	assert.Equal(t, 5, fin.TotalUnits)
	assert.Equal(t, "f1", fin.Tags[providers.FleetTagKey])

	// One candidate: RunInstances.
	in.Candidates, in.ClientToken = candidates()[2:], "t3"
	_, err = env.ExecuteActivity(a.LaunchOfferings, in)
	require.NoError(t, err)
	assert.Equal(t, 1, c.CallCount(fake.MethodRun))
}

func TestReconcileFleet(t *testing.T) {
	c := fake.NewCompute()
	c.SetCapacity("m5.large", fake.Unlimited)
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	tags := fleetTags("f1", "run1")
	got, err := c.Run(t.Context(), providers.RunInput{InstanceType: "m5.large", MinCount: 5, MaxCount: 5, Market: providers.MarketSpot, Tags: tags})
	require.NoError(t, err)
	c.PendingDescribes = 1
	pending, err := c.Run(t.Context(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Tags: tags})
	require.NoError(t, err)
	_, err = c.Run(t.Context(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Tags: fleetTags("f1", "other")})
	require.NoError(t, err)
	c.Interrupt(got[0].ID)
	c.SetState(providers.StateTerminated, got[1].ID)
	c.SetState(providers.StateShuttingDown, got[2].ID)

	v, err := env.ExecuteActivity(a.ReconcileFleet, ReconcileFleetInput{FleetID: "f1", RunTag: "run1"})
	require.NoError(t, err)
	var res ReconcileFleetResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, 3, res.Running, "interrupted instances still run")
	assert.Equal(t, 1, res.Pending)
	assert.Equal(t, 6, res.Total)
	assert.ElementsMatch(t, []InstanceState{
		{ID: got[0].ID, State: providers.StateRunning, Interrupted: true},
		{ID: got[1].ID, State: providers.StateTerminated},
		{ID: got[2].ID, State: providers.StateShuttingDown},
		{ID: pending[0].ID, State: providers.StatePending},
	}, res.NotRunning)
	assert.False(t, res.EventsActive, "no event router")

	events := &fakeEvents{active: true}
	a.Events = events
	v, err = env.ExecuteActivity(a.ReconcileFleet, ReconcileFleetInput{FleetID: "f1", RunTag: "run1"})
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	assert.True(t, res.EventsActive)
	assert.Equal(t, []string{providers.DefaultTenant}, events.watched)
}

func TestLaunchPassesOfferingFieldsAndTellsEvents(t *testing.T) {
	c := offeringsCompute()
	events := &fakeEvents{}
	a := &Fleet{Accounts: providers.OneAccount(c), Events: events}
	env := newActivityEnv(t, a)
	in := launchInput("fill-x", 2)
	in.Market, in.SubnetID, in.RunTag = providers.MarketSpot, "subnet-b", "run1"
	in.Params = providers.LaunchParams{KeyName: "k"}
	v, err := env.ExecuteActivity(a.LaunchFill, in)
	require.NoError(t, err)
	var res LaunchResult
	require.NoError(t, v.Get(&res))
	run := c.Calls()[0].Input.(providers.RunInput)
	assert.Equal(t, providers.MarketSpot, run.Market)
	assert.Equal(t, "subnet-b", run.SubnetID)
	assert.Equal(t, "k", run.Params.KeyName)
	assert.Equal(t, res.InstanceIDs, events.learned["run1"])

	// Without a run tag the router is not told.
	in.RunTag, in.ClientToken = "", "fill-y"
	_, err = env.ExecuteActivity(a.LaunchFill, in)
	require.NoError(t, err)
	assert.Len(t, events.learned["run1"], 2)
}
