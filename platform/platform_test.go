package platform

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/tenants"
)

func TestRoleARN(t *testing.T) {
	override := "arn:aws:iam::123456789012:role/special"
	local := WorkerConfig{Endpoint: "http://127.0.0.1:4566", TenantRoles: map[string]string{"acme": override}}
	arn, ok := local.RoleARN("acme")
	assert.True(t, ok)
	assert.Equal(t, override, arn, "--tenant-role overrides the platform role")
	arn, ok = local.RoleARN("globex")
	assert.True(t, ok)
	assert.Equal(t, tenants.PlatformRoleARN("globex"), arn)

	onAWS := WorkerConfig{TenantRoles: map[string]string{"acme": override}}
	arn, ok = onAWS.RoleARN("acme")
	assert.True(t, ok)
	assert.Equal(t, override, arn)
	_, ok = onAWS.RoleARN("globex")
	assert.False(t, ok, "on AWS a tenant without --tenant-role has no role")
}

// TestStartEphemeral starts an ephemeral platform without a worker: the
// default tenant exists, the client reaches the server, the gateway and
// the cloud answer, and Close removes the temporary state directory.
func TestStartEphemeral(t *testing.T) {
	ctx := context.Background()
	p, err := Start(ctx, Config{IP: "127.0.0.1", NoWorker: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = p.Close()
		}
	})
	assert.False(t, p.HasWorker())
	assert.Equal(t, tenants.DefaultTenant, p.DefaultCredentials().Tenant)
	assert.NotEmpty(t, p.PlatformCredentials().AccessKeyID)
	stateDir := filepath.Dir(p.RegistryFile())
	assert.Equal(t, stateDir, filepath.Dir(p.CodecKeyFile()), "the codec key lives in the state directory")
	assert.FileExists(t, p.CodecKeyFile())

	acme, err := p.EnsureTenant(ctx, "acme")
	require.NoError(t, err)
	again, err := p.EnsureTenant(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, acme.AccessKeyID, again.AccessKeyID, "an existing tenant keeps its key")

	_, err = p.Client().CheckHealth(ctx, nil)
	require.NoError(t, err)
	for _, url := range []string{p.Gateway().Endpoint(), p.Cloud().Endpoint()} {
		resp, err := http.Get(url + "/")
		require.NoError(t, err, url)
		resp.Body.Close()
	}

	require.NoError(t, p.Close())
	closed = true
	_, err = os.Stat(stateDir)
	assert.ErrorIs(t, err, fs.ErrNotExist, "an ephemeral platform leaves no state behind")
}

// TestStartKeepsStateDir restarts a platform on the same state directory:
// the codec key, which protects the history there, and the default
// tenant's key are the first start's.
func TestStartKeepsStateDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	start := func() (codecKey []byte, defaultKey string) {
		p, err := Start(ctx, Config{IP: "127.0.0.1", StateDir: dir, NoWorker: true, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		defer func() { require.NoError(t, p.Close()) }()
		assert.Equal(t, filepath.Join(dir, RegistryFileName), p.RegistryFile())
		key, err := os.ReadFile(p.CodecKeyFile())
		require.NoError(t, err)
		return key, p.DefaultCredentials().AccessKeyID
	}
	key1, id1 := start()
	key2, id2 := start()
	assert.Equal(t, key1, key2)
	assert.Equal(t, id1, id2)
	assert.FileExists(t, devserver.DefaultDatabaseFile(dir), "history lives in the state directory")
}
