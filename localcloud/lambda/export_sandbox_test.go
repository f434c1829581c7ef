package lambda

// SandboxIDsInUse reports how many sandbox uids c has handed out and not yet
// taken back, or -1 when c does not run sandboxes. For the security tests
// (package lambda_test), which check that a discarded environment's uid
// goes back to the pool.
func SandboxIDsInUse(c *Cloud) int {
	rt, ok := c.iso.(*sandboxRuntime)
	if !ok {
		return -1
	}
	return rt.ids.InUse()
}
