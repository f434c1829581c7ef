package events

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/providers/sqsevents"
	"github.com/gust-dev/gust/workflows"
)

// fakeSource holds each tenant's queue as batches of events: a Poll takes
// the next batch and deletes it only if the handler succeeds, else puts it
// back, as a visibility timeout would.
type fakeSource struct {
	mu      sync.Mutex
	queues  map[string][][]sqsevents.Event
	polls   map[string]int
	waits   map[string][]time.Duration
	fail    map[string]error
	deleted map[string]int // events deleted, by tenant
	refused map[string]int // batches the handler failed, by tenant
	gate    chan struct{}  // when set, a Poll waits for it to close
	blocked int            // Polls waiting at the gate
	kick    chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		queues: map[string][][]sqsevents.Event{}, polls: map[string]int{}, waits: map[string][]time.Duration{},
		fail: map[string]error{}, deleted: map[string]int{}, refused: map[string]int{}, kick: make(chan struct{}, 1),
	}
}

func (s *fakeSource) send(tenant string, evs ...sqsevents.Event) {
	s.mu.Lock()
	s.queues[tenant] = append(s.queues[tenant], evs)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *fakeSource) setGate(gate chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = gate
}

func (s *fakeSource) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked
}

func (s *fakeSource) setFail(tenant string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[tenant] = err
}

func (s *fakeSource) Poll(ctx context.Context, tenant string, wait time.Duration, handle sqsevents.Handler) (sqsevents.Result, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.mu.Lock()
		s.blocked++
		s.mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
			return sqsevents.Result{}, ctx.Err()
		}
		s.mu.Lock()
		s.blocked--
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.polls[tenant]++
	s.waits[tenant] = append(s.waits[tenant], wait)
	if err := s.fail[tenant]; err != nil {
		s.mu.Unlock()
		return sqsevents.Result{}, err
	}
	var batch []sqsevents.Event
	if q := s.queues[tenant]; len(q) > 0 {
		batch, s.queues[tenant] = q[0], q[1:]
	}
	s.mu.Unlock()
	if batch == nil {
		if wait > 0 {
			t := time.NewTimer(20 * time.Millisecond)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-s.kick:
			case <-t.C:
			}
		}
		return sqsevents.Result{}, nil
	}
	res := sqsevents.Result{Messages: len(batch), Events: len(batch)}
	if err := handle(ctx, batch); err != nil {
		s.mu.Lock()
		s.queues[tenant] = append([][]sqsevents.Event{batch}, s.queues[tenant]...)
		s.refused[tenant]++
		s.mu.Unlock()
		return res, err
	}
	s.mu.Lock()
	s.deleted[tenant] += len(batch)
	s.mu.Unlock()
	return res, nil
}

func (s *fakeSource) stats(tenant string) (polls, deleted, refused, queued int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls[tenant], s.deleted[tenant], s.refused[tenant], len(s.queues[tenant])
}

type signal struct {
	workflowID, runID, name string
	in                      workflows.InstanceEventsInput
}

// fakeSignaler records signals; fail answers a workflow id with an error.
// Each signal takes delay, and the most signals under way at once is kept.
type fakeSignaler struct {
	mu                    sync.Mutex
	got                   []signal
	fail                  map[string]error
	delay                 time.Duration
	inFlight, maxInFlight int
}

func (f *fakeSignaler) SignalWorkflow(ctx context.Context, workflowID, runID, name string, arg any) error {
	f.mu.Lock()
	delay := f.delay
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[workflowID]; err != nil {
		return err
	}
	f.got = append(f.got, signal{workflowID, runID, name, arg.(workflows.InstanceEventsInput)})
	return nil
}

func (f *fakeSignaler) setDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

func (f *fakeSignaler) mostInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}

func (f *fakeSignaler) setFail(workflowID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[workflowID] = err
}

func (f *fakeSignaler) signals() []signal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]signal(nil), f.got...)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventually waits up to 5s for cond, which the router's goroutines make
// true; it asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// metricsRecorder is a client.MetricsHandler that sums counters by name
// and tags.
type metricsRecorder struct {
	mu   *sync.Mutex
	tags string
	sums map[string]int64
}

func newMetricsRecorder() *metricsRecorder {
	return &metricsRecorder{mu: &sync.Mutex{}, sums: map[string]int64{}}
}

func (m *metricsRecorder) WithTags(tags map[string]string) client.MetricsHandler {
	keys := slices.Sorted(maps.Keys(tags))
	s := m.tags
	for _, k := range keys {
		s += "," + k + "=" + tags[k]
	}
	return &metricsRecorder{mu: m.mu, tags: s, sums: m.sums}
}

func (m *metricsRecorder) Counter(name string) client.MetricsCounter {
	return counterFunc(func(n int64) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.sums[name+m.tags] += n
	})
}

func (m *metricsRecorder) Gauge(string) client.MetricsGauge {
	return client.MetricsNopHandler.Gauge("")
}
func (m *metricsRecorder) Timer(string) client.MetricsTimer {
	return client.MetricsNopHandler.Timer("")
}

func (m *metricsRecorder) get(series string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sums[series]
}

type counterFunc func(int64)

func (f counterFunc) Inc(n int64) { f(n) }
