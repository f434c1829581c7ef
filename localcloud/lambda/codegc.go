package lambda

// Stored code is content-addressed and shared: functions of any tenant
// deploying the same package refer to one code/<sha256>.zip and its
// extracted code/<sha256>/. It is removed once no current function refers
// to it and no environment uses it. Every change to which code functions
// refer (putCode, then publishing or deleting a function) and every removal
// happens under Cloud.ctl, so a deploy of some code and the removal of that
// code never interleave; the pool refuses to start environments from code
// while it is being removed (pool.lockCodeForRemoval).

// releaseCode removes the stored code of each of shas that no current
// function refers to, at once if no environment uses it, or else once the
// last one that does is gone (collectCode). The caller holds c.ctl, after
// the change that may have dropped the last reference. A failure to remove
// is logged, not returned: the change itself has succeeded, and the next
// Open sweeps what is left.
func (c *Cloud) releaseCode(shas ...string) {
	for _, sha := range shas {
		if sha == "" || c.codeReferenced(sha) {
			continue
		}
		if !c.pool.lockCodeForRemoval(sha) {
			continue // in use: collectCode's
		}
		err := c.store.removeCode(sha)
		c.pool.unlockCode()
		if err != nil {
			c.cfg.Logger.Warn("unused code not removed", "code_sha256", sha, "error", err)
		}
	}
}

// collectCode removes the code releaseCode left to the last environment
// using it, once that is gone.
func (c *Cloud) collectCode() {
	defer c.codeGC.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.pool.codeFreed:
			c.ctl.Lock()
			c.releaseCode(c.pool.freedCode()...)
			c.ctl.Unlock()
		}
	}
}

// codeReferenced reports whether a current function or a published
// version of any tenant runs the code sha.
func (c *Cloud) codeReferenced(sha string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, f := range c.fns {
		if f.CodeSHA256 == sha {
			return true
		}
	}
	for _, vs := range c.versions {
		for _, v := range vs {
			if v.CodeSHA256 == sha {
				return true
			}
		}
	}
	return false
}

// sweepCode removes the stored code no current function refers to: code
// whose functions were deleted or updated while a removal failed, or by a
// gust that stopped in between, and leftovers of interrupted uploads.
func (c *Cloud) sweepCode() {
	c.ctl.Lock()
	defer c.ctl.Unlock()
	keep := map[string]bool{}
	c.mu.RLock()
	for _, f := range c.fns {
		keep[f.CodeSHA256] = true
	}
	for _, vs := range c.versions {
		for _, v := range vs {
			keep[v.CodeSHA256] = true
		}
	}
	c.mu.RUnlock()
	if err := c.store.sweepCode(keep); err != nil {
		c.cfg.Logger.Warn("unused code not removed", "error", err)
	}
}
