package lambdatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildHostile compiles the hostile handler (localcloud/lambda/testdata/
// hostile, a deliberately malicious aws-lambda-go function the security
// tests deploy) to dir/bootstrap and returns its path. It is built static
// (CGO_ENABLED=0), so it runs in any root filesystem.
func BuildHostile(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("locating the hostile handler's source")
	}
	src := filepath.Join(filepath.Dir(self), "..", "testdata", "hostile")
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the hostile handler: %w: %s", err, out)
	}
	return bin, nil
}
