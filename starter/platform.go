package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/localcloud"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/worker"
)

// platformConfig is everything `gust dev` and `gust demo` start in one
// process.
type platformConfig struct {
	IP        string
	Port      int // frontend gRPC; 0 picks a free port
	UIPort    int // 0 turns the UI off; -1 picks a free port
	CloudPort int // 0 picks a free port
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

	cloudCfg := cfg.Cloud
	cloudCfg.IP = cfg.IP
	cloudCfg.Port = cfg.CloudPort
	cloudCfg.StateDir = filepath.Join(stateDir, "cloud")
	if p.cloud, err = localcloud.Start(cloudCfg); err != nil {
		return nil, err
	}

	p.client, err = dialOptions(ctx, client.Options{
		HostPort:  p.server.FrontendAddress(),
		Namespace: "default",
		Logger:    quietLogger(),
	})
	if err != nil {
		return nil, err
	}
	if cfg.NoWorker {
		return p, nil
	}
	p.workers, err = startWorkers(ctx, p.client, workerConfig{Endpoint: p.cloud.Endpoint(), LaunchRate: cfg.LaunchRate})
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
	// Tenant is, on AWS, the tenant this worker's account belongs to (the
	// local cloud tells tenants apart by access key instead).
	Tenant string
}

// startWorkers builds the AWS providers for cfg.Endpoint and starts gust's
// workers on c.
func startWorkers(ctx context.Context, c client.Client, cfg workerConfig) (*worker.Workers, error) {
	compute, err := ec2provider.NewFromConfig(ctx, ec2provider.Options{Endpoint: cfg.Endpoint})
	if err != nil {
		return nil, fmt.Errorf("configuring ec2 provider: %w", err)
	}
	functions, err := lambdaprovider.NewFromConfig(ctx, lambdaprovider.Options{Endpoint: cfg.Endpoint, Tenant: cfg.Tenant})
	if err != nil {
		return nil, fmt.Errorf("configuring lambda provider: %w", err)
	}
	w, err := worker.New(c, worker.Options{
		Compute:    compute,
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
	if p.workers != nil {
		p.workers.Stop()
	}
	if p.client != nil {
		p.client.Close()
	}
	if p.cloud != nil {
		errs = append(errs, p.cloud.Close())
	}
	if p.server != nil {
		errs = append(errs, p.server.Stop())
	}
	if p.tempDir != "" {
		errs = append(errs, os.RemoveAll(p.tempDir))
	}
	return errors.Join(errs...)
}

// shutdownTimeout bounds a clean shutdown before gust gives up waiting.
const shutdownTimeout = 15 * time.Second
