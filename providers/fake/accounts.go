package fake

import (
	"context"
	"fmt"
	"sync"

	"github.com/gust-dev/gust/providers"
)

// Accounts is an in-memory providers.Accounts: each tenant added with Add
// is an account of its own, a separate Compute. Any other tenant is a
// NotFoundError, as a worker with no role for it reports.
type Accounts struct {
	mu       sync.Mutex
	accounts map[string]*Compute
}

var _ providers.Accounts = (*Accounts)(nil)

// NewAccounts returns Accounts with no tenant.
func NewAccounts() *Accounts { return &Accounts{accounts: map[string]*Compute{}} }

// Add makes tenant ("" is providers.DefaultTenant) an account, backed by a
// new Compute that it returns; adding a tenant again returns its Compute.
func (a *Accounts) Add(tenant string) *Compute {
	a.mu.Lock()
	defer a.mu.Unlock()
	tenant = providers.TenantOrDefault(tenant)
	if c, ok := a.accounts[tenant]; ok {
		return c
	}
	c := NewCompute()
	a.accounts[tenant] = c
	return c
}

// Compute returns tenant's Compute.
func (a *Accounts) Compute(_ context.Context, tenant string) (providers.Compute, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.accounts[providers.TenantOrDefault(tenant)]; ok {
		return c, nil
	}
	return nil, providers.NewNotFoundError(fmt.Errorf("no account for tenant %s", tenant))
}
