package providers

import (
	"context"
	"fmt"
)

// DefaultTenant is the tenant whose account a fleet launches into when it
// names none. It is the same name as tenants.DefaultTenant, which `gust
// dev` creates; it is repeated here so that providers and workflows do not
// depend on the tenant registry.
const DefaultTenant = "default"

// TenantOrDefault returns tenant, or DefaultTenant when tenant is empty:
// inputs recorded before tenants existed carry no tenant, and mean the
// default one.
func TenantOrDefault(tenant string) string {
	if tenant == "" {
		return DefaultTenant
	}
	return tenant
}

// Accounts gives the Compute of each tenant's account. A tenant is an
// account: its instances and capacity reservations are its own, and the
// Compute of one tenant can never see or touch another's.
type Accounts interface {
	// Compute returns the Compute that acts in tenant's account; ""
	// means DefaultTenant. It returns NotFoundError when this worker cannot
	// act for tenant (it has no role for it, or the cloud refused the
	// role: an unknown tenant) and InvalidError for a malformed name or a
	// worker whose own credentials the cloud rejects; no retry fixes
	// either. Other errors (the cloud unreachable while assuming the role)
	// are transient. Implementations cache what they resolve, so calling
	// it before every request is cheap.
	Compute(ctx context.Context, tenant string) (Compute, error)
}

// OneAccount is the Accounts of a worker with a single account: c serves
// DefaultTenant, and every other tenant is NotFoundError.
func OneAccount(c Compute) Accounts { return oneAccount{c} }

type oneAccount struct{ c Compute }

func (a oneAccount) Compute(_ context.Context, tenant string) (Compute, error) {
	if TenantOrDefault(tenant) != DefaultTenant {
		return nil, NewNotFoundError(fmt.Errorf("this worker serves only the %s account, not tenant %s", DefaultTenant, tenant))
	}
	return a.c, nil
}

// ValidTenantName reports whether s is a tenant name: 1 to 64 characters
// from [a-zA-Z0-9_-], starting with a letter or digit (the rule of
// workflows.ValidateTenantID and tenants.ValidName). Such a name is a safe
// path element, ARN part and role session name part.
func ValidTenantName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
