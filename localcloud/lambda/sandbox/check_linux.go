package sandbox

import (
	"errors"
	"os"
)

// Check reports why sandboxes cannot be built here, or nil.
func Check() error {
	if os.Geteuid() == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err == nil && string(b) == "0\n" {
		return errors.New("gust is not root and user namespaces are disabled (user.max_user_namespaces is 0)")
	}
	return nil
}
