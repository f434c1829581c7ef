package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers/sqsevents"
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
			metricsAddressFlag(),
			&cli.StringFlag{Name: "identity", Usage: "worker identity shown in the Web UI (default pid@host)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"GUST_LOG_LEVEL"}, Usage: "log level: debug, info (adds fleet progress: phase changes, capacity waits, throttled cloud calls), warn or error"},
			&cli.BoolFlag{Name: "metrics-subtenant-label", Usage: "label the function invocation metrics with the sub-tenant too (one series per sub-tenant: mind the cardinality)"},
			&cli.StringFlag{Name: "tenant", EnvVars: []string{"GUST_TENANT"}, Usage: "on AWS (no --endpoint): the function tenant the worker's own account belongs to (single-account mode)"},
			&cli.GenericFlag{Name: "tenant-role", Value: &rawList{}, Usage: "act for a tenant by assuming a role in its account, as `TENANT=ROLE_ARN` (repeatable; with --endpoint it overrides the tenant's platform role)"},
			&cli.StringFlag{Name: "events-queue", Usage: "SQS queue, in each tenant's account, that an EventBridge rule fills with the EC2 instance events; fleets then get events instead of polling. A `NAME` or a URL (its last path element is the name). Default with --endpoint: " + sqsevents.LocalCloudQueue + "; on AWS: none. --events-queue \"\" turns events off"},
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
	if err := checkEndpoint(c.String("endpoint")); err != nil {
		return err
	}
	logLevel, err := parseLogLevel(c.String("log-level"))
	if err != nil {
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
	opts.Logger = platform.QuietLoggerAt(logLevel)
	if keys, _ := codecKeys(c); len(keys) == 0 {
		// Not fatal: fleets and most functions carry no secrets. A deploy
		// with variables fails on this worker with the codec's error.
		fmt.Fprintf(os.Stderr, "gust: warning: no codec key (--codec-key-file, default %s): this worker cannot run deploys or lists of functions that have variables\n", defaultCodecKeyFile())
	}

	metricsLn, err := listenMetrics(c)
	if err != nil {
		return err
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
	// Events are on by default against a local cloud, whose every account
	// has the queue; on AWS only when a queue is named; --events-queue ""
	// turns them off.
	eventsQueue := c.String("events-queue")
	if !c.IsSet("events-queue") && c.String("endpoint") != "" {
		eventsQueue = sqsevents.LocalCloudQueue
	}
	wcfg := platform.WorkerConfig{
		Endpoint:    c.String("endpoint"),
		EventsQueue: eventsQueue,
		Metrics:     metrics.Handler,
		LaunchRate:  c.Float64("launch-rate"),
		Identity:    c.String("identity"),
		Tenant:      c.String("tenant"),
		TenantRoles: roles,
		// Opt-in: a series per sub-tenant.
		SubTenantMetrics: c.Bool("metrics-subtenant-label"),
	}
	// The launch rate is the platform's, set on the launch queue: this
	// worker sets it only where nobody has (worker.ClaimLaunchRate).
	rate, conflict, err := worker.ClaimLaunchRate(ctx, cl, opts.Namespace, c.Float64("launch-rate"), c.IsSet("launch-rate"))
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "gust: warning: the launch rate on task queue %s could not be read or set (%s); this worker asks for %g/s when it polls, as workers did before\n",
			workflows.LaunchTaskQueue, oneLine(err.Error()), c.Float64("launch-rate"))
		rate = worker.LaunchRate{Rate: c.Float64("launch-rate"), Source: worker.LaunchRateWorker}
	case conflict:
		fmt.Fprintf(os.Stderr, "gust: warning: the platform's launch rate is %g/s, set on task queue %s; --launch-rate %g is ignored (change the platform's with: gust fleet set-rate %g)\n",
			rate.Rate, workflows.LaunchTaskQueue, c.Float64("launch-rate"), c.Float64("launch-rate"))
	}
	w, err := platform.StartWorkers(ctx, cl, wcfg)
	if err != nil {
		return err
	}
	defer w.Stop()

	defer serveMetrics(metricsLn, metrics)()
	endpoint := c.String("endpoint")
	if endpoint == "" {
		endpoint = "AWS (standard config chain)"
	}
	fmt.Fprintf(c.App.Writer, "gust worker polling %s (namespace %s), cloud %s, launch rate %g/s (the platform's), tenants: %s", opts.HostPort, opts.Namespace, endpoint, rate.Rate, servedTenants(wcfg))
	if eventsQueue != "" {
		fmt.Fprintf(c.App.Writer, ", instance events from queue %s", eventsQueue)
	} else {
		fmt.Fprint(c.App.Writer, ", no instance events (fleets poll)")
	}
	if metricsLn != nil {
		fmt.Fprintf(c.App.Writer, ", metrics http://%s/metrics", metricsLn.Addr())
	}
	fmt.Fprintln(c.App.Writer)
	<-ctx.Done()
	return nil
}

// metricsAddressFlag is where `gust worker` and `gust dev` serve metrics.
// Loopback by default: /metrics tells whoever can reach it what the
// platform runs; open it up deliberately, for a Prometheus elsewhere.
func metricsAddressFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-address", Value: "127.0.0.1", Usage: "IP the /metrics endpoint listens on (0.0.0.0: every interface)"}
}

// listenMetrics opens --metrics-address:--metrics-port, or nothing when the
// port is 0. A bad or taken address is a usage error.
func listenMetrics(c *cli.Context) (net.Listener, error) {
	port := c.Int("metrics-port")
	if err := checkPort("metrics-port", port, true); err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, nil
	}
	ip := c.String("metrics-address")
	if net.ParseIP(ip) == nil {
		return nil, usagef("--metrics-address %q: want an IP address such as 127.0.0.1", ip)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, usagef("--metrics-port %d on %s: %v", port, ip, err)
	}
	return ln, nil
}

// serveMetrics serves m's /metrics on ln until the returned stop is
// called; a nil ln serves nothing.
func serveMetrics(ln net.Listener, m *worker.Metrics) (stop func()) {
	if ln == nil {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.HTTP)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "gust: metrics server: %v\n", err)
		}
	}()
	return func() { _ = srv.Close() }
}

// parseLogLevel reads --log-level: exactly debug, info, warn or error (any
// case); anything else is a usage error.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, usagef("--log-level %q: want debug, info, warn or error", s)
}
