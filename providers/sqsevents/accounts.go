package sqsevents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/awsconfig"
)

// LocalCloudQueue is the events queue every account of gust's local cloud
// has (localcloud/ec2.EventsQueueName): a worker with a local cloud
// endpoint reads it unless told otherwise.
const LocalCloudQueue = "gust-ec2-events"

// Options selects the endpoint, the identity and the queue, as
// providers/ec2.Options does for EC2.
type Options struct {
	// Endpoint overrides the SQS endpoint (gust's local cloud serves SQS on
	// its one port); STS is called there too. Empty means AWS.
	Endpoint string
	Region   string
	Profile  string
	// Credentials, when set, replace the chain's credentials: the
	// platform's, which assume each tenant's role.
	Credentials aws.CredentialsProvider
	// Roles returns the role to assume for a tenant (see
	// awsconfig.Tenants); the default tenant without one reads with the
	// configuration's own credentials, as providers/ec2 does.
	Roles func(tenant string) (roleARN string, ok bool)
	// Queue names each tenant's events queue in the tenant's own account:
	// a queue name, or a URL whose last path element is one (see New).
	Queue string
}

// Accounts gives each tenant's events queue: the queue named
// Options.Queue in the tenant's account, read with the tenant's
// credentials, so one tenant's events never reach another's fleets.
// Queues are built once per tenant and kept.
type Accounts struct {
	queues *awsconfig.Clients[*Queue]
	// newAPI builds a tenant's SQS client from its configuration; tests
	// replace it before the first Queue.
	newAPI func(aws.Config) API
}

// NewAccountsFromConfig builds the tenants' queues from the standard
// configuration chain (or o.Credentials).
func NewAccountsFromConfig(ctx context.Context, o Options) (*Accounts, error) {
	if !ValidQueueName(QueueName(o.Queue)) {
		return nil, providers.NewInvalidError(fmt.Errorf("events queue %q: want a queue name (1 to 80 letters, digits, '-' or '_') or its URL", o.Queue))
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Endpoint: o.Endpoint, Region: o.Region, Profile: o.Profile, Credentials: o.Credentials})
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("no aws region configured: set --region, AWS_REGION or a profile's region")
	}
	return NewAccounts(cfg, o), nil
}

// NewAccounts builds the tenants' queues from cfg, for callers that
// configure the SDK themselves. o.Region, o.Profile and o.Credentials are
// ignored (cfg has them).
func NewAccounts(cfg aws.Config, o Options) *Accounts {
	a := &Accounts{newAPI: func(c aws.Config) API {
		return sqs.NewFromConfig(c, func(so *sqs.Options) {
			if o.Endpoint != "" {
				so.BaseEndpoint = aws.String(o.Endpoint)
			}
		})
	}}
	tenants := awsconfig.Tenants{RoleARN: o.Roles, Own: providers.DefaultTenant}
	a.queues = awsconfig.NewClients(cfg, o.Endpoint, tenants, func(c aws.Config) *Queue { return New(a.newAPI(c), o.Queue) })
	return a
}

// Queue returns tenant's events queue ("" is providers.DefaultTenant). It
// makes sure the tenant's credentials are at hand first, so a worker that
// cannot act for the tenant gets NotFoundError (no role, or the cloud
// refused it) or InvalidError (a malformed name, the worker's own
// credentials rejected) here; other errors are transient.
func (a *Accounts) Queue(ctx context.Context, tenant string) (*Queue, error) {
	return a.queues.Get(ctx, tenant)
}

// Poll polls tenant's queue once, waiting up to wait for messages (see
// Queue.PollWait, and Accounts.Queue for the errors).
func (a *Accounts) Poll(ctx context.Context, tenant string, wait time.Duration, handle Handler) (Result, error) {
	q, err := a.Queue(ctx, tenant)
	if err != nil {
		return Result{}, err
	}
	return q.PollWait(ctx, wait, handle)
}
