package topology

// The topology tests live in their own package so that `go test ./...`
// gives them their own ten minutes: with them, the integration package ran
// past its limit. Their helpers are integration/itest's, but for those of
// the containers.

import (
	"os"
	"testing"

	"github.com/gust-dev/gust/integration/itest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeBuiltImages()
	itest.Cleanup()
	os.Exit(code)
}
