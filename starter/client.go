package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"
)

// connectionFlags are the Temporal connection settings every client command
// takes, named and resolved as the temporal CLI does: flags override
// environment variables, which override the envconfig profile file.
func connectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "address", Usage: "Temporal frontend host:port (default 127.0.0.1:7233)", EnvVars: []string{"TEMPORAL_ADDRESS"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "Temporal namespace (default \"default\")", EnvVars: []string{"TEMPORAL_NAMESPACE"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "api-key", Usage: "API key for Temporal Cloud (turns TLS on)", EnvVars: []string{"TEMPORAL_API_KEY"}, Category: "Temporal connection"},
		&cli.BoolFlag{Name: "tls", Usage: "connect with TLS", EnvVars: []string{"TEMPORAL_TLS"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "tls-cert-path", Usage: "mTLS client certificate", EnvVars: []string{"TEMPORAL_TLS_CLIENT_CERT_PATH"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "tls-key-path", Usage: "mTLS client key", EnvVars: []string{"TEMPORAL_TLS_CLIENT_KEY_PATH"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "tls-ca-path", Usage: "server CA certificate", EnvVars: []string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "tls-server-name", Usage: "TLS server name override", EnvVars: []string{"TEMPORAL_TLS_SERVER_NAME"}, Category: "Temporal connection"},
		&cli.BoolFlag{Name: "tls-disable-host-verification", Usage: "skip TLS host verification", EnvVars: []string{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "profile", Usage: "profile in the envconfig file", EnvVars: []string{"TEMPORAL_PROFILE"}, Category: "Temporal connection"},
		&cli.StringFlag{Name: "config-file", Usage: "envconfig TOML file (default: the Temporal CLI's)", EnvVars: []string{"TEMPORAL_CONFIG_FILE"}, Category: "Temporal connection"},
		codecKeyFlag(),
	}
}

// clientOptions resolves the connection settings of c into SDK options.
// Errors are usage errors: a bad address, a missing profile, unreadable TLS
// files.
func clientOptions(c *cli.Context) (client.Options, error) {
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{
		ConfigFilePath:    c.String("config-file"),
		ConfigFileProfile: c.String("profile"),
	})
	if err != nil {
		return client.Options{}, usagef("loading temporal client config: %v", err)
	}
	if c.IsSet("address") {
		prof.Address = c.String("address")
	}
	if c.IsSet("namespace") {
		prof.Namespace = c.String("namespace")
	}
	if c.IsSet("api-key") {
		prof.APIKey = c.String("api-key")
	}
	tlsSet := false
	for _, name := range []string{"tls", "tls-cert-path", "tls-key-path", "tls-ca-path", "tls-server-name", "tls-disable-host-verification"} {
		tlsSet = tlsSet || c.IsSet(name)
	}
	if tlsSet {
		if prof.TLS == nil {
			prof.TLS = &envconfig.ClientConfigTLS{}
		}
		if c.IsSet("tls") {
			prof.TLS.Disabled = !c.Bool("tls")
		}
		if v := c.String("tls-cert-path"); v != "" {
			prof.TLS.ClientCertPath = v
		}
		if v := c.String("tls-key-path"); v != "" {
			prof.TLS.ClientKeyPath = v
		}
		if v := c.String("tls-ca-path"); v != "" {
			prof.TLS.ServerCACertPath = v
		}
		if v := c.String("tls-server-name"); v != "" {
			prof.TLS.ServerName = v
		}
		if c.Bool("tls-disable-host-verification") {
			prof.TLS.DisableHostVerification = true
		}
	}
	if prof.Address == "" {
		prof.Address = "127.0.0.1:7233"
	}
	if prof.Namespace == "" {
		prof.Namespace = "default"
	}
	if err := checkHostPort(prof.Address); err != nil {
		return client.Options{}, usagef("bad --address %q: %v", prof.Address, err)
	}
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, usagef("temporal client config: %v", err)
	}
	opts.Logger = quietLogger()
	if err := setDataConverter(c, &opts); err != nil {
		return client.Options{}, err
	}
	return opts, nil
}

// dial connects to Temporal with the connection settings of c. It fails fast
// with one line when the frontend cannot be reached.
func dial(c *cli.Context) (client.Client, error) {
	opts, err := clientOptions(c)
	if err != nil {
		return nil, err
	}
	return dialOptions(c.Context, opts)
}

func dialOptions(ctx context.Context, opts client.Options) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to temporal at %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	return cl, nil
}

// checkHostPort validates a host:port before the SDK turns a typo into a
// ten-second dial timeout.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return fmt.Errorf("missing or bad host")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// quietLogger keeps the SDK's routine info logs off the terminal; warnings
// and errors still show, except expected retries (see quietRetries).
func quietLogger() sdklog.Logger {
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	return sdklog.NewStructuredLogger(slog.New(quietRetries{h}))
}

// expectedActivityErrors are activity failures that are part of normal
// operation: a throttled launch, capacity that has not arrived yet, a
// sub-tenant at its environment limit (all retried by design), and a poll
// abandoned because its workflow run continued as new. The SDK logs each
// at warning or error level; on a busy fleet that floods the terminal with
// news that is not news. Failed attempts stay visible in each workflow's
// history in the Web UI.
var expectedActivityErrors = []string{
	"(type: Throttled,", "(type: InsufficientCapacity,", "(type: TooManyRequests,",
	"workflow execution already completed",
}

// quietRetries drops the SDK's activity error and heartbeat error records
// for expectedActivityErrors and passes everything else on.
type quietRetries struct{ slog.Handler }

func (h quietRetries) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "Activity error." || r.Message == "RecordActivityHeartbeat with error" {
		expected := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "Error" {
				msg := a.Value.String()
				for _, t := range expectedActivityErrors {
					expected = expected || strings.Contains(msg, t)
				}
			}
			return !expected
		})
		if expected {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietRetries) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietRetries{h.Handler.WithAttrs(attrs)}
}

func (h quietRetries) WithGroup(name string) slog.Handler {
	return quietRetries{h.Handler.WithGroup(name)}
}

// checkEndpoint validates a cloud endpoint URL; empty means AWS.
func checkEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("bad --endpoint %q: want a URL like http://127.0.0.1:4566", endpoint)
	}
	return nil
}
