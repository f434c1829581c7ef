package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/gust-dev/gust/platform"
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
	opts.Logger = platform.QuietLogger()
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
