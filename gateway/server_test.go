package gateway

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestListen serves the gateway on a free port: a verified call through
// it is answered by the gateway, its port is taken while it serves, and
// Close stops it.
func TestListen(t *testing.T) {
	f := newFixture(t, echoResult)
	s, err := Listen("127.0.0.1:0", Config{Client: f.client, Registry: f.reg, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})
	require.True(t, strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:"), s.Endpoint())

	req, err := http.NewRequest(http.MethodPost, s.Endpoint()+"/2015-03-31/functions/echo/invocations", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set(HeaderTenantID, "cust-1")
	sign(t, req, f.acme.AccessKeyID, f.acme.SecretAccessKey, "lambda", time.Now())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.JSONEq(t, `{"sub":"cust-1"}`, string(body))
	require.Len(t, f.starts(), 1)

	_, err = Listen(strings.TrimPrefix(s.Endpoint(), "http://"), Config{Client: f.client, Registry: f.reg})
	require.Error(t, err, "the port is taken while the gateway serves")

	require.NoError(t, s.Close())
	closed = true
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.Endpoint(), "http://"))
	if err == nil {
		conn.Close()
	}
	require.Error(t, err, "a closed gateway accepts no connections")
}
