package lambda_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/providers"
)

// TestSubTenantIDsTravelIntact sends sub-tenant ids with every character
// Lambda's TenantId allows through the provider to the local cloud: in the
// SigV4-signed X-Amz-Tenant-Id header (whose canonical form collapses runs
// of spaces, while the value keeps them) and in the logs query. Each must
// reach the runtime, the environment listing and the logs unchanged, and
// ids that differ only in their spaces must stay different sub-tenants.
func TestSubTenantIDsTravelIntact(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	deploy(t, p, "acme", "echo", nil)
	ids := []string{
		"org/team:user=a+b@example.com_x-y.z",
		"x y",
		"x  y",
		strings.Repeat("s", 255) + "@",
	}
	for _, id := range ids {
		res, err := p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: id,
			Payload: []byte(`{"stdout":"log line"}`)})
		require.NoError(t, err, "%q", id)
		var resp sample.Response
		require.NoError(t, json.Unmarshal(res.Payload, &resp))
		assert.Equal(t, id, resp.TenantID, "the runtime sees the id as sent")
		require.Eventually(t, func() bool {
			logs, err := p.Logs(ctx, "acme", "echo", id)
			return err == nil && strings.Contains(logs, "log line")
		}, 5*time.Second, 10*time.Millisecond, "logs of %q", id)
	}
	envs, err := p.Environments(ctx, "acme", "echo")
	require.NoError(t, err)
	var got []string
	for _, e := range envs {
		got = append(got, e.SubTenant)
	}
	assert.ElementsMatch(t, ids, got, "one environment per sub-tenant, its id intact")

	// HTTP drops a header value's leading and trailing spaces, so " x"
	// would run as "x": such ids are refused before any call.
	for _, id := range []string{" x", "x ", strings.Repeat("s", 257)} {
		_, err := p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: id})
		assert.True(t, providers.IsInvalid(err), "%q: %v", id, err)
	}
}
