package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/providers"
)

// memCompute is a small in-memory providers.Compute for the activity tests:
// it de-duplicates Run by ClientToken and injects one-shot errors.
type memCompute struct {
	mu         sync.Mutex
	instances  []providers.Instance
	tokens     map[string][]providers.Instance
	nextErr    error // returned once by the next call
	runs       []providers.RunInput
	terminated [][]string
	cancelled  []string
}

var _ providers.Compute = (*memCompute)(nil)

func newMemCompute() *memCompute { return &memCompute{tokens: map[string][]providers.Instance{}} }

func (m *memCompute) takeErr() error {
	err := m.nextErr
	m.nextErr = nil
	return err
}

func (m *memCompute) Reserve(_ context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.takeErr(); err != nil {
		return providers.Reservation{}, err
	}
	return providers.Reservation{ID: "cr-1", InstanceType: in.InstanceType, Zone: in.Zones[0], Count: in.Count, Available: in.Count}, nil
}

func (m *memCompute) CancelReservation(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.takeErr(); err != nil {
		return err
	}
	m.cancelled = append(m.cancelled, id)
	return nil
}

func (m *memCompute) Run(_ context.Context, in providers.RunInput) ([]providers.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, in)
	if err := m.takeErr(); err != nil {
		return nil, err
	}
	if got, ok := m.tokens[in.ClientToken]; ok {
		return got, nil
	}
	var out []providers.Instance
	for i := 0; i < in.MaxCount; i++ {
		inst := providers.Instance{ID: fmt.Sprintf("i-%d", len(m.instances)+1), Zone: "zone-a", State: providers.StatePending, Tags: in.Tags}
		m.instances = append(m.instances, inst)
		out = append(out, inst)
	}
	m.tokens[in.ClientToken] = out
	return out, nil
}

func (m *memCompute) Describe(_ context.Context, f providers.InstanceFilter) ([]providers.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.takeErr(); err != nil {
		return nil, err
	}
	var out []providers.Instance
	for _, inst := range m.instances {
		ok := len(f.States) == 0 || slices.Contains(f.States, inst.State)
		for k, v := range f.Tags {
			ok = ok && inst.Tags[k] == v
		}
		if ok {
			out = append(out, inst)
		}
	}
	return out, nil
}

func (m *memCompute) Terminate(_ context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.terminated = append(m.terminated, slices.Clone(ids))
	for _, id := range ids {
		if !slices.ContainsFunc(m.instances, func(i providers.Instance) bool { return i.ID == id }) {
			return providers.NewNotFoundError(errors.New("unknown " + id))
		}
	}
	for i := range m.instances {
		if slices.Contains(ids, m.instances[i].ID) {
			m.instances[i].State = providers.StateTerminated
		}
	}
	return nil
}

func (m *memCompute) InstanceTypes(context.Context) ([]string, error) {
	return []string{"m5.large"}, nil
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
	c := newMemCompute()
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)

	v, err := env.ExecuteActivity(a.LaunchBurstChunk, launchInput("burst-0-x", 3))
	require.NoError(t, err)
	var first LaunchResult
	require.NoError(t, v.Get(&first))
	require.Len(t, first.InstanceIDs, 3)
	require.Equal(t, "zone-a", first.Zone)

	v, err = env.ExecuteActivity(a.LaunchFill, launchInput("burst-0-x", 3))
	require.NoError(t, err)
	var again LaunchResult
	require.NoError(t, v.Get(&again))
	require.Equal(t, first.InstanceIDs, again.InstanceIDs, "same token, same instances")
	require.Len(t, c.instances, 3)
	for _, inst := range c.instances {
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
			c := newMemCompute()
			c.nextErr = tc.err
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
	a := &Fleet{Accounts: providers.OneAccount(newMemCompute())}
	env := newActivityEnv(t, a)
	in := launchInput("", 1)
	_, err := env.ExecuteActivity(a.LaunchFill, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
	require.True(t, appErr.NonRetryable())
}

func TestReserveAndRelease(t *testing.T) {
	c := newMemCompute()
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	v, err := env.ExecuteActivity(a.ReserveCapacity, ReserveCapacityInput{FleetID: "f1", InstanceType: "m5.large", Zones: []string{"z1"}, Count: 10, ClientToken: "reserve-1-x"})
	require.NoError(t, err)
	var res ReserveCapacityResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, ReserveCapacityResult{ReservationID: "cr-1", Zone: "z1", Count: 10}, res)

	v, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{ReservationID: "cr-1"})
	require.NoError(t, err)
	var rel ReleaseReservationResult
	require.NoError(t, v.Get(&rel))
	require.True(t, rel.Released)

	c.nextErr = providers.NewNotFoundError(errors.New("gone"))
	v, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{ReservationID: "cr-1"})
	require.NoError(t, err, "a reservation that is already gone is fine")
	require.NoError(t, v.Get(&rel))
	require.False(t, rel.Released)

	c.nextErr = providers.NewInsufficientCapacityError(errors.New("full"))
	_, err = env.ExecuteActivity(a.ReserveCapacity, ReserveCapacityInput{FleetID: "f1", InstanceType: "m5.large", Zones: []string{"z1"}, Count: 10, ClientToken: "reserve-2-x"})
	require.Equal(t, providers.ErrTypeInsufficientCapacity, ErrorType(err))
}

func TestCountRunningAndTerminate(t *testing.T) {
	c := newMemCompute()
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	in := launchInput("burst-0-x", 4)
	in.Tags = map[string]string{FleetRunTagKey: "run-1"}
	_, err := env.ExecuteActivity(a.LaunchBurstChunk, in)
	require.NoError(t, err)
	other := launchInput("burst-0-y", 2)
	other.Tags = map[string]string{FleetRunTagKey: "run-2"}
	_, err = env.ExecuteActivity(a.LaunchBurstChunk, other)
	require.NoError(t, err)
	c.instances[0].State = providers.StateRunning
	c.instances[1].State = providers.StateRunning

	v, err := env.ExecuteActivity(a.CountRunning, CountRunningInput{FleetID: "f1", RunTag: "run-1"})
	require.NoError(t, err)
	var count CountRunningResult
	require.NoError(t, v.Get(&count))
	require.Equal(t, 2, count.Running)
	require.Equal(t, 2, count.Pending)
	require.Equal(t, 4, count.Total)

	// An unknown id does not stop the known ones from terminating.
	v, err = env.ExecuteActivity(a.TerminateInstances, TerminateInput{IDs: []string{"i-1", "i-404"}})
	require.NoError(t, err)
	var term TerminateResult
	require.NoError(t, v.Get(&term))
	require.Equal(t, TerminateResult{Terminated: 1, NotFound: 1}, term)

	// The sweep finds the rest of run-1 by tag and leaves run-2 alone.
	v, err = env.ExecuteActivity(a.TerminateFleet, TerminateFleetInput{FleetID: "f1", RunTag: "run-1"})
	require.NoError(t, err)
	require.NoError(t, v.Get(&term))
	require.Equal(t, TerminateResult{Terminated: 3}, term)
	for _, inst := range c.instances {
		want := providers.StateTerminated
		if inst.Tags[FleetRunTagKey] == "run-2" {
			want = providers.StatePending
		}
		require.Equal(t, want, inst.State, inst.ID)
	}
}

func TestCheckInstanceType(t *testing.T) {
	a := &Fleet{Accounts: providers.OneAccount(newMemCompute())}
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

// accountsMap serves each tenant from its own Compute; err, when set, is
// what Compute returns for every tenant.
type accountsMap struct {
	m   map[string]providers.Compute
	err error
}

func (a accountsMap) Compute(_ context.Context, tenant string) (providers.Compute, error) {
	if a.err != nil {
		return nil, a.err
	}
	c, ok := a.m[providers.TenantOrDefault(tenant)]
	if !ok {
		return nil, providers.NewNotFoundError(errors.New("no role for tenant " + tenant))
	}
	return c, nil
}

// TestEveryActivityActsInItsTenantsAccount runs each fleet activity for
// tenant acme and checks that only acme's account saw the calls.
func TestEveryActivityActsInItsTenantsAccount(t *testing.T) {
	def, acme := newMemCompute(), newMemCompute()
	a := &Fleet{Accounts: accountsMap{m: map[string]providers.Compute{providers.DefaultTenant: def, "acme": acme}}}
	env := newActivityEnv(t, a)
	const tenant = "acme"

	_, err := env.ExecuteActivity(a.CheckInstanceType, CheckInstanceTypeInput{Tenant: tenant, InstanceType: "m5.large"})
	require.NoError(t, err)
	_, err = env.ExecuteActivity(a.ReserveCapacity, ReserveCapacityInput{Tenant: tenant, FleetID: "f1", InstanceType: "m5.large", Zones: []string{"z1"}, Count: 2, ClientToken: "reserve-1-x"})
	require.NoError(t, err)
	in := launchInput("burst-0-x", 2)
	in.Tenant = tenant
	_, err = env.ExecuteActivity(a.LaunchBurstChunk, in)
	require.NoError(t, err)
	in = launchInput("fill-1-x", 1)
	in.Tenant = tenant
	_, err = env.ExecuteActivity(a.LaunchFill, in)
	require.NoError(t, err)
	v, err := env.ExecuteActivity(a.CountRunning, CountRunningInput{Tenant: tenant, FleetID: "f1"})
	require.NoError(t, err)
	var count CountRunningResult
	require.NoError(t, v.Get(&count))
	require.Equal(t, 3, count.Total)
	v, err = env.ExecuteActivity(a.ListFleetInstances, ListFleetInput{Tenant: tenant, FleetID: "f1"})
	require.NoError(t, err)
	var list ListFleetResult
	require.NoError(t, v.Get(&list))
	require.Len(t, list.IDs, 3)
	_, err = env.ExecuteActivity(a.ReleaseReservation, ReleaseReservationInput{Tenant: tenant, ReservationID: "cr-1"})
	require.NoError(t, err)
	_, err = env.ExecuteActivity(a.TerminateInstances, TerminateInput{Tenant: tenant, IDs: list.IDs[:1]})
	require.NoError(t, err)
	v, err = env.ExecuteActivity(a.TerminateFleet, TerminateFleetInput{Tenant: tenant, FleetID: "f1"})
	require.NoError(t, err)
	var term TerminateResult
	require.NoError(t, v.Get(&term))
	require.Equal(t, 2, term.Terminated)

	require.Len(t, acme.runs, 2)
	require.Equal(t, []string{"cr-1"}, acme.cancelled)
	require.Len(t, acme.terminated, 2)
	require.Empty(t, def.instances, "the default account saw a launch")
	require.Empty(t, def.runs)
	require.Empty(t, def.cancelled)
	require.Empty(t, def.terminated)

	// The same fleet id in the default account is another fleet.
	v, err = env.ExecuteActivity(a.CountRunning, CountRunningInput{FleetID: "f1"})
	require.NoError(t, err)
	require.NoError(t, v.Get(&count))
	require.Zero(t, count.Total)
}

func TestUnknownTenantFailsWithoutRetries(t *testing.T) {
	a := &Fleet{Accounts: accountsMap{m: map[string]providers.Compute{providers.DefaultTenant: newMemCompute()}}}
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
	a = &Fleet{Accounts: accountsMap{err: errors.New("dial tcp: connection refused")}}
	env = newActivityEnv(t, a)
	_, err = env.ExecuteActivity(a.CheckInstanceType, CheckInstanceTypeInput{Tenant: "acme", InstanceType: "m5.large"})
	require.Error(t, err)
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a transient failure must stay retryable: %v", err)
}
