package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/codec"
	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/localcloud"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/worker"
)

// platformConfig is everything `gust dev` and `gust demo` start in one
// process.
type platformConfig struct {
	IP        string
	Port      int // frontend gRPC; 0 picks a free port
	UIPort    int // 0 turns the UI off; -1 picks a free port
	CloudPort int // 0 picks a free port
	// GatewayPort is the gateway's (Lambda's Invoke API for tenants'
	// applications); 0 picks a free port.
	GatewayPort int
	// StateDir holds temporal.db and the local cloud's state. Empty means
	// ephemeral: history in memory, the cloud in a temporary directory
	// removed on Close.
	StateDir   string
	Cloud      localcloud.Config
	LaunchRate float64
	NoWorker   bool
	Logger     *slog.Logger
}

// platform is a running single-machine gust.
type platform struct {
	server  *devserver.Server
	cloud   *localcloud.Server
	client  client.Client
	workers *worker.Workers
	tempDir string // removed on Close; only for ephemeral platforms
	// gateway serves Lambda's Invoke API to tenants' applications.
	gateway *gatewayServer
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
	// credentialsFile and platformCredentialsFile are the shared-credentials
	// files `gust dev` wrote for them; empty for demo and bench.
	credentialsFile, platformCredentialsFile string
}

// startPlatform starts the embedded Temporal server, the local cloud and,
// unless NoWorker, a worker using that cloud. On error everything already
// started is stopped again.
func startPlatform(ctx context.Context, cfg platformConfig) (_ *platform, err error) {
	p := &platform{}
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
	p.registryFile = filepath.Join(stateDir, registryFileName)
	if p.registry, err = tenants.Open(p.registryFile); err != nil {
		return nil, err
	}
	// Fleets launch into the default tenant's account unless told
	// otherwise, so every platform has it.
	if p.defaultCreds, err = ensureTenant(ctx, p.registry, tenants.DefaultTenant); err != nil {
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

	p.client, err = dialOptions(ctx, client.Options{
		HostPort:      p.server.FrontendAddress(),
		Namespace:     "default",
		DataConverter: codec.DataConverter(codecKey),
		Logger:        quietLogger(),
	})
	if err != nil {
		return nil, err
	}
	// The gateway shares the worker's client, so its starts can be eager;
	// with NoWorker it starts invocations for workers elsewhere.
	if p.gateway, err = startGateway(cfg.IP, cfg.GatewayPort, p.client, p.registry, cfg.Logger); err != nil {
		return nil, fmt.Errorf("gateway port %d is not available: %w", cfg.GatewayPort, err)
	}
	if cfg.NoWorker {
		return p, nil
	}
	// The in-process worker signs as the platform principal and assumes
	// each tenant's role, as a `gust worker --endpoint` would with
	// platform-credentials.
	p.workers, err = startWorkers(ctx, p.client, workerConfig{
		Endpoint:            p.cloud.Endpoint(),
		LaunchRate:          cfg.LaunchRate,
		PlatformCredentials: credentials.NewStaticCredentialsProvider(p.platformCreds.AccessKeyID, p.platformCreds.SecretAccessKey, ""),
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// workerConfig is what a worker process needs beyond its Temporal client.
type workerConfig struct {
	// Endpoint is the cloud endpoint; empty means AWS through the standard
	// configuration chain.
	Endpoint   string
	LaunchRate float64
	Identity   string
	// Tenant is, on AWS, the function tenant the worker's own account
	// belongs to (single-account mode, `gust worker --tenant`).
	Tenant string
	// TenantRoles maps tenants to the role the worker assumes to act in
	// their account (`--tenant-role`); see workerConfig.roleARN.
	TenantRoles map[string]string
	// PlatformCredentials, when set, replace the standard configuration
	// chain's credentials as the worker's own: the platform principal's
	// key, which `gust dev` reads from its tenant registry.
	PlatformCredentials aws.CredentialsProvider
}

// startWorkers builds the AWS providers for cfg.Endpoint and starts gust's
// workers on c. Both providers act for each tenant in its own account,
// through the role cfg.roleARN names.
func startWorkers(ctx context.Context, c client.Client, cfg workerConfig) (*worker.Workers, error) {
	accounts, err := ec2provider.NewAccountsFromConfig(ctx, ec2provider.Options{
		Endpoint: cfg.Endpoint, Credentials: cfg.PlatformCredentials, Roles: cfg.roleARN,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring ec2 provider: %w", err)
	}
	functions, err := lambdaprovider.NewFromConfig(ctx, lambdaprovider.Options{
		Endpoint: cfg.Endpoint, Credentials: cfg.PlatformCredentials, Roles: cfg.roleARN, Tenant: cfg.Tenant,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring lambda provider: %w", err)
	}
	w, err := worker.New(c, worker.Options{
		Accounts:   accounts,
		Functions:  functions,
		LaunchRate: cfg.LaunchRate,
		Identity:   cfg.Identity,
	})
	if err != nil {
		return nil, err
	}
	if err := w.Start(); err != nil {
		return nil, err
	}
	return w, nil
}

// Close stops everything in reverse order of start. Safe on a partly
// started platform.
func (p *platform) Close() error {
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

// ensureTenant creates tenant name in reg unless it exists, and returns its
// newest key either way.
func ensureTenant(ctx context.Context, reg *tenants.Registry, name string) (tenants.Credentials, error) {
	creds, err := reg.Create(ctx, name)
	if tenants.IsExists(err) {
		return reg.Credentials(ctx, name)
	}
	return creds, err
}

// shutdownTimeout bounds a clean shutdown before gust gives up waiting.
const shutdownTimeout = 15 * time.Second
