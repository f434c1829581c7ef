package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/localcloud"
	lambdacloud "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/workflows"
)

func benchGatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "what the gateway adds to a warm invocation: p50 and p99 through it and direct",
		Description: `Starts the embedded platform in this process (in-memory server, local cloud,
worker, gateway; UI off), deploys the sample echo handler (this gust binary in
its hidden handler mode, or --handler) and warms one environment, then
alternates, --iterations times each:

  direct         InvokeWorkflow started with the platform's client (eager
                 start), waiting for its result: what gust fn invoke does
  gateway sigv4  the same invocation through the gateway with aws-sdk-go-v2's
                 Lambda client, signed with the tenant's key
  gateway token  the same with a sub-tenant token (Authorization: Bearer)
  direct, the gateway's input
                 the input the gateway starts (with its queue bound), direct

Alternating puts both paths under the same conditions. The gateway adds one
HTTP round trip on loopback, the SDK's signing and the gateway's
verification to the direct path; the difference of the p50s is its cost.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "iterations", Value: 500, Usage: "measured invocations per series"},
			&cli.StringFlag{Name: "handler", Usage: "Lambda bootstrap executable to deploy instead of this gust binary"},
			&cli.StringFlag{Name: "cloud-isolation", Value: lambdacloud.IsolationSandbox, Usage: "function isolation: sandbox or none"},
			outputFlag(),
		},
		Action: runBenchGateway,
	}
}

// benchGatewayResult is the JSON form of `gust bench gateway`.
type benchGatewayResult struct {
	Series []benchSeries `json:"series"`
	// AddedP50MS and AddedP99MS are the gateway (SigV4) series minus the
	// direct one.
	AddedP50MS float64 `json:"added_p50_ms"`
	AddedP99MS float64 `json:"added_p99_ms"`
	// PairedP50MS is the median of the per-iteration differences, gateway
	// (SigV4) call minus the direct call just before it: robust to load
	// that drifts during the run, which moves both alike.
	PairedP50MS      float64 `json:"paired_p50_ms"`
	PairedTokenP50MS float64 `json:"paired_token_p50_ms"`
	Isolation        string  `json:"isolation"`
}

func runBenchGateway(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	iters := c.Int("iterations")
	if iters < 1 {
		return usagef("--iterations must be at least 1")
	}
	handler := c.String("handler")
	if handler == "" {
		if handler, err = os.Executable(); err != nil {
			return fmt.Errorf("finding the gust executable: %w", err)
		}
	}
	if _, err := os.Stat(handler); err != nil {
		return usagef("--handler: %v", err)
	}
	iso := c.String("cloud-isolation")
	if iso != lambdacloud.IsolationSandbox && iso != lambdacloud.IsolationNone {
		return usagef("--cloud-isolation %q: want %s or %s", iso, lambdacloud.IsolationSandbox, lambdacloud.IsolationNone)
	}
	ctx := c.Context
	progress := io.Writer(os.Stderr)

	p, err := startPlatform(ctx, platformConfig{
		IP:     "127.0.0.1",
		Cloud:  localcloud.Config{Lambda: lambdacloud.Config{MaxCodeBytes: 1 << 30, Isolation: iso}},
		Logger: discardLogger(),
	})
	if err != nil {
		return err
	}
	defer p.Close()
	const tenant, fn, sub = "bench", "echo", "bench-sub"
	creds, err := ensureTenant(ctx, p.registry, tenant)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "deploying %s as %s/%s...\n", handler, tenant, fn)
	if _, err := deploySample(ctx, p, tenant, fn, handler, 0); err != nil {
		return err
	}
	token, err := p.registry.IssueToken(ctx, tenant, sub, fn, time.Hour)
	if err != nil {
		return err
	}
	// One keep-alive connection, as an SDK client in a service would have.
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	sdk := awslambda.NewFromConfig(aws.Config{
		Region:      cloudRegion,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		HTTPClient:  httpClient,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(p.gateway.Endpoint()) })
	payload := []byte(`{"echo":"bench"}`)

	direct := func() (time.Duration, error) {
		in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: tenant, Function: fn, SubTenant: sub, Payload: payload}
		start := time.Now()
		res, err := invokeFunction(ctx, p.client, in, true)
		if err == nil && res.FunctionError != nil {
			err = fmt.Errorf("function error %s: %s", res.FunctionError.Type, res.FunctionError.Message)
		}
		return time.Since(start), err
	}
	// The input the gateway starts, started directly: tells the cost of
	// its options (the queue bound) from the cost of the front door.
	directAsGateway := func() (time.Duration, error) {
		in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: tenant, Function: fn, SubTenant: sub, Payload: payload,
			MaxQueueWait: gateway.DefaultMaxWait, Deadline: gateway.RequestResponseDeadline(gateway.DefaultMaxWait)}
		start := time.Now()
		res, err := invokeFunction(ctx, p.client, in, true)
		if err == nil && res.FunctionError != nil {
			err = fmt.Errorf("function error %s: %s", res.FunctionError.Type, res.FunctionError.Message)
		}
		return time.Since(start), err
	}
	viaSigV4 := func() (time.Duration, error) {
		start := time.Now()
		out, err := sdk.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(fn), TenantId: aws.String(sub), Payload: payload})
		if err == nil && out.FunctionError != nil {
			err = fmt.Errorf("function error: %s", out.Payload)
		}
		return time.Since(start), err
	}
	url := p.gateway.Endpoint() + "/2015-03-31/functions/" + fn + "/invocations"
	viaToken := func() (time.Duration, error) {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get(gateway.HeaderFunctionError) != "" {
			return 0, fmt.Errorf("gateway answered %s (%s)", resp.Status, resp.Header.Get("X-Amzn-Errortype"))
		}
		return time.Since(start), nil
	}

	paths := []struct {
		name string
		run  func() (time.Duration, error)
	}{{"direct InvokeWorkflow", direct}, {"gateway, SigV4 (aws-sdk-go-v2)", viaSigV4}, {"gateway, bearer token", viaToken},
		{"direct, the gateway's input", directAsGateway}}
	fmt.Fprintln(progress, "warming up...")
	for i := 0; i < 30; i++ {
		for _, path := range paths {
			if _, err := path.run(); err != nil {
				return fmt.Errorf("warm-up, %s: %w", path.name, err)
			}
		}
	}
	fmt.Fprintln(progress, "measuring...")
	samples := make([][]time.Duration, len(paths))
	for i := 0; i < iters; i++ {
		for j, path := range paths {
			d, err := path.run()
			if err != nil {
				return fmt.Errorf("%s: %w", path.name, err)
			}
			samples[j] = append(samples[j], d)
		}
	}
	res := benchGatewayResult{Isolation: iso}
	for j, path := range paths {
		res.Series = append(res.Series, newSeries(path.name, samples[j]))
	}
	res.AddedP50MS = res.Series[1].P50MS - res.Series[0].P50MS
	res.AddedP99MS = res.Series[1].P99MS - res.Series[0].P99MS
	paired := func(j int) float64 {
		d := make([]time.Duration, iters)
		for i := range d {
			d[i] = samples[j][i] - samples[0][i]
		}
		return ms(percentile(d, 50))
	}
	res.PairedP50MS, res.PairedTokenP50MS = paired(1), paired(2)
	if asJSON {
		return printJSON(c.App.Writer, res)
	}
	out := c.App.Writer
	fmt.Fprintf(out, "gust bench gateway: warm invocations of the echo handler, isolation %s, %d each, alternating\n\n", iso, iters)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERIES\t    N\tP50 (ms)\tP99 (ms)")
	for _, s := range res.Series {
		fmt.Fprintf(w, "%s\t%5d\t%8.2f\t%8.2f\n", s.Name, s.N, s.P50MS, s.P99MS)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nthe gateway adds %.2f ms at p50 and %.2f ms at p99 (SigV4 series minus direct)\n", res.AddedP50MS, res.AddedP99MS)
	fmt.Fprintf(out, "median paired difference, call by call: SigV4 %.2f ms, bearer token %.2f ms\n", res.PairedP50MS, res.PairedTokenP50MS)
	return nil
}
