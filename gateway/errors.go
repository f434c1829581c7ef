package gateway

import (
	"encoding/json"
	"net/http"
)

// Error codes the gateway answers with. They are Lambda's (and, for a
// refused caller, the codes AWS services use), so an unmodified AWS SDK
// decodes them: aws-sdk-go-v2 reads the code from the X-Amzn-Errortype
// header and the message from the body's "message", and returns its typed
// error (*types.ResourceNotFoundException...) or an APIError with the code.
//
// Refused callers:
//
//	no Authorization                      403 MissingAuthenticationTokenException
//	unknown or expired access key         403 UnrecognizedClientException
//	bad signature, wrong service scope    403 InvalidSignatureException
//	signature outside the 5-minute skew   403 InvalidSignatureException "Signature expired: ..."
//	malformed Authorization               400 IncompleteSignatureException
//	platform principal (acts for no one)  403 AccessDeniedException
//	bearer token tampered, unknown key,   401 UnrecognizedClientException
//	  wrong algorithm or malformed
//	bearer token expired                  401 ExpiredTokenException
//	token used outside its scope (another 403 AccessDeniedException
//	  sub-tenant or function)
//
// 401 says "the credentials are bad, get new ones" (RFC 6750's
// invalid_token, with a WWW-Authenticate: Bearer header); 403 says "these
// credentials may not do this".
const (
	codeMissingAuth          = "MissingAuthenticationTokenException"
	codeUnrecognizedClient   = "UnrecognizedClientException"
	codeInvalidSignature     = "InvalidSignatureException"
	codeIncompleteSignature  = "IncompleteSignatureException"
	codeAccessDenied         = "AccessDeniedException"
	codeExpiredToken         = "ExpiredTokenException"
	codeNotFound             = "ResourceNotFoundException"
	codeInvalidParameter     = "InvalidParameterValueException"
	codeInvalidContent       = "InvalidRequestContentException"
	codeTooLarge             = "RequestEntityTooLargeException"
	codeTooManyRequests      = "TooManyRequestsException"
	codeService              = "ServiceException"
	codeUnknownOperation     = "UnknownOperationException"
	reasonConcurrentLimit    = "ConcurrentInvocationLimitExceeded"
	reasonCallerRateExceeded = "CallerRateLimitExceeded"
)

// apiError is an answer in Lambda's error format. Its message is shown to
// the caller, so it never carries a secret, a token or the machine's
// internals.
type apiError struct {
	status  int
	code    string
	message string
	// reason is TooManyRequestsException's Reason (a Lambda ThrottleReason).
	reason string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// writeError writes e as Lambda does: {"Type": "User"|"Service",
// "message": ...} with the code in X-Amzn-Errortype.
func writeError(w http.ResponseWriter, e *apiError) {
	body := struct {
		Type    string `json:"Type"`
		Message string `json:"message"`
		Reason  string `json:"Reason,omitempty"`
	}{Type: "User", Message: e.message, Reason: e.reason}
	if e.status >= 500 {
		body.Type = "Service"
	}
	b, _ := json.Marshal(body) // strings always marshal
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Amzn-Errortype"] = []string{e.code}
	if e.status == http.StatusUnauthorized {
		h["Www-Authenticate"] = []string{`Bearer error="invalid_token"`}
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

var jsonContentType = []string{"application/json"}
