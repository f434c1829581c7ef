package localcloud_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/tenants"
)

// TestStartReportsUnusableState: state the cloud cannot open is a clear
// error from Start, never a panic in its cleanup.
func TestStartReportsUnusableState(t *testing.T) {
	for _, c := range []struct {
		name, want string
		spoil      func(dir string) error
	}{
		{"lambda state is a file", "opening local lambda", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "lambda"), []byte("not a directory"), 0o644)
		}},
		{"ec2.db is garbage", "opening local ec2", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "ec2.db"), []byte(strings.Repeat("not a database ", 64)), 0o644)
		}},
		{"the state dir is a file", "creating local cloud state dir", func(dir string) error {
			if err := os.Remove(dir); err != nil {
				return err
			}
			return os.WriteFile(dir, []byte("not a directory"), 0o644)
		}},
		{"tenants.db is garbage", "opening local cloud tenant registry", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "tenants.db"), []byte(strings.Repeat("not a database ", 64)), 0o600)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cloud")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := c.spoil(dir); err != nil {
				t.Fatal(err)
			}
			s, err := localcloud.Start(localcloud.Config{StateDir: dir})
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded on unusable state")
			}
			if s != nil {
				t.Error("Start returned a server with its error")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, c.want)
			}
		})
	}
}

// TestRegistryOwnership: a registry the caller passes is used and left
// open by Close; one the cloud opened itself is closed with it.
func TestRegistryOwnership(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := tenants.Open(filepath.Join(dir, "shared.db"))
	require.NoError(t, err)
	defer reg.Close()
	srv, err := localcloud.Start(localcloud.Config{StateDir: filepath.Join(dir, "cloud"), Registry: reg})
	require.NoError(t, err)
	assert.Same(t, reg, srv.Registry())
	_, err = os.Stat(filepath.Join(dir, "cloud", "tenants.db"))
	assert.True(t, os.IsNotExist(err), "the cloud opened no registry of its own")
	require.NoError(t, srv.Close())
	_, err = reg.Create(ctx, "still-open")
	require.NoError(t, err, "Close leaves the caller's registry open")

	srv, err = localcloud.Start(localcloud.Config{StateDir: filepath.Join(dir, "own")})
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(dir, "own", "tenants.db"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	own := srv.Registry()
	require.NoError(t, srv.Close())
	_, err = own.Create(ctx, "closed")
	assert.Error(t, err, "Close closes the registry the cloud opened")
}
