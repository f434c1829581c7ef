package lambda_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// TestThousandSubTenantsOnOneFunction: at the default limits, one
// function's 100 environments serve any number of sub-tenants over time,
// each in an environment of its own. With 20 invocations in flight at
// most 20 environments are busy, so a new sub-tenant always finds an idle
// one of the function to replace and is never refused.
//
// Admission and eviction are the pool's, the same whatever isolates the
// environments, so this runs them as plain processes: a sandbox's start
// costs about 2.5 times as much, which over 1000 starts is the difference
// between half a minute and more than a minute on two cores.
func TestThousandSubTenantsOnOneFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 1000 processes")
	}
	h := newHarness(t, func(cfg *lambda.Config) { cfg.Isolation = lambda.IsolationNone })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 30})

	const subTenants, parallel = 1000, 20
	var (
		mu     sync.Mutex
		envSub = map[string]string{} // environment id → the sub-tenant it served
		served int
	)
	next := make(chan string)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sub := range next {
				r, err := invoke(t, c, "echo", sub, nil)
				if err != nil {
					t.Errorf("sub-tenant %s refused: %v", sub, err)
					continue
				}
				if r.fnError != "" {
					t.Errorf("sub-tenant %s: %s %v", sub, r.fnError, r.errDoc)
					continue
				}
				if r.resp.TenantID != sub {
					t.Errorf("sub-tenant %s was served as %q", sub, r.resp.TenantID)
				}
				mu.Lock()
				if prev, ok := envSub[r.envID]; ok && prev != sub {
					t.Errorf("environment %s served %s and %s", r.envID, prev, sub)
				}
				envSub[r.envID] = sub
				served++
				mu.Unlock()
			}
		}()
	}
	for i := range subTenants {
		next <- fmt.Sprintf("customer-%04d", i)
	}
	close(next)
	wg.Wait()

	assert.Equal(t, subTenants, served)
	assert.Len(t, envSub, subTenants, "every sub-tenant had an environment of its own")
	assert.LessOrEqual(t, len(h.envs(t, "t1", "echo").Environments), lambda.DefaultMaxEnvsPerFunction)
}
