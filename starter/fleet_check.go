package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/providers/awsconfig"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/tenants"
)

// typeCheckTimeout bounds the launch's look at the cloud's offerings: the
// check is a courtesy before the fleet's own validation, never a wait.
const typeCheckTimeout = 5 * time.Second

// cloudEndpointFlag and cloudStateDirFlag say where the cloud is and whose
// key signs, for fleet launch's look at the cloud's offerings.
func cloudEndpointFlag() cli.Flag {
	return &cli.StringFlag{Name: "endpoint", Value: defaultCloudEndpoint, EnvVars: []string{"GUST_ENDPOINT"}, Usage: `the cloud whose offerings the instance type is checked against, as the tenant: gust dev's local cloud, or LocalStack; "" for AWS`, Category: "Cloud"}
}

func cloudStateDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "state-dir", Value: ".gust", EnvVars: []string{"GUST_STATE_DIR"}, Usage: "a gust dev state directory: with --endpoint, the check signs with the tenant's key from its tenants.db; without one there, with the AWS configuration chain's credentials", Category: "Cloud"}
}

// checkInstanceTypes asks the cloud, as the fleet's tenant, whether it
// offers each of types, so an unknown type is a usage error before anything
// starts. When the cloud cannot be asked (unreachable, no credentials for
// the tenant) it returns a note instead, and the fleet's own first step,
// the same check, still rejects an unknown type before anything is
// launched.
func checkInstanceTypes(c *cli.Context, tenant string, types []string) (note string, err error) {
	what := "instance type " + strings.Join(types, ", ")
	if len(types) > 1 {
		what = "instance types " + strings.Join(types, ", ")
	}
	endpoint := c.String("endpoint")
	if err := checkEndpoint(endpoint); err != nil {
		return "", err
	}
	cfg, err := tenantAWSConfig(c, endpoint, tenant)
	if err != nil {
		var usage *usageError
		if errors.As(err, &usage) {
			return "", err
		}
		return fmt.Sprintf("%s not checked before the launch (%s); the fleet checks it first", what, oneLine(err.Error())), nil
	}
	ctx, cancel := context.WithTimeout(c.Context, typeCheckTimeout)
	defer cancel()
	api := awsec2.NewFromConfig(cfg, func(o *awsec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	offered, err := ec2provider.New(api).InstanceTypes(ctx)
	switch {
	case err != nil && !explicit(c, "endpoint") && isUnreachable(err):
		// No local cloud at the default endpoint: a worker on AWS or
		// elsewhere, which the user did not point this check at. Say
		// nothing on every launch; the fleet's own check still runs.
		return "", nil
	case err != nil:
		return fmt.Sprintf("%s not checked before the launch (the cloud at %s: %s); the fleet checks it first", what, cloudName(c), oneLine(err.Error())), nil
	case len(offered) == 0:
		// A cloud that lists no offerings (LocalStack, some regions)
		// cannot say no.
		return "", nil
	}
	for _, t := range types {
		if !slices.Contains(offered, t) {
			return "", usagef("instance type %s is not offered by the cloud at %s (%d types are; see aws ec2 describe-instance-type-offerings)", t, cloudName(c), len(offered))
		}
	}
	return "", nil
}

// tenantAWSConfig is the AWS configuration that acts as tenant: its newest
// key from the registry in --state-dir when the endpoint is a local cloud
// with one there, else the AWS configuration chain (whose credentials are
// then the tenant's own account). A tenant the registry does not know is a
// usage error.
func tenantAWSConfig(c *cli.Context, endpoint, tenant string) (aws.Config, error) {
	if tenant == "" {
		tenant = tenants.DefaultTenant
	}
	regFile := filepath.Join(c.String("state-dir"), registryFileName)
	if _, err := os.Stat(regFile); endpoint == "" || errors.Is(err, os.ErrNotExist) {
		cfg, err := awsconfig.Load(c.Context, awsconfig.Options{Endpoint: endpoint})
		if err == nil && cfg.Region == "" {
			cfg.Region = cloudRegion
		}
		if err == nil {
			_, err = cfg.Credentials.Retrieve(c.Context)
		}
		return cfg, err
	}
	reg, err := openRegistry(c, false)
	if err != nil {
		return aws.Config{}, err
	}
	defer reg.Close()
	creds, err := reg.Credentials(c.Context, tenant)
	if tenants.IsNotFound(err) {
		return aws.Config{}, usagef("tenant %s is not in the registry %s", tenant, regFile)
	} else if err != nil {
		return aws.Config{}, err
	}
	return aws.Config{
		Region:      cloudRegion,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
	}, nil
}

// explicit reports whether the user set the flag (or its environment
// variable), rather than leaving its default.
func explicit(c *cli.Context, flag string) bool { return c.IsSet(flag) }

// isUnreachable reports a cloud nothing answers at: connection refused, no
// such host.
func isUnreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &dns)
}
