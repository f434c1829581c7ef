package devserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts slog to the server's logger. The server logs a great
// deal at info level during normal operation, and its warnings are about
// its own workings, not about what the user did: the GetHistory page-size
// warning each time the Web UI opens a history, shard and poller notices.
// So they are logged at info, with server_level=WARN to tell them apart, and
// gust's default level (warn) leaves `gust dev`'s console to errors and
// gust's own warnings; --log-level info shows them again.
type serverLogger struct {
	l *slog.Logger
	// quiet drops everything below errors; set while the server stops.
	quiet *atomic.Bool
}

var _ log.Logger = serverLogger{}

func newServerLogger(l *slog.Logger) serverLogger {
	return serverLogger{l: l, quiet: new(atomic.Bool)}
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag) {
	s.log(slog.LevelInfo, msg, append(tags, tag.NewStringTag("server_level", "WARN")))
}
func (s serverLogger) Error(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }
func (s serverLogger) Panic(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }

func (s serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) || (level < slog.LevelError && s.quiet.Load()) {
		return
	}
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	s.l.LogAttrs(ctx, level, msg, attrs...)
}
