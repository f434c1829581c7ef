package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/worker"
	"github.com/gust-dev/gust/workflows"
)

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run a gust worker against any Temporal frontend (a cluster, Temporal Cloud, or gust dev)",
		Description: `Polls the gust and gust-launch task queues. Run as many as you like: the
launch rate on gust-launch is enforced by the Temporal server across all of
them. Cloud calls go to --endpoint (the local cloud of a gust dev, or
LocalStack), or to AWS through the standard AWS configuration chain when it
is empty.

The worker acts for a tenant by assuming a role in the tenant's account (STS
AssumeRole) and signing with the temporary credentials. Its own credentials,
from the standard chain (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, the
AWS_ACCESS_KEY_ID variables), are the platform's principal. With --endpoint,
tenant T's role is the local cloud's arn:aws:iam::<T's account>:role/gust-platform
unless --tenant-role names another. On AWS, --tenant-role TENANT=ROLE_ARN
(repeatable) maps tenants to cross-account roles, so one worker serves many
tenants' accounts; fleets of the default tenant without a role launch in the
worker's own account, and --tenant names the one function tenant that
account belongs to (single-account mode).`,
		Flags: append(connectionFlags(),
			&cli.StringFlag{Name: "endpoint", EnvVars: []string{"GUST_ENDPOINT"}, Usage: "cloud endpoint URL, e.g. http://127.0.0.1:4566 (default: AWS via the standard config chain)"},
			&cli.Float64Flag{Name: "launch-rate", Value: worker.DefaultLaunchRate, Usage: "fill-path launch rate, instances per second, across all workers"},
			&cli.IntFlag{Name: "metrics-port", Value: 9090, Usage: "Prometheus /metrics port (0 turns it off)"},
			&cli.StringFlag{Name: "identity", Usage: "worker identity shown in the Web UI (default pid@host)"},
			&cli.StringFlag{Name: "tenant", EnvVars: []string{"GUST_TENANT"}, Usage: "on AWS (no --endpoint): the function tenant the worker's own account belongs to (single-account mode)"},
			&cli.GenericFlag{Name: "tenant-role", Value: &rawList{}, Usage: "act for a tenant by assuming a role in its account, as `TENANT=ROLE_ARN` (repeatable; with --endpoint it overrides the tenant's platform role)"},
		),
		Action: runWorker,
	}
}

func runWorker(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if c.Float64("launch-rate") <= 0 {
		return usagef("--launch-rate must be positive")
	}
	if err := checkPort("metrics-port", c.Int("metrics-port"), true); err != nil {
		return err
	}
	if err := checkEndpoint(c.String("endpoint")); err != nil {
		return err
	}
	if t := c.String("tenant"); t != "" {
		if c.String("endpoint") != "" {
			return usagef("--tenant is for AWS; with --endpoint the worker acts for every tenant through its platform role")
		}
		if err := workflows.ValidateTenantID(t); err != nil {
			return usagef("--tenant: %v", err)
		}
	}
	roles, err := parseTenantRoles(*c.Generic("tenant-role").(*rawList))
	if err != nil {
		return err
	}
	if t := c.String("tenant"); roles[t] != "" {
		return usagef("--tenant %s uses the worker's own account; it cannot also have a --tenant-role", t)
	}
	opts, err := clientOptions(c)
	if err != nil {
		return err
	}
	if keys, _ := codecKeys(c); len(keys) == 0 {
		// Not fatal: fleets and most functions carry no secrets. A deploy
		// with variables fails on this worker with the codec's error.
		fmt.Fprintf(os.Stderr, "gust: warning: no codec key (--codec-key-file, default %s): this worker cannot run deploys or lists of functions that have variables\n", defaultCodecKeyFile())
	}

	var metricsLn net.Listener
	if port := c.Int("metrics-port"); port != 0 {
		if metricsLn, err = net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(port))); err != nil {
			return usagef("--metrics-port %d: %v", port, err)
		}
	}
	metrics := worker.NewMetrics()
	defer metrics.Close()
	opts.MetricsHandler = metrics.Handler

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := dialOptions(ctx, opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	wcfg := platform.WorkerConfig{
		Endpoint:    c.String("endpoint"),
		LaunchRate:  c.Float64("launch-rate"),
		Identity:    c.String("identity"),
		Tenant:      c.String("tenant"),
		TenantRoles: roles,
	}
	w, err := platform.StartWorkers(ctx, cl, wcfg)
	if err != nil {
		return err
	}
	defer w.Stop()

	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.HTTP)
		srv := &http.Server{Handler: mux}
		go func() {
			if err := srv.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "gust: metrics server: %v\n", err)
			}
		}()
		defer srv.Close()
	}
	endpoint := c.String("endpoint")
	if endpoint == "" {
		endpoint = "AWS (standard config chain)"
	}
	fmt.Fprintf(c.App.Writer, "gust worker polling %s (namespace %s), cloud %s, launch rate %g/s, tenants: %s", opts.HostPort, opts.Namespace, endpoint, c.Float64("launch-rate"), servedTenants(wcfg))
	if metricsLn != nil {
		fmt.Fprintf(c.App.Writer, ", metrics http://%s/metrics", metricsLn.Addr())
	}
	fmt.Fprintln(c.App.Writer)
	<-ctx.Done()
	return nil
}
