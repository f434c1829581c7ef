package main

import (
	"regexp"
	"sort"
	"strings"

	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// rawList collects every value of a repeatable flag as given. Unlike
// cli.StringSliceFlag it does not split values on commas, which IAM role
// names may contain.
type rawList []string

func (l *rawList) Set(v string) error { *l = append(*l, v); return nil }

func (l *rawList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, " ")
}

// roleARNRE is an IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME,
// with AWS's role name characters in the path and the name.
var roleARNRE = regexp.MustCompile(`^arn:[a-z][a-z0-9-]{0,31}:iam::[0-9]{12}:role/(?:[\w+=,.@-]{1,64}/)*[\w+=,.@-]{1,64}$`)

// parseTenantRoles reads --tenant-role TENANT=ROLE_ARN values: tenant
// names by workflows.ValidateTenantID, ARNs of IAM roles, each tenant once.
// Errors are usage errors naming the bad value.
func parseTenantRoles(values []string) (map[string]string, error) {
	roles := make(map[string]string, len(values))
	for _, v := range values {
		tenant, arn, ok := strings.Cut(v, "=")
		if !ok || tenant == "" || arn == "" {
			return nil, usagef("--tenant-role %q: want TENANT=ROLE_ARN", v)
		}
		if err := workflows.ValidateTenantID(tenant); err != nil {
			return nil, usagef("--tenant-role %q: %v", v, err)
		}
		if len(arn) > 2048 || !roleARNRE.MatchString(arn) {
			return nil, usagef("--tenant-role %q: %q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", v, arn)
		}
		if _, dup := roles[tenant]; dup {
			return nil, usagef("--tenant-role: tenant %s is given twice", tenant)
		}
		roles[tenant] = arn
	}
	return roles, nil
}

// servedTenants describes, for the worker's start-up line, which tenants
// cfg's worker acts for and how.
func servedTenants(cfg platform.WorkerConfig) string {
	var parts []string
	if cfg.Endpoint != "" {
		parts = append(parts, "every tenant through its platform role")
	}
	names := make([]string, 0, len(cfg.TenantRoles))
	for t := range cfg.TenantRoles {
		names = append(names, t)
	}
	sort.Strings(names)
	if len(names) > 0 {
		parts = append(parts, strings.Join(names, ", ")+" through --tenant-role")
	}
	if cfg.Endpoint == "" {
		var own []string
		if _, ok := cfg.TenantRoles[tenants.DefaultTenant]; !ok {
			own = append(own, "fleets of "+tenants.DefaultTenant)
		}
		if cfg.Tenant != "" {
			own = append(own, "functions of "+cfg.Tenant)
		}
		if len(own) > 0 {
			parts = append(parts, strings.Join(own, " and ")+" in the worker's own account")
		}
	}
	return strings.Join(parts, "; ")
}
