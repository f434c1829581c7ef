package awsconfig

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/gust-dev/gust/providers"
)

func TestTenantsCredentials(t *testing.T) {
	base := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDBASE", "s", "")}
	ts := Tenants{Own: "acme", RoleARN: func(tenant string) (string, bool) {
		return "arn:aws:iam::123456789012:role/r", tenant == "globex"
	}}
	own, err := ts.Credentials(base, "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := own.Retrieve(context.Background()); err != nil || c.AccessKeyID != "AKIDBASE" {
		t.Fatalf("acme: got %v, %v; want the base credentials", c.AccessKeyID, err)
	}
	role, err := ts.Credentials(base, "", "globex")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := role.(*aws.CredentialsCache); !ok {
		t.Fatalf("globex: got %T, want cached assumed-role credentials", role)
	}
	if _, err := ts.Credentials(base, "", "initech"); !providers.IsNotFound(err) {
		t.Fatalf("initech: got %v, want NotFound", err)
	}
	if _, err := (Tenants{}).Credentials(base, "", "acme"); !providers.IsInvalid(err) {
		t.Fatalf("no tenants at all: got %v, want Invalid", err)
	}
	if !ts.Serves("acme") || !ts.Serves("globex") || ts.Serves("initech") || (Tenants{}).Serves("") {
		t.Fatal("Serves disagrees with Credentials")
	}
}

type failingProvider struct{ err error }

func (f failingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, f.err
}

func TestRetrieveTypesSTSErrors(t *testing.T) {
	api := func(code string) error {
		return &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: &smithy.GenericAPIError{Code: code, Message: "m"}}
	}
	for _, c := range []struct {
		err  error
		is   func(error) bool
		name string
	}{
		{api("AccessDenied"), providers.IsNotFound, "not found"},
		{api("InvalidClientTokenId"), providers.IsInvalid, "invalid"},
		{api("SignatureDoesNotMatch"), providers.IsInvalid, "invalid"},
		{api("ValidationError"), providers.IsInvalid, "invalid"},
		{api("Throttling"), providers.IsThrottled, "throttled"},
	} {
		_, err := Retrieve(context.Background(), failingProvider{c.err}, "acme")
		if !c.is(err) {
			t.Errorf("%v: got %v, want %s", c.err, err, c.name)
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%v: the STS error must stay reachable", err)
		}
	}
	_, err := Retrieve(context.Background(), failingProvider{errors.New("dial tcp: connection refused")}, "acme")
	if err == nil || providers.IsNotFound(err) || providers.IsInvalid(err) || providers.IsThrottled(err) {
		t.Errorf("a network error must stay untyped (retryable): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Retrieve(ctx, failingProvider{errors.New("x")}, "acme"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

type countingProvider struct{ n int }

func (c *countingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	c.n++
	return aws.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", SessionToken: "t", Source: "test"}, nil
}

// TestTenantConfigRenewsRejectedCredentials: a request rejected for its
// credentials drops the cached ones and is retried, so the retry assumes
// the role again.
func TestTenantConfigRenewsRejectedCredentials(t *testing.T) {
	ctx := context.Background()
	src := &countingProvider{}
	cache := aws.NewCredentialsCache(src)
	cfg := TenantConfig(aws.Config{}, cache)
	if c, ok := cfg.Credentials.(*aws.CredentialsCache); !ok || c != cache {
		t.Fatal("the tenant's credentials must sign")
	}
	r := cfg.Retryer()
	if _, err := cache.Retrieve(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Retrieve(ctx); err != nil || src.n != 1 {
		t.Fatalf("cached: %d retrievals", src.n)
	}
	if r.IsErrorRetryable(&smithy.GenericAPIError{Code: "ValidationException"}) {
		t.Fatal("other errors are the base retryer's to judge")
	}
	if !r.IsErrorRetryable(&smithy.GenericAPIError{Code: "UnrecognizedClientException"}) {
		t.Fatal("a rejected credential must be retried")
	}
	if _, err := cache.Retrieve(ctx); err != nil || src.n != 2 {
		t.Fatalf("after a rejection the credentials must be fetched again: %d retrievals", src.n)
	}
	// Static credentials have nothing to renew: the retryer is the base's.
	static := TenantConfig(aws.Config{}, credentials.NewStaticCredentialsProvider("a", "b", ""))
	if static.Retryer != nil && static.Retryer().IsErrorRetryable(&smithy.GenericAPIError{Code: "UnrecognizedClientException"}) {
		t.Fatal("static credentials are not renewed")
	}
}

// BenchmarkRetrieveCached is what every provider call for a tenant adds:
// the credentials check on a warm cache.
func BenchmarkRetrieveCached(b *testing.B) {
	ctx := context.Background()
	cache := aws.NewCredentialsCache(&countingProvider{})
	if _, err := Retrieve(ctx, cache, "acme"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Retrieve(ctx, cache, "acme"); err != nil {
			b.Fatal(err)
		}
	}
}
