package lambda

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error codes the local cloud answers with. They are Lambda's, so
// aws-sdk-go-v2 decodes them into its typed errors (for example
// *types.ResourceNotFoundException): the SDK reads the code from the
// X-Amzn-Errortype header and the message from the body's "message".
const (
	codeNotFound               = "ResourceNotFoundException"
	codeInvalidParameter       = "InvalidParameterValueException"
	codeInvalidRequestContent  = "InvalidRequestContentException"
	codeTooManyRequests        = "TooManyRequestsException"
	codeRequestTooLarge        = "RequestEntityTooLargeException"
	codeConflict               = "ResourceConflictException"
	codeUnrecognizedClient     = "UnrecognizedClientException"
	codeService                = "ServiceException"
	codeUnknownOperation       = "UnknownOperationException"
	codeAccessDenied           = "AccessDeniedException"
	reasonConcurrentLimit      = "ConcurrentInvocationLimitExceeded"
	reasonReservedFunctionConc = "ReservedFunctionConcurrentInvocationLimitExceeded"
)

// The codes Lambda answers a request it cannot authenticate with. The
// local cloud's server writes them with WriteError before a request
// reaches the service; CodeMissingAuthenticationToken is also the service's
// own answer to a request that carries no principal.
const (
	CodeUnrecognizedClient         = codeUnrecognizedClient
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
)

// WriteError writes an error in Lambda's JSON error format with the given
// HTTP status, code (the X-Amzn-Errortype header SDKs read) and message,
// for errors found before a request reaches the service (its
// authentication). message goes to the caller as is.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	writeError(w, &apiError{status: status, code: code, message: message})
}

// apiError is an error the Lambda API returns to its caller in Lambda's JSON
// error format. Everything the API handlers fail with is one of these, so
// the status code and code are decided where the failure is understood.
type apiError struct {
	status  int
	code    string
	message string
	// reason is TooManyRequestsException's Reason (a Lambda ThrottleReason).
	reason string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errNotFound(format string, a ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, message: fmt.Sprintf(format, a...)}
}

func errInvalidParameter(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeInvalidParameter, message: fmt.Sprintf(format, a...)}
}

func errInvalidContent(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeInvalidRequestContent, message: fmt.Sprintf(format, a...)}
}

func errTooManyRequests(reason, format string, a ...any) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: codeTooManyRequests, reason: reason, message: fmt.Sprintf(format, a...)}
}

func errTooLarge(format string, a ...any) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: codeRequestTooLarge, message: fmt.Sprintf(format, a...)}
}

func errConflict(format string, a ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: codeConflict, message: fmt.Sprintf(format, a...)}
}

func errUnrecognizedClient(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: codeUnrecognizedClient, message: msg}
}

// apiWriter is the ResponseWriter ServeHTTP hands its handlers: it carries
// what writeError needs to log an internal failure.
type apiWriter struct {
	http.ResponseWriter
	log *slog.Logger
	r   *http.Request
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *apiWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// internalError logs err, an internal failure, with a new incident id and
// returns the ServiceException that names only that id. Internal errors
// carry the machine's paths (state dir, code store, environments) and its
// state, which are the operator's business, not the caller's: the caller
// gets the id to find the full error in the local cloud's log.
func internalError(w http.ResponseWriter, err error) *apiError {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	log := slog.Default()
	var attrs []any
	if aw, ok := w.(*apiWriter); ok {
		log = aw.log
		attrs = append(attrs, "method", aw.r.Method, "path", aw.r.URL.Path)
	}
	log.Error("lambda API internal error", append(attrs, "incident", id, "error", err)...)
	return &apiError{status: http.StatusInternalServerError, code: codeService,
		message: "internal error; see the local cloud's log (incident " + id + ")"}
}

// writeError writes err in Lambda's error format. Errors that are not
// *apiError are internal failures: they become a ServiceException with a
// generic message, and the full error goes to the log (internalError).
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = internalError(w, err)
	}
	body := struct {
		Type    string `json:"Type"`
		Message string `json:"message"`
		Reason  string `json:"Reason,omitempty"`
	}{Type: "User", Message: ae.message, Reason: ae.reason}
	if ae.status >= 500 {
		body.Type = "Service"
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", ae.code)
	w.WriteHeader(ae.status)
	_, _ = w.Write(b)
}
