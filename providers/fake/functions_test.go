package fake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

func TestFunctionsEnvironmentsAndErrors(t *testing.T) {
	ctx := context.Background()
	f := fake.NewFunctions()
	_, err := f.Deploy(ctx, providers.FunctionSpec{Tenant: "t", Name: "fn", Zip: []byte("x"),
		Tenancy: providers.TenancyPerTenant, MaxEnvsPerSubTenant: 1})
	require.NoError(t, err)

	in := providers.InvokeInput{Tenant: "t", Function: "fn", SubTenant: "a", Payload: []byte(`{"k":1}`)}
	r1, err := f.Invoke(ctx, in)
	require.NoError(t, err)
	assert.True(t, r1.ColdStart)
	assert.JSONEq(t, `{"k":1}`, string(r1.Payload))
	r2, err := f.Invoke(ctx, in)
	require.NoError(t, err)
	assert.False(t, r2.ColdStart)
	assert.Equal(t, r1.EnvironmentID, r2.EnvironmentID)
	rb, err := f.Invoke(ctx, providers.InvokeInput{Tenant: "t", Function: "fn", SubTenant: "b"})
	require.NoError(t, err)
	assert.NotEqual(t, r1.EnvironmentID, rb.EnvironmentID)

	// Another tenant sees nothing.
	_, err = f.Invoke(ctx, providers.InvokeInput{Tenant: "u", Function: "fn", SubTenant: "a"})
	assert.True(t, providers.IsNotFound(err))
	_, err = f.Invoke(ctx, providers.InvokeInput{Tenant: "t", Function: "fn"})
	assert.True(t, providers.IsInvalid(err))

	// The per-sub-tenant limit throttles while an environment is busy.
	block, release := make(chan struct{}), make(chan struct{})
	require.NoError(t, f.SetHandler("t", "fn", func(ctx context.Context, in providers.InvokeInput) ([]byte, error) {
		close(block)
		<-release
		return []byte(`{}`), nil
	}))
	done := make(chan error)
	go func() { _, err := f.Invoke(ctx, in); done <- err }()
	<-block
	_, err = f.Invoke(ctx, in)
	assert.True(t, providers.IsTooManyRequests(err))
	close(release)
	require.NoError(t, <-done)

	require.NoError(t, f.SetHandler("t", "fn", func(context.Context, providers.InvokeInput) ([]byte, error) {
		return nil, &providers.FunctionError{Type: "Boom", Message: "failed"}
	}))
	_, err = f.Invoke(ctx, in)
	var fnErr *providers.FunctionError
	require.ErrorAs(t, err, &fnErr)
	assert.Equal(t, "Boom", fnErr.Type)

	f.FailNext(fake.MethodInvoke, providers.NewThrottledError(errors.New("slow down")))
	_, err = f.Invoke(ctx, in)
	assert.True(t, providers.IsThrottled(err))
	assert.Equal(t, fake.MethodInvoke, f.Calls()[len(f.Calls())-1].Method)
}
