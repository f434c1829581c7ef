package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/awsconfig"
)

// Accounts implements providers.Accounts on EC2: each tenant's Compute is
// a Provider whose client signs with the tenant's credentials, chosen by
// awsconfig.Tenants: the tenant's role, assumed through STS with the
// configuration's own (the platform's) credentials, or, for the default
// tenant without a role, the configuration's own credentials. Clients are
// built once per tenant and kept; the assumed credentials are cached and
// renewed before they expire.
type Accounts struct {
	clients *awsconfig.Clients[*Provider]
}

var _ providers.Accounts = (*Accounts)(nil)

// NewAccountsFromConfig builds the tenants' accounts from the standard
// configuration chain (or o.Credentials), which are the platform's own
// credentials.
func NewAccountsFromConfig(ctx context.Context, o Options) (*Accounts, error) {
	cfg, err := loadConfig(ctx, o)
	if err != nil {
		return nil, err
	}
	return NewAccounts(cfg, o), nil
}

// NewAccounts builds the tenants' accounts from cfg, for callers that
// configure the SDK themselves (tests). o.Endpoint is used for EC2 and STS;
// o.Region, o.Profile and o.Credentials are ignored (cfg has them).
func NewAccounts(cfg aws.Config, o Options) *Accounts {
	tenants := awsconfig.Tenants{RoleARN: o.Roles, Own: providers.DefaultTenant}
	return &Accounts{clients: awsconfig.NewClients(cfg, o.Endpoint, tenants, func(c aws.Config) *Provider {
		compute := New(newClient(c, o.Endpoint))
		compute.defaultImage = o.DefaultImageID
		return compute
	})}
}

// Compute returns tenant's Compute (see providers.Accounts and
// awsconfig.Clients.Get for the errors). It makes sure the tenant's
// credentials are at hand first, assuming its role when the cache holds
// none, so a refused role is a typed error here.
func (a *Accounts) Compute(ctx context.Context, tenant string) (providers.Compute, error) {
	compute, err := a.clients.Get(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return compute, nil
}
