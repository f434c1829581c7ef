package devserver

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/log/tag"
)

// syncBuffer is a bytes.Buffer the server's goroutines may log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServerWarningsAreInfo: at gust dev's default level (warn) the
// server's own warnings stay off the console and its errors do not; at info
// the warnings show, marked as the server's.
func TestServerWarningsAreInfo(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		wantWarn  bool
		wantError bool
	}{
		{slog.LevelWarn, false, true},
		{slog.LevelInfo, true, true},
		{slog.LevelError, false, true},
	} {
		var out syncBuffer
		l := newServerLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level})))
		l.Warn("internal notice", tag.NewStringTag("k", "v"))
		l.Error("real trouble")
		got := out.String()
		if strings.Contains(got, "internal notice") != tc.wantWarn {
			t.Errorf("level %v: warning shown = %v, want %v; log:\n%s", tc.level, !tc.wantWarn, tc.wantWarn, got)
		}
		if tc.wantWarn && !strings.Contains(got, "server_level=WARN") {
			t.Errorf("level %v: a shown warning is marked server_level=WARN; log:\n%s", tc.level, got)
		}
		if strings.Contains(got, "real trouble") != tc.wantError {
			t.Errorf("level %v: error shown = %v, want %v", tc.level, !tc.wantError, tc.wantError)
		}
	}
}

// TestGetHistoryPageSizeWarningIsInfo opens a history as the Web UI does,
// with a page size over the server's limit: the server's warning about it
// is logged at info, below gust dev's default level, not at warn.
func TestGetHistoryPageSizeWarningIsInfo(t *testing.T) {
	var out syncBuffer
	srv, err := Start(Config{Logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: newSDKLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = c.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace:       "default",
		Execution:       &commonpb.WorkflowExecution{WorkflowId: "any"},
		MaximumPageSize: 1000,
	})
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "GetHistory page size is larger than threshold") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("the server did not log the page-size warning:\n%s", out.String())
	}
	if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "server_level=WARN") {
		t.Fatalf("the page-size warning is not logged at info, marked server_level=WARN: %s", line)
	}
}

// newSDKLogger keeps the SDK client's own logs out of the test output.
func newSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}
