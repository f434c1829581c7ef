package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/tenants"
)

// cloudStopTimeout bounds the shutdown of `gust cloud`, as
// platform.ShutdownTimeout bounds gust dev's: a wedged function
// environment must not keep a stopping container alive until SIGKILL.
const cloudStopTimeout = platform.ShutdownTimeout

func cloudCommand() *cli.Command {
	return &cli.Command{
		Name:  "cloud",
		Usage: "run the local cloud alone: EC2, Lambda and STS APIs on one port, as LocalStack runs",
		Description: `Serves gust's local cloud (EC2 Query, Lambda REST and STS APIs on one port,
like LocalStack's 4566) without Temporal or a worker, so the cloud can run on
its own host or container; gust dev keeps serving everything in one process.

The state directory has gust dev's layout: tenants.db (the tenant registry,
with the default tenant), cloud/ (instances, functions, their code and logs),
and the two credentials files gust dev writes: credentials (profile gust,
the default tenant) and platform-credentials (profile gust-platform, the
platform principal). A gust worker signs with the latter:

  AWS_SHARED_CREDENTIALS_FILE=<state-dir>/platform-credentials AWS_PROFILE=gust-platform \
    gust worker --address <temporal> --endpoint http://<ip>:<port>

gust gateway and the gust tenant commands take the same --state-dir. Stop it
with SIGINT or SIGTERM; instances and functions are kept for the next start.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "ip", Value: "127.0.0.1", Usage: "IP the cloud listens on (0.0.0.0 in a container)"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 4566, Usage: "port of the EC2, Lambda and STS APIs (0 picks a free port)"},
			&cli.StringFlag{Name: "state-dir", Value: ".gust", EnvVars: []string{"GUST_STATE_DIR"}, Usage: "directory for the tenant registry, the credentials files and the cloud's state (under cloud/)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level: debug, info, warn or error"},
			&cli.IntFlag{Name: "metrics-port", Usage: "Prometheus /metrics port for the cloud's environments by tenant, function and state (default 0: off); never served on the cloud's own port, which tenants reach"},
			metricsAddressFlag(),
		}, standaloneCloudFlags()...),
		Action: runCloud,
	}
}

// standaloneCloudFlags are gust dev's cloud flags but its --cloud-port:
// here the cloud's port is --port.
func standaloneCloudFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range cloudFlags() {
		if f.Names()[0] != "cloud-port" {
			out = append(out, f)
		}
	}
	return out
}

func runCloud(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	port := c.Int("port")
	if err := checkPort("port", port, true); err != nil {
		return err
	}
	if port != 0 {
		if err := devserver.CheckPortFree(c.String("ip"), port); err != nil {
			return usagef("--port %d is not available: %v", port, err)
		}
	}
	cfg, err := cloudConfig(c)
	if err != nil {
		return err
	}
	logger, err := serverLogger(c.String("log-level"), os.Stderr)
	if err != nil {
		return err
	}
	dir := c.String("state-dir")
	if dir == "" {
		return usagef("--state-dir must not be empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return failed(fmt.Sprintf("creating state dir: %v", err))
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	registryFile := filepath.Join(dir, registryFileName)
	reg, err := tenants.Open(registryFile)
	if err != nil {
		return failed(err.Error())
	}
	defer reg.Close()
	def, plat, err := cloudPrincipals(ctx, reg)
	if err != nil {
		return failed(err.Error())
	}
	creds, err := writeStateCredentials(dir, def, plat)
	if err != nil {
		return failed(err.Error())
	}

	cfg.IP = c.String("ip")
	cfg.Port = port
	cfg.StateDir = filepath.Join(dir, "cloud")
	cfg.Registry = reg
	cfg.Logger = logger
	metricsLn, err := listenMetrics(c)
	if err != nil {
		return err
	}
	srv, err := localcloud.Start(cfg)
	if err != nil {
		if metricsLn != nil {
			_ = metricsLn.Close()
		}
		return failed(err.Error())
	}
	defer serveCollector(metricsLn, srv.Collector())()
	printCloud(c.App.Writer, srv, registryFile, cfg.StateDir, def, creds)
	if metricsLn != nil {
		fmt.Fprintf(c.App.Writer, "  Metrics    http://%s/metrics (operators only)\n", metricsLn.Addr())
	}

	<-ctx.Done()
	fmt.Fprintln(c.App.Writer, "\nshutting down...")
	return closeWithin(srv, cloudStopTimeout)
}

// cloudPrincipals makes sure the registry has the default tenant, as gust
// dev's does (fleets launch into its account unless told otherwise), and
// returns its newest key and the platform principal's, which workers sign
// with to assume tenants' roles.
func cloudPrincipals(ctx context.Context, reg *tenants.Registry) (def, plat tenants.Credentials, err error) {
	def, err = reg.Create(ctx, tenants.DefaultTenant)
	if tenants.IsExists(err) {
		def, err = reg.Credentials(ctx, tenants.DefaultTenant)
	}
	if err != nil {
		return def, plat, err
	}
	plat, err = reg.PlatformCredentials(ctx)
	return def, plat, err
}

// closeWithin closes c, giving up after d.
func closeWithin(c io.Closer, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return errors.New("shutdown did not finish within " + d.String())
	}
}

// printCloud is the start-up summary of `gust cloud`: the endpoint first,
// so a script or a container wait can find it.
func printCloud(w io.Writer, srv *localcloud.Server, registryFile, cloudDir string, def tenants.Credentials, creds devCredentials) {
	fmt.Fprintf(w, "gust cloud on %s  (EC2, Lambda and STS APIs; health %s%s)\n", srv.Endpoint(), srv.Endpoint(), localcloud.HealthPath)
	switch level, err := srv.Lambda().Isolation(); {
	case err != nil:
		fmt.Fprintf(w, "  Isolation  NONE AVAILABLE: functions cannot be created or invoked: %v\n", err)
	case level == lambda.IsolationNone:
		fmt.Fprintf(w, "  Isolation  none (--cloud-isolation none): functions run as plain processes of gust's user and can reach everything it can\n")
	default:
		fmt.Fprintf(w, "  Isolation  sandbox: each environment in its own namespaces, root filesystem and uid, with seccomp and an egress proxy\n")
	}
	if enforced, why := srv.Lambda().MemoryLimits(); enforced {
		fmt.Fprintf(w, "  Functions  memory sizes enforced by cgroups\n")
	} else {
		fmt.Fprintf(w, "  Functions  memory sizes not enforced: %s\n", why)
	}
	fmt.Fprintf(w, "  State      %s\n", cloudDir)
	printRegistry(w, registryFile, def, srv.Endpoint(), creds)
	fmt.Fprintf(w, "  Worker     %sgust worker --address <temporal host:port> --endpoint %s\n", platformCredentialsEnv(creds), srv.Endpoint())
	fmt.Fprintln(w, "Press Ctrl+C to stop.")
}

// serveCollector serves col's series at /metrics on ln until the returned
// stop is called; a nil ln serves nothing.
func serveCollector(ln net.Listener, col prometheus.Collector) (stop func()) {
	if ln == nil {
		return func() {}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}
