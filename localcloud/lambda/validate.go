package lambda

import (
	"fmt"
	"strings"

	"github.com/gust-dev/gust/limits"
)

// Input rules. Names end up in file paths (code cache, logs) and SQL keys, so
// they are checked byte by byte rather than with a regexp: faster on the
// invoke path, and no surprises from Unicode classes.

// ValidFunctionName reports whether name is a plain Lambda function name:
// 1 to 64 characters from [a-zA-Z0-9-_] (limits.ValidFunctionName).
func ValidFunctionName(name string) bool { return limits.ValidFunctionName(name) }

// ValidTenantID reports whether id is a valid gust tenant name: 1 to 64
// characters from [A-Za-z0-9_-], starting with a letter or digit
// (limits.ValidName, the tenant registry's rule). No dots and no
// separators, so it is always a safe single path element.
func ValidTenantID(id string) bool { return limits.ValidName(id) }

// ValidSubTenantID reports whether id is a valid sub-tenant id
// (limits.ValidSubTenantID: Lambda's TenantId rule, 1 to 256 characters
// from [a-zA-Z0-9._:/=+\-@ ]). Such ids may contain "/" and "..", so they
// never appear in paths unhashed.
func ValidSubTenantID(id string) bool { return limits.ValidSubTenantID(id) }

// validRequestID accepts the caller-chosen request ids gust passes through
// to the runtime (X-Gust-Request-Id).
func validRequestID(id string) bool { return limits.ValidRequestID(id) }

// reservedEnv are the variables Lambda sets itself and refuses in a
// function's configuration. gust refuses them too, so a function cannot point
// its runtime at another environment's Runtime API or fake its identity.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
	"TMPDIR": true, "HOME": true,
}

// maxEnvVarsBytes is Lambda's 4 KB limit on a function's variables.
const maxEnvVarsBytes = 4096

func validateEnvVars(vars map[string]string) error {
	size := 0
	for k, v := range vars {
		if !validEnvName(k) {
			return fmt.Errorf("environment variable name %q must match [a-zA-Z][a-zA-Z0-9_]+", k)
		}
		if reservedEnv[k] {
			return fmt.Errorf("environment variable %s is reserved by the runtime", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("environment variable %s contains a NUL byte", k)
		}
		size += len(k) + len(v)
	}
	if size > maxEnvVarsBytes {
		return fmt.Errorf("environment variables total %d bytes, more than the %d allowed", size, maxEnvVarsBytes)
	}
	return nil
}

func validEnvName(k string) bool {
	if len(k) < 2 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if i == 0 && !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
		if !limits.IsAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}
