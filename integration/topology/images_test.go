package topology

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	dockerclient "github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"

	"github.com/gust-dev/gust/integration/itest"
)

// The container tests run against a Docker engine with no registry behind
// it: no image can be pulled, and the engine may start with none. So every
// image they use is built here, FROM scratch, out of static binaries the
// test builds itself (images/gust and images/temporal), and testcontainers'
// reaper, an image it would pull, is turned off: each test removes what it
// started, and TestMain the images.
func init() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// requireDocker skips unless a Docker engine answers: without one, the
// container tests say so and skip, as `go test ./...` runs them.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Skipf("skipping: no Docker engine (%v); the container tests need one", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, dockerclient.PingOptions{}); err != nil {
		t.Skipf("skipping: no Docker engine answers (%v); the container tests need one", err)
	}
}

// Images built once per test run, tagged with this run's id and removed
// by TestMain.
var (
	imagesOnce    sync.Once
	gustImage     string
	temporalImage string
	imagesErr     error
	runTag        = strings.ToLower(uuid.NewString()[:8])
)

// topologyImages builds the gust and Temporal images, once per test run,
// from their Dockerfiles with testcontainers' FromDockerfile.
func topologyImages(t *testing.T) (gust, temporal string) {
	t.Helper()
	requireDocker(t)
	gustBin := itest.GustBinary(t) // static: see itest.GustBinary
	imagesOnce.Do(func() {
		start := time.Now()
		gustImage, imagesErr = buildImage("gust", map[string]string{"gust": gustBin}, nil)
		if imagesErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "gust-temporal-bin-")
		if err != nil {
			imagesErr = err
			return
		}
		defer os.RemoveAll(dir)
		bins := map[string]string{
			"temporal-server": "go.temporal.io/server/cmd/server",
			"temporal-start":  "../../images/temporal/start",
		}
		files := map[string]string{}
		for name, pkg := range bins {
			out := filepath.Join(dir, name)
			if err := itest.StaticBuild(out, pkg); err != nil {
				imagesErr = err
				return
			}
			files[name] = out
		}
		temporalImage, imagesErr = buildImage("temporal", files, map[string]string{
			"config/config.yaml":        "../../images/temporal/config.yaml",
			"config/dynamicconfig.yaml": "../../images/temporal/dynamicconfig.yaml",
		})
		if imagesErr == nil {
			t.Logf("built images %s and %s in %v", gustImage, temporalImage, time.Since(start).Round(time.Second))
		}
	})
	require.NoError(t, imagesErr)
	return gustImage, temporalImage
}

// buildImage builds images/<name>/Dockerfile with binaries (context name
// -> file) and files (context name -> file) in its build context, plus the
// empty directories the Dockerfiles copy: tmp/ (mode 1777), and data/ and
// state/ (the volumes' mount points). The context is a tar stream, so the
// modes are exactly these whatever the umask. Nothing is pulled: the
// Dockerfiles start FROM scratch.
func buildImage(name string, binaries, files map[string]string) (string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(hdr *tar.Header, r io.Reader) error {
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if r != nil {
			_, err := io.Copy(tw, r)
			return err
		}
		return nil
	}
	addFile := func(ctxName, path string, mode int64) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		return add(&tar.Header{Name: ctxName, Mode: mode, Size: info.Size(), Typeflag: tar.TypeReg}, f)
	}
	if err := addFile("Dockerfile", filepath.Join("..", "..", "images", name, "Dockerfile"), 0o644); err != nil {
		return "", err
	}
	for dir, mode := range map[string]int64{"tmp/": 0o1777, "data/": 0o755, "state/": 0o755, "config/": 0o755} {
		if err := add(&tar.Header{Name: dir, Mode: mode, Typeflag: tar.TypeDir}, nil); err != nil {
			return "", err
		}
	}
	for ctxName, path := range binaries {
		if err := addFile(ctxName, path, 0o755); err != nil {
			return "", err
		}
	}
	for ctxName, path := range files {
		if err := addFile(ctxName, path, 0o644); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}

	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", err
	}
	defer provider.Close()
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tag, err := provider.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		ContextArchive: bytes.NewReader(buf.Bytes()),
		Repo:           "gust-test-" + name,
		Tag:            runTag,
		KeepImage:      true, // TestMain removes it, once every test is done
		BuildLogWriter: &log,
	}})
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, log.String())
	}
	builtImages = append(builtImages, tag)
	return tag, nil
}

// builtImages are the images this run built, for removeBuiltImages.
var builtImages []string

// removeBuiltImages removes the images this run built; TestMain calls it.
func removeBuiltImages() {
	if len(builtImages) == 0 {
		return
	}
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		return
	}
	defer cli.Close()
	for _, img := range builtImages {
		_, _ = cli.ImageRemove(context.Background(), img, dockerclient.ImageRemoveOptions{Force: true, PruneChildren: true})
	}
}

// Public images of the opt-in tests; override to test other versions.
