package lambda

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// runtimeAPI serves Lambda's Runtime API (2018-06-01) to one environment's
// process on that environment's own listener, so a request can only ever
// concern that environment: there is no lookup by id to get wrong.
type runtimeAPI struct{ e *environment }

const (
	runtimePrefix  = "/2018-06-01/runtime/"
	invocationPath = runtimePrefix + "invocation/"
)

func (h runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == invocationPath+"next":
		h.next(w, r)
	case r.Method == http.MethodPost && p == runtimePrefix+"init/error":
		h.initError(w, r)
	case r.Method == http.MethodPost && strings.HasPrefix(p, invocationPath):
		id, verb, ok := strings.Cut(p[len(invocationPath):], "/")
		if !ok || (verb != "response" && verb != "error") {
			runtimeError(w, http.StatusNotFound, "InvalidRequest", "unknown runtime api path")
			return
		}
		h.answer(w, r, id, verb == "error")
	default:
		runtimeError(w, http.StatusNotFound, "InvalidRequest", "unknown runtime api path")
	}
}

// next blocks until the pool hands this environment an invocation.
func (h runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	e := h.e
	e.readyOne.Do(func() { close(e.ready) })
	var inv *invocation
	select {
	case inv = <-e.nextCh:
	case <-e.stopping:
		runtimeError(w, http.StatusGone, "EnvironmentStopped", "environment is stopping")
		return
	case <-r.Context().Done():
		return
	}
	hd := w.Header()
	hd["Lambda-Runtime-Aws-Request-Id"] = []string{inv.id}
	hd["Lambda-Runtime-Deadline-Ms"] = []string{strconv.FormatInt(inv.deadline.UnixMilli(), 10)}
	hd["Lambda-Runtime-Invoked-Function-Arn"] = []string{inv.arn}
	hd["Lambda-Runtime-Trace-Id"] = []string{inv.traceID}
	if inv.subTenant != "" {
		hd["Lambda-Runtime-Aws-Tenant-Id"] = []string{inv.subTenant}
	}
	hd["Content-Type"] = []string{"application/json"}
	hd["Content-Length"] = []string{strconv.Itoa(len(inv.payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// answer takes the runtime's response or error for the current invocation.
func (h runtimeAPI) answer(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	inv := h.e.cur.Load()
	if inv == nil || inv.id != id {
		runtimeError(w, http.StatusBadRequest, "InvalidRequestID", "no such invocation in progress")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		runtimeError(w, http.StatusBadRequest, "InvalidRequest", "reading body: "+err.Error())
		return
	}
	if len(body) > MaxPayloadBytes {
		// aws-lambda-go exits when its response is refused, so the
		// environment is not worth keeping either way.
		inv.answer(fnErrorResult(errTypeTooLarge, "Response payload size exceeded maximum allowed payload size (6291456 bytes).", true))
		runtimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
		return
	}
	// aws-lambda-go reports a failure while streaming a response in
	// trailers; the invocation then failed, whatever the body says.
	if typ := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" && !isError {
		isError = true
		if b, err := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil && len(b) > 0 {
			body = b
		} else {
			body = fnErrorResult(typ, "response streaming failed", false).payload
		}
	}
	if isError {
		body = errorDocument(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	}
	if !inv.answer(invokeResult{payload: body, fnError: isError}) {
		runtimeError(w, http.StatusBadRequest, "InvalidStateTransition", "invocation already answered")
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// initError records that the runtime failed to initialise. The environment
// is discarded by whichever invocation is waiting for it.
func (h runtimeAPI) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes))
	doc := errorDocument(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	select {
	case h.e.initErr <- invokeResult{payload: doc, fnError: true, discard: true}:
	default:
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// errorDocument returns the runtime's error body as the invocation's error
// payload when it is a JSON object with an errorType, and otherwise builds
// one, so callers can always read errorType and errorMessage.
func errorDocument(body []byte, headerType string) []byte {
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.ErrorType != "" {
		return body
	}
	typ := doc.ErrorType
	if typ == "" {
		typ = headerType
	}
	if typ == "" {
		typ = "Unhandled"
	}
	msg := doc.ErrorMessage
	if msg == "" {
		msg = string(body)
	}
	return fnErrorResult(typ, msg, false).payload
}

func runtimeError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
