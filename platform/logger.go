package platform

import (
	"context"
	"log/slog"
	"os"
	"strings"

	sdklog "go.temporal.io/sdk/log"
)

// QuietLogger is the SDK logger of gust's processes, clients and workers
// alike: it keeps the SDK's routine info logs off the terminal; warnings
// and errors still show on stderr, except expected retries (see
// quietRetries).
func QuietLogger() sdklog.Logger { return QuietLoggerAt(slog.LevelWarn) }

// QuietLoggerAt is QuietLogger at another level: `gust worker --log-level
// info` shows the fleets' progress (phase changes, capacity waits,
// throttled calls), which gust logs at info.
func QuietLoggerAt(level slog.Leveler) sdklog.Logger {
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	return sdklog.NewStructuredLogger(slog.New(quietRetries{h}))
}

// expectedActivityErrors are activity failures that are part of normal
// operation: a throttled launch, capacity that has not arrived yet, a
// sub-tenant at its environment limit (all retried by design), and a poll
// abandoned because its workflow run continued as new. The SDK logs each
// at warning or error level; on a busy fleet that floods the terminal with
// news that is not news. Failed attempts stay visible in each workflow's
// history in the Web UI.
var expectedActivityErrors = []string{
	"(type: Throttled,", "(type: InsufficientCapacity,", "(type: TooManyRequests,",
	"workflow execution already completed",
}

// quietRetries drops the SDK's activity error and heartbeat error records
// for expectedActivityErrors and passes everything else on.
type quietRetries struct{ slog.Handler }

func (h quietRetries) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "Activity error." || r.Message == "RecordActivityHeartbeat with error" {
		expected := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "Error" {
				msg := a.Value.String()
				for _, t := range expectedActivityErrors {
					expected = expected || strings.Contains(msg, t)
				}
			}
			return !expected
		})
		if expected {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietRetries) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietRetries{h.Handler.WithAttrs(attrs)}
}

func (h quietRetries) WithGroup(name string) slog.Handler {
	return quietRetries{h.Handler.WithGroup(name)}
}
