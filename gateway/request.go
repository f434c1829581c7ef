package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// Headers of the Invoke API the gateway reads or writes. The X-Amz ones are
// Lambda's; the X-Gust ones are gust's extensions.
const (
	HeaderTenantID       = "X-Amz-Tenant-Id"
	HeaderInvocationType = "X-Amz-Invocation-Type"
	HeaderLogType        = "X-Amz-Log-Type"
	HeaderLogResult      = "X-Amz-Log-Result"
	HeaderFunctionError  = "X-Amz-Function-Error"
	HeaderExecuted       = "X-Amz-Executed-Version"
	HeaderRequestID      = "X-Amzn-Requestid"
	// HeaderMaxWait bounds a RequestResponse call's wait in the durable
	// queue: a Go duration ("1.5s") or whole seconds ("30"), more than 0
	// and at most MaxMaxWait; DefaultMaxWait without it.
	HeaderMaxWait = "X-Gust-Max-Wait"
	// HeaderIdempotencyKey names an invocation: calls of the same tenant,
	// function and sub-tenant with the same key are one invocation, which
	// runs once; every call gets its result. 1 to 128 characters from
	// [a-zA-Z0-9._:-].
	HeaderIdempotencyKey = "X-Gust-Idempotency-Key"
)

// Invocation types (X-Amz-Invocation-Type).
const (
	TypeRequestResponse = "RequestResponse"
	TypeEvent           = "Event"
	TypeDryRun          = "DryRun"
)

// Bounds of X-Gust-Max-Wait.
const (
	DefaultMaxWait = 30 * time.Second
	MaxMaxWait     = 15 * time.Minute
)

// invocationsPrefix and invocationsSuffix frame the one path the gateway
// serves: /2015-03-31/functions/{FunctionName}/invocations.
const (
	invocationsPrefix = "/2015-03-31/functions/"
	invocationsSuffix = "/invocations"
)

// functionPath returns the {FunctionName} of an Invoke path, still
// unparsed (a name, a partial or full ARN, maybe with a qualifier).
func functionPath(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, invocationsPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, invocationsSuffix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// functionRef is a parsed {FunctionName}.
type functionRef struct {
	name, qualifier string
}

// parseFunction accepts the forms Lambda does: my-function,
// my-function:QUALIFIER, ACCOUNT:function:my-function[:QUALIFIER] and
// arn:aws:lambda:REGION:ACCOUNT:function:my-function[:QUALIFIER]. An ARN
// of another account than the tenant's is not found, like a missing
// function, so callers cannot probe other tenants. ?Qualifier= overrides
// the name's qualifier, as in the local cloud.
func parseFunction(raw, tenant, queryQualifier string) (functionRef, *apiError) {
	parts := strings.Split(raw, ":")
	var f functionRef
	account := ""
	switch {
	case len(parts) == 1:
		f.name = parts[0]
	case len(parts) == 2:
		f.name, f.qualifier = parts[0], parts[1]
	case (len(parts) == 7 || len(parts) == 8) && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		account, f.name = parts[4], parts[6]
		if len(parts) == 8 {
			f.qualifier = parts[7]
		}
	case (len(parts) == 3 || len(parts) == 4) && parts[1] == "function":
		account, f.name = parts[0], parts[2]
		if len(parts) == 4 {
			f.qualifier = parts[3]
		}
	default:
		return f, errorf(http.StatusBadRequest, codeInvalidParameter, fmt.Sprintf("invalid function name %.80q", raw))
	}
	if err := workflows.ValidateFunctionName(f.name); err != nil {
		return f, errorf(http.StatusBadRequest, codeInvalidParameter, err.Error())
	}
	if account != "" && account != tenants.AccountID(tenant) {
		return f, errorf(http.StatusNotFound, codeNotFound, "Function not found: "+raw)
	}
	if queryQualifier != "" {
		f.qualifier = queryQualifier
	}
	if err := workflows.ValidateQualifier(f.qualifier); err != nil {
		return f, errorf(http.StatusBadRequest, codeInvalidParameter, err.Error())
	}
	return f, nil
}

// parseMaxWait reads X-Gust-Max-Wait: a Go duration or whole seconds,
// more than 0 and at most MaxMaxWait.
func parseMaxWait(v string) (time.Duration, *apiError) {
	if v == "" {
		return DefaultMaxWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseInt(v, 10, 64)
		if nerr != nil || n > int64(MaxMaxWait/time.Second) {
			return 0, errorf(http.StatusBadRequest, codeInvalidParameter,
				fmt.Sprintf("%s %.40q: want a duration like 1.5s or whole seconds, more than 0 and at most %s", HeaderMaxWait, v, MaxMaxWait))
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 || d > MaxMaxWait {
		return 0, errorf(http.StatusBadRequest, codeInvalidParameter,
			fmt.Sprintf("%s %s is outside (0, %s]", HeaderMaxWait, d, MaxMaxWait))
	}
	return d, nil
}

// idempotentRequestID maps an idempotency key to the invocation's request
// id, and so to its workflow id. The tenant, function and sub-tenant are
// part of it: a sub-tenant holding a token must not reach another
// sub-tenant's result by guessing its key, and workflow ids alone do not
// keep tenants apart (InvokeWorkflowID("a", "b-c", id) is
// InvokeWorkflowID("a-b", "c", id): names may contain '-'). The id is a
// hash (128 bits, hex), so keys of any allowed length fit the workflow id
// and the same call always gives the same id. The parts are valid names
// and ids, none of which holds a NUL, so the joined string is unambiguous.
func idempotentRequestID(tenant, function, subTenant, key string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + function + "\x00" + subTenant + "\x00" + key))
	return "idem-" + hex.EncodeToString(sum[:16])
}

// readBody reads an Invoke body of at most workflows.MaxPayloadBytes.
func readBody(r *http.Request) ([]byte, *apiError) {
	tooLarge := errorf(http.StatusRequestEntityTooLarge, codeTooLarge,
		fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", workflows.MaxPayloadBytes))
	if r.ContentLength > workflows.MaxPayloadBytes {
		return nil, tooLarge
	}
	size := r.ContentLength
	if size < 0 || size > 64<<10 {
		size = 64 << 10 // grow as data arrives, not as a header promises
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > workflows.MaxPayloadBytes {
			return nil, tooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, errorf(http.StatusBadRequest, codeInvalidContent, "could not read the request body")
		}
	}
}
