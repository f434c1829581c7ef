package egress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkProxyOverhead measures one HTTP GET to a small local server,
// directly and through the proxy, so the proxy's cost per request is the
// ratio of the two. Both clients keep their connections alive; the proxy
// dials the destination once per request, as it does in production, and
// logs each request as JSON.
func BenchmarkProxyOverhead(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer upstream.Close()
	target := upstream.Listener.Addr().String()

	policy, err := ParsePolicy("api.example.com:80")
	if err != nil {
		b.Fatal(err)
	}
	p := &Proxy{
		Policy:   policy,
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Resolver: &fakeResolver{hosts: map[string][]string{"api.example.com": {"203.0.113.10"}}},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "203.0.113.10:80" {
				return nil, fmt.Errorf("dial %s: not the checked address", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go p.Serve(ln)
	defer p.Close()

	b.Run("direct", func(b *testing.B) {
		benchmarkGet(b, &http.Transport{}, upstream.URL+"/")
	})
	b.Run("proxied", func(b *testing.B) {
		proxy := &url.URL{Scheme: "http", Host: ln.Addr().String()}
		benchmarkGet(b, &http.Transport{Proxy: http.ProxyURL(proxy)}, "http://api.example.com/")
	})
}

func benchmarkGet(b *testing.B, t *http.Transport, url string) {
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "hello" {
			b.Fatalf("GET %s = %s %q, %v", url, resp.Status, body, err)
		}
	}
}
