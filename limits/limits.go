// Package limits holds the names rules and size limits that several of
// gust's layers check: the workflows and the gateway before anything starts,
// the providers before a call leaves the worker, and the local cloud, which
// trusts no caller. Each rule lives here once so the layers cannot drift
// apart. The package imports nothing from gust, so every layer may use it.
//
// Every rule works on bytes, not runes: the allowed characters are all
// ASCII, so a multi-byte character is always refused, and a length is a
// count of bytes and of characters alike.
package limits

// Invocation limits, as AWS Lambda sets them.
const (
	// MaxPayloadBytes is the largest invocation request or response
	// payload (Lambda's 6 MB synchronous invocation limit).
	MaxPayloadBytes = 6 * 1024 * 1024
	// MaxSubTenantIDLen is the longest sub-tenant id (Lambda's TenantId).
	MaxSubTenantIDLen = 256
	// MaxNameLen is the longest tenant name or function name.
	MaxNameLen = 64
	// MaxRequestIDLen is the longest request id.
	MaxRequestIDLen = 128
)

// Function configuration limits, as AWS Lambda sets them.
const (
	// MinEphemeralMB and MaxEphemeralMB bound the size of a function's
	// /tmp; DefaultEphemeralMB is Lambda's default.
	MinEphemeralMB     = 512
	MaxEphemeralMB     = 10240
	DefaultEphemeralMB = 512
)

// IsAlnum reports whether c is an ASCII letter or digit.
func IsAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// SubTenantIDRule describes ValidSubTenantID's rule for error messages.
const SubTenantIDRule = "1 to 256 characters from letters, digits, spaces and . _ : / = + - @, not starting or ending with a space"

// ValidSubTenantID reports whether id is a valid sub-tenant id: Lambda's
// TenantId rule, 1 to MaxSubTenantIDLen characters from
// [a-zA-Z0-9._:/=+\-@ ], except that it must not start or end with a space.
//
// The exception is not Lambda's but HTTP's: a sub-tenant id travels in the
// X-Amz-Tenant-Id header, and a header value's leading and trailing
// whitespace is not part of it (RFC 9110 5.5), so Go's server, and any
// other, drops it. " a" would arrive as "a" and run in a's environments.
// Refusing such ids up front keeps one id one sub-tenant on every path.
//
// A sub-tenant id may contain '/', ':', "..", '+' and spaces: it must never
// be used as a path element, and must be escaped in a URL query (url.Values
// does) and kept out of workflow ids (none contains it).
func ValidSubTenantID(id string) bool {
	if len(id) == 0 || len(id) > MaxSubTenantIDLen || id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; c {
		case '.', '_', ':', '/', '=', '+', '-', '@', ' ':
		default:
			if !IsAlnum(c) {
				return false
			}
		}
	}
	return true
}

// ValidName reports whether s is a gust name: 1 to MaxNameLen characters
// from [a-zA-Z0-9_-], starting with a letter or digit. Tenant names follow
// it (the rule of tenants.ValidName and providers.ValidTenantName), and so do
// function names in gust's own API (the CLI, the workflows, the gateway and
// sub-tenant tokens). A name is a safe path element, workflow id part, ARN
// part and command-line argument.
func ValidName(s string) bool {
	return len(s) > 0 && IsAlnum(s[0]) && ValidFunctionName(s)
}

// ValidFunctionName reports whether s is a plain function name as Lambda
// accepts it: 1 to MaxNameLen characters from [a-zA-Z0-9_-]. Unlike
// ValidName it allows a leading '-' or '_': the providers and the local
// cloud take what Lambda takes, while gust's own API is stricter.
func ValidFunctionName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !IsAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// ValidRequestID reports whether id is a valid request id: 1 to
// MaxRequestIDLen characters from [a-zA-Z0-9._:-] (a UUID fits). Request
// ids are parts of workflow ids and travel in headers unescaped.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !IsAlnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}
