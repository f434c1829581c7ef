package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/uuid"

	"github.com/gust-dev/gust/demo"
	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/localcloud"
	lambdacloud "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/workflows"
)

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

// GatewayOptions configure Gateway. The caller validates them: Iterations
// at least 1, Isolation sandbox or none, Handler an existing file.
type GatewayOptions struct {
	// Out receives the report, Progress the progress as it goes.
	Out, Progress io.Writer
	// JSON reports as one JSON object (--output json).
	JSON bool
	// Handler is the Lambda bootstrap executable to deploy: this gust
	// binary (its handler mode) or another one.
	Handler string
	// Iterations is the measured invocations per series.
	Iterations int
	// Isolation is the local cloud's function isolation.
	Isolation string
}

// Gateway starts an embedded platform (UI off), deploys opts.Handler, and
// measures warm invocations direct and through the gateway, alternating,
// to report what the gateway adds.
func Gateway(ctx context.Context, opts GatewayOptions) error {
	handler, iso, iters := opts.Handler, opts.Isolation, opts.Iterations
	progress := opts.Progress

	p, err := platform.Start(ctx, platform.Config{
		IP:     "127.0.0.1",
		Cloud:  localcloud.Config{Lambda: lambdacloud.Config{MaxCodeBytes: 1 << 30, Isolation: iso}},
		Logger: discardLogger(),
	})
	if err != nil {
		return err
	}
	defer p.Close()
	const tenant, fn, sub = "bench", "echo", "bench-sub"
	creds, err := p.EnsureTenant(ctx, tenant)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "deploying %s as %s/%s...\n", handler, tenant, fn)
	if _, err := demo.DeploySample(ctx, p, tenant, fn, handler, 0); err != nil {
		return err
	}
	token, err := p.Registry().IssueToken(ctx, tenant, sub, fn, time.Hour)
	if err != nil {
		return err
	}
	// One keep-alive connection, as an SDK client in a service would have.
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	sdk := awslambda.NewFromConfig(aws.Config{
		Region:      lambdacloud.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		HTTPClient:  httpClient,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(p.Gateway().Endpoint()) })
	payload := []byte(`{"echo":"bench"}`)

	direct := func() (time.Duration, error) {
		in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: tenant, Function: fn, SubTenant: sub, Payload: payload}
		start := time.Now()
		res, err := demo.Invoke(ctx, p.Client(), in, true)
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
		res, err := demo.Invoke(ctx, p.Client(), in, true)
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
	url := p.Gateway().Endpoint() + "/2015-03-31/functions/" + fn + "/invocations"
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
	if opts.JSON {
		return writeJSON(opts.Out, res)
	}
	out := opts.Out
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
