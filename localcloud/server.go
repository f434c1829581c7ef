// Package localcloud is gust's embedded default cloud: an EC2-compatible
// Query API (localcloud/ec2) with its EC2 events queue (an SQS-compatible
// JSON API, ec2.EventsQueueName), a Lambda-compatible REST API
// (localcloud/lambda) and STS (localcloud/sts) served together on one HTTP
// port, like LocalStack's 4566, so the same aws-sdk-go-v2 provider code
// serves AWS, LocalStack and this cloud. All state lives in SQLite under
// the state directory, so every worker process and every restart sees the
// same cloud.
//
// Every request is verified as AWS does (SigV4, in the Authorization
// header or presigned-query form) against the tenant registry (package
// tenants): each tenant is an account of the cloud, and sees only its own
// instances, capacity reservations and functions.
package localcloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/sts"
	"github.com/gust-dev/gust/tenants"
)

// DefaultBootDelay is how long a local instance stays pending. Real EC2
// instances take tens of seconds; a short default keeps demos brisk while
// still showing the pending phase.
const DefaultBootDelay = 2 * time.Second

// Config configures the local cloud.
type Config struct {
	IP   string // default 127.0.0.1
	Port int    // 0 picks a free port
	// StateDir holds ec2.db, lambda.db, deployed code, logs and environment
	// directories. Required.
	StateDir string
	// Capacity overrides the EC2 capacity pools (see ParseCapacities).
	Capacity []ec2.Pool
	// BootDelay is the pending-to-running delay of instances.
	BootDelay time.Duration
	// EC2 and Lambda carry the remaining knobs of each service. Their
	// DBPath/StateDir, Pools and BootDelay are set from the fields above.
	EC2    ec2.Config
	Lambda lambda.Config
	// Registry is the tenant registry requests are verified against. gust
	// dev shares its own (<state-dir>/tenants.db) with the gateway and the
	// `gust tenant` commands. Nil opens <StateDir>/tenants.db, which Close
	// closes.
	Registry *tenants.Registry
	// Version is gust's version, which the health endpoint reports. Empty
	// means the main module's version from the build info.
	Version string
	// Logger receives one warning for every request the cloud refuses
	// (remote address, access key id, error code; never a secret). Nil
	// means Lambda.Logger, else slog.Default().
	Logger *slog.Logger
}

// Server is a running local cloud.
type Server struct {
	ec2         *ec2.Cloud
	lambda      *lambda.Cloud
	sts         *sts.Service
	registry    *tenants.Registry
	ownRegistry bool // opened by Start, closed by Close
	log         *slog.Logger
	http        *http.Server
	ln          net.Listener
	version     string
}

// Start opens the cloud's state and starts serving. It fails with a clear
// error when the port is taken or the state is unusable.
func Start(cfg Config) (s *Server, err error) {
	if cfg.StateDir == "" {
		return nil, errors.New("local cloud needs a state directory")
	}
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating local cloud state dir: %w", err)
	}
	// The deferred cleanup must not use the named result: every error
	// return sets it to nil.
	srv := &Server{}
	s = srv
	defer func() {
		if err != nil {
			_ = srv.Close()
		}
	}()
	s.ln, err = net.Listen("tcp", net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("local cloud port %d is not available: %w", cfg.Port, err)
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = cfg.Lambda.Logger
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.version = cfg.Version
	if s.version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			s.version = bi.Main.Version
		}
	}
	s.registry = cfg.Registry
	if s.registry == nil {
		if s.registry, err = tenants.Open(filepath.Join(cfg.StateDir, "tenants.db")); err != nil {
			return nil, fmt.Errorf("opening local cloud tenant registry: %w", err)
		}
		s.ownRegistry = true
	}
	s.sts = sts.New(s.registry, s.log)

	ec2Cfg := cfg.EC2
	ec2Cfg.DBPath = filepath.Join(cfg.StateDir, "ec2.db")
	if len(cfg.Capacity) > 0 {
		ec2Cfg.Pools = cfg.Capacity
	}
	ec2Cfg.BootDelay = cfg.BootDelay
	if s.ec2, err = ec2.Open(ec2Cfg); err != nil {
		return nil, fmt.Errorf("opening local ec2: %w", err)
	}
	lambdaCfg := cfg.Lambda
	lambdaCfg.StateDir = filepath.Join(cfg.StateDir, "lambda")
	if s.lambda, err = lambda.Open(lambdaCfg); err != nil {
		return nil, fmt.Errorf("opening local lambda: %w", err)
	}

	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(s.ln) }()
	return s, nil
}

// Endpoint is the URL to give AWS clients (--endpoint-url).
func (s *Server) Endpoint() string { return "http://" + s.ln.Addr().String() }

// EC2 exposes the EC2 service, for tests and benchmarks that inspect state.
func (s *Server) EC2() *ec2.Cloud { return s.ec2 }

// Lambda exposes the Lambda service.
func (s *Server) Lambda() *lambda.Cloud { return s.lambda }

// Registry is the tenant registry the cloud verifies requests against.
func (s *Server) Registry() *tenants.Registry { return s.registry }

// Close stops serving, stops every execution environment and closes the
// databases.
func (s *Server) Close() error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Close())
	} else if s.ln != nil {
		errs = append(errs, s.ln.Close())
	}
	if s.lambda != nil {
		errs = append(errs, s.lambda.Close())
	}
	if s.ec2 != nil {
		errs = append(errs, s.ec2.Close())
	}
	if s.ownRegistry && s.registry != nil {
		errs = append(errs, s.registry.Close())
	}
	return errors.Join(errs...)
}

// ParseCapacities parses repeated --cloud-capacity values,
// [spot:]TYPE[@ZONE]=COUNT[+RATE/s][,price=USD] (ec2.ParseCapacity).
func ParseCapacities(specs []string) ([]ec2.Pool, error) {
	pools := make([]ec2.Pool, 0, len(specs))
	seen := map[string]bool{}
	for _, spec := range specs {
		p, err := ec2.ParseCapacity(spec)
		if err != nil {
			return nil, err
		}
		if seen[p.InstanceType] {
			return nil, fmt.Errorf("instance type %s given twice", p.InstanceType)
		}
		seen[p.InstanceType] = true
		pools = append(pools, p)
	}
	return pools, nil
}
