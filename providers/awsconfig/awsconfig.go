// Package awsconfig loads the aws-sdk-go-v2 configuration every gust
// provider shares: the standard chain (profile, region, credentials,
// AWS_ENDPOINT_URL), plus what a local endpoint (gust's local cloud or
// LocalStack) needs to work out of the box.
package awsconfig

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go/logging"
)

// DefaultLocalRegion is the region assumed for an endpoint when the chain
// names none.
const DefaultLocalRegion = "us-east-1"

// Options selects where the SDK goes.
type Options struct {
	// Endpoint overrides the service endpoint (LocalStack, gust's local
	// cloud). Empty means AWS.
	Endpoint string
	Region   string
	Profile  string
	// Credentials, when set, replace the chain's credentials: `gust dev`
	// hands its worker the platform principal's key this way.
	Credentials aws.CredentialsProvider
}

// Load runs the standard configuration chain. With an Endpoint it also
// defaults the region, and falls back to static dummy credentials when the
// chain has none, since local clouds accept any. For a loopback endpoint it
// turns off the instance metadata lookup, which off EC2 only costs seconds
// of timeouts and a warning.
func Load(ctx context.Context, o Options, extra ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := append([]func(*config.LoadOptions) error{}, extra...)
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(o.Credentials))
	}
	if o.Endpoint != "" && IsLoopback(o.Endpoint) {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading aws config, %w", err)
	}
	cfg.Logger = debugLogger{}
	if o.Endpoint == "" {
		return cfg, nil
	}
	if cfg.Region == "" {
		cfg.Region = DefaultLocalRegion
	}
	if cfg.Credentials == nil {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("test", "test", "")
	} else if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("test", "test", "")
	}
	return cfg, nil
}

// IsLoopback reports whether endpoint's host is this machine.
func IsLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// debugLogger sends the SDK's own log lines to slog at debug level instead
// of the SDK's default, straight to stderr. What the SDK logs on its own
// (a response body it could not drain after a caller cancelled, say) is
// not actionable: failures reach gust as errors and are reported there.
type debugLogger struct{}

func (debugLogger) Logf(c logging.Classification, format string, v ...any) {
	slog.Debug(fmt.Sprintf(format, v...), "source", "aws-sdk-go-v2", "classification", string(c))
}
