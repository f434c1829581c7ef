package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/gust-dev/gust/tenants"
)

// cloudCheckTimeout bounds asking the cloud what a tenant owns.
const cloudCheckTimeout = 30 * time.Second

// tenantCloud talks to the local cloud's real EC2 and Lambda APIs as one
// tenant, signing with the tenant's own key: what it sees is exactly what
// the tenant owns, since the cloud scopes every call to the signer's
// account.
type tenantCloud struct {
	endpoint string
	account  string
	ec2      *ec2.Client
	lambda   *lambda.Client
}

func newTenantCloud(endpoint string, creds tenants.Credentials) *tenantCloud {
	// Built by hand, not from the AWS configuration chain: the caller's
	// AWS_* settings must not redirect or re-sign these calls.
	cfg := aws.Config{
		Region:           cloudRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		HTTPClient:       awshttp.NewBuildableClient().WithTimeout(15 * time.Second),
		RetryMaxAttempts: 2,
	}
	return &tenantCloud{
		endpoint: endpoint,
		account:  creds.AccountID,
		ec2:      ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		lambda:   lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) }),
	}
}

// tenantResources is what keeps a tenant from being deleted.
type tenantResources struct {
	Functions []string // function names
	Instances []string // ids of instances not terminated
}

func (r tenantResources) empty() bool { return len(r.Functions) == 0 && len(r.Instances) == 0 }

func (r tenantResources) describe() string {
	var parts []string
	if n := len(r.Functions); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s (%s)", n, plural(n, "function", "functions"), listNames(r.Functions)))
	}
	if n := len(r.Instances); n > 0 {
		parts = append(parts, fmt.Sprintf("%d live %s (%s)", n, plural(n, "instance", "instances"), listNames(r.Instances)))
	}
	return strings.Join(parts, " and ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// maxPages bounds listing, so a cloud that keeps returning a next token
// cannot keep the command running forever.
const maxPages = 10000

// resources lists the tenant's functions and its instances that are not
// terminated (or terminating). Errors say whether the cloud could not be
// reached or refused.
func (t *tenantCloud) resources(ctx context.Context) (tenantResources, error) {
	var res tenantResources
	fns := lambda.NewListFunctionsPaginator(t.lambda, &lambda.ListFunctionsInput{})
	for i := 0; fns.HasMorePages() && i < maxPages; i++ {
		page, err := fns.NextPage(ctx)
		if err != nil {
			return tenantResources{}, t.explain("listing functions", err)
		}
		for _, f := range page.Functions {
			res.Functions = append(res.Functions, aws.ToString(f.FunctionName))
		}
	}
	insts := ec2.NewDescribeInstancesPaginator(t.ec2, &ec2.DescribeInstancesInput{})
	for i := 0; insts.HasMorePages() && i < maxPages; i++ {
		page, err := insts.NextPage(ctx)
		if err != nil {
			return tenantResources{}, t.explain("describing instances", err)
		}
		for _, r := range page.Reservations {
			// The cloud shows an account only its own reservations; a
			// reservation naming another owner is never ours to touch.
			if owner := aws.ToString(r.OwnerId); owner != "" && owner != t.account {
				continue
			}
			for _, in := range r.Instances {
				if in.State != nil && (in.State.Name == ec2types.InstanceStateNameTerminated || in.State.Name == ec2types.InstanceStateNameShuttingDown) {
					continue
				}
				res.Instances = append(res.Instances, aws.ToString(in.InstanceId))
			}
		}
	}
	return res, nil
}

// remove deletes res's functions and terminates its instances, and
// returns what it removed, also on error.
func (t *tenantCloud) remove(ctx context.Context, res tenantResources) (tenantResources, error) {
	var done tenantResources
	for _, fn := range res.Functions {
		if _, err := t.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)}); err != nil {
			return done, t.explain("deleting function "+fn, err)
		}
		done.Functions = append(done.Functions, fn)
	}
	const batch = 1000 // TerminateInstances' limit
	for start := 0; start < len(res.Instances); start += batch {
		ids := res.Instances[start:min(start+batch, len(res.Instances))]
		if _, err := t.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
			return done, t.explain("terminating instances", err)
		}
		done.Instances = append(done.Instances, ids...)
	}
	return done, nil
}

// explain says whether the cloud answered (and refused) or could not be
// reached at all, in one short clause.
func (t *tenantCloud) explain(what string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("the cloud at %s refused %s: %s: %s", t.endpoint, what, apiErr.ErrorCode(), apiErr.ErrorMessage())
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		return fmt.Errorf("the cloud at %s refused %s (HTTP %d): %w", t.endpoint, what, re.HTTPStatusCode(), err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("the cloud at %s cannot be reached: %v", t.endpoint, opErr)
	}
	return fmt.Errorf("the cloud at %s cannot be reached (%s): %w", t.endpoint, what, err)
}
