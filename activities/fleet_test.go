package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

// newCompute returns the shared fake cloud, offering m5.large only, with
// instances that launch pending and are running once a Describe saw them.
func newCompute() *fake.Compute {
	c := fake.NewCompute()
	c.SetCapacity("m5.large", fake.Unlimited)
	c.PendingDescribes = 1
	return c
}

func newActivityEnv(t *testing.T, a *Fleet) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	return env
}

func launchInput(token string, n int) LaunchInput {
	return LaunchInput{FleetID: "f1", InstanceType: "m5.large", MinCount: n, MaxCount: n, ClientToken: token, Tags: map[string]string{"team": "x"}}
}

func TestLaunchIsIdempotentAndTagged(t *testing.T) {
	c := newCompute()
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)

	v, err := env.ExecuteActivity(a.LaunchBurstChunk, launchInput("burst-0-x", 3))
	require.NoError(t, err)
	var first LaunchResult
	require.NoError(t, v.Get(&first))
	require.Len(t, first.InstanceIDs, 3)

	v, err = env.ExecuteActivity(a.LaunchFill, launchInput("burst-0-x", 3))
	require.NoError(t, err)
	var again LaunchResult
	require.NoError(t, v.Get(&again))
	require.Equal(t, first.InstanceIDs, again.InstanceIDs, "same token, same instances")
	require.Len(t, c.Instances(), 3)
	for _, inst := range c.Instances() {
		require.Equal(t, "f1", inst.Tags[providers.FleetTagKey])
		require.Equal(t, "x", inst.Tags["team"])
	}
}

func TestLaunchErrorsAreTyped(t *testing.T) {
	cases := []struct {
		err          error
		typ          string
		nonRetryable bool
	}{
		{providers.NewInsufficientCapacityError(errors.New("none")), providers.ErrTypeInsufficientCapacity, false},
		{providers.NewThrottledError(errors.New("slow down")), providers.ErrTypeThrottled, false},
		{providers.NewInvalidError(errors.New("bad ami")), providers.ErrTypeInvalid, true},
		{providers.NewIdempotencyMismatchError(errors.New("token reuse")), providers.ErrTypeIdempotencyMismatch, true},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			c := newCompute()
			c.FailNext(fake.MethodRun, tc.err)
			a := &Fleet{Accounts: providers.OneAccount(c)}
			env := newActivityEnv(t, a)
			_, err := env.ExecuteActivity(a.LaunchFill, launchInput("fill-1-x", 1))
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, tc.typ, appErr.Type())
			require.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			require.Contains(t, appErr.Error(), "launching fill round")
			require.Equal(t, tc.typ, ErrorType(err))
		})
	}
}

func TestLaunchRejectsBadInput(t *testing.T) {
	c := newCompute()
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	in := launchInput("", 1)
	_, err := env.ExecuteActivity(a.LaunchFill, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Zero(t, c.CallCount(fake.MethodRun), "bad input never reaches the cloud")
}

func TestReserveAndRelease(t *testing.T) {
	c := fake.NewCompute()
	c.SetCapacity("m5.large", 15)
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	v, err := env.ExecuteActivity(a.ReserveCapacity, ReserveCapacityInput{FleetID: "f1", InstanceType: "m5.large", Zones: []string{"z1"}, Count: 10, ClientToken: "reserve-1-x"})
	require.NoError(t, err)
	var res ReserveCapacityResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, "z1", res.Zone)
	require.Equal(t, 10, res.Count)
	held, ok := c.Reservation(res.ReservationID)
	require.True(t, ok)
	require.Equal(t, "active", held.State)
	require.Equal(t, 5, c.Capacity("m5.large"))

	_, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{ReservationID: res.ReservationID})
	require.NoError(t, err)
	held, _ = c.Reservation(res.ReservationID)
	require.Equal(t, "cancelled", held.State)
	require.Equal(t, 15, c.Capacity("m5.large"), "the unused capacity went back")

	_, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{ReservationID: "cr-gone"})
	require.NoError(t, err, "a reservation that is already gone is fine")
	c.FailNext(fake.MethodCancelReservation, providers.NewThrottledError(errors.New("slow down")))
	_, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{ReservationID: res.ReservationID})
	require.Equal(t, providers.ErrTypeThrottled, ErrorType(err), "other failures are reported")

	_, err = env.ExecuteActivity(a.ReserveCapacity, ReserveCapacityInput{FleetID: "f1", InstanceType: "m5.large", Zones: []string{"z1"}, Count: 16, ClientToken: "reserve-2-x"})
	require.Equal(t, providers.ErrTypeInsufficientCapacity, ErrorType(err))
}

func TestCountRunningAndTerminate(t *testing.T) {
	c := newCompute()
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	in := launchInput("burst-0-x", 4)
	in.Tags = map[string]string{FleetRunTagKey: "run-1"}
	v, err := env.ExecuteActivity(a.LaunchBurstChunk, in)
	require.NoError(t, err)
	var run1 LaunchResult
	require.NoError(t, v.Get(&run1))
	other := launchInput("burst-0-y", 2)
	other.Tags = map[string]string{FleetRunTagKey: "run-2"}
	_, err = env.ExecuteActivity(a.LaunchBurstChunk, other)
	require.NoError(t, err)
	c.SetState(providers.StateRunning, run1.InstanceIDs[:2]...)
	c.SetState(providers.StateTerminated, run1.InstanceIDs[3])

	v, err = env.ExecuteActivity(a.CountRunning, CountRunningInput{FleetID: "f1", RunTag: "run-1"})
	require.NoError(t, err)
	var count CountRunningResult
	require.NoError(t, v.Get(&count))
	require.Equal(t, CountRunningResult{Running: 2, Pending: 1, Total: 4}, count)

	// An unknown id does not stop the known ones from terminating.
	v, err = env.ExecuteActivity(a.TerminateInstances, TerminateInput{IDs: []string{run1.InstanceIDs[0], "i-404"}})
	require.NoError(t, err)
	var term TerminateResult
	require.NoError(t, v.Get(&term))
	require.Equal(t, TerminateResult{Terminated: 1, NotFound: 1}, term)

	// The sweep finds the rest of run-1 by tag and leaves run-2 alone.
	v, err = env.ExecuteActivity(a.TerminateFleet, TerminateFleetInput{FleetID: "f1", RunTag: "run-1"})
	require.NoError(t, err)
	require.NoError(t, v.Get(&term))
	require.Equal(t, TerminateResult{Terminated: 2}, term)
	for _, inst := range c.Instances() {
		if inst.Tags[FleetRunTagKey] == "run-2" {
			require.Equal(t, providers.StatePending, inst.State, inst.ID)
		} else {
			require.Equal(t, providers.StateTerminated, inst.State, inst.ID)
		}
	}
}

func TestCheckInstanceType(t *testing.T) {
	a := &Fleet{Accounts: providers.OneAccount(newCompute())}
	env := newActivityEnv(t, a)
	for typ, known := range map[string]bool{"m5.large": true, "x9.huge": false} {
		v, err := env.ExecuteActivity(a.CheckInstanceType, CheckInstanceTypeInput{InstanceType: typ})
		require.NoError(t, err)
		var res CheckInstanceTypeResult
		require.NoError(t, v.Get(&res))
		require.Equal(t, known, res.Known, typ)
		require.Equal(t, 1, res.Offered)
	}
}

func TestProviderError(t *testing.T) {
	require.NoError(t, ProviderError(nil))
	plain := errors.New("boom")
	require.Equal(t, plain, ProviderError(plain))
	require.ErrorIs(t, ProviderErrorf("doing", plain), plain)
	require.ErrorIs(t, ProviderError(context.Canceled), context.Canceled)

	already := temporal.NewApplicationError("x", "Custom")
	require.Equal(t, already, ProviderError(already))

	fnErr := ProviderError(fmt.Errorf("invoking, %w", &providers.FunctionError{Type: "Runtime.ExitError", Message: "exit 1"}))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, fnErr, &appErr)
	require.Equal(t, providers.ErrTypeFunctionError, appErr.Type())
	require.True(t, appErr.NonRetryable())
	var details providers.FunctionError
	require.NoError(t, appErr.Details(&details))
	require.Equal(t, "Runtime.ExitError", details.Type)

	for err, typ := range map[error]string{
		providers.NewTooManyRequestsError(plain):      providers.ErrTypeTooManyRequests,
		providers.NewNotFoundError(plain):             providers.ErrTypeNotFound,
		fmt.Errorf("x, %w", providers.ErrUnsupported): providers.ErrTypeUnsupported,
	} {
		require.Equal(t, typ, ErrorType(ProviderError(err)))
	}
	require.Empty(t, ErrorType(plain))
}

// TestEveryActivityActsInItsTenantsAccount runs each fleet activity for
// tenant acme and checks that only acme's account saw the calls.
func TestEveryActivityActsInItsTenantsAccount(t *testing.T) {
	accounts := fake.NewAccounts()
	def, acme := accounts.Add(providers.DefaultTenant), accounts.Add("acme")
	def.SetCapacity("m5.large", fake.Unlimited)
	acme.SetCapacity("m5.large", fake.Unlimited)
	a := &Fleet{Accounts: accounts}
	env := newActivityEnv(t, a)
	const tenant = "acme"

	_, err := env.ExecuteActivity(a.CheckInstanceType, CheckInstanceTypeInput{Tenant: tenant, InstanceType: "m5.large"})
	require.NoError(t, err)
	v, err := env.ExecuteActivity(a.ReserveCapacity, ReserveCapacityInput{Tenant: tenant, FleetID: "f1", InstanceType: "m5.large", Zones: []string{"z1"}, Count: 2, ClientToken: "reserve-1-x"})
	require.NoError(t, err)
	var res ReserveCapacityResult
	require.NoError(t, v.Get(&res))
	in := launchInput("burst-0-x", 2)
	in.Tenant = tenant
	_, err = env.ExecuteActivity(a.LaunchBurstChunk, in)
	require.NoError(t, err)
	in = launchInput("fill-1-x", 1)
	in.Tenant = tenant
	_, err = env.ExecuteActivity(a.LaunchFill, in)
	require.NoError(t, err)
	v, err = env.ExecuteActivity(a.CountRunning, CountRunningInput{Tenant: tenant, FleetID: "f1"})
	require.NoError(t, err)
	var count CountRunningResult
	require.NoError(t, v.Get(&count))
	require.Equal(t, 3, count.Total)
	v, err = env.ExecuteActivity(a.ListFleetInstances, ListFleetInput{Tenant: tenant, FleetID: "f1"})
	require.NoError(t, err)
	var list ListFleetResult
	require.NoError(t, v.Get(&list))
	require.Len(t, list.IDs, 3)
	_, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{Tenant: tenant, ReservationID: res.ReservationID})
	require.NoError(t, err)
	_, err = env.ExecuteActivity(a.TerminateInstances, TerminateInput{Tenant: tenant, IDs: list.IDs[:1]})
	require.NoError(t, err)
	v, err = env.ExecuteActivity(a.TerminateFleet, TerminateFleetInput{Tenant: tenant, FleetID: "f1"})
	require.NoError(t, err)
	var term TerminateResult
	require.NoError(t, v.Get(&term))
	require.Equal(t, 2, term.Terminated)

	for method, n := range map[string]int{
		fake.MethodInstanceTypes: 1, fake.MethodReserve: 1, fake.MethodRun: 2,
		fake.MethodCancelReservation: 1, fake.MethodTerminate: 2,
	} {
		require.Equal(t, n, acme.CallCount(method), method)
	}
	require.Empty(t, acme.Live(nil))
	require.Empty(t, def.Calls(), "the default account saw a call")

	// The same fleet id in the default account is another fleet.
	v, err = env.ExecuteActivity(a.CountRunning, CountRunningInput{FleetID: "f1"})
	require.NoError(t, err)
	require.NoError(t, v.Get(&count))
	require.Zero(t, count.Total)
	require.Equal(t, 1, def.CallCount(fake.MethodDescribe))
}

// unreachableAccounts fails every tenant's role with err.
type unreachableAccounts struct{ err error }

func (u unreachableAccounts) Compute(context.Context, string) (providers.Compute, error) {
	return nil, u.err
}

func TestUnknownTenantFailsWithoutRetries(t *testing.T) {
	accounts := fake.NewAccounts()
	accounts.Add(providers.DefaultTenant).SetCapacity("m5.large", fake.Unlimited)
	a := &Fleet{Accounts: accounts}
	env := newActivityEnv(t, a)
	in := launchInput("burst-0-x", 1)
	in.Tenant = "nobody"
	_, err := env.ExecuteActivity(a.LaunchBurstChunk, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, providers.ErrTypeNotFound, appErr.Type())
	require.True(t, appErr.NonRetryable(), "no retry can make an unknown tenant known")
	require.Contains(t, appErr.Error(), "tenant nobody")

	// The cloud unreachable while assuming the role: retried by the policy.
	a = &Fleet{Accounts: unreachableAccounts{errors.New("dial tcp: connection refused")}}
	env = newActivityEnv(t, a)
	_, err = env.ExecuteActivity(a.CheckInstanceType, CheckInstanceTypeInput{Tenant: "acme", InstanceType: "m5.large"})
	require.Error(t, err)
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a transient failure must stay retryable: %v", err)
}
