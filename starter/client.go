package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/workflows"
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

// Deadlines of the client commands that have no deadline flag of their own
// (see commandDeadline). Reads answer from visibility or a query; writes
// wait for cloud work a worker does (a deploy creates the function, a
// cancel terminates the fleet's instances).
const (
	readDeadline  = time.Minute
	writeDeadline = 5 * time.Minute
	// resultGrace is how long a command with a deadline flag (fn invoke
	// --deadline, fleet launch --timeout) waits past it: for the answer the
	// invocation gives at its deadline, or for the fleet's status once the
	// wait is over.
	resultGrace = 1500 * time.Millisecond
)

// commandDeadline is how long client command name ("fleet launch") may take
// in all, dialling included, and how to say where that bound came from; 0
// means no bound. Commands with a deadline flag honour it; `fleet launch
// --wait` without --timeout waits as long as the fleet takes, as asked.
func commandDeadline(name string, c *cli.Context) (time.Duration, string) {
	switch name {
	case "fn invoke":
		d := c.Duration("deadline")
		if d <= 0 {
			d = workflows.DefaultInvokeDeadline
		}
		return d + resultGrace, "--deadline " + d.String()
	case "fleet launch":
		if !c.Bool("wait") {
			return writeDeadline, "its default deadline of " + writeDeadline.String()
		}
		if d := c.Duration("timeout"); d > 0 {
			return d + resultGrace, "--timeout " + d.String()
		}
		return 0, ""
	case "fleet status", "fleet list", "fn list", "fn envs", "fn logs", "fn invocations":
		return readDeadline, "its default deadline of " + readDeadline.String()
	case "fleet scale", "fleet cancel", "fn deploy", "fn delete":
		return writeDeadline, "its default deadline of " + writeDeadline.String()
	}
	return 0, ""
}

// setDeadlines bounds every client command by its commandDeadline: the
// command runs with c.Context ending then, so dialling, the worker check,
// every call and every wait share one deadline, and an error caused by it
// becomes one line that names it instead of a transport error such as
// "stream terminated by RST_STREAM".
func setDeadlines(cmds []*cli.Command, parent string) {
	for _, cmd := range cmds {
		name := strings.TrimSpace(parent + " " + cmd.Name)
		setDeadlines(cmd.Subcommands, name)
		action := cmd.Action
		if action == nil {
			continue
		}
		cmd.Action = func(c *cli.Context) error {
			limit, why := commandDeadline(name, c)
			if limit <= 0 {
				return action(c)
			}
			ctx, cancel := context.WithTimeout(c.Context, limit)
			defer cancel()
			c.Context = ctx
			err := action(c)
			var coder cli.ExitCoder
			if errors.As(err, &coder) && strings.TrimSpace(err.Error()) == "" {
				return err // the command reported its own outcome
			}
			if err != nil && pastDeadline(ctx, err) {
				return failed(fmt.Sprintf("%s: no answer within %s", name, why))
			}
			return err
		}
	}
}

// pastDeadline reports whether err is ctx's deadline at work. The deadline
// travels with each call, so the server may give up a moment before the
// client does and end the stream first: an error that looks like a deadline
// within a second of ctx's counts too.
func pastDeadline(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > time.Second {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "deadline") || strings.Contains(msg, "rst_stream")
}

// dialWorker dials like dial and then checks that a gust worker polls the
// gust task queue, and each of activityQueues for activities
// (requireWorker): a command that starts, queries or updates a workflow
// would otherwise wait for a worker that never comes.
func dialWorker(c *cli.Context, activityQueues ...string) (client.Client, error) {
	opts, err := clientOptions(c)
	if err != nil {
		return nil, err
	}
	cl, err := dialOptions(c.Context, opts)
	if err != nil {
		return nil, err
	}
	if err := requireWorker(c.Context, cl, opts, activityQueues...); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// dialWorkerWithOutput is dialWithOutput with dialWorker's check.
func dialWorkerWithOutput(c *cli.Context) (client.Client, bool, error) {
	asJSON, err := jsonOutput(c)
	if err != nil {
		return nil, false, err
	}
	cl, err := dialWorker(c)
	return cl, asJSON, err
}

// requireWorker fails with one line, exit 1, when no worker polls the gust
// task queue for workflow tasks, or one of activityQueues for activity
// tasks, as DescribeTaskQueue reports them. It is checked once, before the
// command starts anything, so a refused command leaves nothing behind for
// a later worker to find; a worker that stops or starts while the command
// waits is the command's deadline's business.
//
// A poller counts as long as the server lists it: a worker that stops
// cleanly is removed at once, one that was killed after the server's
// poller history TTL (matching.PollerHistoryTTL, 5 minutes), the rule the
// Web UI's Workers tab follows too. Only the root partition's pollers are
// listed, which on a queue with several partitions still sees every
// worker, since idle polls are forwarded to the root. A server that does
// not answer DescribeTaskQueue (an older one, or a role that may not ask)
// cannot tell, and the command goes on.
func requireWorker(ctx context.Context, cl client.Client, opts client.Options, activityQueues ...string) error {
	type queueCheck struct {
		queue string
		kind  enumspb.TaskQueueType
	}
	checks := []queueCheck{{workflows.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW}}
	for _, q := range activityQueues {
		checks = append(checks, queueCheck{q, enumspb.TASK_QUEUE_TYPE_ACTIVITY})
	}
	for _, q := range checks {
		resp, err := cl.DescribeTaskQueue(ctx, q.queue, q.kind)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			continue
		case len(resp.GetPollers()) == 0:
			return failed(noWorkerMessage(opts, q.queue))
		}
	}
	return nil
}

// noWorkerMessage is the one line for a queue no worker polls: where, and
// how to start one.
func noWorkerMessage(opts client.Options, queue string) string {
	where, flags := opts.HostPort, "--address "+opts.HostPort
	if opts.Namespace != "default" {
		where += " (namespace " + opts.Namespace + ")"
		flags += " --namespace " + opts.Namespace
	}
	return fmt.Sprintf("no gust worker polls task queue %q on %s; start one with: gust worker %s", queue, where, flags)
}
