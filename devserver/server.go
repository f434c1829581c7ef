// Package devserver embeds a complete single-machine Temporal platform: the
// Temporal server's four services in one process on SQLite, the `default`
// namespace, and optionally the Temporal Web UI. It is what `gust dev`,
// `gust demo` and the integration tests run.
//
// This is the only non-main package that imports go.temporal.io/server; keep
// it that way, because every importer pays minutes of build time and about
// 200 MB of binary.
package devserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

const clusterName = "active"

// clusterID is fixed so restarts on the same database see the same cluster;
// the server insists on a UUID.
const clusterID = "6a0f3b4c-2d5e-4f71-8a9b-0c1d2e3f4a5b"

// Config describes one embedded server. The zero value of every optional
// field is a sensible default.
type Config struct {
	// IP every service binds to. Default 127.0.0.1.
	IP string
	// Port is the frontend gRPC port that SDK clients dial. 0 picks a free one.
	Port int
	// HTTPPort is the frontend's HTTP API port. 0 picks a free one.
	HTTPPort int
	// UIPort serves the Temporal Web UI. 0 turns the UI off; -1 picks a free
	// port.
	UIPort int
	// DatabaseFile is the SQLite file holding all history. Empty keeps
	// everything in memory: it is lost when the server stops.
	DatabaseFile string
	// Namespaces to register. Default: "default".
	Namespaces []string
	// Logger receives the server's logs. Default: warnings and errors to
	// stderr.
	Logger *slog.Logger
	// DynamicConfig overrides server dynamic config keys.
	DynamicConfig map[string]any
}

// Server is a running embedded platform. Stop it exactly once.
type Server struct {
	cfg      Config
	temporal temporal.Server
	ui       *uiserver.Server
	lock     *fileLock // nil for an in-memory server
	logger   serverLogger
	stopped  atomic.Bool
}

// Start validates cfg, prepares the database and starts the server and UI.
// It returns an error, never panics, when a port is taken or the database
// file is locked by another process, corrupt, or not a Temporal database. A
// database file it did not create is never rewritten or removed.
func Start(cfg Config) (_ *Server, err error) {
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	if len(cfg.Namespaces) == 0 {
		cfg.Namespaces = []string{"default"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if err := cfg.assignPorts(); err != nil {
		return nil, err
	}

	s := &Server{cfg: cfg, logger: newServerLogger(cfg.Logger)}
	defer func() {
		// The server's dependency graph panics on some startup failures;
		// callers are promised an error instead.
		if r := recover(); r != nil {
			err = fmt.Errorf("starting temporal server: %v", r)
		}
		if err != nil {
			s.lock.release()
		}
	}()

	sqlConf, err := cfg.prepareDatabase(s)
	if err != nil {
		return nil, err
	}
	opts, err := cfg.serverOptions(sqlConf, s.logger)
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("building temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting temporal server: %w", err)
	}
	s.temporal = srv

	if cfg.UIPort > 0 {
		s.ui = cfg.uiServer()
		uiErr := make(chan error, 1)
		go func() { uiErr <- s.ui.Start() }()
		if err := waitListening(cfg.UIAddress(), uiErr, 10*time.Second); err != nil {
			_ = srv.Stop()
			return nil, fmt.Errorf("starting web ui: %w", err)
		}
	}
	return s, nil
}

// FrontendAddress is the host:port SDK clients and workers dial.
func (s *Server) FrontendAddress() string { return s.cfg.FrontendAddress() }

// UIAddress is the Web UI's URL, or "" when the UI is off.
func (s *Server) UIAddress() string {
	if s.cfg.UIPort <= 0 {
		return ""
	}
	return "http://" + s.cfg.UIAddress()
}

// Config returns the effective configuration, with the ports it picked.
func (s *Server) Config() Config { return s.cfg }

// Stop shuts the UI and the server down and releases the database. It is
// safe to call more than once.
func (s *Server) Stop() error {
	if !s.stopped.CompareAndSwap(false, true) {
		return nil
	}
	// Shutting down makes every internal poller log a warning; none of
	// them means anything once the user asked to stop.
	s.logger.quiet.Store(true)
	if s.ui != nil {
		s.ui.Stop()
	}
	err := s.temporal.Stop()
	s.lock.release()
	return err
}

// FrontendAddress is the host:port of the frontend gRPC service.
func (c Config) FrontendAddress() string {
	return net.JoinHostPort(c.IP, strconv.Itoa(c.Port))
}

// UIAddress is the host:port of the Web UI.
func (c Config) UIAddress() string {
	return net.JoinHostPort(c.IP, strconv.Itoa(c.UIPort))
}

// assignPorts fills in free ports and fails early, with the port's name, when
// an explicitly requested port is taken: the server itself would only log it.
func (c *Config) assignPorts() error {
	for _, p := range []struct {
		name string
		port *int
		free bool // 0 means "pick one"
	}{
		{"frontend port", &c.Port, true},
		{"frontend http port", &c.HTTPPort, true},
		{"ui port", &c.UIPort, false},
	} {
		switch {
		case *p.port == 0 && !p.free:
			continue // feature off
		case *p.port == 0 || *p.port == -1:
			port, err := FreePort(c.IP)
			if err != nil {
				return err
			}
			*p.port = port
		case *p.port < 0 || *p.port > 65535:
			return fmt.Errorf("%s %d is not a valid port", p.name, *p.port)
		default:
			if err := CheckPortFree(c.IP, *p.port); err != nil {
				return fmt.Errorf("%s %d is not available: %w", p.name, *p.port, err)
			}
		}
	}
	return nil
}

func (c Config) serverOptions(sqlConf *config.SQL, logger serverLogger) ([]temporal.ServerOption, error) {
	conf := &config.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = c.IP
	conf.Persistence.DefaultStore = "sqlite"
	conf.Persistence.VisibilityStore = "sqlite"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             c.FrontendAddress(),
				HTTPAddress:            net.JoinHostPort(c.IP, strconv.Itoa(c.HTTPPort)),
				ClusterID:              clusterID,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = c.FrontendAddress()

	hosts := map[primitives.ServiceName]static.Hosts{}
	conf.Services = map[string]config.Service{}
	for _, svc := range []primitives.ServiceName{
		primitives.FrontendService, primitives.HistoryService,
		primitives.MatchingService, primitives.WorkerService,
	} {
		var sc config.Service
		sc.RPC.BindOnIP = c.IP
		if svc == primitives.FrontendService {
			sc.RPC.GRPCPort = c.Port
			sc.RPC.HTTPPort = c.HTTPPort
		} else {
			port, err := FreePort(c.IP)
			if err != nil {
				return nil, err
			}
			sc.RPC.GRPCPort = port
		}
		conf.Services[string(svc)] = sc
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(c.IP, strconv.Itoa(sc.RPC.GRPCPort)))
	}

	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("creating authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("creating claim mapper: %w", err)
	}

	return []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(c.dynamicConfig()),
	}, nil
}

// dynamicConfig tunes the server for one machine.
//
// A single task queue partition matters twice here: latency (no forwarding
// between partitions) and rate limiting (TaskQueueActivitiesPerSecond is
// split across partitions, which makes a low launch rate bursty).
//
// The transfer queue's poll rate is per history shard, and this server has
// one shard: at the default of 20 loads a second, every task handed to
// matching (a workflow task, an activity task) waited up to 50 ms for a
// token once work came back to back. 1000 removes that wait; it only bounds
// how often the queue reader queries SQLite, which new tasks trigger.
//
// Timers fire when the timer queue reader loads them, and it may load up to
// timerProcessorMaxTimeShift late (default 1 s): a 100 ms timer took a
// second. The fleet polls its running count on sub-second timers, so gust
// keeps this shift small.
func (c Config) dynamicConfig() dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():           1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key():          1,
		dynamicconfig.TransferProcessorMaxPollRPS.Key():                  1000,
		dynamicconfig.TimerProcessorMaxTimeShift.Key():                   50 * time.Millisecond,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 200,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8192,
		// Fleets share the launch queue's rate fairly, by their fairness
		// key (workflows.fillOptions), instead of first come first served.
		dynamicconfig.MatchingEnableFairness.Key(): true,
	}
	for k, v := range c.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

func (c Config) uiServer() *uiserver.Server {
	return uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                c.IP,
		Port:                c.UIPort,
		TemporalGRPCAddress: c.FrontendAddress(),
		EnableUI:            true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true, // no internet here, and none needed
	}))
}

// waitListening waits until addr accepts connections or start fails.
func waitListening(addr string, startErr <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-startErr:
			if err == nil {
				err = errors.New("exited")
			}
			return err
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = conn.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not start listening within %v", addr, timeout)
}

// DefaultDatabaseFile is where `gust dev` keeps history under a state dir.
func DefaultDatabaseFile(stateDir string) string { return filepath.Join(stateDir, "temporal.db") }
