package topology

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/uuid"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	dockerclient "github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/bootstrap"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/providers"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// The topology tests run gust as users run it across hosts: on one Docker
// network, the production Temporal server (gust's Temporal image, its
// SQLite file on a volume), the local cloud alone (`gust cloud`, its state
// on a second volume), two or three `gust worker` containers and, where a
// test needs it, a `gust gateway`. The test process drives them from
// outside: fleets through the Temporal SDK at the server's mapped port,
// faults through the Docker API, and the fleet invariant counted with the
// EC2 API by the fleet's tag.
//
// Fleets are small and the launch rate modest (topoLaunchRate), so a fill
// lasts long enough for a fault to land in it.

// topoLaunchRate is every worker's --launch-rate: the same value on each,
// so none overrides another.
const topoLaunchRate = 5.0

type topoOptions struct {
	workers int
	gateway bool
}

type topology struct {
	t        *testing.T
	docker   *testcontainers.DockerClient
	net      *testcontainers.DockerNetwork
	gustImg  string
	temporal testcontainers.Container
	cloud    testcontainers.Container
	workers  []testcontainers.Container
	gateway  testcontainers.Container
	// client is the test's Temporal client at the server's mapped port,
	// pinned so it survives a restart of the container.
	client client.Client
	// endpoint is the cloud's mapped endpoint, pinned like the server's.
	endpoint   string
	gatewayURL string
	// defaultKey is the default tenant's key, from the cloud's credentials
	// file.
	defaultKey tenants.Credentials
	// platformKey is the platform principal's, from its
	// platform-credentials file: the tests count instances with it.
	platformKey tenants.Credentials
	stateVol    string
}

// startTopology starts the Temporal server, the cloud, opts.workers
// workers and, with opts.gateway, a gateway, and removes them all (and
// their volumes and network) when the test ends.
func startTopology(ctx context.Context, t *testing.T, opts topoOptions) *topology {
	t.Helper()
	gustImg, temporalImg := topologyImages(t)
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = docker.Close() })
	tp := &topology{t: t, docker: docker, gustImg: gustImg}

	id := strings.ToLower(uuid.NewString()[:8])
	temporalVol, stateVol := "gust-test-"+id+"-temporal", "gust-test-"+id+"-state"
	tp.stateVol = stateVol
	// Registered first, so it runs last: after every container is gone.
	t.Cleanup(func() {
		for _, v := range []string{temporalVol, stateVol} {
			_, _ = docker.VolumeRemove(context.Background(), v, dockerclient.VolumeRemoveOptions{Force: true})
		}
	})
	tp.net, err = tcnetwork.New(ctx)
	require.NoError(t, err)
	testcontainers.CleanupNetwork(t, tp.net)

	temporalPort, cloudPort := itest.FreePort(t), itest.FreePort(t)
	tp.temporal = tp.run(ctx, "temporal", testcontainers.ContainerRequest{
		Image:              temporalImg,
		ExposedPorts:       []string{"7233/tcp"},
		HostConfigModifier: pinPort("7233/tcp", temporalPort),
		Mounts:             testcontainers.ContainerMounts{testcontainers.VolumeMount(temporalVol, "/data")},
	})
	tp.cloud = tp.run(ctx, "cloud", testcontainers.ContainerRequest{
		Image: gustImg,
		// Functions run as plain processes: the sandbox needs namespaces
		// that an unprivileged container does not get.
		Cmd: []string{"cloud", "--ip", "0.0.0.0", "--port", "4566", "--cloud-isolation", "none",
			"--cloud-capacity", "m5.large=5000", "--cloud-boot", "200ms"},
		ExposedPorts:       []string{"4566/tcp"},
		HostConfigModifier: pinPort("4566/tcp", cloudPort),
		Mounts:             testcontainers.ContainerMounts{testcontainers.VolumeMount(stateVol, "/state")},
		WaitingFor:         wait.ForLog("gust cloud on").WithStartupTimeout(time.Minute),
	})
	tp.endpoint = "http://127.0.0.1:" + strconv.Itoa(cloudPort)
	tp.platformKey = tp.readCredentials(ctx, "/state/platform-credentials")
	tp.defaultKey = tp.readCredentials(ctx, "/state/credentials")

	tp.client = waitTemporal(ctx, t, "127.0.0.1:"+strconv.Itoa(temporalPort))
	for i := range opts.workers {
		tp.workers = append(tp.workers, tp.startWorker(ctx, i))
	}
	if opts.gateway {
		tp.gateway = tp.run(ctx, "gateway", testcontainers.ContainerRequest{
			Image: gustImg,
			Cmd: []string{"gateway", "--ip", "0.0.0.0", "--gateway-port", "4567", "--address", "temporal:7233",
				"--state-dir", "/state", "--log-level", "warn"},
			ExposedPorts: []string{"4567/tcp"},
			Mounts:       testcontainers.ContainerMounts{testcontainers.VolumeMount(stateVol, "/state")},
			WaitingFor:   wait.ForLog("gust gateway on").WithStartupTimeout(time.Minute),
		})
		// The mapped port on loopback, as for the server and the cloud:
		// the host testcontainers reports may not route from here.
		port, err := tp.gateway.MappedPort(ctx, "4567/tcp")
		require.NoError(t, err)
		tp.gatewayURL = "http://127.0.0.1:" + port.Port()
	}
	return tp
}

// startWorker starts `gust worker` number i. It signs as the platform
// principal with the key `gust cloud` wrote to the shared state volume,
// mounted read-only.
func (tp *topology) startWorker(ctx context.Context, i int) testcontainers.Container {
	return tp.run(ctx, "", testcontainers.ContainerRequest{
		Image: tp.gustImg,
		Cmd: []string{"worker", "--address", "temporal:7233", "--endpoint", "http://cloud:4566",
			"--launch-rate", strconv.FormatFloat(topoLaunchRate, 'f', -1, 64), "--metrics-port", "0",
			"--identity", "worker-" + strconv.Itoa(i)},
		Env: map[string]string{
			"AWS_SHARED_CREDENTIALS_FILE": "/state/platform-credentials",
			"AWS_PROFILE":                 "gust-platform",
		},
		Mounts: testcontainers.ContainerMounts{{
			Source: testcontainers.GenericVolumeMountSource{Name: tp.stateVol}, Target: "/state", ReadOnly: true,
		}},
		WaitingFor: wait.ForLog("gust worker polling").WithStartupTimeout(time.Minute),
	})
}

// run starts a container on the topology's network, reachable there as
// alias (none if empty), and removes it when the test ends. A container
// that fails to start has its output in the failure.
func (tp *topology) run(ctx context.Context, alias string, req testcontainers.ContainerRequest) testcontainers.Container {
	tp.t.Helper()
	req.Networks = []string{tp.net.Name}
	if alias != "" {
		req.NetworkAliases = map[string][]string{tp.net.Name: {alias}}
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	testcontainers.CleanupContainer(tp.t, ctr)
	if err != nil && ctr != nil {
		err = fmt.Errorf("%w; output:\n%s", err, containerLogs(ctr))
	}
	require.NoError(tp.t, err, "starting %s", req.Cmd)
	return ctr
}

func containerLogs(ctr testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := ctr.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	b, _ := io.ReadAll(io.LimitReader(r, 16<<10))
	return string(b)
}

// pinPort maps the container's port to this host port on loopback: a
// restarted container keeps it, so clients outside reconnect to the same
// address.
func pinPort(port string, hostPort int) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{network.MustParsePort(port): {{
			HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort),
		}}}
	}
}

// readCredentials reads a shared-credentials file gust cloud wrote to the
// state volume.
func (tp *topology) readCredentials(ctx context.Context, path string) tenants.Credentials {
	tp.t.Helper()
	r, err := tp.cloud.CopyFileFromContainer(ctx, path)
	require.NoError(tp.t, err)
	defer r.Close()
	var c tenants.Credentials
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			c.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			c.SecretAccessKey = strings.TrimSpace(v)
		}
	}
	require.NotEmpty(tp.t, c.AccessKeyID, "no key in %s", path)
	return c
}

// waitTemporal dials the server at addr until its default namespace
// answers: temporal-start registered it before the server started.
func waitTemporal(ctx context.Context, t *testing.T, addr string) client.Client {
	t.Helper()
	opts := client.Options{HostPort: addr, Logger: itest.QuietLogger()}
	var last error
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		nc, err := client.NewNamespaceClient(opts)
		if err == nil {
			_, err = nc.Describe(ctx, "default")
			nc.Close()
		}
		if err == nil {
			c, err := client.Dial(opts)
			require.NoError(t, err)
			t.Cleanup(c.Close)
			return c
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	require.FailNow(t, "the Temporal container never served namespace default", "%v", last)
	return nil
}

// Faults, as an operator's docker commands cause them.

func (tp *topology) kill(ctx context.Context, ctr testcontainers.Container) {
	tp.t.Helper()
	_, err := tp.docker.ContainerKill(ctx, ctr.GetContainerID(), dockerclient.ContainerKillOptions{Signal: "KILL"})
	require.NoError(tp.t, err)
}

func (tp *topology) pause(ctx context.Context, ctr testcontainers.Container) {
	tp.t.Helper()
	_, err := tp.docker.ContainerPause(ctx, ctr.GetContainerID(), dockerclient.ContainerPauseOptions{})
	require.NoError(tp.t, err)
}

func (tp *topology) unpause(ctx context.Context, ctr testcontainers.Container) {
	tp.t.Helper()
	_, err := tp.docker.ContainerUnpause(ctx, ctr.GetContainerID(), dockerclient.ContainerUnpauseOptions{})
	require.NoError(tp.t, err)
}

func (tp *topology) disconnect(ctx context.Context, ctr testcontainers.Container) {
	tp.t.Helper()
	_, err := tp.docker.NetworkDisconnect(ctx, tp.net.ID, dockerclient.NetworkDisconnectOptions{Container: ctr.GetContainerID(), Force: true})
	require.NoError(tp.t, err)
}

func (tp *topology) connect(ctx context.Context, ctr testcontainers.Container) {
	tp.t.Helper()
	_, err := tp.docker.NetworkConnect(ctx, tp.net.ID, dockerclient.NetworkConnectOptions{Container: ctr.GetContainerID()})
	require.NoError(tp.t, err)
}

// restart is `docker restart`: SIGTERM, SIGKILL after 10 s, start again.
func (tp *topology) restart(ctx context.Context, ctr testcontainers.Container) {
	tp.t.Helper()
	timeout := 10
	_, err := tp.docker.ContainerRestart(ctx, ctr.GetContainerID(), dockerclient.ContainerRestartOptions{Timeout: &timeout})
	require.NoError(tp.t, err)
}

// waitCloudHealthy waits until the cloud's health endpoint answers 200.
func (tp *topology) waitCloudHealthy(t *testing.T) {
	t.Helper()
	itest.WaitFor(t, time.Minute, "the cloud never answered its health check", func() bool {
		resp, err := http.Get(tp.endpoint + localcloud.HealthPath)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startFleet starts a burst fleet of min and target on m5.large.
func (tp *topology) startFleet(ctx context.Context, fleetID string, min, target, burstChunk int) client.WorkflowRun {
	tp.t.Helper()
	run, err := tp.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fleetID, TaskQueue: workflows.TaskQueue},
		workflows.LaunchFleetWorkflow, workflows.LaunchFleetInput{
			FleetID: fleetID, InstanceType: "m5.large", Min: min, Target: target, Burst: true,
			Tuning: workflows.FleetTuning{BurstChunk: burstChunk},
		})
	require.NoError(tp.t, err)
	return run
}

// compute is the default tenant's EC2 at the cloud's mapped endpoint, as
// the platform principal acting through the tenant's role. Each count
// makes a new one: the cloud's container may have restarted since the
// last.
func (tp *topology) compute(ctx context.Context) providers.Compute {
	tp.t.Helper()
	return itest.ComputeAt(ctx, tp.t, tp.endpoint, itest.Static(tp.platformKey))
}

// live counts the fleet's live instances with the EC2 API, by its tag.
func (tp *topology) live(ctx context.Context, fleetID string) int {
	return len(itest.LiveInstances(ctx, tp.t, tp.compute(ctx), fleetID))
}

// waitLive waits until the fleet has at least n live instances and
// returns how many it had.
func (tp *topology) waitLive(ctx context.Context, fleetID string, n int) int {
	tp.t.Helper()
	// Every 250 ms, not faster: the test's DescribeInstances calls share
	// the account's request bucket with the workers' RunInstances.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := tp.live(ctx, fleetID)
		if got >= n {
			return got
		}
		require.True(tp.t, time.Now().Before(deadline), "fleet %s never reached %d live instances (%d)", fleetID, n, got)
		time.Sleep(250 * time.Millisecond)
	}
}

// requireInvariant checks the fleet invariant after a fault: the fleet
// finished at its target, the live instances the EC2 API counts by the
// fleet's tag are exactly those gust reports, with no id twice, and
// nothing else with the tag is still alive (nothing leaked).
func (tp *topology) requireInvariant(ctx context.Context, res workflows.FleetResult, target int) {
	tp.t.Helper()
	require.Equal(tp.t, workflows.PhaseFulfilled, res.State, res.Message)
	live := itest.IDs(itest.LiveInstances(ctx, tp.t, tp.compute(ctx), res.FleetID))
	itest.RequireUnique(tp.t, live)
	require.Len(tp.t, live, target, "live instances by tag")
	require.Equal(tp.t, len(live), res.Running, "what gust reports")
	itest.RequireUnique(tp.t, res.InstanceIDs)
	require.ElementsMatch(tp.t, live, res.InstanceIDs, "gust's instances are exactly the live ones")
	all := itest.FleetInstances(ctx, tp.t, tp.compute(ctx), res.FleetID)
	tp.t.Logf("fleet %s: %d live, %d ever launched with its tag", res.FleetID, len(live), len(all))
}

// requireInvariantHolds checks the invariant again and again for d: late
// completions of a worker that was frozen or cut off change nothing.
func (tp *topology) requireInvariantHolds(ctx context.Context, res workflows.FleetResult, target int, d time.Duration) {
	tp.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		require.Len(tp.t, itest.LiveInstances(ctx, tp.t, tp.compute(ctx), res.FleetID), target, "a late completion changed the fleet")
	}
	tp.requireInvariant(ctx, res, target)
}

func fleetResult(ctx context.Context, t *testing.T, run client.WorkflowRun) workflows.FleetResult {
	t.Helper()
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// TestTopologyWorkerKilledMidBurstAndMidFill: three workers; `docker kill`
// of one while the burst is launching, of a second while the fill is; the
// third finishes the fleet, exactly, and nothing leaks.
func TestTopologyWorkerKilledMidBurstAndMidFill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tp := startTopology(ctx, t, topoOptions{workers: 3})

	// Eight chunks of 25 against the cloud's request throttle (5, then
	// 2/s): the burst takes seconds, so the kill lands in it.
	const fleetID, min, target = "topo-kill", 200, 260
	run := tp.startFleet(ctx, fleetID, min, target, 25)
	atKill := tp.waitLive(ctx, fleetID, 1)
	tp.kill(ctx, tp.workers[0])
	require.Less(t, atKill, min, "the first kill must land mid-burst")

	atKill = tp.waitLive(ctx, fleetID, min+10)
	tp.kill(ctx, tp.workers[1])
	require.Less(t, atKill, target, "the second kill must land mid-fill")

	res := fleetResult(ctx, t, run)
	tp.requireInvariant(ctx, res, target)
}

// TestTopologyWorkerPausedMidFill: `docker pause` freezes a worker mid-fill
// (a frozen host: its heartbeats stop, and its launches move to the other
// worker); the fleet finishes while it is frozen. Unpaused, its late
// completions change nothing.
func TestTopologyWorkerPausedMidFill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tp := startTopology(ctx, t, topoOptions{workers: 2})

	const fleetID, min, target = "topo-pause", 10, 70
	run := tp.startFleet(ctx, fleetID, min, target, 0)
	at := tp.waitLive(ctx, fleetID, min+5)
	tp.pause(ctx, tp.workers[0])
	paused := true
	defer func() {
		if paused {
			tp.unpause(context.Background(), tp.workers[0])
		}
	}()
	require.Less(t, at, target, "the pause must land mid-fill")

	res := fleetResult(ctx, t, run)
	tp.requireInvariant(ctx, res, target)
	tp.unpause(ctx, tp.workers[0])
	paused = false
	// Past the launch heartbeat timeout: whatever the frozen worker was
	// doing completes or fails now, and must not add an instance.
	tp.requireInvariantHolds(ctx, res, target, 10*time.Second)
}

// TestTopologyWorkerPartitionedMidFill: a worker is cut off the network
// mid-fill (a partition), the other finishes the fleet; reconnected, the
// cut-off worker's late completions change nothing.
func TestTopologyWorkerPartitionedMidFill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tp := startTopology(ctx, t, topoOptions{workers: 2})

	const fleetID, min, target = "topo-partition", 10, 70
	run := tp.startFleet(ctx, fleetID, min, target, 0)
	at := tp.waitLive(ctx, fleetID, min+5)
	tp.disconnect(ctx, tp.workers[0])
	require.Less(t, at, target, "the partition must land mid-fill")

	res := fleetResult(ctx, t, run)
	tp.requireInvariant(ctx, res, target)
	tp.connect(ctx, tp.workers[0])
	tp.requireInvariantHolds(ctx, res, target, 10*time.Second)
}

// TestTopologyTemporalRestartMidFill: `docker restart` of the Temporal
// container mid-fill. The fleet finishes on the same run, its history
// kept in the SQLite file on the volume.
func TestTopologyTemporalRestartMidFill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tp := startTopology(ctx, t, topoOptions{workers: 2})

	const fleetID, min, target = "topo-temporal", 10, 70
	run := tp.startFleet(ctx, fleetID, min, target, 0)
	at := tp.waitLive(ctx, fleetID, min+5)
	before := itest.HistoryLength(ctx, t, tp.client, fleetID)
	tp.restart(ctx, tp.temporal)
	require.Less(t, at, target, "the restart must land mid-fill")

	res := fleetResult(ctx, t, run)
	tp.requireInvariant(ctx, res, target)
	desc, err := tp.client.DescribeWorkflowExecution(ctx, fleetID, "")
	require.NoError(t, err)
	require.Equal(t, run.GetRunID(), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "the run that started before the restart finished")
	require.Greater(t, itest.HistoryLength(ctx, t, tp.client, fleetID), before, "the history written before the restart is kept, and grew")
}

// TestTopologyCloudRestart: `docker restart` of the cloud container, after
// a fleet and a function: its instances and the function are still there,
// and the function still runs.
func TestTopologyCloudRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := itest.EchoHandler(t)
	tp := startTopology(ctx, t, topoOptions{workers: 2})

	const fleetID, min, target = "topo-cloud", 3, 5
	res := fleetResult(ctx, t, tp.startFleet(ctx, fleetID, min, target, 0))
	tp.requireInvariant(ctx, res, target)
	tp.deploy(ctx, t, "echo", code)
	out, err := itest.InvokeFn(ctx, tp.client, tenants.DefaultTenant, "echo", "cust-1", `{"echo":"before"}`)
	require.NoError(t, err)
	require.Nil(t, out.FunctionError, string(out.Payload))

	tp.restart(ctx, tp.cloud)
	tp.waitCloudHealthy(t)

	live := itest.IDs(itest.LiveInstances(ctx, t, tp.compute(ctx), fleetID))
	require.ElementsMatch(t, res.InstanceIDs, live, "the instances survive the restart")
	fns := lambdaprovider.New(tp.defaultAWS(), lambdaprovider.Options{Endpoint: tp.endpoint, Tenant: tenants.DefaultTenant})
	got, err := fns.Get(ctx, tenants.DefaultTenant, "echo")
	require.NoError(t, err, "the function survives the restart")
	require.Equal(t, "echo", got.Name)
	out, err = itest.InvokeFn(ctx, tp.client, tenants.DefaultTenant, "echo", "cust-1", `{"echo":"after"}`)
	require.NoError(t, err)
	require.Nil(t, out.FunctionError, string(out.Payload))
	var resp sample.Response
	require.NoError(t, json.Unmarshal(out.Payload, &resp))
	require.JSONEq(t, `"after"`, string(resp.Echo))
}

// deploy creates the default tenant's function name from the executable
// at path, straight through the cloud's Lambda API as the tenant: a
// deploy workflow would hand a worker in another container a path on this
// host, which it cannot open.
func (tp *topology) deploy(ctx context.Context, t *testing.T, name, path string) {
	t.Helper()
	exe, err := os.ReadFile(path)
	require.NoError(t, err)
	zip, err := bootstrap.Zip(exe)
	require.NoError(t, err)
	fns := lambdaprovider.New(tp.defaultAWS(), lambdaprovider.Options{Endpoint: tp.endpoint, Tenant: tenants.DefaultTenant})
	_, err = fns.Deploy(ctx, providers.FunctionSpec{Tenant: tenants.DefaultTenant, Name: name, Zip: zip,
		Tenancy: providers.TenancyPerTenant, Timeout: 10 * time.Second, MemoryMB: 128})
	require.NoError(t, err)
}

// defaultAWS is an AWS configuration signed with the default tenant's key.
func (tp *topology) defaultAWS() aws.Config {
	return itest.TenantAWSConfig(tp.defaultKey.AccessKeyID, tp.defaultKey.SecretAccessKey)
}

// TestTopologyGatewayInvokeWhileWorkerKilled: invocations through a `gust
// gateway` container while one of the two workers is killed. Every
// invocation returns once, with its own answer, and none runs twice: the
// function's log has exactly one START line per request id.
func TestTopologyGatewayInvokeWhileWorkerKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := itest.EchoHandler(t)
	tp := startTopology(ctx, t, topoOptions{workers: 2, gateway: true})
	tp.deploy(ctx, t, "echo", code)
	sdk := itest.TenantLambda(tp.gatewayURL, tp.defaultKey.AccessKeyID, tp.defaultKey.SecretAccessKey)

	const n = 24
	type answer struct {
		requestID string
		resp      sample.Response
		err       error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over the kill: each holds its environment a while.
			time.Sleep(time.Duration(i) * 150 * time.Millisecond)
			started <- struct{}{}
			out, err := sdk.Invoke(ctx, &lambda.InvokeInput{
				FunctionName: aws.String("echo"), TenantId: aws.String("cust-" + strconv.Itoa(i%4)),
				Payload: []byte(`{"echo":` + strconv.Itoa(i) + `,"sleep_ms":1000}`),
			})
			if err != nil {
				answers[i].err = err
				return
			}
			answers[i].requestID = itest.RequestID(t, out, nil)
			if out.FunctionError != nil {
				answers[i].err = fmt.Errorf("function error: %s", out.Payload)
				return
			}
			answers[i].err = json.Unmarshal(out.Payload, &answers[i].resp)
		}()
	}
	for range n / 3 {
		<-started
	}
	tp.kill(ctx, tp.workers[0])
	wg.Wait()

	fns := lambdaprovider.New(tp.defaultAWS(), lambdaprovider.Options{Endpoint: tp.endpoint, Tenant: tenants.DefaultTenant})
	logs := map[string]string{}
	for i, a := range answers {
		require.NoError(t, a.err, "invocation %d", i)
		require.Equal(t, a.requestID, a.resp.RequestID, "invocation %d answered with its own request id", i)
		require.JSONEq(t, strconv.Itoa(i), string(a.resp.Echo), "invocation %d got its own answer", i)
		sub := "cust-" + strconv.Itoa(i%4)
		if _, ok := logs[sub]; !ok {
			l, err := fns.Logs(ctx, tenants.DefaultTenant, "echo", sub)
			require.NoError(t, err)
			logs[sub] = l
		}
		require.Equal(t, 1, strings.Count(logs[sub], "START RequestId: "+a.requestID+" "), "invocation %d ran exactly once", i)
		desc, err := tp.client.DescribeWorkflowExecution(ctx, workflows.InvokeWorkflowID(tenants.DefaultTenant, "echo", a.requestID), "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	}
}
