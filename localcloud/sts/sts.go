// Package sts is the local cloud's AWS Security Token Service: the STS
// Query API's AssumeRole and GetCallerIdentity (version 2011-06-15), over
// the tenant registry. It is how gust's platform acts for a tenant the AWS
// way: its own principal assumes the tenant's PlatformRoleARN and gets
// temporary credentials with a session token, instead of holding the
// tenant's secret.
//
// The Service trusts the principal in the request's context
// (tenants.WithPrincipal): the local cloud's server verifies the request's
// signature and sets it before the request reaches the Service.
package sts

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/xml"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gust-dev/gust/tenants"
)

// Version is the STS API version the Service speaks.
const Version = "2011-06-15"

const xmlns = "https://sts.amazonaws.com/doc/" + Version + "/"

// Error codes of the STS API, as AWS spells them.
const (
	CodeAccessDenied               = "AccessDenied"
	CodeValidationError            = "ValidationError"
	CodeInvalidAction              = "InvalidAction"
	CodeInvalidClientTokenID       = "InvalidClientTokenId"
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeInternalFailure            = "InternalFailure"
)

// actions is every action of the real STS API. A request to the cloud's
// root that carries one of them, and no signature that says otherwise,
// is STS's; the Service implements AssumeRole and GetCallerIdentity and
// answers the others with InvalidAction.
var actions = map[string]bool{
	"AssumeRole": true, "GetCallerIdentity": true,
	"AssumeRoleWithSAML": true, "AssumeRoleWithWebIdentity": true, "AssumeRoot": true,
	"DecodeAuthorizationMessage": true, "GetAccessKeyInfo": true, "GetFederationToken": true,
	"GetSessionToken": true, "GetDelegatedAccessToken": true, "GetWebIdentityToken": true,
}

// IsAction reports whether name is an action of the STS API.
func IsAction(name string) bool { return actions[name] }

// Service serves the STS Query API. Its methods are safe for concurrent
// use.
type Service struct {
	registry *tenants.Registry
	log      *slog.Logger
}

// New returns the STS API over reg. log receives internal failures; nil
// means slog.Default().
func New(reg *tenants.Registry, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{registry: reg, log: log}
}

// sessionNameRE is RoleSessionName's constraint.
var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// ServeHTTP serves one STS call: a form-encoded POST, or a GET with the
// parameters in the query.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		WriteError(w, http.StatusBadRequest, CodeInvalidAction, "The HTTP method "+r.Method+" is not supported")
		return
	}
	principal, ok := tenants.PrincipalFrom(r.Context())
	if !ok {
		WriteError(w, http.StatusForbidden, CodeMissingAuthenticationToken, "Request is missing Authentication Token")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		WriteError(w, http.StatusBadRequest, CodeValidationError, "malformed request body")
		return
	}
	switch action := r.Form.Get("Action"); action {
	case "AssumeRole":
		s.assumeRole(w, r, principal)
	case "GetCallerIdentity":
		s.getCallerIdentity(w, principal)
	default:
		WriteError(w, http.StatusBadRequest, CodeInvalidAction, "Could not find operation "+strconv.Quote(action)+" for version "+Version)
	}
}

func (s *Service) assumeRole(w http.ResponseWriter, r *http.Request, caller tenants.Principal) {
	roleARN, sessionName := r.Form.Get("RoleArn"), r.Form.Get("RoleSessionName")
	var problems []string
	if roleARN == "" {
		problems = append(problems, "Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	} else if len(roleARN) < 20 || len(roleARN) > 2048 {
		problems = append(problems, "Value at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048")
	}
	if sessionName == "" {
		problems = append(problems, "Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	} else if !sessionNameRE.MatchString(sessionName) {
		problems = append(problems, "Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]{2,64}")
	}
	var duration time.Duration
	if v := r.Form.Get("DurationSeconds"); v != "" {
		secs, err := strconv.Atoi(v)
		switch {
		case err != nil:
			problems = append(problems, "Value at 'durationSeconds' failed to satisfy constraint: Member must be a number")
		case secs < int(tenants.MinSessionDuration/time.Second):
			problems = append(problems, "Value '"+v+"' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900")
		case secs > int(tenants.MaxSessionDuration/time.Second):
			problems = append(problems, "Value '"+v+"' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200")
		default:
			duration = time.Duration(secs) * time.Second
		}
	}
	if len(problems) > 0 {
		msg := strconv.Itoa(len(problems)) + " validation error"
		if len(problems) > 1 {
			msg += "s"
		}
		msg += " detected: " + problems[0]
		for _, p := range problems[1:] {
			msg += "; " + p
		}
		WriteError(w, http.StatusBadRequest, CodeValidationError, msg)
		return
	}
	creds, err := s.registry.AssumeRole(r.Context(), caller, roleARN, sessionName, duration)
	switch {
	case tenants.IsAccessDenied(err):
		// The same answer for any role the caller may not assume, so a
		// caller learns nothing about which tenants exist.
		WriteError(w, http.StatusForbidden, CodeAccessDenied,
			"User: "+caller.ARN()+" is not authorized to perform: sts:AssumeRole on resource: "+roleARN)
		return
	case tenants.IsInvalid(err):
		WriteError(w, http.StatusBadRequest, CodeValidationError, "1 validation error detected: the request's parameters are not valid for AssumeRole")
		return
	case err != nil:
		s.internal(w, "AssumeRole", err)
		return
	}
	role := tenants.PlatformRoleARN(creds.Tenant)
	assumed := tenants.Principal{Tenant: creds.Tenant, RoleARN: role, SessionName: sessionName}
	var b bytes.Buffer
	open(&b, "AssumeRole")
	b.WriteString("<AssumedRoleUser>")
	text(&b, "AssumedRoleId", roleID(role)+":"+sessionName)
	text(&b, "Arn", assumed.ARN())
	b.WriteString("</AssumedRoleUser><Credentials>")
	text(&b, "AccessKeyId", creds.AccessKeyID)
	text(&b, "SecretAccessKey", creds.SecretAccessKey)
	text(&b, "SessionToken", creds.SessionToken)
	text(&b, "Expiration", creds.Expiration.UTC().Format(time.RFC3339))
	b.WriteString("</Credentials>")
	text(&b, "PackedPolicySize", "0")
	closeResponse(&b, "AssumeRole")
	write(w, &b)
}

func (s *Service) getCallerIdentity(w http.ResponseWriter, p tenants.Principal) {
	var account, userID string
	switch {
	case p.RoleARN != "":
		account, userID = p.AccountID(), roleID(p.RoleARN)+":"+p.SessionName
	case p.Platform:
		// An IAM user's unique id.
		account, userID = tenants.PlatformAccountID, "AIDA"+derivedID(p.ARN())
	default:
		// A tenant's long-term key is its account's root: its user id is
		// the account id, as for AWS's root user.
		account = p.AccountID()
		userID = account
	}
	var b bytes.Buffer
	open(&b, "GetCallerIdentity")
	text(&b, "Arn", p.ARN())
	text(&b, "UserId", userID)
	text(&b, "Account", account)
	closeResponse(&b, "GetCallerIdentity")
	write(w, &b)
}

// internal logs err with an incident id and answers InternalFailure naming
// only that id: the cause is the operator's business.
func (s *Service) internal(w http.ResponseWriter, action string, err error) {
	var id [4]byte
	_, _ = rand.Read(id[:])
	incident := hex.EncodeToString(id[:])
	s.log.Error("sts internal error", "action", action, "incident", incident, "error", err)
	WriteError(w, http.StatusInternalServerError, CodeInternalFailure, "internal error; see the local cloud's log (incident "+incident+")")
}

// roleID is a role's stable unique id, "AROA" and 17 characters, as IAM
// shows them in AssumedRoleId and GetCallerIdentity's UserId.
func roleID(roleARN string) string { return "AROA" + derivedID(roleARN) }

func derivedID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:17]
}

func open(b *bytes.Buffer, action string) {
	b.WriteString(xml.Header)
	b.WriteString("<" + action + `Response xmlns="` + xmlns + `"><` + action + "Result>")
}

func closeResponse(b *bytes.Buffer, action string) {
	b.WriteString("</" + action + "Result><ResponseMetadata>")
	text(b, "RequestId", newRequestID())
	b.WriteString("</ResponseMetadata></" + action + "Response>")
}

func text(b *bytes.Buffer, name, value string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteString("</" + name + ">")
}

func write(w http.ResponseWriter, b *bytes.Buffer) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	// Credentials must not linger in caches between the cloud and its
	// caller.
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// WriteError writes an STS error response (an ErrorResponse document, the
// shape aws-sdk-go-v2 and the AWS CLI read the code from) with the given
// HTTP status, code and message. message goes to the caller as is.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<ErrorResponse xmlns="` + xmlns + `"><Error>`)
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	text(&b, "Type", typ)
	text(&b, "Code", code)
	text(&b, "Message", message)
	b.WriteString("</Error>")
	id := newRequestID()
	text(&b, "RequestId", id)
	b.WriteString("</ErrorResponse>")
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("x-amzn-RequestId", id)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
