// Package sigv4 verifies AWS Signature Version 4 on incoming requests, in
// the Authorization-header form and the presigned-query form, the way AWS
// services do. It uses only the standard library's crypto: the SDK may sign
// requests in tests, never verify them here.
//
// The canonical request follows the SDK's signer for services other than
// S3: the path is the escaped path as sent, escaped once more; the query
// is encoded with RFC 3986 and sorted after encoding; header values are
// trimmed with runs of spaces collapsed; the host comes from r.Host. The
// payload hash is always computed from the body the caller read, so an
// UNSIGNED-PAYLOAD or a lying X-Amz-Content-Sha256 never verifies.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// TimeFormat is the format of X-Amz-Date.
const TimeFormat = "20060102T150405Z"

const (
	dateFormat     = "20060102"
	scopeTerminal  = "aws4_request"
	defaultMaxSkew = 5 * time.Minute
	// maxPresignExpires is the longest a presigned URL may live: 7 days,
	// as AWS allows.
	maxPresignExpires = 604800
)

// Query parameters of the presigned form.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
	querySecurityToken = "X-Amz-Security-Token"
)

const (
	headerAuthorization = "Authorization"
	headerDate          = "X-Amz-Date"
	headerPlainDate     = "Date"
	headerSecurityToken = "X-Amz-Security-Token"
	headerContentSHA256 = "X-Amz-Content-Sha256"
)

// KeyStore resolves an access key id to its secret. It returns an error
// for which IsUnknownKey is true when the key does not exist or no longer
// works (expired after rotation). Any other error is a failure of the
// store, which Verify reports as KindInternal.
type KeyStore interface {
	SigningKey(accessKeyID string) (Key, error)
}

// KeyStoreFunc adapts a function to KeyStore.
type KeyStoreFunc func(accessKeyID string) (Key, error)

// SigningKey calls f.
func (f KeyStoreFunc) SigningKey(accessKeyID string) (Key, error) { return f(accessKeyID) }

// Key is the secret half of an access key. Its String, GoString and
// LogValue redact both fields, so printing or logging one leaks nothing.
type Key struct {
	Secret string
	// SessionToken is non-empty for temporary credentials: the request
	// must carry the same X-Amz-Security-Token.
	SessionToken string
	// derived caches the last signing key derived from Secret; see
	// WithCache.
	derived *derivedCache
}

// WithCache returns k with a cache of the signing key derived from its
// secret for the last credential scope (date, region, service), which
// saves four HMACs a request. A KeyStore that keeps Keys in memory should
// hand out Keys from WithCache, and reuse them. The cache is keyed by the
// secret too, so a copy whose Secret is changed never uses it wrongly.
func (k Key) WithCache() Key {
	k.derived = &derivedCache{}
	return k
}

type derivedCache struct{ p atomic.Pointer[derivedKey] }

type derivedKey struct {
	secret, scope string
	key           []byte
}

// signingKey returns the key derived from k.Secret for a's scope.
func (k Key) signingKey(a Authorization) []byte {
	if k.derived == nil {
		return DeriveKey(k.Secret, a.Date, a.Region, a.Service)
	}
	scope := a.scope()
	if d := k.derived.p.Load(); d != nil && d.scope == scope && d.secret == k.Secret {
		return d.key
	}
	key := DeriveKey(k.Secret, a.Date, a.Region, a.Service)
	k.derived.p.Store(&derivedKey{secret: k.Secret, scope: scope, key: key})
	return key
}

func (k Key) String() string {
	if k.SessionToken != "" {
		return "sigv4.Key{Secret: REDACTED, SessionToken: REDACTED}"
	}
	return "sigv4.Key{Secret: REDACTED}"
}

// GoString redacts the key for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue redacts the key for log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Verifier checks SigV4 signatures against a KeyStore. It is safe for
// concurrent use when its KeyStore is.
type Verifier struct {
	Keys    KeyStore
	Now     func() time.Time // nil: time.Now
	MaxSkew time.Duration    // 0: 5 minutes
}

// Signed describes a verified request.
type Signed struct {
	AccessKeyID string
	Date        string // yyyymmdd, the credential scope's date
	Region      string
	Service     string
	// Time is the request's signing time (X-Amz-Date).
	Time time.Time
	// Presigned is true for the presigned-query form.
	Presigned bool
}

// ErrorKind classifies a verification failure. Callers map kinds to their
// service's error codes (Lambda's InvalidSignatureException, EC2's
// AuthFailure, ...).
type ErrorKind int

const (
	// KindMissingAuth: the request carries no signature at all.
	KindMissingAuth ErrorKind = iota + 1
	// KindUnknownKey: the access key does not exist, no longer works, or
	// its security token is missing or wrong.
	KindUnknownKey
	// KindBadSignature: the signature does not match the request.
	KindBadSignature
	// KindExpired: the signing time is outside the allowed skew, or a
	// presigned URL has expired.
	KindExpired
	// KindMalformed: the signature's fields cannot be parsed, or a
	// required part is missing (AWS's IncompleteSignature).
	KindMalformed
	// KindInternal: the KeyStore failed; the request may be fine. Message
	// says nothing of the cause; errors.Unwrap gives it to the server's
	// own logs.
	KindInternal
)

var kindNames = [...]string{
	KindMissingAuth:  "MissingAuth",
	KindUnknownKey:   "UnknownKey",
	KindBadSignature: "BadSignature",
	KindExpired:      "Expired",
	KindMalformed:    "Malformed",
	KindInternal:     "Internal",
}

func (k ErrorKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// Error is every error Verify returns. Message is safe to show the caller:
// it never holds a secret, a session token or the expected signature.
type Error struct {
	Kind    ErrorKind
	Message string
	// cause is a KeyStore failure, for KindInternal only.
	cause error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the KeyStore failure behind a KindInternal error.
func (e *Error) Unwrap() error { return e.cause }

func newError(k ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

func isKind(err error, k ErrorKind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// IsMissingAuth reports whether err says the request was not signed.
func IsMissingAuth(err error) bool { return isKind(err, KindMissingAuth) }

// IsUnknownKey reports whether err says the key or its token is not valid.
func IsUnknownKey(err error) bool { return isKind(err, KindUnknownKey) }

// IsBadSignature reports whether err says the signature does not match.
func IsBadSignature(err error) bool { return isKind(err, KindBadSignature) }

// IsExpired reports whether err says the signing time is too old or too new.
func IsExpired(err error) bool { return isKind(err, KindExpired) }

// IsMalformed reports whether err says the signature could not be parsed.
func IsMalformed(err error) bool { return isKind(err, KindMalformed) }

// IsInternal reports whether err is a KeyStore failure.
func IsInternal(err error) bool { return isKind(err, KindInternal) }

// Messages AWS uses, so SDKs and scripts that match on them keep working.
const (
	msgInvalidToken = "The security token included in the request is invalid."
	msgBadSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// UnknownKeyError is the error a KeyStore returns for a key that does not
// exist or no longer works.
func UnknownKeyError() error {
	return &Error{Kind: KindUnknownKey, Message: msgInvalidToken}
}

// Authorization is a parsed SigV4 Authorization header.
type Authorization struct {
	AccessKeyID, Date, Region, Service string
	SignedHeaders                      []string
	Signature                          string
}

// String formats a as an Authorization header value; ParseAuthorization
// of the result gives a back.
func (a Authorization) String() string {
	return Algorithm + " Credential=" + a.AccessKeyID + "/" + a.scope() +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") +
		", Signature=" + a.Signature
}

func (a Authorization) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + scopeTerminal
}

// ParseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/20260101/
// us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date,
// Signature=hex". It is strict: exactly one of each part and no other, a
// lowercase hex signature of 64 characters, a credential scope of five
// parts ending aws4_request with a valid date, signed headers lowercase,
// sorted, unique and including host. Errors are *Error of KindMalformed
// (KindMissingAuth for an empty header). It never panics.
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	if strings.TrimSpace(h) == "" {
		return a, newError(KindMissingAuth, "Missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return a, newError(KindMalformed, "Authorization header requires the %s algorithm.", Algorithm)
	}
	var haveCred, haveSH, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimLeft(part, " ")
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return Authorization{}, newError(KindMalformed, "Authorization header is malformed: a part is not key=value.")
		}
		var err error
		switch key {
		case "Credential":
			if haveCred {
				return Authorization{}, dupPart(key)
			}
			haveCred = true
			a.AccessKeyID, a.Date, a.Region, a.Service, err = parseCredential(val)
		case "SignedHeaders":
			if haveSH {
				return Authorization{}, dupPart(key)
			}
			haveSH = true
			a.SignedHeaders, err = parseSignedHeaders(val)
		case "Signature":
			if haveSig {
				return Authorization{}, dupPart(key)
			}
			haveSig = true
			a.Signature, err = parseSignature(val)
		default:
			return Authorization{}, newError(KindMalformed, "Authorization header is malformed: unexpected part.")
		}
		if err != nil {
			return Authorization{}, err
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return Authorization{}, newError(KindMalformed, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
	}
	return a, nil
}

func dupPart(key string) error {
	return newError(KindMalformed, "Authorization header is malformed: %s appears more than once.", key)
}

// parseCredential parses AKID/yyyymmdd/region/service/aws4_request.
func parseCredential(s string) (akid, date, region, service string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 || parts[4] != scopeTerminal {
		return "", "", "", "", newError(KindMalformed, "Credential should be scoped to a valid region, and service, and terminate with %s.", scopeTerminal)
	}
	akid, date, region, service = parts[0], parts[1], parts[2], parts[3]
	if !isKeyID(akid) {
		return "", "", "", "", newError(KindMalformed, "Credential has an invalid access key id.")
	}
	if !isScopeDate(date) {
		return "", "", "", "", newError(KindMalformed, "Credential should be scoped to a valid date (yyyymmdd).")
	}
	if !isScopeName(region) || !isScopeName(service) {
		return "", "", "", "", newError(KindMalformed, "Credential should be scoped to a valid region, and service.")
	}
	return akid, date, region, service, nil
}

// isKeyID accepts what AWS key ids look like: letters and digits, at most
// 128 of them.
func isKeyID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isScopeDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := time.Parse(dateFormat, s)
	return err == nil
}

// isScopeName accepts region and service names: lowercase letters,
// digits and '-', at most 64.
func isScopeName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseSignedHeaders parses "host;x-amz-date": lowercase header names,
// strictly increasing, including host.
func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, newError(KindMalformed, "SignedHeaders must not be empty.")
	}
	names := strings.Split(s, ";")
	if len(names) > 100 {
		return nil, newError(KindMalformed, "SignedHeaders lists too many headers.")
	}
	host := false
	for i, n := range names {
		if !isLowerToken(n) {
			return nil, newError(KindMalformed, "SignedHeaders must be lowercase header names.")
		}
		if i > 0 && names[i-1] >= n {
			return nil, newError(KindMalformed, "SignedHeaders must be sorted and unique.")
		}
		if n == "host" {
			host = true
		}
	}
	if !host {
		return nil, newError(KindMalformed, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return names, nil
}

// isLowerToken accepts an HTTP header name (RFC 9110 token) in lowercase.
func isLowerToken(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func parseSignature(s string) (string, error) {
	if len(s) != 64 {
		return "", newError(KindMalformed, "Signature must be 64 lowercase hexadecimal characters.")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", newError(KindMalformed, "Signature must be 64 lowercase hexadecimal characters.")
		}
	}
	return s, nil
}

// Verify checks r's signature, in the Authorization-header form or the
// presigned-query form. body is the whole request body (the caller has
// read it); the payload hash in the canonical request is always computed
// from it. Errors are *Error.
//
// The checks run in this order: the signature's fields parse; the key
// exists and the security token belongs to it; the signing time is
// within the skew (or the presigned URL has not expired); the signature
// matches.
func (v *Verifier) Verify(r *http.Request, body []byte) (Signed, error) {
	query, qerr := url.ParseQuery(r.URL.RawQuery)
	authz := r.Header.Values(headerAuthorization)
	presigned := query.Has(querySignature) || query.Has(queryAlgorithm) || query.Has(queryCredential)
	switch {
	case len(authz) == 0 && !presigned:
		if qerr != nil {
			// A query we cannot parse might have held a signature.
			return Signed{}, newError(KindMalformed, "The query string is malformed.")
		}
		return Signed{}, newError(KindMissingAuth, "Missing Authentication Token")
	case len(authz) > 0 && presigned:
		return Signed{}, newError(KindMalformed, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case len(authz) > 1:
		return Signed{}, newError(KindMalformed, "Only one Authorization header is allowed.")
	case qerr != nil:
		return Signed{}, newError(KindMalformed, "The query string is malformed.")
	}

	var (
		a        Authorization
		amzDate  string
		expires  int64
		token    string
		tokenSet bool
		err      error
	)
	if presigned {
		a, amzDate, expires, err = parsePresigned(query)
		if err != nil {
			return Signed{}, err
		}
		token, tokenSet, err = single(query[querySecurityToken], querySecurityToken)
		if err != nil {
			return Signed{}, err
		}
	} else {
		a, err = ParseAuthorization(authz[0])
		if err != nil {
			return Signed{}, err
		}
		dateHeader := headerDate
		amzDate, _, err = single(r.Header.Values(headerDate), headerDate)
		if err != nil {
			return Signed{}, err
		}
		if amzDate == "" {
			dateHeader = headerPlainDate
			if amzDate, _, err = single(r.Header.Values(headerPlainDate), headerPlainDate); err != nil {
				return Signed{}, err
			}
		}
		if amzDate == "" {
			return Signed{}, newError(KindMalformed, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
		}
		if !contains(a.SignedHeaders, strings.ToLower(dateHeader)) {
			return Signed{}, newError(KindMalformed, "'%s' must be a 'SignedHeader' in the AWS Authorization.", dateHeader)
		}
		token, tokenSet, err = single(r.Header.Values(headerSecurityToken), headerSecurityToken)
		if err != nil {
			return Signed{}, err
		}
		if !tokenSet {
			// A header-signed request may still carry its token in the
			// query; the query is signed, so it cannot be swapped.
			if token, tokenSet, err = single(query[querySecurityToken], querySecurityToken); err != nil {
				return Signed{}, err
			}
		}
	}

	t, err := time.Parse(TimeFormat, amzDate)
	if err != nil {
		return Signed{}, newError(KindMalformed, "X-Amz-Date must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'.")
	}
	if t.Format(dateFormat) != a.Date {
		return Signed{}, newError(KindBadSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.Date, t.Format(dateFormat), amzDate)
	}

	if v.Keys == nil {
		return Signed{}, &Error{Kind: KindInternal, Message: "internal error verifying the request signature", cause: errors.New("sigv4: Verifier has no KeyStore")}
	}
	key, err := v.Keys.SigningKey(a.AccessKeyID)
	if err != nil {
		if IsUnknownKey(err) {
			return Signed{}, UnknownKeyError()
		}
		return Signed{}, &Error{Kind: KindInternal, Message: "internal error verifying the request signature", cause: err}
	}
	switch {
	case key.SessionToken == "" && tokenSet:
		// A token sent with a long-term key: AWS refuses it too.
		return Signed{}, UnknownKeyError()
	case key.SessionToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(key.SessionToken)) != 1:
		return Signed{}, UnknownKeyError()
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if err := checkTime(now().UTC(), t, skew, presigned, expires); err != nil {
		return Signed{}, err
	}

	if !presigned {
		// The payload hash is ours; a header claiming another one (or
		// UNSIGNED-PAYLOAD) would sign content we never hashed.
		if claimed := r.Header.Values(headerContentSHA256); len(claimed) > 0 {
			sum := sha256.Sum256(body)
			if len(claimed) > 1 || claimed[0] != hex.EncodeToString(sum[:]) {
				return Signed{}, newError(KindBadSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
			}
		}
	}

	canonical, ok := canonicalRequest(r, query, a.SignedHeaders, body, presigned)
	if !ok {
		return Signed{}, newError(KindBadSignature, "%s", msgBadSignature)
	}
	want := signature(key.signingKey(a), a, amzDate, canonical)
	got := make([]byte, 32)
	if _, err := hex.Decode(got, []byte(a.Signature)); err != nil || !hmac.Equal(got, want) {
		return Signed{}, newError(KindBadSignature, "%s", msgBadSignature)
	}
	return Signed{
		AccessKeyID: a.AccessKeyID,
		Date:        a.Date,
		Region:      a.Region,
		Service:     a.Service,
		Time:        t,
		Presigned:   presigned,
	}, nil
}

// parsePresigned reads the X-Amz-* query parameters of a presigned URL.
func parsePresigned(q url.Values) (a Authorization, amzDate string, expires int64, err error) {
	get := func(name string) (string, error) {
		v, ok, err := single(q[name], name)
		if err != nil {
			return "", err
		}
		if !ok || v == "" {
			return "", newError(KindMalformed, "AWS query-string parameters must include '%s'. Re-examine the query-string parameters.", name)
		}
		return v, nil
	}
	var alg, cred, sh, sig string
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{queryAlgorithm, &alg}, {queryCredential, &cred}, {queryDate, &amzDate},
		{querySignedHeaders, &sh}, {querySignature, &sig},
	} {
		if *f.dst, err = get(f.name); err != nil {
			return Authorization{}, "", 0, err
		}
	}
	if alg != Algorithm {
		return Authorization{}, "", 0, newError(KindMalformed, "X-Amz-Algorithm only supports \"%s\".", Algorithm)
	}
	if a.AccessKeyID, a.Date, a.Region, a.Service, err = parseCredential(cred); err != nil {
		return Authorization{}, "", 0, err
	}
	if a.SignedHeaders, err = parseSignedHeaders(sh); err != nil {
		return Authorization{}, "", 0, err
	}
	if a.Signature, err = parseSignature(sig); err != nil {
		return Authorization{}, "", 0, err
	}
	// X-Amz-Expires is optional outside S3 (the SDK's PresignHTTP leaves
	// it out); without it the URL lives as a header-signed request does,
	// within the skew of its date.
	exp, set, err := single(q[queryExpires], queryExpires)
	if err != nil {
		return Authorization{}, "", 0, err
	}
	if !set {
		return a, amzDate, 0, nil
	}
	expires, perr := strconv.ParseInt(exp, 10, 64)
	if perr != nil || expires < 1 || expires > maxPresignExpires || exp[0] == '+' {
		return Authorization{}, "", 0, newError(KindMalformed, "X-Amz-Expires must be a number of seconds from 1 to %d.", maxPresignExpires)
	}
	return a, amzDate, expires, nil
}

// single returns the only value of a header or query parameter; more than
// one is malformed, since which one was signed would be ambiguous.
func single(vals []string, name string) (string, bool, error) {
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
		return vals[0], true, nil
	}
	return "", false, newError(KindMalformed, "'%s' must appear only once.", name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkTime applies AWS's rules to the signing time t: within skew of now
// for the header form and a presigned URL without X-Amz-Expires (expires
// 0); for a presigned URL with it, not after t+expires and not more than
// skew in the future.
func checkTime(now, t time.Time, skew time.Duration, presigned bool, expires int64) error {
	if t.After(now.Add(skew)) {
		return newError(KindExpired, "Signature not yet current: %s is still later than %s (%s + %s.)",
			t.Format(TimeFormat), now.Add(skew).Format(TimeFormat), now.Format(TimeFormat), fmtSkew(skew))
	}
	if presigned && expires > 0 {
		end := t.Add(time.Duration(expires) * time.Second)
		if now.After(end) {
			return newError(KindExpired, "Signature expired: %s is now earlier than %s.", end.Format(TimeFormat), now.Format(TimeFormat))
		}
		return nil
	}
	if t.Before(now.Add(-skew)) {
		return newError(KindExpired, "Signature expired: %s is now earlier than %s (%s - %s.)",
			t.Format(TimeFormat), now.Add(-skew).Format(TimeFormat), now.Format(TimeFormat), fmtSkew(skew))
	}
	return nil
}

func fmtSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return d.String()
}

// canonicalRequest builds the SigV4 canonical request. ok is false when a
// signed header is missing from the request.
func canonicalRequest(r *http.Request, query url.Values, signedHeaders []string, body []byte, presigned bool) (string, bool) {
	var b strings.Builder
	b.Grow(512)
	b.WriteString(r.Method)
	b.WriteByte('\n')

	path := r.URL.EscapedPath()
	if r.URL.Opaque != "" {
		path = opaquePath(r.URL.Opaque)
	}
	if path == "" {
		path = "/"
	}
	escapePath(&b, path)
	b.WriteByte('\n')

	writeCanonicalQuery(&b, query, presigned)
	b.WriteByte('\n')

	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		if name == "host" {
			b.WriteString(canonicalValue(r.Host))
			b.WriteByte('\n')
			continue
		}
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			if name != "content-length" {
				return "", false
			}
			// net/http moves Content-Length out of the header map on
			// requests built in process; its value is the body's size.
			vals = []string{strconv.Itoa(len(body))}
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(canonicalValue(v))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	sum := sha256.Sum256(body)
	var hexSum [64]byte
	hex.Encode(hexSum[:], sum[:])
	b.Write(hexSum[:])
	return b.String(), true
}

// opaquePath returns the path part of an opaque URL, as the SDK does.
func opaquePath(opaque string) string {
	if i := strings.IndexByte(opaque, '?'); i >= 0 {
		opaque = opaque[:i]
	}
	opaque = strings.TrimPrefix(opaque, "//")
	if i := strings.IndexByte(opaque, '/'); i >= 0 {
		return opaque[i:]
	}
	return ""
}

// escapePath escapes every byte of the (already escaped) path but the
// unreserved ones and '/', as the SDK does for services other than S3.
func escapePath(b *strings.Builder, p string) {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(p); i++ {
		c := p[i]
		if unreserved(c) || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
}

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// writeCanonicalQuery writes the query encoded with RFC 3986 and sorted by
// encoded key then encoded value; X-Amz-Signature is left out of a
// presigned request's.
func writeCanonicalQuery(b *strings.Builder, query url.Values, presigned bool) {
	if len(query) == 0 {
		return
	}
	type kv struct{ k, v string }
	params := make([]kv, 0, len(query))
	for k, vs := range query {
		if presigned && k == querySignature {
			continue
		}
		ek := queryEscape(k)
		for _, v := range vs {
			params = append(params, kv{ek, queryEscape(v)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
}

func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// canonicalValue trims a header value and collapses runs of spaces, as the
// SDK's signer does.
func canonicalValue(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	prevSpace := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// signature computes the request's signature: HMAC-SHA256 of the string
// to sign under the derived signing key k.
func signature(k []byte, a Authorization, amzDate, canonical string) []byte {
	sum := sha256.Sum256([]byte(canonical))
	var hexSum [64]byte
	hex.Encode(hexSum[:], sum[:])
	scope := a.scope()
	sts := make([]byte, 0, len(Algorithm)+len(amzDate)+len(scope)+len(hexSum)+3)
	sts = append(sts, Algorithm...)
	sts = append(sts, '\n')
	sts = append(sts, amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, scope...)
	sts = append(sts, '\n')
	sts = append(sts, hexSum[:]...)

	return hmacSHA256(k, sts)
}

// DeriveKey returns the SigV4 signing key: the HMAC chain
// kSecret → date → region → service → aws4_request.
func DeriveKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(scopeTerminal))
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}
