package lambda_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/providers"
)

// TestInvokeLogTailQualifierAndVersion: LogTail asks the cloud for Lambda's
// LogType Tail and returns the decoded tail, also with a function error;
// the executed version comes back; a qualifier the function does not have
// is NotFound.
func TestInvokeLogTailQualifierAndVersion(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	fn := deploy(t, p, "acme", "echo", nil)

	res, err := p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s1", RequestID: "req-tail-1",
		Payload: []byte(`{"stderr":"tail-marker"}`), LogTail: true})
	require.NoError(t, err)
	require.Contains(t, res.LogTail, "START RequestId: req-tail-1")
	require.Contains(t, res.LogTail, "tail-marker")
	require.LessOrEqual(t, len(res.LogTail), providers.MaxLogTailBytes)
	require.Equal(t, fn.Version, res.ExecutedVersion)

	res, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s1", Payload: []byte(`{}`)})
	require.NoError(t, err)
	require.Empty(t, res.LogTail, "no tail unless asked")

	res, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s1",
		Payload: []byte(`{"stdout":"before-the-error","error":"boom"}`), LogTail: true})
	var fe *providers.FunctionError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, res.LogTail, "before-the-error", "the tail comes with a function error")

	for _, q := range []string{"$LATEST", fn.Version} {
		_, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s1", Qualifier: q, Payload: []byte(`{}`)})
		require.NoError(t, err, q)
	}
	_, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s1", Qualifier: "99", Payload: []byte(`{}`)})
	require.True(t, providers.IsNotFound(err), "%v", err)
}
