package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/tenants"
)

func gatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "serve Lambda's Invoke API for tenants' applications, against any Temporal cluster",
		Description: `Serves POST /2015-03-31/functions/{name}/invocations, as AWS Lambda does, so
unmodified AWS SDKs invoke gust functions: point them at this address
(endpoint_url / BaseEndpoint) with a tenant's access key, or send a sub-tenant
token (gust tenant token) as Authorization: Bearer. Every call is verified
against the tenant registry <state-dir>/tenants.db and starts one
InvokeWorkflow on the Temporal cluster the connection flags name; gust
workers there run it.

The gateway keeps no state of its own: run as many as you like behind a load
balancer, on machines that share the registry file (or a copy kept in sync)
and reach the same Temporal namespace.`,
		Flags: append(connectionFlags(),
			&cli.StringFlag{Name: "ip", Value: "127.0.0.1", Usage: "IP to listen on"},
			&cli.IntFlag{Name: "gateway-port", Value: gateway.DefaultPort, Usage: "port to listen on (0 picks a free port)"},
			&cli.StringFlag{Name: "state-dir", Value: ".gust", EnvVars: []string{"GUST_STATE_DIR"}, Usage: "the state directory whose tenants.db is the tenant registry (gust dev's --state-dir)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log level: debug, info, warn or error"},
		),
		Action: runGateway,
	}
}

func runGateway(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if err := checkPort("gateway-port", c.Int("gateway-port"), true); err != nil {
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
	path := filepath.Join(dir, registryFileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// The gateway never creates a registry: an empty one would only
		// refuse every caller and hide a mistyped --state-dir.
		return usagef("no tenant registry at %s: give the --state-dir of a gust dev, or create a tenant with gust tenant create --state-dir", path)
	} else if err != nil {
		return usagef("tenant registry %s: %v", path, err)
	}
	reg, err := tenants.Open(path)
	if err != nil {
		return failed(err.Error())
	}
	defer reg.Close()
	cl, err := dial(c)
	if err != nil {
		return err
	}
	defer cl.Close()

	srv, err := gateway.Listen(net.JoinHostPort(c.String("ip"), strconv.Itoa(c.Int("gateway-port"))),
		gateway.Config{Client: cl, Registry: reg, Logger: logger})
	if err != nil {
		return usagef("--gateway-port %d: %v", c.Int("gateway-port"), err)
	}
	fmt.Fprintf(c.App.Writer, "gust gateway on %s (Lambda Invoke API; registry %s)\n", srv.Endpoint(), path)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}
