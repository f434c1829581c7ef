package ec2

import (
	"context"
	"fmt"
	"sync"

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
	cfg      aws.Config
	endpoint string
	tenants  awsconfig.Tenants
	newAPI   func(aws.Config) EC2API
	image    string // Options.DefaultImageID

	mu       sync.Mutex
	accounts map[string]*account
}

type account struct {
	compute *Provider
	creds   aws.CredentialsProvider
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
	return &Accounts{
		cfg:      cfg,
		endpoint: o.Endpoint,
		tenants:  awsconfig.Tenants{RoleARN: o.Roles, Own: providers.DefaultTenant},
		newAPI:   func(c aws.Config) EC2API { return newClient(c, o.Endpoint) },
		image:    o.DefaultImageID,
		accounts: map[string]*account{},
	}
}

// Compute returns tenant's Compute (see providers.Accounts). It makes sure
// the tenant's credentials are at hand first, assuming its role when the
// cache holds none, so a refused role is a typed error here.
func (a *Accounts) Compute(ctx context.Context, tenant string) (providers.Compute, error) {
	tenant = providers.TenantOrDefault(tenant)
	if !providers.ValidTenantName(tenant) {
		return nil, providers.NewInvalidError(fmt.Errorf("invalid tenant %q: use 1 to 64 characters from [a-zA-Z0-9_-], starting with a letter or digit", tenant))
	}
	acct, err := a.account(tenant)
	if err != nil {
		return nil, err
	}
	if _, err := awsconfig.Retrieve(ctx, acct.creds, tenant); err != nil {
		if providers.IsNotFound(err) || providers.IsInvalid(err) {
			// Not kept: a tenant created later must work, and names
			// nobody has must not accumulate clients.
			a.forget(tenant, acct)
		}
		return nil, err
	}
	return acct.compute, nil
}

func (a *Accounts) account(tenant string) (*account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if acct, ok := a.accounts[tenant]; ok {
		return acct, nil
	}
	creds, err := a.tenants.Credentials(a.cfg, a.endpoint, tenant)
	if err != nil {
		return nil, err
	}
	compute := New(a.newAPI(awsconfig.TenantConfig(a.cfg, creds)))
	compute.defaultImage = a.image
	acct := &account{compute: compute, creds: creds}
	a.accounts[tenant] = acct
	return acct, nil
}

func (a *Accounts) forget(tenant string, acct *account) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.accounts[tenant] == acct {
		delete(a.accounts, tenant)
	}
}
