package topology

// The topology tests live in their own package so that `go test ./...`
// gives them their own ten minutes: with them, the integration package ran
// past its limit. These are the few helpers they share with that package,
// kept small; the local-cloud helpers act as the platform principal, whose
// key each test stores in platformKeys.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/worker"
	"github.com/gust-dev/gust/workflows"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeBuiltImages()
	for _, dir := range tempDirs {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

var (
	tempDirs []string // removed by TestMain
	// platformKeys holds the platform principal's key of each cloud, by
	// endpoint.
	platformKeys sync.Map // endpoint -> tenants.Credentials

	binOnce, echoOnce sync.Once
	binPath, echoPath string
	binErr, echoErr   error
)

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// gustBinary builds a static gust (it runs in the FROM scratch image) once.
func gustBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gust-bin-")
		if binErr = err; err != nil {
			return
		}
		tempDirs = append(tempDirs, dir)
		binPath = filepath.Join(dir, "gust")
		cmd := exec.Command("go", "build", "-o", binPath, "../../starter")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// echoHandler builds the static echo function once.
func echoHandler(t *testing.T) string {
	t.Helper()
	echoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gust-echo-")
		if echoErr = err; err != nil {
			return
		}
		tempDirs = append(tempDirs, dir)
		echoPath, echoErr = lambdatest.BuildEcho(dir)
	})
	require.NoError(t, echoErr)
	return echoPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, timeout, 20*time.Millisecond, what)
}

func quietSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func requireUnique(t *testing.T, ids []string) {
	t.Helper()
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		require.False(t, seen[id], "instance %s appears twice", id)
		seen[id] = true
	}
}

func historyLength(ctx context.Context, t *testing.T, c client.Client, id string) int {
	t.Helper()
	n := 0
	for it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT); it.HasNext(); n++ {
		_, err := it.Next()
		require.NoError(t, err)
	}
	require.Positive(t, n)
	return n
}

func tenantAWSConfig(akid, secret string) aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
}

func tenantLambda(endpoint, akid, secret string) *lambda.Client {
	return lambda.NewFromConfig(tenantAWSConfig(akid, secret), func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// requestIDOf is the Lambda request id of an answer or of its error.
func requestIDOf(t *testing.T, out *lambda.InvokeOutput, err error) string {
	t.Helper()
	if err != nil {
		var re *awshttp.ResponseError
		require.True(t, errors.As(err, &re), "%v", err)
		return re.ServiceRequestID()
	}
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	require.True(t, ok)
	return id
}

// describe lists the fleet's instances in states (all when none) as the
// platform principal acting for the default tenant, waiting out throttling.
func describe(ctx context.Context, t *testing.T, endpoint, fleetID string, states ...string) []providers.Instance {
	t.Helper()
	v, ok := platformKeys.Load(endpoint)
	require.True(t, ok, "no platform key for the cloud at %s", endpoint)
	key := v.(tenants.Credentials)
	accounts, err := ec2provider.NewAccountsFromConfig(ctx, ec2provider.Options{Endpoint: endpoint,
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		Roles:       platform.WorkerConfig{Endpoint: endpoint}.RoleARN, DefaultImageID: ec2provider.LocalCloudImageID})
	require.NoError(t, err)
	compute, err := accounts.Compute(ctx, tenants.DefaultTenant)
	require.NoError(t, err)
	// The count is the ground truth the tests check, read through Docker's
	// port proxy: throttling (the account's bucket is the workers' too) is
	// waited out, and a connection the proxy drops under load is tried
	// again a few times; an answer from the cloud is never retried away.
	for transport := 0; ; {
		got, err := compute.Describe(ctx, providers.InstanceFilter{Tags: map[string]string{providers.FleetTagKey: fleetID}, States: states})
		switch {
		case err == nil:
			return got
		case ctx.Err() != nil:
		case providers.IsThrottled(err):
			time.Sleep(250 * time.Millisecond)
			continue
		case isTransport(err) && transport < 5:
			transport++
			t.Logf("counting %s: %v; again", fleetID, err)
			time.Sleep(time.Second)
			continue
		}
		require.NoError(t, err)
	}
}

// fleetInstances are the fleet's live (pending or running) instances.
func fleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	return describe(ctx, t, endpoint, fleetID, providers.StatePending, providers.StateRunning)
}

// allFleetInstances are every instance with the fleet's tag.
func allFleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	return describe(ctx, t, endpoint, fleetID)
}

func invokeFn(ctx context.Context, c client.Client, tenant, name, sub, payload string) (workflows.InvokeResult, error) {
	in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: tenant, Function: name, SubTenant: sub, Payload: []byte(payload)}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.InvokeWorkflowID(tenant, name, in.RequestID), TaskQueue: workflows.TaskQueue,
	}, workflows.InvokeWorkflow, in)
	if err != nil {
		return workflows.InvokeResult{}, err
	}
	var res workflows.InvokeResult
	return res, run.Get(ctx, &res)
}

// The opt-in tests against public images run the worker in this process.

func startCloud(t *testing.T, mod func(*localcloud.Config)) *localcloud.Server {
	t.Helper()
	cfg := localcloud.Config{StateDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := localcloud.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	_, err = s.Registry().Create(ctx, tenants.DefaultTenant)
	require.NoError(t, err)
	key, err := s.Registry().PlatformCredentials(ctx)
	require.NoError(t, err)
	platformKeys.Store(s.Endpoint(), key)
	return s
}

func startGustWorker(t *testing.T, c client.Client, endpoint string, launchRate float64) *worker.Workers {
	t.Helper()
	v, ok := platformKeys.Load(endpoint)
	require.True(t, ok)
	key := v.(tenants.Credentials)
	w, err := platform.StartWorkers(context.Background(), c, platform.WorkerConfig{Endpoint: endpoint, LaunchRate: launchRate,
		PlatformCredentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")})
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	return w
}

func runFleet(ctx context.Context, t *testing.T, c client.Client, in workflows.LaunchFleetInput) workflows.FleetResult {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
	require.NoError(t, err)
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// isTransport reports an error of the connection, not an answer of the
// cloud.
func isTransport(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "use of closed network connection")
}
