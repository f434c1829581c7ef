package lambda_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	lc "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/providers"
)

// BenchmarkWarmInvoke measures a provider-level warm invocation of the echo
// handler: SDK client, HTTP to the local cloud, Runtime API hand-off and
// back. go test -run x -bench Invoke ./providers/lambda
func BenchmarkWarmInvoke(b *testing.B) {
	p, _ := newLocal(b, nil)
	deploy(b, p, "acme", "echo", nil)
	in := providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s", Payload: []byte(`{}`)}
	ctx := context.Background()
	if _, err := p.Invoke(ctx, in); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1024)
	for b.Loop() {
		st := time.Now()
		r, err := p.Invoke(ctx, in)
		if err != nil || r.ColdStart {
			b.Fatal(err, r.ColdStart)
		}
		lat = append(lat, time.Since(st))
	}
	report(b, lat)
}

// BenchmarkColdStart measures invocations of a new sub-tenant each time: a
// new process of the Go echo handler. Old environments are evicted LRU
// (MaxEnvsTotal 16), which is part of the measured path.
func BenchmarkColdStart(b *testing.B) {
	p, _ := newLocal(b, func(c *lc.Config) { c.MaxEnvsTotal = 16 })
	deploy(b, p, "acme", "echo", nil)
	ctx := context.Background()
	lat := make([]time.Duration, 0, 256)
	i := 0
	for b.Loop() {
		i++
		st := time.Now()
		r, err := p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: fmt.Sprint("s", i), Payload: []byte(`{}`)})
		if err != nil || !r.ColdStart {
			b.Fatal(err, r.ColdStart)
		}
		lat = append(lat, time.Since(st))
	}
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
