package lambda

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Logs. Every environment's stdout and stderr go, line by line, to one file
// per (tenant, function, sub-tenant):
// logs/<tenant>/<function>/<sha256(sub-tenant)>.log. The sub-tenant is
// hashed because Lambda tenant ids may contain "/" and "..". Files outlive
// their environments, so `gust fn logs` can show why an environment
// crashed; they are removed with the function. Each file is bounded: past
// MaxLogBytes it is renamed to .log.1 (replacing the previous one) and a new
// file is started.
//
// A line is stored as
//
//	<timestamp> <environment id> <stream>:<request id> <text>
//
// where the stream is stdout, stderr or platform (the START, END and REPORT
// lines the cloud writes itself, as Lambda does), and the request id is the
// invocation the environment was serving when the line was written (empty
// before its first). Lines written by an older gust lack the third field;
// parseLogLine reads both.

// Log streams.
const (
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
	StreamPlatform = "platform"
)

type logKey struct{ tenant, function, subTenant string }

// logSinks hands out one shared sink per key, so concurrent environments of
// the same sub-tenant append to one file without interleaving partial lines.
type logSinks struct {
	dir string
	max int64

	mu    sync.Mutex
	sinks map[logKey]*logSink // guarded by mu
}

type logSink struct {
	path string
	max  int64
	refs int // guarded by logSinks.mu

	mu   sync.Mutex
	f    *os.File // nil once closed; guarded by mu
	size int64    // guarded by mu
	// pending holds whole lines not yet written (an invocation's START and
	// END): they go out with the next write, so an invocation costs one
	// write to the file, after its response. Anything that reads or closes
	// the file writes them first. Guarded by mu.
	pending []byte
	// tails capture, per environment id, the lines of an invocation that
	// asked for LogType Tail (see startTail). Nil when none does, so the
	// common path pays one nil-map lookup. Guarded by mu.
	tails map[string]*[]byte
	// pumps are the environments' output pumps (stdout and stderr), by
	// environment id, for awaitPump to wait on. Guarded by mu.
	pumps map[string][]*pumpState
	// serving is the request id each environment serves, by environment
	// id: its output lines are that invocation's. An environment serves
	// one invocation at a time; the id stays set after the invocation, so
	// output the pump copies late still goes to it. Guarded by mu.
	serving map[string]string
}

// pumpState is what endTail needs to know of an environment's pump: its
// pipe, and whether it holds output it has read but not yet written.
type pumpState struct {
	pipe *os.File
	busy atomic.Bool
}

// MaxTailBytes is how much of an invocation's log an Invoke with LogType
// Tail returns in X-Amz-Log-Result, as Lambda does: the last 4 KB.
const MaxTailBytes = 4 << 10

// tailDrainWait bounds endTail's wait for the pump to copy what the
// function wrote before it answered. The function's output and its answer
// travel on different channels (a pipe, the runtime API), so the answer
// can arrive first; the pump usually catches up in microseconds, but on a
// loaded machine its goroutine can wait tens of milliseconds to be
// scheduled (CI saw a 20 ms bound lose a line). The wait ends as soon as
// the pipe is drained, so the bound costs nothing when the pump keeps up.
const tailDrainWait = 250 * time.Millisecond

func newLogSinks(dir string, max int64) *logSinks {
	return &logSinks{dir: dir, max: max, sinks: map[logKey]*logSink{}}
}

func (l *logSinks) path(k logKey) string {
	sum := sha256.Sum256([]byte(k.subTenant))
	return filepath.Join(l.dir, k.tenant, k.function, hex.EncodeToString(sum[:16])+".log")
}

// acquire returns the sink of k, opening it if needed. Release it with
// release.
func (l *logSinks) acquire(k logKey) (*logSink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.sinks[k]; ok {
		s.refs++
		return s, nil
	}
	p := l.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("creating log dir, %w", err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log, %w", err)
	}
	st, _ := f.Stat()
	s := &logSink{path: p, max: l.max, f: f, refs: 1}
	if st != nil {
		s.size = st.Size()
	}
	l.sinks[k] = s
	return s, nil
}

func (l *logSinks) release(k logKey, s *logSink) {
	l.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last {
		delete(l.sinks, k)
	}
	l.mu.Unlock()
	if last {
		s.mu.Lock()
		if s.f != nil {
			s.writeLocked(nil)
			s.f.Close()
			s.f = nil
		}
		s.mu.Unlock()
	}
}

// read returns the sub-tenant's log, the rotated file first.
func (l *logSinks) read(k logKey) ([]byte, error) {
	l.mu.Lock()
	s := l.sinks[k]
	l.mu.Unlock()
	if s != nil {
		s.flush() // a released sink wrote its pending lines when it closed
	}
	p := l.path(k)
	var out []byte
	for _, name := range []string{p + ".1", p} {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("reading log, %w", err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// removeFunction deletes a function's logs. Sinks still open by stopping
// environments keep writing to unlinked files, which is harmless.
func (l *logSinks) removeFunction(tenant, function string) {
	_ = os.RemoveAll(filepath.Join(l.dir, tenant, function))
}

// writeLine appends one line of the environment's output stream (after any
// pending ones), rotating the file when it is full.
func (s *logSink) writeLine(envID, stream string, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tailLocked(envID, line)
	if s.f == nil {
		return
	}
	s.writeLocked(appendLine(s.pending, envID, stream, s.serving[envID], line))
}

// startRequest marks the start of reqID in envID: the platform line that
// says so goes to the pending ones, and the environment's output from now
// on is reqID's.
func (s *logSink) startRequest(envID, reqID string, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving == nil {
		s.serving = map[string]string{}
	}
	s.serving[envID] = reqID
	s.bufferLocked(envID, reqID, line)
}

// bufferLine adds one platform line of reqID to the pending ones without
// writing it: the next writeLine or flush writes it, in order.
func (s *logSink) bufferLine(envID, reqID string, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bufferLocked(envID, reqID, line)
}

func (s *logSink) bufferLocked(envID, reqID string, line []byte) {
	s.tailLocked(envID, line)
	if s.f == nil {
		return
	}
	s.pending = appendLine(s.pending, envID, StreamPlatform, reqID, line)
}

// forget drops what the sink knows of an environment that stopped.
func (s *logSink) forget(envID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.serving, envID)
}

// tailLocked adds line to envID's tail capture, if it has one, keeping at
// most the last 2*MaxTailBytes (trimmed to MaxTailBytes when taken).
func (s *logSink) tailLocked(envID string, line []byte) {
	t := s.tails[envID]
	if t == nil {
		return
	}
	b := append(append(*t, line...), '\n')
	if len(b) > 2*MaxTailBytes {
		b = append(b[:0], b[len(b)-MaxTailBytes:]...)
	}
	*t = b
}

// startTail starts capturing envID's lines, without timestamps, for an
// invocation with LogType Tail. The environment serves one invocation at
// a time, so its lines until endTail are that invocation's.
func (s *logSink) startTail(envID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tails == nil {
		s.tails = map[string]*[]byte{}
	}
	s.tails[envID] = new([]byte)
}

// awaitPump gives envID's pumps up to tailDrainWait to copy output still
// in the pipes, which the function wrote before its answer arrived. A tail
// waits for it before the END line, so the lines keep their order.
func (s *logSink) awaitPump(envID string) {
	s.mu.Lock()
	ps := append([]*pumpState(nil), s.pumps[envID]...)
	s.mu.Unlock()
	deadline := time.Now().Add(tailDrainWait)
	for _, p := range ps {
		for !p.drained() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// endTail stops envID's capture and returns its last MaxTailBytes.
func (s *logSink) endTail(envID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tails[envID]
	delete(s.tails, envID)
	if t == nil {
		return nil
	}
	b := *t
	if len(b) > MaxTailBytes {
		b = b[len(b)-MaxTailBytes:]
	}
	return b
}

// drained reports whether the pump has written everything the process
// wrote so far: nothing in the pipe (TIOCINQ, Linux's FIONREAD) and
// nothing read but unwritten.
func (p *pumpState) drained() bool {
	if p.busy.Load() {
		return false
	}
	rc, err := p.pipe.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	if rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }) != nil || err != nil {
		return true // closed, or not a pipe: nothing more will come
	}
	return n == 0
}

// flush writes the pending lines.
func (s *logSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.writeLocked(s.pending)
	}
}

// appendLine appends a timestamped line of envID's stream, written while
// it served reqID, to buf, in the stored form (see the top of this file).
func appendLine(buf []byte, envID, stream, reqID string, line []byte) []byte {
	buf = time.Now().UTC().AppendFormat(buf, logTimeLayout+" ")
	buf = append(buf, envID...)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ':')
	buf = append(buf, reqID...)
	buf = append(buf, ' ')
	buf = append(buf, line...)
	return append(buf, '\n')
}

// logTimeLayout is the stored lines' timestamp: UTC, milliseconds.
const logTimeLayout = "2006-01-02T15:04:05.000Z"

// writeLocked writes rec, which is s.pending possibly followed by more
// whole lines (nil: s.pending alone), and empties pending. One write per
// call keeps lines whole even if the process dies.
func (s *logSink) writeLocked(rec []byte) {
	if rec == nil {
		rec = s.pending
	}
	if len(rec) == 0 {
		return
	}
	n := int64(len(rec))
	if s.size+n > s.max {
		s.rotateLocked()
		if s.f == nil {
			s.pending = s.pending[:0]
			return
		}
	}
	if _, err := s.f.Write(rec); err == nil {
		s.size += n
	}
	s.pending = rec[:0] // reuse the buffer
	if cap(s.pending) > 64<<10 {
		s.pending = nil
	}
}

func (s *logSink) rotateLocked() {
	s.f.Close()
	_ = os.Rename(s.path, s.path+".1")
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		s.f = nil
		return
	}
	s.f, s.size = f, 0
}

// pump copies one of an environment's output streams to the sink line by
// line until r reaches EOF (every holder of the pipe's write end has
// exited).
func (s *logSink) pump(envID, stream string, r io.Reader) {
	if f, ok := r.(*os.File); ok {
		st := &pumpState{pipe: f}
		s.mu.Lock()
		if s.pumps == nil {
			s.pumps = map[string][]*pumpState{}
		}
		s.pumps[envID] = append(s.pumps[envID], st)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			ps := slices.DeleteFunc(s.pumps[envID], func(p *pumpState) bool { return p == st })
			if len(ps) == 0 {
				delete(s.pumps, envID)
			} else {
				s.pumps[envID] = ps
			}
			s.mu.Unlock()
		}()
		r = busyReader{f, st}
	}
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			s.writeLine(envID, stream, line)
		}
		if st, ok := r.(busyReader); ok && br.Buffered() == 0 {
			st.st.busy.Store(false)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// busyReader marks its pump busy as soon as a read returns output, until
// the pump has written all it buffered.
type busyReader struct {
	f  *os.File
	st *pumpState
}

func (b busyReader) Read(p []byte) (int, error) {
	n, err := b.f.Read(p)
	if n > 0 {
		b.st.busy.Store(true)
	}
	return n, err
}

// LogEvent is one stored log line, as GET .../gust-logs?format=json
// returns it: one JSON object per line.
type LogEvent struct {
	Timestamp     time.Time `json:"timestamp"`
	RequestID     string    `json:"request_id"`
	Tenant        string    `json:"tenant"`
	SubTenant     string    `json:"subtenant"`
	Stream        string    `json:"stream"`
	EnvironmentID string    `json:"environment_id"`
	Message       string    `json:"message"`
}

// parseLogLine reads one stored line (without its newline), in today's form
// or in the form before streams (no stream and request id field: its
// stream is platform for Lambda's own lines, stdout otherwise). ok is false
// for a line that is neither.
func parseLogLine(line string) (ev LogEvent, ok bool) {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return LogEvent{}, false
	}
	t, err := time.Parse(logTimeLayout, ts)
	if err != nil {
		return LogEvent{}, false
	}
	env, rest, _ := strings.Cut(rest, " ")
	ev = LogEvent{Timestamp: t, EnvironmentID: env, Message: rest}
	field, msg, _ := strings.Cut(rest, " ")
	if stream, reqID, isField := strings.Cut(field, ":"); isField && validStream(stream) {
		ev.Stream, ev.RequestID, ev.Message = stream, reqID, msg
		return ev, true
	}
	ev.Stream = StreamStdout
	for _, p := range []string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: "} {
		if id, ok := strings.CutPrefix(rest, p); ok {
			ev.Stream = StreamPlatform
			ev.RequestID, _, _ = strings.Cut(id, " ")
			ev.RequestID, _, _ = strings.Cut(ev.RequestID, "\t")
		}
	}
	return ev, true
}

func validStream(s string) bool {
	return s == StreamStdout || s == StreamStderr || s == StreamPlatform
}

// writeLogs answers GET .../gust-logs for the sub-tenant's log: as text,
// "<timestamp> <environment id> <line>" per line, oldest first (what
// it always was), or with format=json as one LogEvent per line.
func (c *Cloud) writeLogs(w http.ResponseWriter, r *http.Request, tenant, function, sub string) {
	b, err := c.logs.read(logKey{tenant, function, sub})
	if err != nil {
		writeError(w, err)
		return
	}
	asJSON := false
	switch f := r.URL.Query().Get("format"); f {
	case "", "text":
	case "json":
		asJSON = true
	default:
		writeError(w, errInvalidParameter("invalid format %q: use text or json", f))
		return
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/2)
	enc := json.NewEncoder(&out)
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		ev, ok := parseLogLine(line)
		if !ok {
			continue // a line cut by a crash mid-write
		}
		if asJSON {
			ev.Tenant, ev.SubTenant = tenant, sub
			_ = enc.Encode(ev) // a LogEvent always encodes
			continue
		}
		out.WriteString(ev.Timestamp.Format(logTimeLayout))
		out.WriteByte(' ')
		out.WriteString(ev.EnvironmentID)
		out.WriteByte(' ')
		out.WriteString(ev.Message)
		out.WriteByte('\n')
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}
