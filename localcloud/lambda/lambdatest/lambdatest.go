// Package lambdatest helps tests run real functions: it builds the sample
// echo handler (localcloud/lambda/testdata/echo, an unmodified aws-lambda-go
// bootstrap around sample.Handle) from source.
package lambdatest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildEcho compiles the echo handler to dir/bootstrap and returns its
// path. It needs the go command, as every test run has.
func BuildEcho(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locating the echo handler's source")
	}
	src := filepath.Join(filepath.Dir(self), "..", "testdata", "echo")
	bin := filepath.Join(dir, "bootstrap")
	out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the echo handler: %w: %s", err, out)
	}
	return bin, nil
}
