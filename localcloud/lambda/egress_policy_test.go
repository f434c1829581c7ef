//go:build linux

package lambda_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// egressLog keeps the local cloud's log records, for the egress proxy's.
type egressLog struct {
	mu   sync.Mutex
	recs []map[string]any
}

type egressLogHandler struct {
	l     *egressLog
	attrs []slog.Attr
}

func (l *egressLog) logger() *slog.Logger { return slog.New(egressLogHandler{l: l}) }

func (egressLogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h egressLogHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message, "level": r.Level.String()}
	for _, a := range h.attrs {
		m[a.Key] = a.Value.Resolve().Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.l.mu.Lock()
	h.l.recs = append(h.l.recs, m)
	h.l.mu.Unlock()
	return nil
}

func (h egressLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return egressLogHandler{l: h.l, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h egressLogHandler) WithGroup(string) slog.Handler { return h }

// record waits for the proxy's "egress" record of a request to host:port
// by fn, and returns it.
func (l *egressLog) record(t *testing.T, fn, host string, port int) map[string]any {
	t.Helper()
	var rec map[string]any
	eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range l.recs {
			if r["msg"] == "egress" && r["function"] == fn && r["host"] == host && r["port"] == int64(port) {
				rec = r
				return true
			}
		}
		return false
	}, "the egress proxy logged the request to "+net.JoinHostPort(host, strconv.Itoa(port)))
	return rec
}

// testResolver resolves *.example.test to the internet's server and
// localhost to loopback, and records what it was asked.
type testResolver struct {
	ip    netip.Addr
	mu    sync.Mutex
	asked []string
}

func (r *testResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	r.asked = append(r.asked, host)
	r.mu.Unlock()
	name := strings.TrimSuffix(host, ".")
	switch {
	case strings.HasSuffix(name, ".example.test"):
		return []net.IPAddr{{IP: r.ip.AsSlice()}}, nil
	case name == "localhost":
		return []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *testResolver) wasAsked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.asked, name+".")
}

// TestEgressPolicy runs the egress proxy against "the internet", a server
// in a network namespace of the test's own: what a function's policy allows
// is reached, everything else is refused at once and logged, "all" still
// never reaches this machine, the default is none, and nothing bypasses the
// proxy.
func TestEgressPolicy(t *testing.T) {
	requireRootSandbox(t)
	in := startInternet(t, 80, 8080)
	res := &testResolver{ip: in.ip}
	logs := &egressLog{}
	h := newHarness(t, func(cfg *lambda.Config) {
		cfg.EgressResolver = res
		cfg.Logger = logs.logger()
	})
	web := h.client("web")
	ip := in.ip.String()
	at := func(port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	// A service of this machine's, on every address.
	mine := listenCounting(t, "tcp", ":0")
	_, minePort, _ := net.SplitHostPort(mine.Addr().String())

	deployHostile(t, web, "fetcher", hostileOpts{egress: at(8080) + ",*.example.test", timeout: 30})
	got, err := web.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("fetcher")})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{at(8080), "*.example.test"}, strings.Split(got.Tags[lambda.TagEgress], ","))

	fetch := func(t *testing.T, fn string, fetches ...map[string]any) []hostileOutcome {
		t.Helper()
		r := mustAttack(t, web, fn, "s1", map[string]any{"attack": "fetch", "fetches": fetches})
		require.Len(t, r.Outcomes, len(fetches))
		return r.Outcomes
	}
	// denied asserts a request was refused by the proxy at once.
	denied := func(t *testing.T, o hostileOutcome, why string) {
		t.Helper()
		if o.Status == 200 || o.OK && o.Status == 0 {
			t.Errorf("ATTACK SUCCEEDED: %v", o)
			return
		}
		assert.Equal(t, 403, o.Status, "%v", o)
		assert.Contains(t, o.Detail, why, "%v", o)
		assert.Less(t, o.ElapsedMS, int64(1000), "not refused at once: %v", o)
	}

	t.Run("what the policy allows is reached", func(t *testing.T) {
		outs := fetch(t, "fetcher",
			map[string]any{"url": "http://" + at(8080) + "/allowed-ip"},
			map[string]any{"url": "http://api.example.test/allowed-name"},
			map[string]any{"connect": "api.example.test:8080", "path": "/allowed-tunnel"})
		for _, o := range outs {
			assert.True(t, o.OK, "%v", o)
			assert.Equal(t, 200, o.Status, "%v", o)
		}
		assert.Equal(t, internetBody("8080", "/allowed-ip"), outs[0].Detail)
		assert.Equal(t, internetBody("80", "/allowed-name"), outs[1].Detail)
		assert.Contains(t, outs[2].Detail, "200 OK")
		assert.Contains(t, outs[2].Detail, internetBody("8080", "/allowed-tunnel"))
		assert.True(t, res.wasAsked("api.example.test"), "the name was not resolved through Config.EgressResolver")

		rec := logs.record(t, "fetcher", ip, 8080)
		assert.Equal(t, "web", rec["tenant"])
		assert.Equal(t, "s1", rec["subtenant"])
		assert.Equal(t, true, rec["allowed"])
		assert.Greater(t, rec["bytes_in"], int64(0))
		assert.Greater(t, rec["bytes_out"], int64(0))
		assert.Equal(t, true, logs.record(t, "fetcher", "api.example.test", 80)["allowed"])
		assert.Equal(t, true, logs.record(t, "fetcher", "api.example.test", 8080)["allowed"])
	})

	t.Run("what it does not is denied at once", func(t *testing.T) {
		outs := fetch(t, "fetcher",
			map[string]any{"url": "http://" + at(80) + "/denied-port"},
			map[string]any{"url": "http://other.test/denied-name"},
			map[string]any{"url": "http://example.test/denied-apex"},
			map[string]any{"url": "http://evilexample.test/denied-suffix"},
			map[string]any{"url": "http://api.example.test.other.test/denied-prefix"},
			map[string]any{"connect": "other.test:443"})
		for _, o := range outs {
			denied(t, o, "denied by the function's egress policy")
		}
		for _, p := range []string{"/denied-port", "/denied-name", "/denied-apex", "/denied-suffix", "/denied-prefix"} {
			assert.False(t, in.saw(p), "the server received %s", p)
		}
		assert.False(t, res.wasAsked("other.test"), "a denied name was resolved")

		rec := logs.record(t, "fetcher", "other.test", 80)
		assert.Equal(t, "web", rec["tenant"])
		assert.Equal(t, "fetcher", rec["function"])
		assert.Equal(t, "s1", rec["subtenant"])
		assert.Equal(t, false, rec["allowed"])
		assert.Equal(t, "egress policy", rec["reason"])
		assert.Equal(t, false, logs.record(t, "fetcher", ip, 80)["allowed"])
		assert.Equal(t, false, logs.record(t, "fetcher", "other.test", 443)["allowed"])
	})

	t.Run("nothing bypasses the proxy", func(t *testing.T) {
		r := mustAttack(t, web, "fetcher", "s1", map[string]any{"attack": "connect", "addrs": []string{at(8080), at(80)}})
		for _, o := range r.Outcomes {
			outcomeFailed(t, o, "ENETUNREACH")
			assert.Less(t, o.ElapsedMS, int64(1000), "%v", o)
		}
		outs := fetch(t, "fetcher", map[string]any{"url": "http://" + at(8080) + "/direct", "via": "direct"})
		assert.False(t, outs[0].OK, "ATTACK SUCCEEDED: %v", outs[0])
		assert.Contains(t, outs[0].Error, "network is unreachable")
		assert.False(t, in.saw("/direct"))
	})

	t.Run("all still never reaches this machine", func(t *testing.T) {
		_, err := web.UpdateFunctionConfiguration(context.Background(), &awslambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("fetcher")}, func(o *awslambda.Options) {
			o.APIOptions = append(o.APIOptions, addHeader(lambda.HeaderEgress, "all"))
		})
		require.NoError(t, err)
		reqs := []map[string]any{
			{"url": "http://" + at(80) + "/all-any-port"},
			{"url": "http://127.0.0.1:" + minePort + "/loopback", "via": "proxy"},
			{"url": "http://localhost:" + minePort + "/localhost", "via": "proxy"},
			{"url": "http://[::1]:" + minePort + "/v6-loopback", "via": "proxy"},
			{"url": "http://169.254.169.254/latest/meta-data/"},
			{"url": h.url + "/2015-03-31/functions", "via": "proxy"},
			{"connect": "127.0.0.1:" + minePort},
		}
		if hip := hostIPv4(); hip != "" {
			reqs = append(reqs, map[string]any{"url": "http://" + net.JoinHostPort(hip, minePort) + "/own-address"})
		}
		outs := fetch(t, "fetcher", reqs...)
		assert.True(t, outs[0].OK, "%v", outs[0])
		assert.Equal(t, internetBody("80", "/all-any-port"), outs[0].Detail)
		for _, o := range outs[1:] {
			denied(t, o, "which functions may never reach")
		}
		assert.Zero(t, mine.accepted.Load(), "the function reached a service of this machine")

		rec := logs.record(t, "fetcher", "169.254.169.254", 80)
		assert.Equal(t, false, rec["allowed"])
		assert.Contains(t, rec["reason"], "forbidden address")
		port, _ := strconv.Atoi(minePort)
		assert.Equal(t, false, logs.record(t, "fetcher", "localhost", port)["allowed"])
	})

	t.Run("none, the default, refuses everything", func(t *testing.T) {
		deployHostile(t, web, "fetcher-default", hostileOpts{timeout: 30})
		got, err := web.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("fetcher-default")})
		require.NoError(t, err)
		assert.NotContains(t, got.Tags, lambda.TagEgress)
		outs := fetch(t, "fetcher-default",
			map[string]any{"url": "http://" + at(8080) + "/none-ip"},
			map[string]any{"url": "http://api.example.test/none-name"},
			map[string]any{"connect": "api.example.test:8080", "path": "/none-tunnel"},
			map[string]any{"url": "http://127.0.0.1:" + minePort + "/none-loopback", "via": "proxy"})
		for _, o := range outs {
			denied(t, o, "denied by the function's egress policy")
		}
		for _, p := range []string{"/none-ip", "/none-name", "/none-tunnel"} {
			assert.False(t, in.saw(p), "the server received %s", p)
		}
		rec := logs.record(t, "fetcher-default", ip, 8080)
		assert.Equal(t, false, rec["allowed"])
		assert.Equal(t, "egress policy", rec["reason"])
	})
}
