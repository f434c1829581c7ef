// Package lambdatest helps tests run real functions: it builds the
// handlers in localcloud/lambda/testdata from source.
package lambdatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildEcho compiles the sample echo handler (localcloud/lambda/testdata/
// echo, an unmodified aws-lambda-go bootstrap around sample.Handle) to
// dir/bootstrap and returns its path.
func BuildEcho(dir string) (string, error) { return build(dir, "echo") }

// BuildHostile compiles the hostile handler (localcloud/lambda/testdata/
// hostile, a deliberately malicious aws-lambda-go function the security
// tests deploy) to dir/bootstrap and returns its path.
func BuildHostile(dir string) (string, error) { return build(dir, "hostile") }

// build compiles testdata/name to dir/bootstrap. It needs the go command,
// as every test run has. Handlers are built static (CGO_ENABLED=0), so they
// run in any root filesystem.
func build(dir, name string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locating the %s handler's source", name)
	}
	src := filepath.Join(filepath.Dir(self), "..", "testdata", name)
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the %s handler: %w: %s", name, err, out)
	}
	return bin, nil
}
