package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/gust-dev/gust/providers"
)

// Tenants says which credentials sign a tenant's requests. gust's worker
// acts for a tenant the AWS way: it assumes a role in the tenant's account
// with STS AssumeRole, signing that call with its own (the platform's)
// credentials, and signs the tenant's requests with the temporary
// credentials it gets back. On gust's local cloud the role is
// tenants.PlatformRoleARN(tenant); on AWS it is a cross-account role named
// with `gust worker --tenant-role TENANT=ROLE_ARN`.
//
// The zero value serves no tenant.
type Tenants struct {
	// RoleARN returns the role to assume for tenant, ok false when there is
	// none. Nil means no tenant has a role.
	RoleARN func(tenant string) (roleARN string, ok bool)
	// Own names the tenant whose account is the base configuration's own
	// account: when RoleARN has no role for it, its requests are signed with
	// the base credentials. Empty means no tenant is served that way.
	Own string
	// SessionName is the AssumeRole session name, which the cloud records
	// (CloudTrail, GetCallerIdentity). Default "gust-worker-<pid>".
	SessionName string
}

// SessionDuration is how long assumed credentials last. They are renewed
// SessionRenewBefore ahead of their expiry, so a request never goes out with
// credentials about to expire.
const (
	SessionDuration    = time.Hour
	SessionRenewBefore = 2 * time.Minute
)

// Serves reports whether t can act for tenant at all, without asking the
// cloud.
func (t Tenants) Serves(tenant string) bool {
	if t.RoleARN != nil {
		if _, ok := t.RoleARN(tenant); ok {
			return true
		}
	}
	return tenant != "" && tenant == t.Own
}

// Credentials returns the credentials provider that signs tenant's requests:
// a cached AssumeRole provider of tenant's role, with base's credentials
// calling STS (at endpoint, when set), or base's own credentials for Own.
// It makes no network call; the role is assumed on first use (see
// Retrieve). A tenant t does not serve is a NotFoundError, or an
// InvalidError when t serves no tenant at all (a worker started without
// --tenant or --tenant-role on AWS).
func (t Tenants) Credentials(base aws.Config, endpoint, tenant string) (aws.CredentialsProvider, error) {
	if t.RoleARN != nil {
		if arn, ok := t.RoleARN(tenant); ok {
			return AssumeRole(base, endpoint, arn, t.sessionName()), nil
		}
	}
	if tenant != "" && tenant == t.Own {
		if base.Credentials == nil {
			return nil, providers.NewInvalidError(errors.New("no aws credentials configured"))
		}
		return base.Credentials, nil
	}
	if t.RoleARN == nil && t.Own == "" {
		return nil, providers.NewInvalidError(errors.New(
			"this worker serves no tenant: on AWS start it with --tenant-role TENANT=ROLE_ARN (or --tenant, the tenant its own account belongs to)"))
	}
	return nil, providers.NewNotFoundError(fmt.Errorf(
		"this worker cannot act for tenant %s: it has no role for it (gust worker --tenant-role %s=ROLE_ARN)", tenant, tenant))
}

func (t Tenants) sessionName() string {
	if t.SessionName != "" {
		return t.SessionName
	}
	return "gust-worker-" + strconv.Itoa(os.Getpid())
}

// AssumeRole returns credentials of roleARN, assumed with base's credentials
// through STS (at endpoint when set, else the SDK's regional STS endpoint),
// cached until SessionRenewBefore ahead of their expiry. The STS client
// inherits base's HTTP client, region and retryer.
func AssumeRole(base aws.Config, endpoint, roleARN, sessionName string) aws.CredentialsProvider {
	client := sts.NewFromConfig(base, func(o *sts.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return aws.NewCredentialsCache(
		stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName
			o.Duration = SessionDuration
		}),
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = SessionRenewBefore },
	)
}

// Retrieve returns tenant's current credentials from creds (assuming the
// role if the cache holds none, or none fresh), translated to the
// providers' typed errors: the cloud refusing the role (AccessDenied: no
// such tenant, or a role that does not trust this worker) is a
// NotFoundError; another refusal by STS (the worker's own key unknown or
// badly signed, a malformed role ARN) is an InvalidError, since no retry
// can fix it; throttling is a ThrottledError; anything else (the network)
// is returned wrapped and stays retryable. The error never holds a secret:
// STS errors carry a code, a message and a request id.
//
// Providers call it before every request they make for a tenant: on a
// warm cache it costs an atomic load and a clock read, and it makes the
// AssumeRole failure surface here, where it can be typed, rather than
// inside the SDK's signing step.
func Retrieve(ctx context.Context, creds aws.CredentialsProvider, tenant string) (aws.Credentials, error) {
	c, err := creds.Retrieve(ctx)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return aws.Credentials{}, ctx.Err()
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return aws.Credentials{}, fmt.Errorf("getting credentials for tenant %s, %w", tenant, err)
	}
	code := ae.ErrorCode()
	switch {
	case code == "AccessDenied" || code == "AccessDeniedException":
		return aws.Credentials{}, providers.NewNotFoundError(fmt.Errorf(
			"this worker may not act for tenant %s: the cloud refused its role (no such tenant, or the role does not trust this worker), %w", tenant, err))
	case strings.Contains(code, "Throttl") || code == "RequestLimitExceeded":
		return aws.Credentials{}, providers.NewThrottledError(fmt.Errorf("assuming the role of tenant %s, %w", tenant, err))
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return aws.Credentials{}, fmt.Errorf("assuming the role of tenant %s, %w", tenant, err)
	}
	if authFailureCodes[code] || code == "MissingAuthenticationToken" {
		return aws.Credentials{}, providers.NewInvalidError(fmt.Errorf(
			"assuming the role of tenant %s: the cloud rejected the worker's own key (is it the platform's? gust dev writes it to <state-dir>/platform-credentials), %w", tenant, err))
	}
	return aws.Credentials{}, providers.NewInvalidError(fmt.Errorf("assuming the role of tenant %s, %w", tenant, err))
}

// authFailureCodes are the errors with which a cloud rejects the
// credentials themselves (EC2, Lambda, STS): an unknown or revoked key or
// session token, or a bad signature.
var authFailureCodes = map[string]bool{
	"AuthFailure":                 true, // EC2
	"UnrecognizedClientException": true, // Lambda
	"InvalidSignatureException":   true, // Lambda
	"SignatureDoesNotMatch":       true, // EC2, STS
	"InvalidClientTokenId":        true, // STS
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
}

// TenantConfig returns a copy of cfg that signs with creds. When creds is
// a cache (an assumed role), a request the cloud rejects for its
// credentials drops them and is retried once, signed with the role assumed
// anew: sessions end before their expiry when the tenant is deleted (and
// maybe created again) or its sessions are revoked, and without this the
// tenant's calls would fail until the cached credentials expired. If the
// role can no longer be assumed, the retry fails with STS's error
// (AccessDenied: the tenant is gone); a rejection that new credentials do
// not cure ends with the retryer's attempts (3). Retrying is safe for
// every call: a rejected request never ran.
func TenantConfig(cfg aws.Config, creds aws.CredentialsProvider) aws.Config {
	c := cfg.Copy()
	c.Credentials = creds
	cache, ok := creds.(*aws.CredentialsCache)
	if !ok {
		return c
	}
	base := c.Retryer
	c.Retryer = func() aws.Retryer {
		var r aws.Retryer
		if base != nil {
			r = base()
		} else {
			r = retry.NewStandard()
		}
		v2, ok := r.(aws.RetryerV2)
		if !ok {
			return r
		}
		return &renewingRetryer{RetryerV2: v2, cache: cache}
	}
	return c
}

// renewingRetryer answers a credentials rejection by invalidating the
// credentials cache and retrying; everything else is its base's to decide.
type renewingRetryer struct {
	aws.RetryerV2
	cache *aws.CredentialsCache
}

func (r *renewingRetryer) IsErrorRetryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && authFailureCodes[ae.ErrorCode()] {
		r.cache.Invalidate()
		return true
	}
	return r.RetryerV2.IsErrorRetryable(err)
}
