package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/localcloud"
	ec2cloud "github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers/sqsevents"
	"github.com/gust-dev/gust/worker"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run the whole platform on this machine: Temporal, Web UI, local cloud and a worker",
		Description: `Starts, in one process, the embedded Temporal server on SQLite, the Temporal
Web UI, gust's local cloud (EC2- and Lambda-compatible APIs on one port) and a
gust worker. History survives restarts on the same --state-dir.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "ip", Value: "127.0.0.1", Usage: "IP every service binds to"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 7233, Usage: "Temporal frontend gRPC port"},
			&cli.IntFlag{Name: "ui-port", Value: 8233, Usage: "Temporal Web UI port (0 turns the UI off)"},
			&cli.StringFlag{Name: "state-dir", Value: ".gust", EnvVars: []string{"GUST_STATE_DIR"}, Usage: "directory for temporal.db and the local cloud's state"},
			&cli.BoolFlag{Name: "ephemeral", Usage: "keep all state in memory; nothing is written to --state-dir"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level: debug, info, warn or error; the Temporal server's own warnings show at info"},
			&cli.BoolFlag{Name: "no-worker", Usage: "run the server, Web UI and local cloud only"},
			&cli.IntFlag{Name: "gateway-port", Value: gateway.DefaultPort, Usage: "gateway port: Lambda's Invoke API for tenants' applications (0 picks a free port)"},
			&cli.Float64Flag{Name: "launch-rate", Value: worker.DefaultLaunchRate, Usage: "fill-path launch rate, instances per second, enforced by the Temporal server across all workers"},
			// Off by default, unlike gust worker's 9090: a gust dev and a
			// gust worker often share a machine.
			&cli.IntFlag{Name: "metrics-port", Usage: "Prometheus /metrics port of the in-process worker, as gust worker's (default 0: off)"},
			metricsAddressFlag(),
			&cli.StringFlag{Name: "events-queue", Value: sqsevents.LocalCloudQueue, Usage: "the worker's instance events queue, which every local cloud account has; fleets get events instead of polling. --events-queue \"\" turns events off, so fleets poll"},
		}, cloudFlags()...),
		Action: runDev,
	}
}

// cloudFlags configure the local cloud; `gust dev` and `gust demo` share
// them.
func cloudFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "cloud-port", Value: 4566, Usage: "local cloud port: EC2 Query and Lambda REST APIs (0 picks a free port)"},
		&cli.StringSliceFlag{Name: "cloud-capacity", Usage: "capacity pool `[spot:]TYPE[@ZONE]=COUNT[+RATE/s][,price=USD]`, repeatable (e.g. m5.large=500+10/s, spot:m5.large@us-east-1a=100,price=0.03)"},
		&cli.DurationFlag{Name: "cloud-boot", Value: localcloud.DefaultBootDelay, Usage: "boot delay from pending to running"},
		&cli.Float64Flag{Name: "cloud-spot-reclaim-rate", Usage: "running spot instances the cloud reclaims per minute, at random across tenants (default 0: none)"},
		&cli.DurationFlag{Name: "cloud-spot-notice", Value: ec2cloud.DefaultSpotNoticePeriod, Usage: "interruption notice a reclaimed spot instance gets before it is terminated"},
		&cli.StringFlag{Name: "cloud-cgroup", Usage: "a delegated cgroup v2 `DIR` (memory in its cgroup.subtree_control) for function memory limits; without it, a writable cgroup v1 memory hierarchy is used if there is one"},
		&cli.BoolFlag{Name: "cloud-no-memory-limits", Usage: "do not enforce function memory sizes even where the machine allows it"},
		&cli.StringFlag{Name: "cloud-isolation", Value: lambda.IsolationSandbox, Usage: "how function environments are isolated: sandbox (namespaces, own root filesystem and uid, seccomp, egress proxy; see docs/security.md) or none (plain processes of gust's user, for trusted code only)"},
	}
}

// cloudConfig turns the cloud flags into the local cloud's configuration.
func cloudConfig(c *cli.Context) (localcloud.Config, error) {
	var cfg localcloud.Config
	pools, err := localcloud.ParseCapacities(c.StringSlice("cloud-capacity"))
	if err != nil {
		return cfg, usagef("--cloud-capacity: %v", err)
	}
	cfg.Capacity = pools
	if c.Duration("cloud-boot") < 0 {
		return cfg, usagef("--cloud-boot must not be negative")
	}
	cfg.BootDelay = c.Duration("cloud-boot")
	rate, notice := c.Float64("cloud-spot-reclaim-rate"), c.Duration("cloud-spot-notice")
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return cfg, usagef("--cloud-spot-reclaim-rate must be a non-negative number of instances per minute")
	}
	if notice <= 0 {
		return cfg, usagef("--cloud-spot-notice must be positive")
	}
	cfg.EC2.SpotReclaimPerMinute, cfg.EC2.SpotNoticePeriod = rate, notice
	if dir := c.String("cloud-cgroup"); dir != "" {
		if c.Bool("cloud-no-memory-limits") {
			return cfg, usagef("--cloud-cgroup and --cloud-no-memory-limits contradict each other")
		}
		if err := lambda.CheckCgroupParent(dir); err != nil {
			return cfg, usagef("--cloud-cgroup %s: %v", dir, err)
		}
		cfg.Lambda.CgroupParent = dir
	}
	cfg.Lambda.DisableMemoryLimits = c.Bool("cloud-no-memory-limits")
	switch iso := c.String("cloud-isolation"); iso {
	case lambda.IsolationSandbox, lambda.IsolationNone:
		cfg.Lambda.Isolation = iso
	default:
		return cfg, usagef("--cloud-isolation %q: want %s or %s", iso, lambda.IsolationSandbox, lambda.IsolationNone)
	}
	return cfg, nil
}

func checkPort(name string, port int, allowZero bool) error {
	if port < 0 || port > 65535 || (port == 0 && !allowZero) {
		return usagef("--%s %d is not a valid port", name, port)
	}
	return nil
}

func serverLogger(level string, out io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: l})), nil
}

func runDev(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		zero bool
	}{{"port", false}, {"ui-port", true}, {"cloud-port", true}, {"gateway-port", true}} {
		if err := checkPort(p.name, c.Int(p.name), p.zero); err != nil {
			return err
		}
		// A taken port is the caller's choice to fix: say which, exit 2,
		// before anything starts.
		if port := c.Int(p.name); port != 0 {
			if err := devserver.CheckPortFree(c.String("ip"), port); err != nil {
				return usagef("--%s %d is not available: %v", p.name, port, err)
			}
		}
	}
	if c.Float64("launch-rate") <= 0 {
		return usagef("--launch-rate must be positive")
	}
	if c.Bool("no-worker") && c.Int("metrics-port") != 0 {
		return usagef("--metrics-port serves the in-process worker's metrics; with --no-worker give it to gust worker")
	}
	cloud, err := cloudConfig(c)
	if err != nil {
		return err
	}
	logger, err := serverLogger(c.String("log-level"), os.Stderr)
	if err != nil {
		return err
	}
	stateDir := c.String("state-dir")
	if c.Bool("ephemeral") {
		stateDir = ""
	} else if stateDir == "" {
		return usagef("--state-dir must not be empty (use --ephemeral for in-memory state)")
	}
	// Clients need the credentials file also when the state is ephemeral.
	credDir := c.String("state-dir")
	if credDir == "" {
		return usagef("--state-dir must not be empty: gust dev writes the credentials file there, also with --ephemeral")
	}

	metricsLn, err := listenMetrics(c)
	if err != nil {
		return err
	}
	metrics := worker.NewMetrics()
	defer metrics.Close()

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	p, err := platform.Start(ctx, platform.Config{
		IP:          c.String("ip"),
		Port:        c.Int("port"),
		UIPort:      c.Int("ui-port"),
		CloudPort:   c.Int("cloud-port"),
		GatewayPort: c.Int("gateway-port"),
		StateDir:    stateDir,
		Cloud:       cloud,
		LaunchRate:  c.Float64("launch-rate"),
		NoWorker:    c.Bool("no-worker"),
		Logger:      logger,
		Metrics:     metrics.Handler,
		EventsQueue: c.String("events-queue"),
		NoEvents:    c.String("events-queue") == "",
	})
	if err != nil {
		if metricsLn != nil {
			_ = metricsLn.Close()
		}
		return err
	}
	// The cloud's environment series go with the worker's, on the
	// operator's listener, never on the cloud's port (see
	// localcloud.Server.Collector).
	if err := metrics.Register(p.Cloud().Collector()); err != nil {
		_ = p.Shutdown()
		return err
	}
	defer serveMetrics(metricsLn, metrics)()
	creds, err := writeDevCredentials(p, credDir)
	if err != nil {
		_ = p.Shutdown()
		return err
	}
	printAddresses(c.App.Writer, p, stateDir, c.Float64("launch-rate"), creds, "off")
	if metricsLn != nil {
		fmt.Fprintf(c.App.Writer, "  Metrics    http://%s/metrics  (the worker's and gust's Prometheus metrics)\n", metricsLn.Addr())
	}
	fmt.Fprintln(c.App.Writer, "Press Ctrl+C to stop.")

	<-ctx.Done()
	fmt.Fprintln(c.App.Writer, "\nshutting down...")
	return p.Shutdown()
}

// printAddresses is the start-up summary of `gust dev` and `gust demo`;
// creds are the credentials files gust dev wrote, none for the demo, and
// noUI what to say when the Web UI does not run.
func printAddresses(w io.Writer, p *platform.Platform, stateDir string, launchRate float64, creds devCredentials, noUI string) {
	cfg := p.Server().Config()
	fmt.Fprintf(w, "gust is running\n")
	fmt.Fprintf(w, "  Temporal   %s  (namespace default)\n", p.Server().FrontendAddress())
	if ui := p.Server().UIAddress(); ui != "" {
		fmt.Fprintf(w, "  Web UI     %s\n", ui)
	} else {
		fmt.Fprintf(w, "  Web UI     %s\n", noUI)
	}
	fmt.Fprintf(w, "  Cloud      %s  (EC2 and Lambda APIs)\n", p.Cloud().Endpoint())
	fmt.Fprintf(w, "  Gateway    %s  (Lambda Invoke API for tenants' apps: SigV4 or Bearer sub-tenant tokens)\n", p.Gateway().Endpoint())
	switch level, err := p.Cloud().Lambda().Isolation(); {
	case err != nil:
		fmt.Fprintf(w, "  Isolation  NONE AVAILABLE: functions cannot be created or invoked: %v\n", err)
	case level == lambda.IsolationNone:
		fmt.Fprintf(w, "  Isolation  none (--cloud-isolation none): functions run as plain processes of gust's user and can reach everything it can\n")
	default:
		fmt.Fprintf(w, "  Isolation  sandbox: each environment in its own namespaces, root filesystem and uid, with seccomp and an egress proxy\n")
	}
	if enforced, why := p.Cloud().Lambda().MemoryLimits(); enforced {
		fmt.Fprintf(w, "  Functions  memory sizes enforced by cgroups\n")
	} else {
		fmt.Fprintf(w, "  Functions  memory sizes not enforced: %s\n", why)
	}
	if stateDir == "" {
		fmt.Fprintf(w, "  State      in memory (--ephemeral)\n")
	} else {
		fmt.Fprintf(w, "  State      %s\n", devserver.DefaultDatabaseFile(stateDir))
	}
	printTenants(w, p, creds)
	fmt.Fprintf(w, "  Codec key  %s  (encrypts function variables in Temporal; clients and workers: --codec-key-file)\n", p.CodecKeyFile())
	if p.HasWorker() {
		fmt.Fprintf(w, "  Worker     task queues gust, gust-launch (launch rate %g/s)\n", launchRate)
	} else {
		fmt.Fprintf(w, "  Worker     none (--no-worker); run: %sgust worker --address %s --endpoint %s --codec-key-file %s\n", platformCredentialsEnv(creds), cfg.FrontendAddress(), p.Cloud().Endpoint(), p.CodecKeyFile())
	}
}

// waitForSignal blocks until SIGINT or SIGTERM or ctx is done.
func waitForSignal(ctx context.Context) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
