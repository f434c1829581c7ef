package awsconfig

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gust-dev/gust/providers"
)

// Clients keeps one client per tenant, built with a configuration that
// signs with the tenant's credentials (Tenants.Credentials, TenantConfig).
// A client is built on a tenant's first use and kept; the assumed
// credentials are cached and renewed before they expire. A tenant the
// worker turns out unable to act for is dropped, so unknown names do not
// accumulate clients.
type Clients[C any] struct {
	cfg      aws.Config
	endpoint string
	tenants  Tenants
	build    func(aws.Config) C

	mu      sync.Mutex
	clients map[string]*tenantClient[C]
}

type tenantClient[C any] struct {
	client C
	creds  aws.CredentialsProvider
}

// NewClients returns tenants' clients, each built by build from cfg with
// the tenant's credentials. STS is called at endpoint when it is set.
func NewClients[C any](cfg aws.Config, endpoint string, tenants Tenants, build func(aws.Config) C) *Clients[C] {
	return &Clients[C]{cfg: cfg, endpoint: endpoint, tenants: tenants, build: build, clients: map[string]*tenantClient[C]{}}
}

// Get returns tenant's client ("" is providers.DefaultTenant). It makes
// sure the tenant's credentials are at hand first (Retrieve), assuming its
// role when the cache holds none, so a worker that cannot act for the
// tenant gets NotFoundError (no role, or the cloud refused it) or
// InvalidError (a malformed name, the worker's own credentials rejected)
// here; other errors are transient.
func (c *Clients[C]) Get(ctx context.Context, tenant string) (C, error) {
	var zero C
	tenant = providers.TenantOrDefault(tenant)
	if !providers.ValidTenantName(tenant) {
		return zero, providers.NewInvalidError(fmt.Errorf("invalid tenant %q: use 1 to 64 characters from [a-zA-Z0-9_-], starting with a letter or digit", tenant))
	}
	tc, err := c.client(tenant)
	if err != nil {
		return zero, err
	}
	if _, err := Retrieve(ctx, tc.creds, tenant); err != nil {
		if providers.IsNotFound(err) || providers.IsInvalid(err) {
			// Not kept: a tenant created later must work, and names
			// nobody has must not accumulate clients.
			c.forget(tenant, tc)
		}
		return zero, err
	}
	return tc.client, nil
}

func (c *Clients[C]) client(tenant string) (*tenantClient[C], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc, ok := c.clients[tenant]; ok {
		return tc, nil
	}
	creds, err := c.tenants.Credentials(c.cfg, c.endpoint, tenant)
	if err != nil {
		return nil, err
	}
	tc := &tenantClient[C]{client: c.build(TenantConfig(c.cfg, creds)), creds: creds}
	c.clients[tenant] = tc
	return tc, nil
}

func (c *Clients[C]) forget(tenant string, tc *tenantClient[C]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clients[tenant] == tc {
		delete(c.clients, tenant)
	}
}
