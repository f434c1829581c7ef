// Package platform is gust on one machine, as a library: it composes the
// embedded Temporal server (devserver), the local cloud (localcloud), the
// tenant registry, the payload codec's key, the gateway and gust's workers
// into one running Platform. `gust dev`, `gust demo`, the benchmarks and the
// integration tests all start it through Start.
//
// StartWorkers is the worker half on its own, for a worker process against
// any Temporal cluster and cloud (`gust worker`).
//
// It embeds the Temporal server, so it takes minutes to build; only the
// gust command, the demo, the benchmarks and the integration tests import
// it.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/codec"
	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/events"
	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/localcloud"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/providers/sqsevents"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/worker"
)

// RegistryFileName is the tenant registry's file in a state directory. The
// registry is shared by the platform (its local cloud and gateway verify
// against it), `gust gateway` and the `gust tenant` commands.
const RegistryFileName = "tenants.db"

// Config is everything Start starts in one process.
type Config struct {
	IP        string // every service binds to it
	Port      int    // frontend gRPC; 0 picks a free port
	UIPort    int    // 0 turns the UI off; -1 picks a free port
	CloudPort int    // 0 picks a free port
	// GatewayPort is the gateway's (Lambda's Invoke API for tenants'
	// applications); 0 picks a free port.
	GatewayPort int
	// StateDir holds temporal.db, the tenant registry, the codec key and
	// the local cloud's state; it is created if missing. Empty means
	// ephemeral: history in memory, the rest in a temporary directory
	// removed on Close.
	StateDir string
	// Cloud configures the local cloud; Start sets its IP, Port, StateDir
	// and Registry.
	Cloud localcloud.Config
	// LaunchRate is the platform's fill-path launch rate, set on the
	// launch queue at start (worker.SetLaunchRate) for every worker;
	// 0 means worker.DefaultLaunchRate.
	LaunchRate float64
	// NoWorker starts no worker: invocations and fleets wait for workers
	// elsewhere.
	NoWorker bool
	// Logger receives the Temporal server's and the gateway's logs; nil
	// leaves each its default (see devserver.Config and gateway.Config).
	Logger *slog.Logger
	// Metrics receives the metrics of the platform's Temporal client, and
	// so of its worker and gateway (worker.NewMetrics serves them to
	// Prometheus); nil records none.
	Metrics client.MetricsHandler
	// EventsQueue is the queue in each tenant's account that the worker
	// reads instance events from; empty is the local cloud's own,
	// sqsevents.LocalCloudQueue, so fleets are event-driven by default.
	// NoEvents turns events off: fleets poll.
	EventsQueue string
	NoEvents    bool
}

// Platform is a running single-machine gust.
type Platform struct {
	server  *devserver.Server
	cloud   *localcloud.Server
	client  client.Client
	workers *worker.Workers
	tempDir string // removed on Close; only for ephemeral platforms
	// gateway serves Lambda's Invoke API to tenants' applications.
	gateway *gateway.Server
	// codecKeyFile is the key that encrypts secrets in Temporal payloads,
	// in the state directory (the temporary one when ephemeral).
	codecKeyFile string
	// registry is the tenant registry, <state-dir>/tenants.db (the
	// temporary state dir when ephemeral): the local cloud verifies every
	// request against it. registryFile is its path.
	registry     *tenants.Registry
	registryFile string
	// defaultCreds is the default tenant's newest key, platformCreds the
	// platform principal's key that the worker signs with. Secrets: never
	// printed or logged.
	defaultCreds, platformCreds tenants.Credentials
}

// Start starts the embedded Temporal server, the tenant registry (with the
// default tenant), the local cloud verifying against it, the gateway and,
// unless NoWorker, a worker using that cloud, all sharing one Temporal
// client that encrypts secrets with the state directory's codec key. On
// error everything already started is stopped again. Close stops it.
func Start(ctx context.Context, cfg Config) (_ *Platform, err error) {
	p := &Platform{}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()

	stateDir := cfg.StateDir
	dbFile := ""
	if stateDir == "" {
		if p.tempDir, err = os.MkdirTemp("", "gust-"); err != nil {
			return nil, fmt.Errorf("creating temporary state dir: %w", err)
		}
		stateDir = p.tempDir
	} else {
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating state dir: %w", err)
		}
		dbFile = devserver.DefaultDatabaseFile(stateDir)
	}
	// Created on first start and kept, like the history it protects: a
	// new key could not read the secrets already in temporal.db.
	p.codecKeyFile = filepath.Join(stateDir, codec.KeyFileName)
	codecKey, _, err := codec.EnsureKeyFile(p.codecKeyFile)
	if err != nil {
		return nil, err
	}

	p.server, err = devserver.Start(devserver.Config{
		IP:           cfg.IP,
		Port:         cfg.Port,
		UIPort:       cfg.UIPort,
		DatabaseFile: dbFile,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, err
	}

	// Opened once the server holds the state directory, so two gust devs
	// never race to create the default tenant.
	p.registryFile = filepath.Join(stateDir, RegistryFileName)
	if p.registry, err = tenants.Open(p.registryFile); err != nil {
		return nil, err
	}
	// Fleets launch into the default tenant's account unless told
	// otherwise, so every platform has it.
	if p.defaultCreds, err = p.EnsureTenant(ctx, tenants.DefaultTenant); err != nil {
		return nil, err
	}
	if p.platformCreds, err = p.registry.PlatformCredentials(ctx); err != nil {
		return nil, err
	}

	cloudCfg := cfg.Cloud
	cloudCfg.IP = cfg.IP
	cloudCfg.Port = cfg.CloudPort
	cloudCfg.StateDir = filepath.Join(stateDir, "cloud")
	// The cloud verifies against the registry the tenant commands manage,
	// not one of its own under cloud/.
	cloudCfg.Registry = p.registry
	if p.cloud, err = localcloud.Start(cloudCfg); err != nil {
		return nil, err
	}

	if p.client, err = dial(ctx, client.Options{
		HostPort:         p.server.FrontendAddress(),
		Namespace:        "default",
		DataConverter:    codec.DataConverter(codecKey),
		FailureConverter: codec.FailureConverter(),
		Logger:           QuietLogger(),
		MetricsHandler:   cfg.Metrics,
	}); err != nil {
		return nil, err
	}
	// The platform owns its launch rate: it is set on the launch queue,
	// where every worker, this one and any `gust worker` joining, obeys it
	// (worker.SetLaunchRate).
	launchRate := cfg.LaunchRate
	if launchRate == 0 {
		launchRate = worker.DefaultLaunchRate
	}
	if err := worker.SetLaunchRate(ctx, p.client, "default", launchRate, "gust dev --launch-rate"); err != nil {
		return nil, err
	}
	// The gateway shares the worker's client, so its starts can be eager;
	// with NoWorker it starts invocations for workers elsewhere.
	p.gateway, err = gateway.Listen(net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.GatewayPort)),
		gateway.Config{Client: p.client, Registry: p.registry, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("gateway port %d is not available: %w", cfg.GatewayPort, err)
	}
	if cfg.NoWorker {
		return p, nil
	}
	// The in-process worker signs as the platform principal and assumes
	// each tenant's role, as a `gust worker --endpoint` would with
	// platform-credentials.
	eventsQueue := cfg.EventsQueue
	switch {
	case cfg.NoEvents:
		eventsQueue = ""
	case eventsQueue == "":
		eventsQueue = sqsevents.LocalCloudQueue
	}
	p.workers, err = StartWorkers(ctx, p.client, WorkerConfig{
		Endpoint:            p.cloud.Endpoint(),
		LaunchRate:          cfg.LaunchRate,
		PlatformCredentials: credentials.NewStaticCredentialsProvider(p.platformCreds.AccessKeyID, p.platformCreds.SecretAccessKey, ""),
		EventsQueue:         eventsQueue,
		Metrics:             cfg.Metrics,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// WorkerConfig is what a worker process needs beyond its Temporal client.
type WorkerConfig struct {
	// Endpoint is the cloud endpoint; empty means AWS through the standard
	// configuration chain.
	Endpoint   string
	LaunchRate float64
	Identity   string
	// Tenant is, on AWS, the function tenant the worker's own account
	// belongs to (single-account mode, `gust worker --tenant`).
	Tenant string
	// TenantRoles maps tenants to the role the worker assumes to act in
	// their account (`--tenant-role`); see WorkerConfig.RoleARN.
	TenantRoles map[string]string
	// PlatformCredentials, when set, replace the standard configuration
	// chain's credentials as the worker's own: the platform principal's
	// key, which `gust dev` reads from its tenant registry.
	PlatformCredentials aws.CredentialsProvider
	// SubTenantMetrics labels the invocation metrics with the sub-tenant
	// (worker.Options.SubTenantMetrics).
	SubTenantMetrics bool
	// EventsQueue names the queue, in each tenant's account, of the
	// EventBridge EC2 instance events the worker delivers to fleets
	// (`--events-queue`); empty means none, and fleets poll.
	EventsQueue string
	// Metrics receives the event router's counters: the MetricsHandler of
	// the worker's client (worker.Options.Metrics); nil records none.
	Metrics client.MetricsHandler
}

// StartWorkers builds the AWS providers for cfg.Endpoint and starts gust's
// workers on c; the caller stops them. Both providers act for each tenant
// in its own account, through the role cfg.RoleARN names. The workers read
// and write function variables only if c uses codec.DataConverter with the
// platform's codec key (see worker.New).
func StartWorkers(ctx context.Context, c client.Client, cfg WorkerConfig) (*worker.Workers, error) {
	// A fleet that names no image launches the local cloud's (LocalStack
	// takes any id); on AWS it must name one.
	image := ""
	if cfg.Endpoint != "" {
		image = ec2provider.LocalCloudImageID
	}
	accounts, err := ec2provider.NewAccountsFromConfig(ctx, ec2provider.Options{
		Endpoint: cfg.Endpoint, Credentials: cfg.PlatformCredentials, Roles: cfg.RoleARN, DefaultImageID: image,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring ec2 provider: %w", err)
	}
	functions, err := lambdaprovider.NewFromConfig(ctx, lambdaprovider.Options{
		Endpoint: cfg.Endpoint, Credentials: cfg.PlatformCredentials, Roles: cfg.RoleARN, Tenant: cfg.Tenant,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring lambda provider: %w", err)
	}
	// An interface, so that no queue is a nil Source, not a nil pointer.
	var queues events.Source
	if cfg.EventsQueue != "" {
		q, err := sqsevents.NewAccountsFromConfig(ctx, sqsevents.Options{
			Endpoint: cfg.Endpoint, Credentials: cfg.PlatformCredentials, Roles: cfg.RoleARN, Queue: cfg.EventsQueue,
		})
		if err != nil {
			return nil, fmt.Errorf("configuring the events queue: %w", err)
		}
		queues = q
	}
	w, err := worker.New(c, worker.Options{
		Accounts:         accounts,
		Functions:        functions,
		LaunchRate:       cfg.LaunchRate,
		Identity:         cfg.Identity,
		SubTenantMetrics: cfg.SubTenantMetrics,
		Events:           queues,
		Metrics:          cfg.Metrics,
	})
	if err != nil {
		return nil, err
	}
	if err := w.Start(); err != nil {
		return nil, err
	}
	return w, nil
}

// RoleARN is the role cfg's worker assumes to act for tenant: the one
// TenantRoles names, else, on a local cloud or LocalStack (an Endpoint),
// the tenant's platform role there. On AWS a tenant without a TenantRoles
// entry has none.
func (cfg WorkerConfig) RoleARN(tenant string) (string, bool) {
	if arn, ok := cfg.TenantRoles[tenant]; ok {
		return arn, true
	}
	if cfg.Endpoint != "" {
		return tenants.PlatformRoleARN(tenant), true
	}
	return "", false
}

// Close stops everything in reverse order of start and removes an
// ephemeral platform's state. Safe on a partly started platform.
func (p *Platform) Close() error {
	var errs []error
	if p.gateway != nil {
		errs = append(errs, p.gateway.Close())
	}
	if p.workers != nil {
		p.workers.Stop()
	}
	if p.client != nil {
		p.client.Close()
	}
	if p.cloud != nil {
		errs = append(errs, p.cloud.Close())
	}
	if p.registry != nil {
		errs = append(errs, p.registry.Close())
	}
	if p.server != nil {
		errs = append(errs, p.server.Stop())
	}
	if p.tempDir != "" {
		errs = append(errs, os.RemoveAll(p.tempDir))
	}
	return errors.Join(errs...)
}

// Client is the platform's Temporal client, in namespace default, with the
// codec key: the worker's own, so workflows it starts may start eagerly.
func (p *Platform) Client() client.Client { return p.client }

// Server is the embedded Temporal server: its frontend and Web UI
// addresses.
func (p *Platform) Server() *devserver.Server { return p.server }

// Cloud is the local cloud: EC2, Lambda and STS on one endpoint.
func (p *Platform) Cloud() *localcloud.Server { return p.cloud }

// Gateway is the gateway: Lambda's Invoke API for tenants' applications.
func (p *Platform) Gateway() *gateway.Server { return p.gateway }

// Registry is the tenant registry the cloud and the gateway verify
// against.
func (p *Platform) Registry() *tenants.Registry { return p.registry }

// RegistryFile is the registry's path, <state dir>/tenants.db (in the
// temporary state directory when ephemeral).
func (p *Platform) RegistryFile() string { return p.registryFile }

// CodecKeyFile is the key that encrypts secrets in Temporal payloads, in
// the state directory; other clients and workers load it to read them.
func (p *Platform) CodecKeyFile() string { return p.codecKeyFile }

// DefaultCredentials is the default tenant's newest key. A secret: never
// print or log it.
func (p *Platform) DefaultCredentials() tenants.Credentials { return p.defaultCreds }

// PlatformCredentials is the platform principal's key, which the worker
// signs with to assume tenants' roles. A secret: never print or log it.
func (p *Platform) PlatformCredentials() tenants.Credentials { return p.platformCreds }

// HasWorker reports whether the platform runs a worker (Config.NoWorker
// was false).
func (p *Platform) HasWorker() bool { return p.workers != nil }

// Shutdown is Close for a process about to exit: it gives up after
// ShutdownTimeout, so a wedged component can never keep the process from
// exiting.
func (p *Platform) Shutdown() error {
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(ShutdownTimeout):
		return fmt.Errorf("shutdown did not finish within %v", ShutdownTimeout)
	}
}

// ShutdownTimeout bounds Shutdown.
const ShutdownTimeout = 15 * time.Second

// EnsureTenant creates tenant name in the platform's registry unless it
// exists, and returns its newest key either way. The worker can act for a
// tenant only once it is registered: its role is the registry's.
func (p *Platform) EnsureTenant(ctx context.Context, name string) (tenants.Credentials, error) {
	creds, err := p.registry.Create(ctx, name)
	if tenants.IsExists(err) {
		return p.registry.Credentials(ctx, name)
	}
	return creds, err
}

// dial connects to Temporal, failing fast with one line when the frontend
// cannot be reached.
func dial(ctx context.Context, opts client.Options) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to temporal at %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	return cl, nil
}
