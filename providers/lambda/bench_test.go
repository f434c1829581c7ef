package lambda_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	lc "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/lambda"
)

// BenchmarkWarmInvoke measures a provider-level warm invocation of the echo
// handler: SDK client, HTTP to the local cloud, Runtime API hand-off and
// back. go test -run x -bench Invoke ./providers/lambda
func BenchmarkWarmInvoke(b *testing.B) {
	for _, iso := range []string{lc.IsolationSandbox, lc.IsolationNone} {
		b.Run(iso, func(b *testing.B) {
			p, _ := newLocal(b, func(c *lc.Config) { c.Isolation = iso })
			benchWarmInvoke(b, p)
		})
	}
}

func benchWarmInvoke(b *testing.B, p *lambda.Provider) {
	deploy(b, p, "acme", "echo", nil)
	in := providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s", Payload: []byte(`{}`)}
	ctx := context.Background()
	if _, err := p.Invoke(ctx, in); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1024)
	cpu0 := processCPU()
	for b.Loop() {
		st := time.Now()
		r, err := p.Invoke(ctx, in)
		if err != nil || r.ColdStart {
			b.Fatal(err, r.ColdStart)
		}
		lat = append(lat, time.Since(st))
	}
	// CPU of this process (SDK client and local cloud, not the handler's
	// process) per invocation: on 2 shared cores it is what competes with
	// the handler for the CPU.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(len(lat)), "cpu-µs/op")
	report(b, lat)
}

// BenchmarkInvokeFloor is the provider's Invoke against a stub endpoint that
// answers at once: the SDK and one loopback HTTP exchange, the part of a
// warm invocation that is not the local cloud's or the handler's.
func BenchmarkInvokeFloor(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	p := lambda.New(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("x", "y", "")},
		lambda.Options{Endpoint: srv.URL, Tenant: "acme"})
	in := providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s", Payload: []byte(`{}`)}
	ctx := context.Background()
	lat := make([]time.Duration, 0, 1024)
	for b.Loop() {
		st := time.Now()
		if _, err := p.Invoke(ctx, in); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(st))
	}
	report(b, lat)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkColdStart measures invocations of a new sub-tenant each time: a
// new process of the Go echo handler. Old environments are evicted LRU
// (MaxEnvsTotal 16), which is part of the measured path.
// BenchmarkColdStart measures a new sub-tenant's first invocation, with the
// environment in its own memory cgroup (where this machine allows one) and
// without, so the cgroup's cost is a ratio in one run.
func BenchmarkColdStart(b *testing.B) {
	for _, limited := range []bool{true, false} {
		name := "memory-limit"
		if !limited {
			name = "no-memory-limit"
		}
		b.Run(name, func(b *testing.B) {
			p, _ := newLocal(b, func(c *lc.Config) { c.MaxEnvsTotal = 16; c.DisableMemoryLimits = !limited })
			if limited && !memoryLimitsHere(b) {
				b.Skip("this machine allows gust no memory cgroup")
			}
			benchColdStart(b, p)
		})
	}
}

// BenchmarkColdStartIsolation compares a new sub-tenant's first invocation
// in a sandbox (with the default pool of sandboxes prepared ahead of need,
// and with none prepared) against a plain process, in one run: back to
// back, and spaced 100 ms apart (untimed), as cold starts come when they
// are not a burst, which leaves the pool time to refill.
func BenchmarkColdStartIsolation(b *testing.B) {
	for _, c := range []struct {
		name string
		mod  func(*lc.Config)
	}{
		{"sandbox", func(c *lc.Config) { c.Isolation = lc.IsolationSandbox }},
		{"sandbox-unprepared", func(c *lc.Config) { c.Isolation = lc.IsolationSandbox; c.WarmSandboxes = -1 }},
		{"none", func(c *lc.Config) { c.Isolation = lc.IsolationNone }},
	} {
		for _, spaced := range []bool{false, true} {
			name := c.name
			if spaced {
				name += "-spaced"
			}
			b.Run(name, func(b *testing.B) {
				p, _ := newLocal(b, func(cfg *lc.Config) { cfg.MaxEnvsTotal = 16; c.mod(cfg) })
				gap := time.Duration(0)
				if spaced {
					gap = 100 * time.Millisecond
				}
				benchColdStartEvery(b, p, gap)
			})
		}
	}
}

func benchColdStart(b *testing.B, p *lambda.Provider) { benchColdStartEvery(b, p, 0) }

// benchColdStartEvery measures cold starts with an untimed pause of gap
// before each.
func benchColdStartEvery(b *testing.B, p *lambda.Provider, gap time.Duration) {
	deploy(b, p, "acme", "echo", nil)
	ctx := context.Background()
	lat := make([]time.Duration, 0, 256)
	i := 0
	for b.Loop() {
		i++
		if gap > 0 {
			b.StopTimer()
			time.Sleep(gap)
			b.StartTimer()
		}
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
