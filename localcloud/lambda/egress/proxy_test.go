package egress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeResolver is the tests' DNS: it maps names to addresses and records
// what it was asked.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	asked []string
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	r.asked = append(r.asked, host)
	r.mu.Unlock()
	name, ok := strings.CutSuffix(host, ".")
	if !ok {
		return nil, fmt.Errorf("resolver asked for %q, not a fully qualified name", host)
	}
	ips, ok := r.hosts[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	addrs := make([]net.IPAddr, len(ips))
	for i, s := range ips {
		addrs[i] = net.IPAddr{IP: net.ParseIP(s)}
	}
	return addrs, nil
}

func (r *fakeResolver) questions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

// router is the tests' Dial hook. The real check forbids loopback, where
// the test servers live, so the fake DNS gives TEST-NET addresses and the
// router connects each checked IP:port to a server on loopback. Dialing
// anything else fails the test: the proxy must dial only the addresses it
// checked.
type router struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string]string // checked IP:port to a loopback address; "" refuses
	dialed []string
}

func (r *router) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.dialed = append(r.dialed, addr)
	to, ok := r.routes[addr]
	r.mu.Unlock()
	if network != "tcp" {
		r.t.Errorf("proxy dialed network %q, want tcp", network)
	}
	if !ok {
		r.t.Errorf("proxy dialed %s, which is no checked destination of this test", addr)
		return nil, errors.New("unexpected dial")
	}
	if to == "" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", to)
}

func (r *router) dials() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.dialed)
}

// logBuffer collects JSON log records from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var recs []map[string]any
	for line := range strings.Lines(l.b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// harness is a Proxy serving on loopback with the fake DNS and router.
type harness struct {
	t    *testing.T
	p    *Proxy
	addr string // the proxy's
	logs *logBuffer
	dns  *fakeResolver
	rt   *router
	done chan error // Serve's result
}

func newHarness(t *testing.T, policy string, configure ...func(*Proxy)) *harness {
	t.Helper()
	pol, err := ParsePolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:    t,
		logs: &logBuffer{},
		dns:  &fakeResolver{hosts: map[string][]string{}},
		rt:   &router{t: t, routes: map[string]string{}},
		done: make(chan error, 1),
	}
	h.p = &Proxy{
		Policy:    pol,
		Tenant:    "tenant-1",
		Function:  "fn-1",
		SubTenant: "sub-1",
		Logger:    slog.New(slog.NewJSONHandler(h.logs, nil)),
		Resolver:  h.dns,
		Dial:      h.rt.dial,
	}
	for _, f := range configure {
		f(h.p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go func() { h.done <- h.p.Serve(ln) }()
	t.Cleanup(func() {
		h.p.Close()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Serve after Close = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return h
}

// host makes the fake DNS answer name with ips.
func (h *harness) host(name string, ips ...string) { h.dns.hosts[name] = ips }

// route makes the router connect a checked IP:port to a loopback server.
func (h *harness) route(checked, to string) {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	h.rt.routes[checked] = to
}

// client is an HTTP client that goes through the proxy.
func (h *harness) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: h.addr})},
		Timeout:   10 * time.Second,
	}
}

// connect sends CONNECT target, followed at once by early bytes, and
// returns the connection, its reader, the answer and, unless the answer is
// 200, its body.
func (h *harness) connect(target, early string) (net.Conn, *bufio.Reader, *http.Response, string) {
	h.t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n%s", target, target, early); err != nil {
		h.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		h.t.Fatalf("CONNECT %s: reading the answer: %v", target, err)
	}
	if resp.StatusCode == http.StatusOK {
		return c, br, resp, ""
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("CONNECT %s: reading the body: %v", target, err)
	}
	return c, br, resp, string(body)
}

// record waits for the log record of the attempt at host:port and
// returns it.
func (h *harness) record(host string, port int) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, rec := range h.logs.records(h.t) {
			if rec["msg"] == "egress" && rec["host"] == host && rec["port"] == float64(port) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no egress log record for %s:%d; logs:\n%s", host, port, h.logs.b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echoServer upper-cases what it reads back to the sender, and closes the
// connection when the sender half-closes its side.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						c.Write(bytes.ToUpper(buf[:n]))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// exchange writes s to the tunnel and checks that it comes back upper-cased.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
	expectEcho(t, br, s)
}

func expectEcho(t *testing.T, br *bufio.Reader, s string) {
	t.Helper()
	got := make([]byte, len(s))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("reading the echo of %q: %v", s, err)
	}
	if want := strings.ToUpper(s); string(got) != want {
		t.Fatalf("tunnel echoed %q, want %q", got, want)
	}
}

// expectClosed checks that the connection ends soon.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := br.ReadByte()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v (read error %v)", within, err)
	}
}

func TestConnectTunnel(t *testing.T) {
	h := newHarness(t, "api.example.com:443")
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:443", echoServer(t))

	// "ping" follows the CONNECT in the same write, as eager clients do:
	// it must reach the destination even though the server read it early.
	c, br, resp, body := h.connect("api.example.com:443", "ping")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT answered %s: %s", resp.Status, body)
	}
	expectEcho(t, br, "ping")
	exchange(t, c, br, "hello, tunnel")
	if got, want := h.dns.questions(), []string{"api.example.com."}; !slices.Equal(got, want) {
		t.Errorf("resolver asked %q, want %q", got, want)
	}
	if got, want := h.rt.dials(), []string{"203.0.113.10:443"}; !slices.Equal(got, want) {
		t.Errorf("proxy dialed %q, want %q", got, want)
	}

	// Half-closing ends the echo, which ends the tunnel; then it is logged.
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, c, br, 5*time.Second)
	rec := h.record("api.example.com", 443)
	want := map[string]any{
		"level":     "INFO",
		"tenant":    "tenant-1",
		"function":  "fn-1",
		"subtenant": "sub-1",
		"kind":      "connect",
		"allowed":   true,
		"status":    float64(200),
		"addr":      "203.0.113.10:443",
		"bytes_out": float64(len("ping") + len("hello, tunnel")),
		"bytes_in":  float64(len("ping") + len("hello, tunnel")),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("log record %s = %#v, want %#v (record %v)", k, rec[k], v, rec)
		}
	}
	if _, ok := rec["duration_ms"].(float64); !ok {
		t.Errorf("log record has no numeric duration_ms: %v", rec)
	}
	for _, k := range []string{"reason", "error"} {
		if _, ok := rec[k]; ok {
			t.Errorf("log record of a clean tunnel has %s: %v", k, rec)
		}
	}
}

// TestConnectHTTPS runs a real HTTPS request through a tunnel, as a
// function's SDK would.
func TestConnectHTTPS(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "secure hello for %s", r.Host)
	}))
	t.Cleanup(upstream.Close)
	h := newHarness(t, "*.example.com:443")
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:443", upstream.Listener.Addr().String())

	client := h.client()
	client.Transport.(*http.Transport).TLSClientConfig = upstream.Client().Transport.(*http.Transport).TLSClientConfig
	resp, err := client.Get("https://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "secure hello for api.example.com" {
		t.Fatalf("GET https://api.example.com/ = %s %q", resp.Status, body)
	}
}

func TestForwardGet(t *testing.T) {
	type seen struct {
		host, uri string
		header    http.Header
	}
	requests := make(chan seen, 4)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- seen{r.Host, r.RequestURI, r.Header.Clone()}
		w.Header().Set("X-Upstream", "yes")
		fmt.Fprintf(w, "hello from %s%s", strings.ToLower(r.Host), r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	h := newHarness(t, "api.example.com:80")
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:80", upstream.Listener.Addr().String())

	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	// Two requests on one keep-alive connection; hop-by-hop headers, those
	// Connection names included, must not reach the destination.
	for i, path := range []string{"/one?q=1;x=2", "/two"} {
		fmt.Fprintf(c, "GET http://API.example.com%s HTTP/1.1\r\n"+
			"Host: api.example.com\r\n"+
			"Connection: keep-alive, X-Hop\r\n"+
			"X-Hop: secret\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
			"X-Forwarded-For: 198.51.100.1\r\n"+
			"X-Keep: %d\r\n\r\n", path, i)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantBody := "hello from api.example.com" + strings.Split(path, "?")[0]
		if resp.StatusCode != http.StatusOK || string(body) != wantBody || resp.Header.Get("X-Upstream") != "yes" {
			t.Fatalf("request %d answered %s %q %v, want 200 %q", i, resp.Status, body, resp.Header, wantBody)
		}
		if resp.Close {
			t.Fatalf("request %d: the proxy closes the function's keep-alive connection", i)
		}
		got := <-requests
		if got.host != "API.example.com" && got.host != "api.example.com" || got.uri != path {
			t.Errorf("destination saw Host %q and URI %q, want api.example.com and %q", got.host, got.uri, path)
		}
		for _, k := range []string{"X-Hop", "Proxy-Connection", "Proxy-Authorization"} {
			if v, ok := got.header[k]; ok {
				t.Errorf("destination saw hop-by-hop header %s: %q", k, v)
			}
		}
		if got.header.Get("X-Keep") != fmt.Sprint(i) || got.header.Get("X-Forwarded-For") != "198.51.100.1" {
			t.Errorf("destination saw headers %v, want X-Keep and X-Forwarded-For as the function sent them", got.header)
		}
		if ua, ok := got.header["User-Agent"]; ok {
			t.Errorf("destination saw User-Agent %q the function never sent", ua)
		}
	}
	rec := h.record("api.example.com", 80)
	if rec["kind"] != "http" || rec["allowed"] != true || rec["status"] != float64(200) || rec["addr"] != "203.0.113.10:80" {
		t.Errorf("log record %v", rec)
	}
	if in, out := rec["bytes_in"].(float64), rec["bytes_out"].(float64); in < float64(len("hello from api.example.com/one")) || out < float64(len("GET /one?q=1;x=2 HTTP/1.1")) {
		t.Errorf("log record counts %v bytes in and %v out, too few for a request and its answer\n%s", in, out, h.logs.b.String())
	}
}

func TestForwardClient(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	}))
	t.Cleanup(upstream.Close)
	h := newHarness(t, "api.example.com")
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:8080", upstream.Listener.Addr().String())

	resp, err := h.client().Post("http://api.example.com:8080/items", "text/plain", strings.NewReader("a body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "POST /items a body" {
		t.Fatalf("POST through the proxy = %s %q", resp.Status, body)
	}
}

func TestDeniedByPolicy(t *testing.T) {
	tests := []struct {
		policy, target, want string
	}{
		{"none", "evil.com:443", "gust egress: connection to evil.com:443 denied by the function's egress policy (none)\n"},
		{"", "api.example.com:443", "gust egress: connection to api.example.com:443 denied by the function's egress policy (none)\n"},
		{"api.example.com:443,*.svc.example.com", "evil.com:443", "gust egress: connection to evil.com:443 denied by the function's egress policy (*.svc.example.com,api.example.com:443)\n"},
		{"api.example.com:443", "api.example.com:8443", "denied by the function's egress policy"},
		{"*.example.com", "example.com:443", "denied by the function's egress policy"},
		{"api.example.com", "203.0.113.10:443", "connection to 203.0.113.10:443 denied by the function's egress policy"},
		{"[2001:db8::1]:443", "[2001:db8::2]:443", "connection to [2001:db8::2]:443 denied"},
	}
	for _, tt := range tests {
		t.Run(tt.policy+" "+tt.target, func(t *testing.T) {
			h := newHarness(t, tt.policy)
			start := time.Now()
			_, _, resp, body := h.connect(tt.target, "")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, tt.want) {
				t.Errorf("CONNECT %s = %s %q, want 403 %q", tt.target, resp.Status, body, tt.want)
			}
			// A denial never waits for the network; the bound is loose
			// only for busy machines.
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("denial took %v", d)
			}
			if q := h.dns.questions(); len(q) > 0 {
				t.Errorf("a denied destination was resolved: %q", q)
			}
		})
	}

	h := newHarness(t, "api.example.com:443")
	resp, err := h.client().Get("http://evil.com/steal")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "gust egress: connection to evil.com:80 denied by the function's egress policy (api.example.com:443)\n"
	if resp.StatusCode != http.StatusForbidden || string(body) != want {
		t.Errorf("GET http://evil.com/steal = %s %q, want 403 %q", resp.Status, body, want)
	}
	rec := h.record("evil.com", 80)
	if rec["level"] != "WARN" || rec["allowed"] != false || rec["reason"] != "egress policy" || rec["status"] != float64(403) || rec["tenant"] != "tenant-1" {
		t.Errorf("log record of a denial: %v", rec)
	}
	if len(h.rt.dials()) > 0 {
		t.Errorf("denied requests dialed %q", h.rt.dials())
	}
}

// TestAllRefusesForbidden checks that even "all" never reaches loopback,
// link-local or metadata addresses, however they are named.
func TestAllRefusesForbidden(t *testing.T) {
	h := newHarness(t, "all")
	h.host("localhost", "127.0.0.1")
	h.host("metadata.example.com", "169.254.169.254")
	h.host("sneaky.example.com", "203.0.113.10", "169.254.169.254")
	h.host("mapped.example.com", "::ffff:127.0.0.1")
	h.host("v6.example.com", "2001:db8::5", "::1")
	tests := []struct {
		target, host, bad string
	}{
		{"127.0.0.1:22", "127.0.0.1", "127.0.0.1"},
		{"127.1.2.3:80", "127.1.2.3", "127.1.2.3"},
		{"localhost:80", "localhost", "127.0.0.1"},
		{"LocalHost.:8080", "localhost", "127.0.0.1"},
		{"[::1]:443", "::1", "::1"},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1", "127.0.0.1"},
		{"0.0.0.0:80", "0.0.0.0", "0.0.0.0"},
		{"169.254.169.254:80", "169.254.169.254", "169.254.169.254"},
		{"[fe80::1]:80", "fe80::1", "fe80::1"},
		{"metadata.example.com:80", "metadata.example.com", "169.254.169.254"},
		{"sneaky.example.com:443", "sneaky.example.com", "169.254.169.254"},
		{"mapped.example.com:443", "mapped.example.com", "127.0.0.1"},
		{"v6.example.com:443", "v6.example.com", "::1"},
	}
	for _, tt := range tests {
		_, _, resp, body := h.connect(tt.target, "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "loopback, link-local, multicast or this machine's own address") {
			t.Errorf("CONNECT %s = %s %q, want 403 naming the forbidden address", tt.target, resp.Status, body)
		}
		rec := h.record(tt.host, portOf(t, tt.target))
		if rec["allowed"] != false || !strings.Contains(fmt.Sprint(rec["reason"]), tt.bad) || rec["level"] != "WARN" {
			t.Errorf("CONNECT %s logged %v, want a denial for %s", tt.target, rec, tt.bad)
		}
	}

	// The metadata service over plain HTTP, as SSRF would try it.
	resp, err := h.client().Get("http://169.254.169.254/latest/meta-data/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "gust egress: connection to 169.254.169.254:80 denied: 169.254.169.254 is a loopback, link-local, multicast or this machine's own address, which functions may never reach\n"
	if resp.StatusCode != http.StatusForbidden || string(body) != want {
		t.Errorf("GET metadata = %s %q, want 403 %q", resp.Status, body, want)
	}
	resp, err = h.client().Get("http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "localhost resolves to 127.0.0.1, a loopback"; resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), want) {
		t.Errorf("GET http://localhost/ = %s %q, want 403 %q", resp.Status, body, want)
	}
	if d := h.rt.dials(); len(d) > 0 {
		t.Errorf("forbidden destinations were dialed: %q", d)
	}
}

// TestForbiddenHook checks that the check is the Forbidden hook's, and
// that this machine's own addresses are refused by default.
func TestForbiddenHook(t *testing.T) {
	h := newHarness(t, "all", func(p *Proxy) {
		p.Forbidden = func(ip net.IP) bool { return ip.Equal(net.ParseIP("203.0.113.66")) }
	})
	h.host("blocked.example.com", "203.0.113.66")
	_, _, resp, body := h.connect("blocked.example.com:443", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "resolves to 203.0.113.66") {
		t.Errorf("CONNECT to an address the hook forbids = %s %q", resp.Status, body)
	}

	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	h = newHarness(t, "all")
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		target := net.JoinHostPort(ipn.IP.String(), "22")
		_, _, resp, body := h.connect(target, "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "this machine's own address") {
			t.Errorf("CONNECT %s, an address of this machine, = %s %q", target, resp.Status, body)
		}
	}
}

func portOf(t *testing.T, target string) int {
	_, p, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	n, err := parsePort(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDialFailure(t *testing.T) {
	h := newHarness(t, "all")
	h.host("down.example.com", "203.0.113.20")
	h.route("203.0.113.20:443", "")
	_, _, resp, body := h.connect("down.example.com:443", "")
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, "gust egress: cannot connect to down.example.com:443: ") || !strings.Contains(body, "connection refused") {
		t.Errorf("CONNECT to a refusing destination = %s %q, want 502", resp.Status, body)
	}
	rec := h.record("down.example.com", 443)
	if rec["allowed"] != true || rec["status"] != float64(502) || !strings.Contains(fmt.Sprint(rec["error"]), "connection refused") {
		t.Errorf("log record of a failed dial: %v", rec)
	}

	// The checked addresses are tried in order.
	h.host("two.example.com", "203.0.113.21", "2001:db8::21")
	h.route("203.0.113.21:443", "")
	h.route("[2001:db8::21]:443", echoServer(t))
	c, br, resp, _ := h.connect("two.example.com:443", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT with a second address that answers = %s", resp.Status)
	}
	exchange(t, c, br, "second")
	want := []string{"203.0.113.20:443", "203.0.113.21:443", "[2001:db8::21]:443"}
	if got := h.rt.dials(); !slices.Equal(got, want) {
		t.Errorf("dialed %q, want %q", got, want)
	}

	_, _, resp, body = h.connect("nowhere.example.com:443", "")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "cannot resolve nowhere.example.com") {
		t.Errorf("CONNECT to a name that does not resolve = %s %q, want 502", resp.Status, body)
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, "all")
	tests := []struct {
		request, want string
	}{
		{"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "this is an HTTP proxy"},
		{"CONNECT api.example.com HTTP/1.1\r\nHost: api.example.com\r\n\r\n", `target "api.example.com" is not host:port`},
		{"CONNECT api.example.com:0 HTTP/1.1\r\nHost: api.example.com\r\n\r\n", `bad port "0"`},
		{"CONNECT a_b%2e:443 HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"GET https://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "use http://, or CONNECT for https"},
		{"GET ftp://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n", `scheme "ftp"`},
		{"GET http://api.example.com:99999/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n", `bad port "99999"`},
		{"GET http://exa!mple.com/ HTTP/1.1\r\nHost: exa!mple.com\r\n\r\n", ""},
		{"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "this is an HTTP proxy"},
	}
	for _, tt := range tests {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, tt.request)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.request, err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tt.want) {
			t.Errorf("%q answered %s %q, want 400 %q", tt.request, resp.Status, body, tt.want)
		}
	}
	if d := h.rt.dials(); len(d) > 0 {
		t.Errorf("bad requests dialed %q", d)
	}
}

func TestCloseDropsTunnel(t *testing.T) {
	h := newHarness(t, "api.example.com:443")
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:443", echoServer(t))
	c, br, resp, _ := h.connect("api.example.com:443", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT = %s", resp.Status)
	}
	exchange(t, c, br, "before close")

	if err := h.p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectClosed(t, c, br, 2*time.Second)
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	rec := h.record("api.example.com", 443)
	if rec["error"] != "proxy closed" || rec["bytes_out"] != float64(len("before close")) {
		t.Errorf("log record of a dropped tunnel: %v", rec)
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = time.Second
	h := newHarness(t, "api.example.com:443", func(p *Proxy) { p.IdleTimeout = idle })
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:443", echoServer(t))
	c, br, resp, _ := h.connect("api.example.com:443", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT = %s", resp.Status)
	}
	// Traffic keeps the tunnel open well past the idle timeout.
	for range 15 {
		exchange(t, c, br, "tick")
		time.Sleep(idle / 10)
	}
	// Silence closes it.
	expectClosed(t, c, br, 10*idle)
	rec := h.record("api.example.com", 443)
	if rec["error"] != "idle for 1s" {
		t.Errorf("log record of an idle tunnel: %v", rec)
	}
}

func TestHeaderTimeout(t *testing.T) {
	h := newHarness(t, "all", func(p *Proxy) { p.HeaderTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.exa")
	expectClosed(t, c, bufio.NewReader(c), 3*time.Second)
}

func TestMaxConns(t *testing.T) {
	h := newHarness(t, "api.example.com:443", func(p *Proxy) { p.MaxConns = 1 })
	h.host("api.example.com", "203.0.113.10")
	h.route("203.0.113.10:443", echoServer(t))
	c, br, resp, _ := h.connect("api.example.com:443", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT = %s", resp.Status)
	}
	exchange(t, c, br, "one")
	_, _, resp, body := h.connect("api.example.com:443", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many concurrent connections from this function (limit 1)") {
		t.Fatalf("CONNECT over the limit = %s %q, want 503", resp.Status, body)
	}
	rec := h.record("", 0)
	if rec["kind"] != "over-limit" || rec["allowed"] != false || rec["reason"] != "too many connections" {
		t.Errorf("log record of a connection over the limit: %v", rec)
	}

	// Once the first connection ends, its slot is free again.
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, br, resp, _ := h.connect("api.example.com:443", "")
		if resp.StatusCode == http.StatusOK {
			exchange(t, c, br, "two")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CONNECT after the first connection ended = %s", resp.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeReturnsWhenListenerCloses checks Serve's contract without Close.
func TestServeReturnsWhenListenerCloses(t *testing.T) {
	p := &Proxy{Logger: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	time.Sleep(10 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after its listener closed")
	}
	p.Close()
}
