package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/providers"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/tenants"
)

// The read path of `gust fn list`, `envs` and `logs`. They are reads of
// the cloud's state, so they ask the cloud, as the tenant, through the
// provider the worker's activities use (providers/lambda), and start no
// workflow: see docs/design.md, "Reads go straight to the cloud".

// fnReadFlags are the flags of the read commands: where the cloud is and
// whose key signs, besides --tenant and --output.
func fnReadFlags(own ...cli.Flag) []cli.Flag {
	return append(own,
		outputFlag(),
		&cli.StringFlag{Name: "endpoint", Value: defaultCloudEndpoint, EnvVars: []string{"GUST_ENDPOINT"}, Usage: `the cloud to read, as the tenant: gust dev's local cloud, or LocalStack; "" for AWS`, Category: "Cloud"},
		&cli.StringFlag{Name: "state-dir", Value: ".gust", EnvVars: []string{"GUST_STATE_DIR"}, Usage: "a gust dev state directory: with --endpoint, the command signs with the tenant's key from its tenants.db; without one there, with the AWS configuration chain's credentials", Category: "Cloud"},
	)
}

// fnReader returns the tenant's function provider for the read commands.
// With an endpoint and a tenant registry in --state-dir it signs with the
// tenant's newest key from the registry, as `gust tenant delete` does;
// otherwise with the AWS configuration chain's credentials, which must be
// the tenant's own (an AWS account is a tenant). A tenant the registry
// does not know is a usage error.
func fnReader(c *cli.Context, tenant string) (*lambdaprovider.Provider, error) {
	endpoint := c.String("endpoint")
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	opts := lambdaprovider.Options{Endpoint: endpoint, Tenant: tenant}
	regFile := filepath.Join(c.String("state-dir"), registryFileName)
	if _, err := os.Stat(regFile); endpoint == "" || errors.Is(err, os.ErrNotExist) {
		p, err := lambdaprovider.NewFromConfig(c.Context, opts)
		if err != nil {
			return nil, failed(fmt.Sprintf("configuring the cloud client: %v", err))
		}
		return p, nil
	}
	reg, err := openRegistry(c, false)
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	creds, err := reg.Credentials(c.Context, tenant)
	if tenants.IsNotFound(err) {
		return nil, usagef("tenant %s is not in the registry %s", tenant, regFile)
	} else if err != nil {
		return nil, registryFailure(err)
	}
	cfg := aws.Config{
		Region:      cloudRegion,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
	}
	return lambdaprovider.New(cfg, opts), nil
}

// fnReadFailure is the one exit-1 line of a failed read. Another tenant's
// function is reported exactly like a missing one, as on every other path.
func fnReadFailure(c *cli.Context, err error, tenant, name string) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(c.Context.Err(), context.DeadlineExceeded):
		return err // setDeadlines says which deadline
	case providers.IsNotFound(err) && name != "":
		return failed(fmt.Sprintf("function %s not found for tenant %s", name, tenant))
	case providers.IsNotFound(err):
		return failed(fmt.Sprintf("not found (tenant %s): %s", tenant, oneLine(err.Error())))
	case errors.Is(err, providers.ErrUnsupported):
		return failed(fmt.Sprintf("not supported by this cloud (%s): environments and logs are gust's local cloud's", cloudName(c)))
	}
	return failed(fmt.Sprintf("reading from the cloud at %s: %s", cloudName(c), oneLine(err.Error())))
}

func cloudName(c *cli.Context) string {
	if e := c.String("endpoint"); e != "" {
		return e
	}
	return "AWS"
}
