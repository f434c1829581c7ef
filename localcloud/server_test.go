package localcloud_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gust-dev/gust/localcloud"
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
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
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
