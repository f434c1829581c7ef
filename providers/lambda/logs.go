package lambda

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// LogEvent is one line of a sub-tenant's log, as the local cloud's
// gust-logs endpoint gives it with format=json (localcloud/lambda.LogEvent;
// repeated here, not imported, like the extension's other names).
type LogEvent struct {
	Timestamp time.Time `json:"timestamp"`
	// RequestID is the invocation the line belongs to: the one its
	// environment was serving when it was written.
	RequestID string `json:"request_id"`
	Tenant    string `json:"tenant"`
	SubTenant string `json:"subtenant"`
	// Stream is stdout or stderr (the function's own output) or platform
	// (the START, END and REPORT lines the cloud writes).
	Stream        string `json:"stream"`
	EnvironmentID string `json:"environment_id"`
	Message       string `json:"message"`
}

// LogEvents returns the sub-tenant's log, oldest first, line by line, from
// the local cloud's gust-logs endpoint; ErrUnsupported anywhere else.
func (p *Provider) LogEvents(ctx context.Context, tenant, name, subTenant string) ([]LogEvent, error) {
	body, err := p.extension(ctx, tenant, name, logsSuffix, url.Values{"subtenant": {subTenant}, "format": {"json"}})
	if err != nil {
		return nil, err
	}
	var out []LogEvent
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), len(body)+1)
	for sc.Scan() {
		var ev LogEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("decoding logs, %w", err)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// Log streams of LogEvent.Stream.
const (
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
	StreamPlatform = "platform"
)
