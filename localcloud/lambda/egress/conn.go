package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener admits at most the Proxy's MaxConns connections at once
// and answers the others 503 itself.
type limitListener struct {
	net.Listener
	p *Proxy
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.p.active.Add(1) <= l.p.maxConns() {
			return &clientConn{Conn: c, release: func() { l.p.active.Add(-1) }}, nil
		}
		l.p.active.Add(-1)
		l.p.reject(c)
	}
}

// maxRejecting bounds the connections being answered 503 at once.
const maxRejecting = 64

// reject answers a connection over the limit 503 and closes it, without
// holding up Accept. At most maxRejecting are being answered at once;
// beyond that they are closed without a word.
func (p *Proxy) reject(c net.Conn) {
	a := newAttempt("over-limit", "")
	a.reason, a.status = "too many connections", http.StatusServiceUnavailable
	if p.rejecting.Add(1) > maxRejecting {
		p.rejecting.Add(-1)
		c.Close()
		a.status = 0
		p.logAttempt(a)
		return
	}
	go func() {
		defer p.rejecting.Add(-1)
		defer c.Close()
		body := fmt.Sprintf("gust egress: too many concurrent connections from this function (limit %d)\n", p.maxConns())
		c.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		p.logAttempt(a)
		// Half-close and drain what the client sent, so closing does not
		// reset the connection before the client reads the answer.
		closeWrite(c)
		io.Copy(io.Discard, io.LimitReader(c, maxHeaderBytes))
	}()
}

// clientConn is a function's connection to the proxy, counted against
// MaxConns until closed.
type clientConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *clientConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func (c *clientConn) CloseWrite() error { return closeWrite(c.Conn) }

type clientConnKey struct{}

// withClientConn is the server's ConnContext: it lets a request find the
// function's connection, to close it with an aborted destination.
func withClientConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, clientConnKey{}, c)
}

func clientConnFrom(ctx context.Context) net.Conn {
	c, _ := ctx.Value(clientConnKey{}).(net.Conn)
	return c
}

// upstream is a connection to a destination. It counts the bytes of its
// attempt, is closed by its Proxy's Close, and closes itself after the
// idle timeout; an abort (Close of the Proxy, idle timeout) closes the
// function's connection too, which may be blocked on a write no one reads.
type upstream struct {
	net.Conn
	p      *Proxy
	a      *attempt
	client net.Conn // may be nil
	idle   time.Duration
	born   time.Time
	last   atomic.Int64 // time.Since(born) at the last byte either way

	mu     sync.Mutex
	timer  *time.Timer
	closed bool

	closeOnce sync.Once
	closeErr  error
}

var errProxyClosed = errors.New("the proxy is closed")

// track wraps c, a checked connection for a, and registers it with p.
func (p *Proxy) track(c net.Conn, a *attempt, client net.Conn) (*upstream, error) {
	u := &upstream{Conn: c, p: p, a: a, client: client, idle: p.idleTimeout(), born: time.Now()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errProxyClosed
	}
	p.live[u] = struct{}{}
	u.mu.Lock()
	u.timer = time.AfterFunc(u.idle, u.checkIdle)
	u.mu.Unlock()
	return u, nil
}

func (u *upstream) Read(b []byte) (int, error) {
	n, err := u.Conn.Read(b)
	if n > 0 {
		u.a.bytesIn.Add(int64(n))
		u.last.Store(int64(time.Since(u.born)))
	}
	return n, err
}

// Write counts b before writing it, less what was not written: the
// destination may answer, and the attempt be logged, before a Write
// returns.
func (u *upstream) Write(b []byte) (int, error) {
	u.a.bytesOut.Add(int64(len(b)))
	n, err := u.Conn.Write(b)
	u.a.bytesOut.Add(int64(n - len(b)))
	if n > 0 {
		u.last.Store(int64(time.Since(u.born)))
	}
	return n, err
}

func (u *upstream) CloseWrite() error { return closeWrite(u.Conn) }

// Close closes the connection to the destination only.
func (u *upstream) Close() error {
	u.closeOnce.Do(func() {
		u.mu.Lock()
		u.closed = true
		if u.timer != nil {
			u.timer.Stop()
		}
		u.mu.Unlock()
		u.p.mu.Lock()
		delete(u.p.live, u)
		u.p.mu.Unlock()
		u.closeErr = u.Conn.Close()
	})
	return u.closeErr
}

// abort ends the exchange for a reason the log records: it closes both
// the destination's and the function's connection.
func (u *upstream) abort(reason string) {
	u.a.fail(reason)
	if u.client != nil {
		u.client.Close()
	}
	u.Close()
}

// checkIdle runs when the idle timeout may have passed: it aborts if no
// byte moved for that long, else waits for the rest of it.
func (u *upstream) checkIdle() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	quiet := time.Since(u.born) - time.Duration(u.last.Load())
	if quiet < u.idle {
		u.timer.Reset(u.idle - quiet)
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	u.abort(fmt.Sprintf("idle for %v", u.idle))
}

// tunnel copies bytes both ways between the function and the destination
// until both directions end, then closes both.
func tunnel(client net.Conn, up *upstream) {
	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, client) })
	pipe(client, up)
	wg.Wait()
	client.Close()
	up.Close()
}

// pipe copies src to dst until src ends, then half-closes dst, so its peer
// sees the end while the other direction carries on. After an error it
// closes both, which ends the other direction too.
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	if _, err := io.CopyBuffer(dst, src, buf); err == nil && closeWrite(dst) == nil {
		return
	}
	dst.Close()
	src.Close()
}

// closeWrite half-closes c if it can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("connection cannot half-close")
}
