package itest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/worker"
)

// StartCloud starts a local cloud alone, in the test process, on a free
// port with its state in a temporary directory, with mod applied to its
// Config and the tenants named registered. It is closed when the test
// ends.
func StartCloud(t testing.TB, mod func(*localcloud.Config), tenantNames ...string) *localcloud.Server {
	t.Helper()
	cfg := localcloud.Config{StateDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := localcloud.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for _, name := range tenantNames {
		_, err := s.Registry().Create(context.Background(), name)
		require.NoError(t, err)
	}
	return s
}

// PlatformKey is the platform principal's key of the cloud s: gust's
// worker acts for a tenant by assuming the tenant's role with it.
func PlatformKey(t testing.TB, s *localcloud.Server) tenants.Credentials {
	t.Helper()
	key, err := s.Registry().PlatformCredentials(context.Background())
	require.NoError(t, err)
	return key
}

// ReadPlatformKey reads the platform key that `gust dev` or `gust cloud`
// writes to <stateDir>/platform-credentials, as profile gust-platform of
// a shared-credentials file.
func ReadPlatformKey(stateDir string) (tenants.Credentials, error) {
	sc, err := config.LoadSharedConfigProfile(context.Background(), "gust-platform", func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{filepath.Join(stateDir, "platform-credentials")}
		o.ConfigFiles = []string{}
	})
	if err != nil {
		return tenants.Credentials{}, err
	}
	return tenants.Credentials{AccessKeyID: sc.Credentials.AccessKeyID, SecretAccessKey: sc.Credentials.SecretAccessKey}, nil
}

// Static is key as an SDK credentials provider.
func Static(key tenants.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")
}

// StartWorker runs gust's real worker in the test process
// (platform.StartWorkers) on c, its providers talking HTTP to the cloud at
// endpoint and acting for each tenant through its platform role with
// platformKey, as `gust dev` runs it. It is stopped when the test ends.
func StartWorker(t testing.TB, c client.Client, endpoint string, launchRate float64, platformKey aws.CredentialsProvider) *worker.Workers {
	t.Helper()
	w, err := platform.StartWorkers(context.Background(), c, platform.WorkerConfig{
		Endpoint: endpoint, LaunchRate: launchRate, PlatformCredentials: platformKey,
	})
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	return w
}
