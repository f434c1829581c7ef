package localcloud

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/sts"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/tenants/sigv4"
)

// api is one of the services behind the cloud's port.
type api int

const (
	apiEC2 api = iota
	apiLambda
	apiSTS
	apiSQS // the events queue's SQS JSON API, served by the EC2 service
)

// service is the SigV4 credential scope's service a request to the API
// must be signed for.
func (a api) service() string {
	switch a {
	case apiLambda:
		return "lambda"
	case apiSTS:
		return "sts"
	case apiSQS:
		return "sqs"
	}
	return "ec2"
}

// maxQueryBody bounds the body of an EC2 or STS Query API call, which is
// form-encoded parameters (the EC2 service's own limit).
const maxQueryBody = 10 << 20

// maxSQSBody bounds the body of an events queue call, JSON parameters
// that are never more than a few kilobytes.
const maxSQSBody = 1 << 20

// precheckAbove is the body size from which a Lambda call's signature is
// checked once before its body is read: everything but the payload hash
// (no, malformed or expired signature, unknown key) fails without the
// server buffering up to MaxRequestBytes for a caller who is nobody.
const precheckAbove = 1 << 20

// ServeHTTP authenticates every request, then routes it: Lambda's dated
// REST paths (/2015-03-31/functions/...) to the Lambda service, a call to
// / signed for the sts service (or, unsigned, naming an STS action) to
// STS, a call signed for the sqs service or naming an AmazonSQS.* target
// (SQS's JSON protocol) to the events queue (ec2.EventsQueueName), and
// everything else (EC2's Query protocol posts to /) to EC2.
//
// Authentication reads the whole body (bounded by the API's limit),
// verifies the SigV4 signature against the tenant registry, checks that
// the credential scope names the API's service, and hands the API the
// request with the body restored and the principal in its context
// (tenants.WithPrincipal). A refused request gets the API's own error
// codes and one warning in the log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == HealthPath:
		// Unauthenticated, like LocalStack's: it says nothing of any tenant.
		s.health(w, r)
		return
	case strings.HasPrefix(r.URL.Path, lambda.CodePathPrefix):
		// Authenticated by the URL's own signature (see code.go).
		s.lambda.ServeCode(w, r)
		return
	}
	a := apiEC2
	limit := int64(maxQueryBody)
	scope := scopeService(r)
	switch {
	case strings.HasPrefix(r.URL.Path, "/20"):
		a, limit = apiLambda, s.lambda.MaxRequestBytes()
		if r.ContentLength < 0 || r.ContentLength > precheckAbove {
			// With an empty body, Authenticate fails on everything but the
			// payload hash exactly as it would with the real one.
			if _, _, err := s.registry.Authenticate(r, nil); err != nil && !sigv4.IsBadSignature(err) {
				s.refuse(w, r, a, err)
				return
			}
		}
	case scope == "sts":
		a = apiSTS
	case scope == "sqs" || strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS."):
		a, limit = apiSQS, maxSQSBody
	}
	if r.ContentLength > limit {
		s.tooLarge(w, a, limit)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		s.badRequest(w, a, "reading the request body failed")
		return
	}
	if int64(len(body)) > limit {
		s.tooLarge(w, a, limit)
		return
	}
	if a == apiEC2 && scope != "ec2" && sts.IsAction(actionOf(r, body)) {
		// Unsigned, or signed for a service that is neither: the action
		// decides whose error the caller gets.
		a = apiSTS
	}
	principal, signed, err := s.registry.Authenticate(r, body)
	if err == nil && signed.Service != a.service() {
		err = &sigv4.Error{Kind: sigv4.KindBadSignature,
			Message: "Credential should be scoped to correct service: '" + a.service() + "'."}
	}
	if err != nil {
		s.refuse(w, r, a, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r = r.WithContext(tenants.WithPrincipal(r.Context(), principal))
	switch a {
	case apiLambda:
		s.lambda.ServeHTTP(w, r)
	case apiSTS:
		s.sts.ServeHTTP(w, r)
	case apiSQS:
		s.ec2.ServeSQS(w, r)
	default:
		s.ec2.ServeHTTP(w, r)
	}
}

// refusal is how one API answers one kind of authentication failure.
type refusal struct {
	status        int
	code, message string // message "" means the verifier's message
}

// refusals maps each API's answers to the verifier's error kinds: AWS's
// codes and statuses for each service.
var refusals = map[api]map[sigv4.ErrorKind]refusal{
	apiLambda: {
		sigv4.KindUnknownKey:   {http.StatusForbidden, lambda.CodeUnrecognizedClient, "The security token included in the request is invalid."},
		sigv4.KindBadSignature: {http.StatusForbidden, lambda.CodeInvalidSignature, ""},
		sigv4.KindMalformed:    {http.StatusForbidden, lambda.CodeInvalidSignature, ""},
		sigv4.KindMissingAuth:  {http.StatusForbidden, lambda.CodeMissingAuthenticationToken, "Missing Authentication Token"},
		sigv4.KindExpired:      {http.StatusForbidden, lambda.CodeInvalidSignature, ""},
		sigv4.KindInternal:     {http.StatusInternalServerError, "ServiceException", ""},
	},
	apiEC2: {
		sigv4.KindUnknownKey:   {http.StatusUnauthorized, ec2.CodeAuthFailure, "AWS was not able to validate the provided access credentials"},
		sigv4.KindBadSignature: {http.StatusForbidden, ec2.CodeSignatureDoesNotMatch, ""},
		sigv4.KindMalformed:    {http.StatusForbidden, ec2.CodeSignatureDoesNotMatch, ""},
		sigv4.KindMissingAuth:  {http.StatusUnauthorized, ec2.CodeMissingAuthenticationToken, "Request is missing Authentication Token"},
		sigv4.KindExpired:      {http.StatusBadRequest, ec2.CodeRequestExpired, ""},
		sigv4.KindInternal:     {http.StatusInternalServerError, "InternalError", ""},
	},
	apiSQS: {
		sigv4.KindUnknownKey:   {http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."},
		sigv4.KindBadSignature: {http.StatusForbidden, "SignatureDoesNotMatch", ""},
		sigv4.KindMalformed:    {http.StatusForbidden, "SignatureDoesNotMatch", ""},
		sigv4.KindMissingAuth:  {http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"},
		sigv4.KindExpired:      {http.StatusForbidden, "RequestExpired", ""},
		sigv4.KindInternal:     {http.StatusInternalServerError, "InternalError", ""},
	},
	apiSTS: {
		sigv4.KindUnknownKey:   {http.StatusForbidden, sts.CodeInvalidClientTokenID, "The security token included in the request is invalid."},
		sigv4.KindBadSignature: {http.StatusForbidden, sts.CodeSignatureDoesNotMatch, ""},
		sigv4.KindMalformed:    {http.StatusForbidden, sts.CodeSignatureDoesNotMatch, ""},
		sigv4.KindMissingAuth:  {http.StatusForbidden, sts.CodeMissingAuthenticationToken, "Request is missing Authentication Token"},
		sigv4.KindExpired:      {http.StatusForbidden, sts.CodeSignatureDoesNotMatch, ""},
		sigv4.KindInternal:     {http.StatusInternalServerError, sts.CodeInternalFailure, ""},
	},
}

// refuse answers a request that failed authentication in a's format and
// logs one line. Neither says more than the verifier's caller-safe
// message: never a secret, never the expected signature.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, a api, err error) {
	var ve *sigv4.Error
	if !errors.As(err, &ve) {
		ve = &sigv4.Error{Kind: sigv4.KindInternal, Message: "authentication failed"}
	}
	rf, ok := refusals[a][ve.Kind]
	if !ok {
		rf = refusals[a][sigv4.KindBadSignature]
	}
	msg := rf.message
	if msg == "" {
		msg = ve.Message
	}
	if ve.Kind == sigv4.KindInternal {
		// The registry failed: the request may be fine. The cause is the
		// operator's business; the caller gets a generic answer.
		s.log.Error("local cloud could not authenticate a request", "remote", r.RemoteAddr, "key_id", keyIDOf(r), "error", errors.Unwrap(ve))
		msg = "internal error authenticating the request; see the local cloud's log"
	} else {
		s.log.Warn("local cloud refused a request", "remote", r.RemoteAddr, "key_id", keyIDOf(r),
			"api", a.service(), "code", rf.code)
	}
	s.writeError(w, a, rf.status, rf.code, msg)
}

func (s *Server) tooLarge(w http.ResponseWriter, a api, limit int64) {
	msg := "request body is more than the " + strconv.FormatInt(limit, 10) + " bytes allowed"
	switch a {
	case apiLambda:
		s.writeError(w, a, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", msg)
	case apiSTS:
		s.writeError(w, a, http.StatusRequestEntityTooLarge, sts.CodeValidationError, msg)
	case apiSQS:
		s.writeError(w, a, http.StatusRequestEntityTooLarge, "InvalidParameterValue", msg)
	default:
		s.writeError(w, a, http.StatusRequestEntityTooLarge, "InvalidParameterValue", msg)
	}
}

func (s *Server) badRequest(w http.ResponseWriter, a api, msg string) {
	switch a {
	case apiLambda:
		s.writeError(w, a, http.StatusBadRequest, "InvalidRequestContentException", msg)
	case apiSTS:
		s.writeError(w, a, http.StatusBadRequest, sts.CodeValidationError, msg)
	case apiSQS:
		s.writeError(w, a, http.StatusBadRequest, "InvalidParameterValue", msg)
	default:
		s.writeError(w, a, http.StatusBadRequest, "InvalidParameterValue", msg)
	}
}

func (s *Server) writeError(w http.ResponseWriter, a api, status int, code, msg string) {
	switch a {
	case apiLambda:
		w.Header().Set(lambda.HeaderLocalCloud, "1")
		lambda.WriteError(w, status, code, msg)
	case apiSTS:
		sts.WriteError(w, status, code, msg)
	case apiSQS:
		ec2.WriteSQSError(w, status, code, msg)
	default:
		ec2.WriteError(w, status, code, msg)
	}
}

// scopeService is the service of the request's credential scope, from the
// Authorization header or a presigned URL's X-Amz-Credential; "" when the
// request carries neither. It is only a routing hint: Authenticate checks
// the scope for real.
func scopeService(r *http.Request) string {
	cred := ""
	if h := r.Header.Get("Authorization"); h != "" {
		_, cred, _ = strings.Cut(h, "Credential=")
		cred, _, _ = strings.Cut(cred, ",")
	} else if r.URL.RawQuery != "" {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// keyIDOf is the access key id the request claims, for the log: at most
// 128 characters, and only from the credential, never anything secret.
func keyIDOf(r *http.Request) string {
	cred := ""
	if h := r.Header.Get("Authorization"); h != "" {
		_, cred, _ = strings.Cut(h, "Credential=")
	} else if r.URL.RawQuery != "" {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	id, _, _ := strings.Cut(cred, "/")
	if len(id) > 128 {
		id = id[:128]
	}
	return id
}

// actionOf is the Query API action of a request to /: the Action of a
// form-encoded body, else of the query string.
func actionOf(r *http.Request, body []byte) string {
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Has("Action") {
			return form.Get("Action")
		}
	}
	if r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get("Action")
}
