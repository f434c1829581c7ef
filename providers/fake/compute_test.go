package fake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/providers"
)

func TestComputeCapacityAndIdempotency(t *testing.T) {
	ctx := context.Background()
	c := NewCompute()
	c.SetCapacity("m5.large", 10)

	r, err := c.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 4, ClientToken: "res"})
	require.NoError(t, err)
	assert.Equal(t, 6, c.Capacity("m5.large"))
	again, err := c.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 4, ClientToken: "res"})
	require.NoError(t, err)
	assert.Equal(t, r.ID, again.ID)
	_, err = c.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 7})
	assert.True(t, providers.IsInsufficientCapacity(err))

	tags := map[string]string{providers.FleetTagKey: "f"}
	run := providers.RunInput{InstanceType: "m5.large", MinCount: 4, MaxCount: 4, ReservationID: r.ID, ClientToken: "burst", Tags: tags}
	first, err := c.Run(ctx, run)
	require.NoError(t, err)
	require.Len(t, first, 4)
	replay, err := c.Run(ctx, run)
	require.NoError(t, err)
	assert.Equal(t, first, replay)
	run.MaxCount = 5
	_, err = c.Run(ctx, run)
	assert.True(t, providers.IsIdempotencyMismatch(err))
	got, _ := c.Reservation(r.ID)
	assert.Equal(t, 0, got.Available)

	_, err = c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 7, MaxCount: 9, Tags: tags})
	assert.True(t, providers.IsInsufficientCapacity(err), "all or nothing")
	fill, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 9, Tags: tags})
	require.NoError(t, err)
	assert.Len(t, fill, 6)
	assert.Len(t, c.Live(tags), 10)
	assert.Equal(t, 4, c.ReservedLaunches())

	c.FailNext(MethodRun, providers.NewThrottledError(errors.New("slow down")))
	_, err = c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsThrottled(err))
	assert.Len(t, c.Live(nil), 10, "a failed call launches nothing")
	assert.Equal(t, 6, c.CallCount(MethodRun))
	assert.Equal(t, map[string]int{"burst": 3}, c.RunTokens("b"))

	require.NoError(t, c.Terminate(ctx, []string{first[0].ID, fill[0].ID}))
	got, _ = c.Reservation(r.ID)
	assert.Equal(t, 1, got.Available, "back to the active reservation")
	assert.Equal(t, 1, c.Capacity("m5.large"), "back to the pool")
	require.NoError(t, c.CancelReservation(ctx, r.ID))
	assert.Equal(t, 2, c.Capacity("m5.large"))
	require.NoError(t, c.Terminate(ctx, []string{first[1].ID}))
	assert.Equal(t, 3, c.Capacity("m5.large"), "a cancelled reservation's instances return to the pool")

	assert.True(t, providers.IsNotFound(c.Terminate(ctx, []string{"i-nope", first[2].ID})))
	assert.Len(t, c.Live(nil), 7, "a failed terminate changes nothing")
	live, err := c.Describe(ctx, providers.InstanceFilter{Tags: tags, States: []string{providers.StateRunning}})
	require.NoError(t, err)
	assert.Len(t, live, 7)
	typesOffered, err := c.InstanceTypes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"m5.large"}, typesOffered)
	_, err = c.Run(ctx, providers.RunInput{InstanceType: "z9.huge", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsInvalid(err))
}

func TestComputeScriptedFailures(t *testing.T) {
	ctx := context.Background()
	c := NewCompute()
	c.SetCapacity("m5.large", Unlimited)
	// Throttle chunk-a's first two tries; chunk-b goes through.
	c.FailRun = func(in providers.RunInput, attempt int) error {
		if strings.HasPrefix(in.ClientToken, "chunk-a") && attempt < 2 {
			return providers.NewThrottledError(errors.New("RequestLimitExceeded"))
		}
		return nil
	}
	a := providers.RunInput{InstanceType: "m5.large", MinCount: 3, MaxCount: 3, ClientToken: "chunk-a"}
	for range 2 {
		_, err := c.Run(ctx, a)
		require.True(t, providers.IsThrottled(err), "%v", err)
	}
	got, err := c.Run(ctx, a)
	require.NoError(t, err)
	require.Len(t, got, 3)

	// The response of chunk-b's launch is lost once; the retry returns the
	// instances that launched.
	c.LoseResponse("chunk-b", 1)
	b := providers.RunInput{InstanceType: "m5.large", MinCount: 2, MaxCount: 2, ClientToken: "chunk-b"}
	_, err = c.Run(ctx, b)
	require.ErrorIs(t, err, ErrResponseLost)
	require.Len(t, c.Live(nil), 5, "the lost launch happened")
	again, err := c.Run(ctx, b)
	require.NoError(t, err)
	require.Len(t, again, 2)
	require.Len(t, c.Instances(), 5, "the retry launched nothing more")
	require.Equal(t, map[string]int{"chunk-a": 3, "chunk-b": 2}, c.RunTokens(""))
	require.Equal(t, Unlimited, c.Capacity("m5.large"))

	// Failures queue per method.
	for range 2 {
		c.FailNext(MethodReserve, providers.NewInsufficientCapacityError(errors.New("none")))
	}
	for range 2 {
		_, err = c.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 1})
		require.True(t, providers.IsInsufficientCapacity(err))
	}
	_, err = c.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 1})
	require.NoError(t, err)
	require.Equal(t, 3, c.CallCount(MethodReserve))
	require.Len(t, c.Reservations(), 1, "failed calls reserve nothing")
}

func TestComputeInstanceLifecycle(t *testing.T) {
	ctx := context.Background()
	c := NewCompute()
	c.SetCapacity("m5.large", 4)
	c.PendingDescribes = 2
	c.StaleDescribes = 1
	launched, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 4, MaxCount: 4})
	require.NoError(t, err)
	ids := []string{launched[0].ID, launched[1].ID, launched[2].ID, launched[3].ID}
	states := func() []string {
		t.Helper()
		got, err := c.Describe(ctx, providers.InstanceFilter{})
		require.NoError(t, err)
		var out []string
		for _, in := range got {
			out = append(out, in.State)
		}
		return out
	}
	c.SetState(providers.StateRunning, ids[0])
	p, r := providers.StatePending, providers.StateRunning
	require.Equal(t, []string{r, p, p, p}, states())
	require.Equal(t, []string{r, p, p, p}, states(), "pending for two describes")
	require.Equal(t, []string{r, r, r, r}, states())

	// Out of band: not a call, and the capacity comes back.
	c.SetState(providers.StateTerminated, ids[1])
	require.Zero(t, c.CallCount(MethodTerminate))
	require.Equal(t, 1, c.Capacity("m5.large"))
	require.Equal(t, ids[2:], c.Live(nil)[1:])
	// Terminated by gust: described as running once more.
	require.NoError(t, c.Terminate(ctx, []string{ids[2]}))
	require.Equal(t, []string{r, providers.StateTerminated, r, r}, states())
	require.Equal(t, []string{r, providers.StateTerminated, providers.StateTerminated, r}, states())
	inst, ok := c.Instance(ids[2])
	require.True(t, ok)
	require.Equal(t, providers.StateTerminated, inst.State)
	require.Panics(t, func() { c.SetState(providers.StateRunning, ids[1]) }, "no coming back")
}

func TestAccountsAreSeparate(t *testing.T) {
	ctx := context.Background()
	a := NewAccounts()
	def, acme := a.Add(""), a.Add("acme")
	if a.Add(providers.DefaultTenant) != def {
		t.Fatal(`"" and "default" are the same tenant`)
	}
	def.SetCapacity("m5.large", 5)
	acme.SetCapacity("m5.large", 5)
	c, err := a.Compute(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 2, MaxCount: 2}); err != nil {
		t.Fatal(err)
	}
	if len(acme.Instances()) != 2 || len(def.Instances()) != 0 || def.CallCount(MethodRun) != 0 {
		t.Fatalf("acme has %d, default %d instances; want 2 and 0", len(acme.Instances()), len(def.Instances()))
	}
	if _, err := a.Compute(ctx, "globex"); !providers.IsNotFound(err) {
		t.Fatalf("unknown tenant: got %v, want NotFound", err)
	}
}
