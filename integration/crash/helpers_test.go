package crash

// The crash tests live in their own package so that `go test ./...` gives
// their thirty restarts of gust dev their own ten minutes, apart from the
// integration package's. These are the helpers they need to run the gust
// binary.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/tenants"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// gustBinary builds the gust command once per test run.
func gustBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gust-bin-")
		if binErr = err; err != nil {
			return
		}
		binPath = filepath.Join(dir, "gust")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../starter").CombinedOutput(); err != nil {
			binErr = &buildError{string(out), err}
		}
	})
	require.NoError(t, binErr)
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func quietSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// devProcess is a running `gust dev`.
type devProcess struct {
	cmd            *exec.Cmd
	address, cloud string
	exited         chan error
}

// startDev runs `gust dev` on free ports and waits until it is ready.
func startDev(t *testing.T, args ...string) *devProcess {
	t.Helper()
	ports := make([]int, 4)
	for i := range ports {
		p, err := devserver.FreePort("127.0.0.1")
		require.NoError(t, err)
		ports[i] = p
	}
	args = append([]string{"dev", "--port", strconv.Itoa(ports[0]), "--cloud-port", strconv.Itoa(ports[1]),
		"--gateway-port", strconv.Itoa(ports[2])}, args...)
	cmd := exec.Command(gustBinary(t), args...)
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = pw, &stderr
	d := &devProcess{cmd: cmd, address: "127.0.0.1:" + strconv.Itoa(ports[0]), cloud: "http://127.0.0.1:" + strconv.Itoa(ports[1]), exited: make(chan error, 1)}
	require.NoError(t, cmd.Start())
	go func() { d.exited <- cmd.Wait(); pw.Close() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Press Ctrl+C") {
				close(ready)
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-ready:
	case err := <-d.exited:
		t.Fatalf("gust dev exited early: %v\nstderr: %s", err, stderr.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("gust dev did not become ready; stderr: %s", stderr.String())
	}
	return d
}

// stop sends SIGTERM and expects a clean exit.
func (d *devProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.exited:
		require.NoError(t, err, "gust dev must exit 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("gust dev did not stop within 30s of SIGTERM")
	}
}

// defaultCompute is the default tenant's EC2 in the cloud at endpoint, as
// the platform principal (key) acting through the tenant's role.
func defaultCompute(ctx context.Context, t *testing.T, endpoint string, key tenants.Credentials) providers.Compute {
	t.Helper()
	accounts, err := ec2provider.NewAccountsFromConfig(ctx, ec2provider.Options{Endpoint: endpoint,
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		Roles:       platform.WorkerConfig{Endpoint: endpoint}.RoleARN})
	require.NoError(t, err)
	c, err := accounts.Compute(ctx, tenants.DefaultTenant)
	require.NoError(t, err)
	return c
}
