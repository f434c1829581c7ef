package lambda_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lc "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/providers"
)

// A function deployed without a per-sub-tenant limit runs with the cloud's
// default; Get and List report that limit, not 0 (gust fn list shows it).
func TestLimitInForceIsReported(t *testing.T) {
	p, _ := newLocal(t, func(c *lc.Config) { c.MaxEnvsPerSubTenant = 7 })
	ctx := context.Background()
	assert.Equal(t, 7, deploy(t, p, "acme", "dflt", nil).MaxEnvsPerSubTenant)
	deploy(t, p, "acme", "three", func(s *providers.FunctionSpec) { s.MaxEnvsPerSubTenant = 3 })

	got, err := p.Get(ctx, "acme", "dflt")
	require.NoError(t, err)
	assert.Equal(t, 7, got.MaxEnvsPerSubTenant)
	list, err := p.List(ctx, "acme")
	require.NoError(t, err)
	limits := map[string]int{}
	for _, f := range list {
		limits[f.Name] = f.MaxEnvsPerSubTenant
	}
	assert.Equal(t, map[string]int{"dflt": 7, "three": 3}, limits)
}
