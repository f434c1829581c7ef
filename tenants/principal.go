// Package tenants is gust's tenant registry: the tenants, each an account of
// the local cloud; their access keys, with rotation and a grace period;
// the temporary credentials STS AssumeRole issues; and the per-tenant keys
// that sign sub-tenant tokens. The local cloud and the gateway both verify
// callers against it. It lives in one SQLite file that every gust process
// on the machine may open.
package tenants

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// DefaultTenant is the tenant `gust dev` creates on first start and that
// fleets launch into unless told otherwise.
const DefaultTenant = "default"

// PlatformRoleName is the role in every tenant's account that only the
// platform's own principal may assume: gust's worker acts for a tenant
// through it.
const PlatformRoleName = "gust-platform"

// MaxNameLen is the longest tenant name.
const MaxNameLen = 64

// ValidName reports whether s is a valid tenant name: 1 to MaxNameLen
// characters from [a-zA-Z0-9_-], starting with a letter or digit, the
// same rule as workflows.ValidateTenantID, so every tenant can own
// functions and fleets. A name is a safe single path element and ARN part.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != PlatformAccountID
}

// AccountID is the stable 12-digit account id of a tenant in the local
// cloud, used in ARNs. A tenant whose name is itself 12 digits is its own
// account.
func AccountID(tenant string) string {
	if len(tenant) == 12 && strings.Trim(tenant, "0123456789") == "" {
		return tenant
	}
	sum := sha256.Sum256([]byte(tenant))
	return fmt.Sprintf("%012d", binary.BigEndian.Uint64(sum[:8])%1_000_000_000_000)
}

// PlatformRoleARN is the ARN of the role the platform assumes to act for
// tenant in the local cloud.
func PlatformRoleARN(tenant string) string {
	return "arn:aws:iam::" + AccountID(tenant) + ":role/" + PlatformRoleName
}

// Principal is who a verified request comes from.
type Principal struct {
	// Tenant is the tenant the request acts for: the owner of a long-term
	// key, or the account of an assumed role. Empty for the platform's own
	// principal, which acts for no tenant until it assumes a role.
	Tenant string
	// AccessKeyID is the key the request was signed with.
	AccessKeyID string
	// Platform is true for the platform's own long-term key: it may call
	// STS AssumeRole on a tenant's PlatformRoleARN and nothing else.
	Platform bool
	// RoleARN is set when the key is temporary credentials from
	// AssumeRole: the role assumed.
	RoleARN string
	// SessionName is the AssumeRole session name, when RoleARN is set.
	SessionName string
}

// AccountID is the account the principal acts in; empty for the platform.
func (p Principal) AccountID() string {
	if p.Tenant == "" {
		return ""
	}
	return AccountID(p.Tenant)
}

// ARN is the principal's identity as STS GetCallerIdentity reports it.
func (p Principal) ARN() string {
	switch {
	case p.RoleARN != "":
		// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
		role := p.RoleARN[strings.LastIndex(p.RoleARN, "/")+1:]
		return "arn:aws:sts::" + p.AccountID() + ":assumed-role/" + role + "/" + p.SessionName
	case p.Platform:
		return "arn:aws:iam::" + PlatformAccountID + ":user/" + PlatformRoleName
	default:
		return "arn:aws:iam::" + p.AccountID() + ":root"
	}
}

// PlatformAccountID is the account of the platform's own principal. No
// tenant can have it: tenant accounts are derived from names, and a name
// of twelve zeros is refused.
const PlatformAccountID = "000000000000"

type principalKey struct{}

// WithPrincipal returns ctx carrying p; the authenticating layer sets it
// and the services read it with PrincipalFrom.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the verified principal of a request's context.
// ok is false when nothing authenticated the request: a service must
// then refuse it.
func PrincipalFrom(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}
