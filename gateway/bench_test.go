package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/gust-dev/gust/workflows"
)

// BenchmarkGatewayOverhead is what the gateway adds to an invocation, with
// Temporal taken out: the gateway's Temporal client is a mock that answers
// at once, so each call is the client's work, one loopback HTTP round trip
// and the gateway's (reading the body, verifying the caller against a real
// registry, parsing, building the input, answering). It reports p50 and
// p99 per call besides ns/op:
//
//	sdk-sigv4    aws-sdk-go-v2's Lambda Invoke, as a SaaS backend calls
//	http-sigv4   net/http with a request signed by the SDK's v4 signer: the
//	             same verification without the SDK client's middleware
//	http-token   net/http with a sub-tenant token
//
// The end-to-end comparison with InvokeWorkflow started directly is
// `gust bench gateway` (docs/benchmarks.md).
func BenchmarkGatewayOverhead(b *testing.B) {
	f := newFixture(&testing.T{}, func(workflows.InvokeInput) (workflows.InvokeResult, error) {
		return workflows.InvokeResult{Payload: json.RawMessage(`{"ok":true}`)}, nil
	})
	defer f.srv.Close()
	ctx := context.Background()
	payload := []byte(`{"echo":"bench"}`)
	url := f.srv.URL + "/2015-03-31/functions/echo/invocations"
	hc := &http.Client{}
	token, err := f.reg.IssueToken(ctx, "acme", "cust-1", "echo", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	sdk := awslambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(f.acme.AccessKeyID, f.acme.SecretAccessKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(f.srv.URL) })
	in := &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-1"), Payload: payload}
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: f.acme.AccessKeyID, SecretAccessKey: f.acme.SecretAccessKey}
	sum := sha256.Sum256(payload)
	hash := hex.EncodeToString(sum[:])
	do := func(req *http.Request) error {
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("gateway answered %s %s", resp.Status, resp.Header.Get("X-Amzn-Errortype"))
		}
		return nil
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"sdk-sigv4", func() error { _, err := sdk.Invoke(ctx, in); return err }},
		{"http-sigv4", func() error {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
			req.Header.Set(HeaderTenantID, "cust-1")
			if err := signer.SignHTTP(ctx, creds, req, hash, "lambda", "us-east-1", time.Now()); err != nil {
				return err
			}
			return do(req)
		}},
		{"http-token", func() error {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
			req.Header.Set("Authorization", "Bearer "+token)
			return do(req)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < 50; i++ { // warm the connection and the registry's cache
				if err := c.call(); err != nil {
					b.Fatal(err)
				}
			}
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := c.call(); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
		})
	}
}
