package fake

import (
	"context"
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
	assert.Equal(t, 10, c.Live(tags))

	c.FailNextRun(providers.NewThrottledError(ErrInjected))
	_, err = c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsThrottled(err))
	assert.Equal(t, 10, c.Live(nil), "a failed call launches nothing")
	assert.Equal(t, 6, c.CallCount(MethodRun))
	assert.Len(t, c.RunCalls(), 6)

	require.NoError(t, c.Terminate(ctx, []string{first[0].ID, fill[0].ID}))
	got, _ = c.Reservation(r.ID)
	assert.Equal(t, 1, got.Available, "back to the active reservation")
	assert.Equal(t, 1, c.Capacity("m5.large"), "back to the pool")
	require.NoError(t, c.CancelReservation(ctx, r.ID))
	assert.Equal(t, 2, c.Capacity("m5.large"))
	require.NoError(t, c.Terminate(ctx, []string{first[1].ID}))
	assert.Equal(t, 3, c.Capacity("m5.large"), "a cancelled reservation's instances return to the pool")

	assert.True(t, providers.IsNotFound(c.Terminate(ctx, []string{"i-nope", first[2].ID})))
	assert.Equal(t, 7, c.Live(nil), "a failed terminate changes nothing")
	live, err := c.Describe(ctx, providers.InstanceFilter{Tags: tags, States: []string{providers.StateRunning}})
	require.NoError(t, err)
	assert.Len(t, live, 7)
	typesOffered, err := c.InstanceTypes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"m5.large"}, typesOffered)
	_, err = c.Run(ctx, providers.RunInput{InstanceType: "z9.huge", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsInvalid(err))
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
	if len(acme.Instances()) != 2 || len(def.Instances()) != 0 {
		t.Fatalf("acme has %d, default %d instances; want 2 and 0", len(acme.Instances()), len(def.Instances()))
	}
	if _, err := a.Compute(ctx, "globex"); !providers.IsNotFound(err) {
		t.Fatalf("unknown tenant: got %v, want NotFound", err)
	}
}
