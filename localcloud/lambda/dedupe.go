package lambda

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// Invocations are idempotent by request id.
//
// gust's worker names each invocation with X-Gust-Request-Id, the same on
// every attempt of its activity. When a worker dies in the middle of an
// Invoke, the function goes on running here, and Temporal retries the
// activity on another worker: without this, the function would run twice
// for one request. So a synchronous invocation that names a request id
// already running waits for that run and answers with its result, and one
// that names a request id that ran successfully within dedupeTTL gets the
// same answer again, without running. An invocation that ended in a
// function error is not kept: retrying a failed invocation is meant to run
// it again (Event retries run the function again under the same request
// id, as Lambda's do). The key includes the tenant, function version and
// sub-tenant, so no caller can reach another's result; a reused request id
// with another payload is refused rather than answered with a stranger's
// result.

const (
	// dedupeTTL is how long a finished invocation's answer is kept for a
	// retry: longer than an activity's retries take to reach another
	// worker after one dies (a heartbeat timeout and a backoff).
	dedupeTTL = 15 * time.Minute
	// dedupeMaxEntries and dedupeMaxBytes bound what the answers hold,
	// oldest evicted first.
	dedupeMaxEntries = 4096
	dedupeMaxBytes   = 64 << 20
)

type dedupeKey struct {
	tenant, function string
	version          int
	sub, requestID   string
}

// dedupeCall is one invocation by request id: running until done is
// closed, then its answer.
type dedupeCall struct {
	payloadSum [sha256.Size]byte
	done       chan struct{}
	res        invokeResult
	cold       bool
	envID      string
	tail       []byte
	err        error
	finished   time.Time
	elem       *list.Element // in dedupe.order once finished
}

type dedupe struct {
	mu    sync.Mutex
	calls map[dedupeKey]*dedupeCall
	order *list.List // finished calls, oldest first
	bytes int
	now   func() time.Time
}

func newDedupe() *dedupe {
	return &dedupe{calls: map[dedupeKey]*dedupeCall{}, order: list.New(), now: time.Now}
}

// errRequestIDReused answers a request id that ran with another payload.
var errRequestIDReused = errInvalidParameter("%s was used before with another payload: a request id names one invocation", HeaderRequestID)

// do runs fn for key once: a caller with a key that is running waits for
// that run, and one with a key that ran within dedupeTTL gets its answer.
// first reports whether this caller ran fn. A run that failed with an
// error (throttled, the platform failed) or a function error is not kept
// once it ends: a retry runs again.
func (d *dedupe) do(key dedupeKey, payload []byte, fn func() (invokeResult, string, bool, []byte, error)) (c *dedupeCall, first bool, err error) {
	sum := sha256.Sum256(payload)
	d.mu.Lock()
	d.evictLocked()
	if c, ok := d.calls[key]; ok {
		d.mu.Unlock()
		if !bytes.Equal(c.payloadSum[:], sum[:]) {
			return nil, false, errRequestIDReused
		}
		<-c.done
		if c.err != nil {
			return nil, false, c.err
		}
		return c, false, nil
	}
	c = &dedupeCall{payloadSum: sum, done: make(chan struct{})}
	d.calls[key] = c
	d.mu.Unlock()

	c.res, c.envID, c.cold, c.tail, c.err = fn()
	d.mu.Lock()
	if c.err != nil || c.res.fnError {
		delete(d.calls, key)
	} else {
		c.finished = d.now()
		c.elem = d.order.PushBack(key)
		d.bytes += len(c.res.payload) + len(c.tail)
		d.evictLocked()
	}
	d.mu.Unlock()
	close(c.done)
	return c, true, c.err
}

// evictLocked drops finished answers past their TTL or over the bounds.
func (d *dedupe) evictLocked() {
	now := d.now()
	for e := d.order.Front(); e != nil; e = d.order.Front() {
		key := e.Value.(dedupeKey)
		c := d.calls[key]
		if now.Sub(c.finished) < dedupeTTL && d.order.Len() <= dedupeMaxEntries && d.bytes <= dedupeMaxBytes {
			return
		}
		d.order.Remove(e)
		d.bytes -= len(c.res.payload) + len(c.tail)
		delete(d.calls, key)
	}
}
