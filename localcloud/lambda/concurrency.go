package lambda

import (
	"net/http"
)

// Reserved concurrency (PutFunctionConcurrency and friends) and the
// account's settings.
//
// A function's reserved concurrency caps its concurrent invocations over
// all its versions and sub-tenants; beyond it Invoke answers 429
// TooManyRequestsException with Reason
// ReservedFunctionConcurrentInvocationLimitExceeded, and 0 throttles every
// invocation. The pool enforces it (pool.acquire) as one more count beside
// its environment limits; it shares no environment between sub-tenants.
// Unlike Lambda, reserving does not set capacity aside from other
// functions: every function still shares Config.MaxEnvsTotal.
//
// The account's ConcurrentExecutions limit is Config.MaxEnvsTotal, the
// local cloud's own, and a tenant's reservations must leave a tenth of it
// (100 at the default 1000, Lambda's minimum) unreserved.

type concurrencyBody struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

func (c *Cloud) minUnreserved() int { return c.cfg.MaxEnvsTotal / 10 }

// reservedTotal is the sum of the tenant's reservations, but for skip's.
func (c *Cloud) reservedTotal(tenant, skip string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sum := 0
	for k, n := range c.reserved {
		if k.tenant == tenant && k.name != skip {
			sum += n
		}
	}
	return sum
}

func (c *Cloud) putConcurrency(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var req concurrencyBody
	check := func() error {
		if req.ReservedConcurrentExecutions == nil {
			return errInvalidParameter("ReservedConcurrentExecutions is required")
		}
		if *req.ReservedConcurrentExecutions < 0 {
			return errInvalidParameter("ReservedConcurrentExecutions must be at least 0")
		}
		return nil
	}
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: currentVersion, body: &req, check: check, write: true}, func(f *function) error {
		n := *req.ReservedConcurrentExecutions
		if c.cfg.MaxEnvsTotal-c.reservedTotal(tenant, f.Name)-n < c.minUnreserved() {
			return errInvalidParameter("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", c.minUnreserved())
		}
		if err := c.store.putReserved(r.Context(), tenant, f.Name, n); err != nil {
			return err
		}
		c.mu.Lock()
		c.reserved[fnKey{tenant, f.Name}] = n
		c.mu.Unlock()
		c.pool.setReserved(f.UID, n)
		writeJSON(w, http.StatusOK, concurrencyBody{ReservedConcurrentExecutions: &n})
		return nil
	})
}

func (c *Cloud) getConcurrency(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: currentVersion}, func(f *function) error {
		var out concurrencyBody
		c.mu.RLock()
		if n, ok := c.reserved[fnKey{tenant, f.Name}]; ok {
			out.ReservedConcurrentExecutions = &n
		}
		c.mu.RUnlock()
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

func (c *Cloud) deleteConcurrency(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: currentVersion, write: true}, func(f *function) error {
		if err := c.store.putReserved(r.Context(), tenant, f.Name, -1); err != nil {
			return err
		}
		c.mu.Lock()
		delete(c.reserved, fnKey{tenant, f.Name})
		c.mu.Unlock()
		c.pool.setReserved(f.UID, -1)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// lambdaTotalCodeSize is Lambda's default limit on an account's code,
// 75 GB. The local cloud reports it but does not enforce it: its code
// store is bounded by the disk.
const lambdaTotalCodeSize = 75 << 30

// getAccountSettings reports the tenant's limits and usage
// (GetAccountSettings): its function count and the size of its code over
// $LATEST and every published version, from the same state the API
// serves.
func (c *Cloud) getAccountSettings(w http.ResponseWriter, tenant string) {
	type limit struct {
		CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
		CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
		ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
		TotalCodeSize                  int64 `json:"TotalCodeSize"`
		UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
	}
	type usage struct {
		FunctionCount int64 `json:"FunctionCount"`
		TotalCodeSize int64 `json:"TotalCodeSize"`
	}
	var u usage
	c.mu.RLock()
	for k, f := range c.fns {
		if k.tenant != tenant {
			continue
		}
		u.FunctionCount++
		u.TotalCodeSize += f.CodeSize
		for n, v := range c.versions[k] {
			if n != f.Version {
				u.TotalCodeSize += v.CodeSize
			}
		}
	}
	c.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		AccountLimit limit `json:"AccountLimit"`
		AccountUsage usage `json:"AccountUsage"`
	}{limit{CodeSizeUnzipped: c.cfg.MaxCodeBytes, CodeSizeZipped: c.cfg.MaxCodeBytes, ConcurrentExecutions: c.cfg.MaxEnvsTotal,
		TotalCodeSize: lambdaTotalCodeSize, UnreservedConcurrentExecutions: c.cfg.MaxEnvsTotal - c.reservedTotal(tenant, "")}, u})
}
