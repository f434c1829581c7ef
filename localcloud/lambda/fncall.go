package lambda

import "net/http"

// The calls on one function's sub-resources (versions, aliases, reserved
// concurrency, tags) read their request the same way before their own
// work, and withFunction does it for them, in an order that fixes which
// error a request with several faults gets: the JSON body, the call's
// checks of it, then the function (under c.ctl for a call that writes),
// then, for a list, its page.

// fnCall is how a call on one function reads its request.
type fnCall struct {
	// tenant and raw name the function: raw is a name or an ARN, possibly
	// qualified, from the path. Another tenant's function is not found,
	// like a missing one.
	tenant, raw string
	// find resolves raw; see currentVersion, anyVersion and byARN.
	find finder
	// body, when not nil, receives the request's JSON body (at most 1 MiB).
	body any
	// check, when not nil, validates the decoded body (and the query)
	// before the function is looked up.
	check func() error
	// write holds c.ctl from the lookup to the end of the call, as every
	// change to the functions does.
	write bool
	// page, when not nil, receives the list call's MaxItems and Marker.
	page *page
}

// page is a list call's MaxItems and Marker (see pageParams).
type page struct {
	maxItems int
	marker   string
}

// A finder resolves the function a call names.
type finder func(c *Cloud, r *http.Request, tenant, raw string) (*function, error)

// currentVersion is lookup: the qualifier, in raw or in the Qualifier
// query, may only name $LATEST or the function's current version.
func currentVersion(c *Cloud, r *http.Request, tenant, raw string) (*function, error) {
	return c.lookup(r, tenant, raw)
}

// anyVersion ignores the qualifier: the call is on the function with all
// its versions.
func anyVersion(c *Cloud, _ *http.Request, tenant, raw string) (*function, error) {
	f, _, err := c.named(tenant, raw)
	return f, err
}

// byARN takes only the function's unqualified ARN, as the tags calls do.
func byARN(c *Cloud, _ *http.Request, tenant, raw string) (*function, error) {
	return c.taggedFunction(tenant, raw)
}

// withFunction reads the request as call says and runs do on the function.
// The first error, of reading or of do, is the answer; do writes its own
// answer when it returns nil.
func (c *Cloud) withFunction(w http.ResponseWriter, r *http.Request, call fnCall, do func(f *function) error) {
	if err := c.callFunction(r, call, do); err != nil {
		writeError(w, err)
	}
}

func (c *Cloud) callFunction(r *http.Request, call fnCall, do func(f *function) error) error {
	if call.body != nil {
		if err := c.decodeBody(r, call.body, 1<<20); err != nil {
			return err
		}
	}
	if call.check != nil {
		if err := call.check(); err != nil {
			return err
		}
	}
	if call.write {
		c.ctl.Lock()
		defer c.ctl.Unlock()
	}
	f, err := call.find(c, r, call.tenant, call.raw)
	if err != nil {
		return err
	}
	if call.page != nil {
		if call.page.maxItems, call.page.marker, err = pageParams(r); err != nil {
			return err
		}
	}
	return do(f)
}
