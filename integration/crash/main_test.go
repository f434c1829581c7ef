package crash

// The crash tests live in their own package so that `go test ./...` gives
// their thirty restarts of gust dev their own ten minutes, apart from the
// integration package's. Their helpers are integration/itest's.

import (
	"os"
	"testing"

	"github.com/gust-dev/gust/integration/itest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	itest.Cleanup()
	os.Exit(code)
}
