package gateway

import (
	"context"
	"net"
	"net/http"
	"time"
)

// DefaultPort is the gateway's port under `gust dev` and `gust gateway`
// (issue 8 fixes it): LocalStack's 4566 plus one.
const DefaultPort = 4567

// Server is a gateway serving on a TCP address until Close.
type Server struct {
	http *http.Server
	ln   net.Listener
}

// Listen serves the gateway cfg configures (see New) on addr, a host:port
// whose port 0 picks a free one. It returns once the port is bound, so a
// taken port is its error, not a later one.
func Listen(addr string, cfg Config) (*Server, error) {
	h := New(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, http: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a RequestResponse call waits as long as its
		// function may run (up to its X-Gust-Max-Wait plus 15 minutes).
		IdleTimeout: 2 * time.Minute,
	}}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// Endpoint is the URL to give AWS SDKs (endpoint_url, BaseEndpoint).
func (s *Server) Endpoint() string { return "http://" + s.ln.Addr().String() }

// Close stops accepting calls and gives the ones in flight a moment to be
// answered. Their invocations are workflows: they finish regardless.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		return s.http.Close()
	}
	return nil
}
