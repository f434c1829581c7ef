package egress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the Proxy's bounds.
const (
	DefaultMaxConns      = 256
	DefaultHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout   = 15 * time.Minute
)

const (
	// dialTimeout bounds one dial of the default Dial.
	dialTimeout = 10 * time.Second
	// resolveTimeout bounds one name resolution.
	resolveTimeout = 10 * time.Second
	// keepAliveTimeout is how long a function's idle keep-alive connection
	// to the proxy stays open between requests.
	keepAliveTimeout = 60 * time.Second
	// maxHeaderBytes bounds a request's header, maxResponseHeaderBytes a
	// destination's response header.
	maxHeaderBytes         = 64 << 10
	maxResponseHeaderBytes = 1 << 20
)

// Resolver resolves destination names. *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Proxy is the egress proxy of one execution environment: an HTTP proxy
// that answers CONNECT (tunnels, for HTTPS) and absolute-form requests
// (GET http://host/path) for the destinations its Policy allows, and
// refuses every other request.
//
// Every request goes through the same steps, in order: parse the
// destination; if Policy does not allow it, answer 403 at once; resolve the
// name (an address is used as is); if any address is Forbidden, answer
// 403; dial the checked addresses in order, never the name again; if none
// answers, 502. Each request is logged once, when it ends.
//
// Set the fields before the first Serve and do not change them after.
type Proxy struct {
	// Policy is what the function may reach; the zero Policy is none.
	Policy Policy
	// Tenant, Function and SubTenant identify the environment in logs.
	Tenant, Function, SubTenant string
	// Logger receives one "egress" record per request; default
	// slog.Default().
	Logger *slog.Logger
	// Resolver resolves destination names; default net.DefaultResolver.
	// It is given fully qualified names (with a trailing dot), so the
	// host's search domains never apply to a function's names.
	Resolver Resolver
	// Dial connects to a checked address, always an IP:port; default a
	// net.Dialer with a 10 second timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Forbidden reports whether an address may never be reached, whatever
	// the Policy; default IsForbidden.
	Forbidden func(net.IP) bool
	// MaxConns bounds the function's concurrent connections to the proxy;
	// beyond it connections are answered 503. Default DefaultMaxConns.
	MaxConns int
	// HeaderTimeout bounds the time a request's header takes to arrive;
	// default DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout closes a connection to a destination, and the function's
	// connection with it, after this long without a byte either way;
	// default DefaultIdleTimeout.
	IdleTimeout time.Duration

	initOnce sync.Once
	srv      *http.Server
	rp       *httputil.ReverseProxy

	active    atomic.Int64 // accepted connections not yet closed
	rejecting atomic.Int64 // connections being answered 503

	mu     sync.Mutex
	closed bool
	live   map[*upstream]struct{} // open connections to destinations
}

// Serve serves the proxy on ln until ln is closed or Close is called, then
// returns nil; it returns other accept errors. Connections it accepted
// outlive it until they end or Close is called.
func (p *Proxy) Serve(ln net.Listener) error {
	p.init()
	err := p.srv.Serve(&limitListener{Listener: ln, p: p})
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops the proxy: it closes the listeners Serve is serving, the
// function's connections and every connection to a destination, including
// live tunnels. Requests after Close fail. Close is for an environment
// being discarded, which must take its connections with it.
func (p *Proxy) Close() error {
	p.init()
	p.mu.Lock()
	p.closed = true
	live := slices.Collect(maps.Keys(p.live))
	p.mu.Unlock()
	err := p.srv.Close()
	for _, u := range live {
		u.abort("proxy closed")
	}
	return err
}

// init builds the server and the forwarder from the fields.
func (p *Proxy) init() {
	p.initOnce.Do(func() {
		var h1 http.Protocols
		h1.SetHTTP1(true)
		p.live = make(map[*upstream]struct{})
		p.srv = &http.Server{
			Handler:                      http.HandlerFunc(p.serveHTTP),
			ReadHeaderTimeout:            p.headerTimeout(),
			IdleTimeout:                  min(keepAliveTimeout, p.idleTimeout()),
			MaxHeaderBytes:               maxHeaderBytes,
			DisableGeneralOptionsHandler: true,
			Protocols:                    &h1,
			ConnContext:                  withClientConn,
			ErrorLog:                     slog.NewLogLogger(p.idLogger().Handler(), slog.LevelWarn),
		}
		p.rp = &httputil.ReverseProxy{
			Rewrite: rewrite,
			Transport: &http.Transport{
				DialContext:            dialHandoff,
				DisableKeepAlives:      true,
				DisableCompression:     true,
				MaxResponseHeaderBytes: maxResponseHeaderBytes,
				Protocols:              &h1,
			},
			ModifyResponse: recordStatus,
			ErrorHandler:   p.forwardFailed,
			ErrorLog:       slog.NewLogLogger(p.idLogger().Handler(), slog.LevelDebug),
		}
	})
}

func (p *Proxy) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// idLogger is the logger with the environment's identity attached.
func (p *Proxy) idLogger() *slog.Logger {
	return p.logger().With("tenant", p.Tenant, "function", p.Function, "subtenant", p.SubTenant)
}

func (p *Proxy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

var defaultDialer = &net.Dialer{Timeout: dialTimeout}

func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial(ctx, network, addr)
	}
	return defaultDialer.DialContext(ctx, network, addr)
}

func (p *Proxy) forbidden(ip net.IP) bool {
	if p.Forbidden != nil {
		return p.Forbidden(ip)
	}
	return IsForbidden(ip)
}

func (p *Proxy) maxConns() int64 {
	if p.MaxConns > 0 {
		return int64(p.MaxConns)
	}
	return DefaultMaxConns
}

func (p *Proxy) headerTimeout() time.Duration {
	if p.HeaderTimeout > 0 {
		return p.HeaderTimeout
	}
	return DefaultHeaderTimeout
}

func (p *Proxy) idleTimeout() time.Duration {
	if p.IdleTimeout > 0 {
		return p.IdleTimeout
	}
	return DefaultIdleTimeout
}

// serveHTTP dispatches one request of the function.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.serveConnect(w, r)
	case r.URL.IsAbs():
		p.serveForward(w, r)
	default:
		a := newAttempt("bad-request", r.Host)
		defer p.logAttempt(a)
		p.refuse(w, a, http.StatusBadRequest, "not a proxy request",
			"gust egress: this is an HTTP proxy: send CONNECT host:port or an absolute-form request such as GET http://host/path")
	}
}

// serveConnect opens a tunnel for a CONNECT request.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	a := newAttempt("connect", r.URL.Host)
	defer p.logAttempt(a)
	host, port, err := connectTarget(r.URL.Host)
	if err != nil {
		p.refuse(w, a, http.StatusBadRequest, "bad request: "+err.Error(), "gust egress: bad CONNECT request: "+err.Error())
		return
	}
	a.host, a.port = host, port
	up := p.open(w, r, a)
	if up == nil {
		return
	}
	defer up.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		a.fail("taking over the connection: " + err.Error())
		p.answer(w, a, http.StatusInternalServerError, "gust egress: cannot take over the connection for a tunnel")
		return
	}
	defer client.Close()
	// The server may have left deadlines on the connection; the tunnel's
	// idle timeout governs it now.
	client.SetDeadline(time.Time{})
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	a.status = http.StatusOK
	// Bytes the function sent after its CONNECT, already read by the
	// server, go first.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	tunnel(client, up)
}

// serveForward forwards an absolute-form request.
func (p *Proxy) serveForward(w http.ResponseWriter, r *http.Request) {
	a := newAttempt("http", r.URL.Host)
	defer func() {
		// ReverseProxy aborts with a panic when copying the response
		// fails; the attempt is logged either way.
		if v := recover(); v != nil {
			a.fail("response copy aborted")
			p.logAttempt(a)
			panic(v)
		}
		p.logAttempt(a)
	}()
	host, port, err := forwardTarget(r.URL)
	if err != nil {
		p.refuse(w, a, http.StatusBadRequest, "bad request: "+err.Error(), "gust egress: bad request: "+err.Error())
		return
	}
	a.host, a.port = host, port
	up := p.open(w, r, a)
	if up == nil {
		return
	}
	h := &handoff{a: a}
	h.conn.Store(up)
	defer h.release()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), handoffKey{}, h)))
}

// open applies the policy, resolves and checks a.host and connects to it,
// answering the function itself when any step fails (and returning nil).
func (p *Proxy) open(w http.ResponseWriter, r *http.Request, a *attempt) *upstream {
	target := net.JoinHostPort(a.host, strconv.Itoa(a.port))
	if !p.Policy.Allows(a.host, a.port) {
		p.refuse(w, a, http.StatusForbidden, "egress policy",
			fmt.Sprintf("gust egress: connection to %s denied by the function's egress policy (%s)", target, p.Policy))
		return nil
	}
	a.allowed = true
	ips, err := p.resolve(r.Context(), a.host)
	if err != nil {
		a.fail(err.Error())
		p.answer(w, a, http.StatusBadGateway, fmt.Sprintf("gust egress: cannot resolve %s: %v", a.host, err))
		return nil
	}
	if bad := slices.IndexFunc(ips, p.forbidden); bad >= 0 {
		p.refuse(w, a, http.StatusForbidden, "forbidden address "+ips[bad].String(), forbiddenMessage(target, a.host, ips[bad]))
		return nil
	}
	conn, addr, err := p.dialAny(r.Context(), ips, a.port)
	if err != nil {
		a.fail(err.Error())
		p.answer(w, a, http.StatusBadGateway, fmt.Sprintf("gust egress: cannot connect to %s: %v", target, err))
		return nil
	}
	a.addr = addr
	up, err := p.track(conn, a, clientConnFrom(r.Context()))
	if err != nil {
		conn.Close()
		a.fail(err.Error())
		p.answer(w, a, http.StatusServiceUnavailable, "gust egress: "+err.Error())
		return nil
	}
	return up
}

// forbiddenMessage says why a destination with a forbidden address is
// refused.
func forbiddenMessage(target, host string, ip net.IP) string {
	const why = "a loopback, link-local, multicast or this machine's own address, which functions may never reach"
	if a, err := netip.ParseAddr(host); err == nil && net.IP(a.AsSlice()).Equal(ip) {
		return fmt.Sprintf("gust egress: connection to %s denied: %s is %s", target, host, why)
	}
	return fmt.Sprintf("gust egress: connection to %s denied: %s resolves to %s, %s", target, host, ip, why)
}

// resolve returns the addresses of host, a canonical name or address. A
// name is looked up fully qualified, so the host's search domains never
// turn a function's name into one of gust's.
func (p *Proxy) resolve(ctx context.Context, host string) ([]net.IP, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []net.IP{a.AsSlice()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := p.resolver().LookupIPAddr(ctx, host+".")
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no addresses")
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// dialAny dials the checked addresses in order and returns the first
// connection and the address it reached.
func (p *Proxy) dialAny(ctx context.Context, ips []net.IP, port int) (net.Conn, string, error) {
	var first error
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			first = cmp.Or(first, fmt.Errorf("resolver returned %v, not an ip address", ip))
			continue
		}
		addr := netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
		c, err := p.dial(ctx, "tcp", addr)
		if err == nil {
			return c, addr, nil
		}
		first = cmp.Or(first, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(ips) > 1 {
		return nil, "", fmt.Errorf("none of %d addresses answered, the first failed: %w", len(ips), first)
	}
	return nil, "", first
}

// connectTarget parses a CONNECT request's host:port.
func connectTarget(authority string) (string, int, error) {
	h, ps, err := net.SplitHostPort(authority)
	if err != nil {
		return "", 0, fmt.Errorf("target %q is not host:port", authority)
	}
	port, err := parsePort(ps)
	if err != nil {
		return "", 0, err
	}
	host, err := targetHost(h)
	return host, port, err
}

// forwardTarget parses the destination of an absolute-form request; the
// port defaults to 80.
func forwardTarget(u *url.URL) (string, int, error) {
	if u.Scheme != "http" {
		return "", 0, fmt.Errorf("scheme %q cannot be forwarded: use http://, or CONNECT for https", u.Scheme)
	}
	port := 80
	if ps := u.Port(); ps != "" {
		var err error
		if port, err = parsePort(ps); err != nil {
			return "", 0, err
		}
	}
	host, err := targetHost(u.Hostname())
	return host, port, err
}

// targetHost returns a destination host in canonical form: a lowercase
// name without trailing dot, or an unmapped address.
func targetHost(h string) (string, error) {
	name, addr, err := canonicalHost(h)
	if err != nil {
		return "", fmt.Errorf("host %q: %w", h, err)
	}
	if addr.IsValid() {
		return addr.String(), nil
	}
	return name, nil
}

// refuse denies a request: it answers the function and records why.
func (p *Proxy) refuse(w http.ResponseWriter, a *attempt, status int, reason, msg string) {
	a.allowed = false
	a.reason = reason
	p.answer(w, a, status, msg)
}

// answer sends the function a one-line plain-text error. A failed CONNECT
// closes the connection, since the client meant it for a tunnel.
func (p *Proxy) answer(w http.ResponseWriter, a *attempt, status int, msg string) {
	a.status = status
	if a.kind == "connect" {
		w.Header().Set("Connection", "close")
	}
	http.Error(w, msg, status)
}

// forwardFailed answers a forwarded request whose exchange with the
// destination failed after the connection was made.
func (p *Proxy) forwardFailed(w http.ResponseWriter, r *http.Request, err error) {
	msg := fmt.Sprintf("gust egress: request to %s failed: %v", r.URL.Host, err)
	if h := handoffFrom(r.Context()); h != nil {
		h.a.fail(err.Error())
		h.a.status = http.StatusBadGateway
	}
	http.Error(w, msg, http.StatusBadGateway)
}

// rewrite passes a forwarded request on as the function wrote it, undoing
// what ReverseProxy strips for reverse proxies: this one forwards.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = slices.Clone(v)
		}
	}
}

// recordStatus records a forwarded response's status for the log.
func recordStatus(resp *http.Response) error {
	if h := handoffFrom(resp.Request.Context()); h != nil {
		h.a.status = resp.StatusCode
	}
	return nil
}

// handoff carries a forwarded request's checked connection to the
// Transport, which would otherwise dial the name itself.
type handoff struct {
	a    *attempt
	conn atomic.Pointer[upstream]
}

type handoffKey struct{}

func handoffFrom(ctx context.Context) *handoff {
	h, _ := ctx.Value(handoffKey{}).(*handoff)
	return h
}

// release closes the connection if the Transport never took it.
func (h *handoff) release() {
	if c := h.conn.Swap(nil); c != nil {
		c.Close()
	}
}

// dialHandoff is the forwarding Transport's dial: it returns the request's
// checked connection, once, and never dials anything itself.
func dialHandoff(ctx context.Context, _, _ string) (net.Conn, error) {
	h := handoffFrom(ctx)
	if h == nil {
		return nil, errors.New("no checked connection for this request")
	}
	if c := h.conn.Swap(nil); c != nil {
		return c, nil
	}
	return nil, errors.New("the request's checked connection is already used")
}

// attempt is one request of the function: what it asked for and what
// became of it, for the log. Only the request's goroutine sets the plain
// fields; others touch the counters and err.
type attempt struct {
	kind    string // connect, http, bad-request or over-limit
	host    string
	port    int
	start   time.Time
	allowed bool
	reason  string // why it was denied
	addr    string // the address dialed
	status  int    // the status the function was answered

	bytesOut atomic.Int64 // function to destination
	bytesIn  atomic.Int64 // destination to function

	mu  sync.Mutex
	err string // the first failure after the policy allowed it
}

// newAttempt starts the record of a request; host is as the function
// wrote it until it is parsed.
func newAttempt(kind, host string) *attempt {
	return &attempt{kind: kind, host: host, start: time.Now()}
}

// fail records the first failure of an attempt.
func (a *attempt) fail(err string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == "" {
		a.err = err
	}
}

func (a *attempt) failure() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// logAttempt writes the attempt's one "egress" record: Info, or Warn for
// a denial.
func (p *Proxy) logAttempt(a *attempt) {
	level := slog.LevelInfo
	if !a.allowed {
		level = slog.LevelWarn
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("tenant", p.Tenant),
		slog.String("function", p.Function),
		slog.String("subtenant", p.SubTenant),
		slog.String("kind", a.kind),
		slog.String("host", a.host),
		slog.Int("port", a.port),
		slog.Bool("allowed", a.allowed),
	)
	if a.reason != "" {
		attrs = append(attrs, slog.String("reason", a.reason))
	}
	attrs = append(attrs, slog.Int("status", a.status))
	if a.addr != "" {
		attrs = append(attrs, slog.String("addr", a.addr))
	}
	if err := a.failure(); err != "" {
		attrs = append(attrs, slog.String("error", err))
	}
	attrs = append(attrs,
		slog.Int64("bytes_out", a.bytesOut.Load()),
		slog.Int64("bytes_in", a.bytesIn.Load()),
		slog.Int64("duration_ms", time.Since(a.start).Milliseconds()),
	)
	p.logger().LogAttrs(context.Background(), level, "egress", attrs...)
}
