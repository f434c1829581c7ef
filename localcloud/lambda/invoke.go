package lambda

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Invoke is the hot path: no SQLite, no per-invocation goroutines for a
// synchronous call, and the function looked up under a read lock.

var emptyPayload = []byte("{}")

func (c *Cloud) invoke(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	_, f, _, err := c.qualifiedLookup(r, tenant, raw)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := c.checkIsolation(); err != nil {
		writeError(w, err)
		return
	}
	typ := r.Header.Get("X-Amz-Invocation-Type")
	switch typ {
	case "", "RequestResponse", "Event", "DryRun":
	default:
		writeError(w, errInvalidParameter("invalid invocation type %q: use RequestResponse, Event or DryRun", typ))
		return
	}
	var tail *[]byte // the log tail, when LogType Tail asks for it
	switch lt := r.Header.Get("X-Amz-Log-Type"); lt {
	case "", "None":
	case "Tail":
		if typ == "" || typ == "RequestResponse" {
			tail = new([]byte) // Lambda returns a tail for synchronous invocations only
		}
	default:
		writeError(w, errInvalidParameter("invalid log type %q: use None or Tail", lt))
		return
	}
	sub := r.Header.Get("X-Amz-Tenant-Id")
	if f.Config.Tenancy == TenancyPerTenant {
		if sub == "" {
			writeError(w, errInvalidParameter("The function %s has tenant isolation mode PER_TENANT: invocations must include a tenant id (X-Amz-Tenant-Id)", f.Name))
			return
		}
		if !ValidSubTenantID(sub) {
			writeError(w, errInvalidParameter("invalid tenant id: use 1 to 256 characters from [a-zA-Z0-9._:/=+-@ ]"))
			return
		}
	} else if sub != "" {
		writeError(w, errInvalidParameter("The function %s does not have tenant isolation mode enabled: remove the tenant id from the invocation", f.Name))
		return
	}
	payload, err := readPayload(r)
	if err != nil {
		writeError(w, err)
		return
	}
	reqID := r.Header.Get(HeaderRequestID)
	named := reqID != "" // a caller's own id: the invocation is idempotent by it (dedupe.go)
	if reqID == "" {
		reqID = newRequestID()
	} else if !validRequestID(reqID) {
		writeError(w, errInvalidParameter("%s must be 1 to 128 characters from [a-zA-Z0-9-_.:]", HeaderRequestID))
		return
	}
	h := w.Header()
	h["X-Amzn-Requestid"] = []string{reqID}
	switch typ {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		select {
		case c.asyncSem <- struct{}{}:
		default:
			writeError(w, errTooManyRequests(reasonConcurrentLimit, "Rate Exceeded. Too many pending asynchronous invocations"))
			return
		}
		c.async.Add(1)
		go c.invokeAsync(f, sub, reqID, payload)
		w.WriteHeader(http.StatusAccepted)
		return
	}

	var (
		res  invokeResult
		e    *environment
		cold bool
	)
	if named {
		key := dedupeKey{tenant: tenant, function: f.Name, version: f.Version, sub: sub, requestID: reqID}
		call, first, err := c.dedupe.do(key, payload, func() (invokeResult, string, bool, []byte, error) {
			var err error
			res, e, cold, err = c.run(f, sub, reqID, payload, tail)
			envID := ""
			if e != nil {
				envID = e.id
			}
			var tb []byte
			if tail != nil {
				tb = *tail
			}
			return res, envID, cold, tb, err
		})
		if err != nil {
			writeError(w, err)
			return
		}
		if !first {
			// The same invocation again (a retry from another worker):
			// its answer, without running it twice.
			res, cold = call.res, call.cold
			if tail != nil {
				*tail = call.tail
			}
			if call.envID != "" {
				h[HeaderEnvironmentID] = []string{call.envID}
			}
		}
	} else {
		var err error
		res, e, cold, err = c.run(f, sub, reqID, payload, tail)
		if err != nil {
			writeError(w, err)
			return
		}
	}
	h["X-Amz-Executed-Version"] = []string{strconv.Itoa(f.Version)}
	if tail != nil {
		h["X-Amz-Log-Result"] = []string{base64.StdEncoding.EncodeToString(*tail)}
	}
	if e != nil {
		h[HeaderEnvironmentID] = []string{e.id}
	}
	if cold {
		h[HeaderColdStart] = coldTrue
	} else {
		h[HeaderColdStart] = coldFalse
	}
	if res.fnError {
		h["X-Amz-Function-Error"] = []string{"Unhandled"}
	}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(res.payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.payload)
	// The caller has its answer before the log write, not after.
	_ = http.NewResponseController(w).Flush()
	flushLogs(e)
}

// flushLogs writes the invocation's buffered START and END lines.
func flushLogs(e *environment) {
	if e != nil {
		e.logs.flush()
	}
}

// run invokes f for sub in an environment of its own. A function error is
// a result, not an error; err is for throttling and platform failures.
// A non-nil tail receives the invocation's log lines, at most MaxTailBytes
// (LogType Tail).
func (c *Cloud) run(f *function, sub, reqID string, payload []byte, tail *[]byte) (invokeResult, *environment, bool, error) {
	for attempt := 0; ; attempt++ {
		res, e, cold, err := c.runOnce(f, sub, reqID, payload, tail)
		// A warm environment found dead at hand-off never saw the
		// invocation; another one may serve it, as Lambda would.
		if err == nil && res.undelivered && !cold && attempt < 3 {
			continue
		}
		return res, e, cold, err
	}
}

func (c *Cloud) runOnce(f *function, sub, reqID string, payload []byte, tail *[]byte) (invokeResult, *environment, bool, error) {
	e, cold, err := c.pool.acquire(f, sub)
	if err != nil {
		var ee errEntrypoint
		if errors.As(err, &ee) {
			return fnErrorResult(errTypeEntrypoint, "RequestId: "+reqID+" Error: "+c.entrypointMessage(ee), true), nil, true, nil
		}
		if errors.Is(err, errPoolClosed) || errors.Is(err, errRemovedWhileStarting) || errors.Is(err, errCodeRemoved) {
			return invokeResult{}, nil, false, &apiError{status: http.StatusServiceUnavailable, code: codeService, message: err.Error()}
		}
		var ae *apiError
		if !errors.As(err, &ae) && c.function(f.Tenant, f.Name) != f {
			// f was replaced or deleted since the invocation looked it
			// up, and its code may have been removed with it (releaseCode)
			// before the environment could start from it: a transient
			// failure, which a retry resolves on the current version.
			c.cfg.Logger.Info("environment start raced a function update", "function", f.Name, "request_id", reqID, "error", err)
			return invokeResult{}, nil, false, &apiError{status: http.StatusServiceUnavailable, code: codeService, message: errCodeRemoved.Error()}
		}
		return invokeResult{}, nil, false, err
	}
	inv := &invocation{
		id:        reqID,
		payload:   payload,
		subTenant: sub,
		arn:       c.arn(f),
		traceID:   newTraceID(),
		result:    make(chan invokeResult, 1),
	}
	start := time.Now()
	if tail != nil {
		e.logs.startTail(e.id)
	}
	// START, END and REPORT go to the log in one write, after the response
	// (see flushLogs); the function's own output, if any, writes them in
	// order.
	e.logs.startRequest(e.id, reqID, []byte("START RequestId: "+reqID+" Version: "+strconv.Itoa(f.Version)))
	res := e.invoke(inv, time.Duration(f.Config.TimeoutSec)*time.Second, c.cfg.InitTimeout)
	if tail != nil {
		e.logs.awaitPump(e.id)
	}
	elapsed := time.Since(start)
	end := "END RequestId: " + reqID + " Duration: " + formatMS(elapsed) + " ms"
	if res.fnError {
		end += " Status: error"
		if res.discard {
			end += " (environment discarded)"
		}
	}
	e.logs.bufferLine(e.id, reqID, []byte(end))
	e.logs.bufferLine(e.id, reqID, e.reportLine(f, reqID, sub, elapsed, cold))
	if tail != nil {
		// Before the release: the next invocation's lines are not ours.
		*tail = e.logs.endTail(e.id)
	}
	c.pool.release(e, res.discard)
	return res, e, cold, nil
}

// entrypointMessage says why the bootstrap could not be executed, the way
// Lambda does ("exec /var/task/bootstrap: exec format error"), but without
// paths of this machine, which are not the caller's business: a plain
// process's bootstrap is under the state dir. A sandbox's error names only
// paths inside the sandbox.
func (c *Cloud) entrypointMessage(ee errEntrypoint) string {
	var pe *fs.PathError
	if errors.As(ee, &pe) && filepath.IsAbs(pe.Path) {
		return pe.Op + " " + filepath.Base(pe.Path) + ": " + pe.Err.Error()
	}
	return strings.ReplaceAll(ee.Error(), c.cfg.StateDir, "...")
}

// invokeAsync runs an Event invocation. Throttled invocations are retried
// with backoff for up to a minute, as Lambda's internal queue would; the
// function's own errors are logged, not retried.
func (c *Cloud) invokeAsync(f *function, sub, reqID string, payload []byte) {
	defer c.async.Done()
	defer func() { <-c.asyncSem }()
	backoff := 10 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		res, e, _, err := c.run(f, sub, reqID, payload, nil)
		flushLogs(e)
		var ae *apiError
		if errors.As(err, &ae) && ae.code == codeTooManyRequests && time.Now().Before(deadline) {
			select {
			case <-c.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		if err != nil {
			c.cfg.Logger.Warn("asynchronous invocation dropped", "function", f.Name, "request_id", reqID, "error", err)
		} else if res.fnError {
			c.cfg.Logger.Info("asynchronous invocation failed", "function", f.Name, "request_id", reqID, "error", string(res.payload))
		}
		return
	}
}

// readPayload reads an Invoke body: at most 6 MB of valid JSON. An empty
// body is the empty object.
func readPayload(r *http.Request) ([]byte, error) {
	b, err := readBody(r, MaxPayloadBytes, func(int64) error {
		return errTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", MaxPayloadBytes)
	})
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return emptyPayload, nil
	}
	if !json.Valid(b) {
		return nil, errInvalidContent("Could not parse request body into json: the payload is not valid JSON")
	}
	return b, nil
}

// newRequestID returns a random UUIDv4, Lambda's request id format.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// newTraceID returns an X-Ray trace header value.
func newTraceID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "Root=1-" + strconv.FormatInt(time.Now().Unix(), 16) + "-" + hex.EncodeToString(b[:]) + ";Sampled=0"
}
