package itest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
)

// build is a binary built at most once per test process, into a temporary
// directory of its own.
type build struct {
	once sync.Once
	dir  string // removed by Cleanup; empty until built
	path string
	err  error
}

// builds is the package's only state: the binaries the tests run, each
// built on first use and kept for the rest of the test process (a build
// takes many seconds; every test of a package shares it). A failed build
// fails every test that asks for it, with the same error.
var builds struct {
	gust, echo build
}

// get builds b with do in a new temporary directory the first time it is
// asked for, and returns its path.
func (b *build) get(t testing.TB, pattern string, do func(dir string) (string, error)) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", pattern)
		if err != nil {
			b.err = err
			return
		}
		b.dir = dir
		b.path, b.err = do(dir)
	})
	require.NoError(t, b.err)
	return b.path
}

// GustBinary builds the gust command once per test process and returns its
// path. It is static (CGO_ENABLED=0), so the same binary runs on the host
// and in the gust image (FROM scratch, no C library): one build serves
// both.
func GustBinary(t testing.TB) string {
	t.Helper()
	return builds.gust.get(t, "gust-bin-", func(dir string) (string, error) {
		path := filepath.Join(dir, "gust")
		// By import path, so the build does not depend on the test
		// package's directory.
		return path, StaticBuild(path, "github.com/gust-dev/gust/starter")
	})
}

// StaticBuild builds the package pkg (an import path, or a directory
// relative to the test's) to the executable out with CGO_ENABLED=0: no C
// library, so it runs on the host and in an image FROM scratch. Its error
// holds the compiler's output.
func StaticBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w: %s", pkg, err, b)
	}
	return nil
}

// EchoHandler builds the sample echo function from source as an unmodified
// aws-lambda-go bootstrap (static, like GustBinary), once per test process,
// and returns its path.
func EchoHandler(t testing.TB) string {
	t.Helper()
	return builds.echo.get(t, "gust-echo-", lambdatest.BuildEcho)
}

// Cleanup removes the binaries GustBinary and EchoHandler built. A
// package's TestMain calls it once, after m.Run: no test may ask for a
// binary afterwards, since the cache still names the removed paths.
func Cleanup() {
	for _, b := range []*build{&builds.gust, &builds.echo} {
		if b.dir != "" {
			_ = os.RemoveAll(b.dir)
		}
	}
}
