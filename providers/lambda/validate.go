package lambda

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gust-dev/gust/limits"
	"github.com/gust-dev/gust/providers"
)

// Input checks done before any call, so bad input is an InvalidError with a
// clear message and never reaches the cloud. The local cloud applies the
// same rules again; it cannot trust its callers.

func validateSpec(s providers.FunctionSpec) error {
	switch {
	case !validName(s.Name):
		return providers.NewInvalidError(fmt.Errorf("invalid function name %q: use 1 to 64 characters from [a-zA-Z0-9-_]", s.Name))
	case len(s.Zip) == 0:
		return providers.NewInvalidError(fmt.Errorf("function %s has no code", s.Name))
	case s.Tenancy != providers.TenancyNone && s.Tenancy != providers.TenancyPerTenant:
		return providers.NewInvalidError(fmt.Errorf("invalid tenancy %q: use %q or none", s.Tenancy, providers.TenancyPerTenant))
	case s.MaxEnvsPerSubTenant < 0:
		return providers.NewInvalidError(fmt.Errorf("max environments per sub-tenant must not be negative"))
	case s.EphemeralMB != 0 && (s.EphemeralMB < MinEphemeralMB || s.EphemeralMB > MaxEphemeralMB):
		return providers.NewInvalidError(fmt.Errorf("ephemeral storage %d MB is outside %d to %d MB", s.EphemeralMB, MinEphemeralMB, MaxEphemeralMB))
	case !validEgress(s.Egress):
		return providers.NewInvalidError(fmt.Errorf("invalid egress policy %q: use none, all or HOST[:PORT],... in printable ASCII", s.Egress))
	}
	return nil
}

// validEgress checks that an egress policy can travel as a header value; its
// syntax is the cloud's to check (the provider does not import the local
// cloud's parser).
func validEgress(s string) bool {
	return len(s) <= maxEgressBytes && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e })
}

// maxEgressBytes bounds an egress policy, far above any sensible host list.
const maxEgressBytes = 8 << 10

func validateInvoke(in providers.InvokeInput) error {
	switch {
	case !validName(in.Function):
		return providers.NewInvalidError(fmt.Errorf("invalid function name %q: use 1 to 64 characters from [a-zA-Z0-9-_]", in.Function))
	case in.SubTenant != "" && !ValidSubTenant(in.SubTenant):
		return providers.NewInvalidError(fmt.Errorf("invalid sub-tenant id: use %s", limits.SubTenantIDRule))
	case len(in.Payload) > MaxPayloadBytes:
		return providers.NewInvalidError(fmt.Errorf("payload is %d bytes, more than Lambda's %d", len(in.Payload), MaxPayloadBytes))
	case len(in.Payload) > 0 && !json.Valid(in.Payload):
		return providers.NewInvalidError(fmt.Errorf("payload is not valid JSON"))
	}
	return nil
}

func validName(name string) bool { return limits.ValidFunctionName(name) }

// validTenant checks a gust tenant name (limits.ValidName), which names the
// tenant's client, role session and ARNs.
func validTenant(id string) bool { return limits.ValidName(id) }

// ValidSubTenant reports whether id is a valid sub-tenant id
// (limits.ValidSubTenantID: Lambda's TenantId rule).
func ValidSubTenant(id string) bool { return limits.ValidSubTenantID(id) }

func validRequestID(id string) bool { return limits.ValidRequestID(id) }
