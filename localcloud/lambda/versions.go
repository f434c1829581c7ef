package lambda

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
)

// Versions and aliases.
//
// Every deploy already makes a new version number (the function's Version,
// which Invoke reports in X-Amz-Executed-Version): CreateFunction is 1,
// each change of code or configuration the next. Those numbers are the
// function's $LATEST over time; only the newest can be invoked.
// PublishVersion keeps the current one as an immutable snapshot of code and
// configuration under its number, so it stays invokable after later
// deploys (Qualifier N, an alias, or a qualified ARN), with environments of
// its own. Version numbers of a function are therefore increasing but not
// contiguous: publishing after three deploys gives version 3. Publishing
// twice without a change in between returns the same version, as Lambda
// does.
//
// An alias names $LATEST or a published version; a version an alias names
// cannot be deleted. Weighted routing (RoutingConfig) is not supported.

// resolveQualifier returns the function f is at qual: $LATEST (or no
// qualifier) and f's own number are f itself; another number is a
// published version; anything else is an alias. Unknown qualifiers are
// ResourceNotFoundException, as on Lambda.
func (c *Cloud) resolveQualifier(f *function, qual string) (*function, error) {
	if qual == "" || qual == "$LATEST" {
		return f, nil
	}
	k := fnKey{f.Tenant, f.Name}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a := c.aliases[k][qual]; a != nil {
		if a.Version == "$LATEST" {
			return f, nil
		}
		qual = a.Version
	}
	if n, err := strconv.Atoi(qual); err == nil {
		if n == f.Version {
			return f, nil
		}
		if v := c.versions[k][n]; v != nil {
			return v, nil
		}
	}
	return nil, errNotFound("Function not found: %s:%s", c.arn(f), qual)
}

// qualifiedLookup resolves raw (a name or ARN, possibly qualified) and the
// request's Qualifier to the function version they name. qual is the
// qualifier as the caller gave it ("" for none).
func (c *Cloud) qualifiedLookup(r *http.Request, tenant, raw string) (cur, at *function, qual string, err error) {
	f, qual, err := c.named(tenant, raw)
	if err != nil {
		return nil, nil, "", err
	}
	if r.URL.RawQuery != "" {
		if q := r.URL.Query().Get("Qualifier"); q != "" {
			if qual != "" && qual != q {
				return nil, nil, "", errInvalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
			}
			qual = q
		}
	}
	at, err = c.resolveQualifier(f, qual)
	if err != nil {
		return nil, nil, "", err
	}
	return f, at, qual, nil
}

// publishedNumbers are the published version numbers of the function.
// The caller holds c.ctl.
func (c *Cloud) publishedNumbers(tenant, name string) map[int]bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keep := make(map[int]bool, len(c.versions[fnKey{tenant, name}]))
	for n := range c.versions[fnKey{tenant, name}] {
		keep[n] = true
	}
	return keep
}

func (c *Cloud) revisionID(f *function) string { return f.UID + "-" + strconv.Itoa(f.Version) }

func (c *Cloud) publishVersion(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var req struct {
		CodeSha256  string  `json:"CodeSha256"`
		Description *string `json:"Description"`
		RevisionID  string  `json:"RevisionId"`
	}
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: currentVersion, body: &req, write: true}, func(f *function) error {
		if req.CodeSha256 != "" {
			sum, _ := hex.DecodeString(f.CodeSHA256)
			if cur := base64.StdEncoding.EncodeToString(sum); req.CodeSha256 != cur {
				return errInvalidParameter("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again from the latest version.", req.CodeSha256, cur)
			}
		}
		if req.RevisionID != "" && req.RevisionID != c.revisionID(f) {
			return errPreconditionFailed()
		}
		k := fnKey{tenant, f.Name}
		c.mu.RLock()
		existing := c.versions[k][f.Version]
		c.mu.RUnlock()
		if existing != nil {
			writeJSON(w, http.StatusCreated, c.qualifiedConfiguration(existing, strconv.Itoa(existing.Version)))
			return nil
		}
		v := *f
		if req.Description != nil {
			v.Config.Description = *req.Description
		}
		if err := c.store.putVersion(r.Context(), &v); err != nil {
			return err
		}
		c.mu.Lock()
		if c.versions[k] == nil {
			c.versions[k] = map[int]*function{}
		}
		c.versions[k][v.Version] = &v
		c.mu.Unlock()
		writeJSON(w, http.StatusCreated, c.qualifiedConfiguration(&v, strconv.Itoa(v.Version)))
		return nil
	})
}

// qualifiedConfiguration is f's configuration as a qualified ARN shows it.
func (c *Cloud) qualifiedConfiguration(f *function, qual string) functionConfiguration {
	out := c.configuration(f)
	if qual != "" {
		out.FunctionArn += ":" + qual
	}
	if qual == "$LATEST" {
		out.Version = "$LATEST"
	}
	return out
}

func (c *Cloud) listVersions(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var p page
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: anyVersion, page: &p}, func(f *function) error {
		all := []functionConfiguration{c.qualifiedConfiguration(f, "$LATEST")}
		c.mu.RLock()
		var nums []int
		for n := range c.versions[fnKey{tenant, f.Name}] {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for _, n := range nums {
			all = append(all, c.qualifiedConfiguration(c.versions[fnKey{tenant, f.Name}][n], strconv.Itoa(n)))
		}
		c.mu.RUnlock()
		versions, next := paginate(all, p.marker, p.maxItems, func(fc functionConfiguration) string { return fc.Version })
		writeJSON(w, http.StatusOK, struct {
			Versions   []functionConfiguration `json:"Versions"`
			NextMarker string                  `json:"NextMarker,omitempty"`
		}{versions, next})
		return nil
	})
}

// deleteVersion deletes a published version (DeleteFunction with a
// Qualifier). The caller holds c.ctl.
func (c *Cloud) deleteVersion(w http.ResponseWriter, r *http.Request, f *function, qual string) {
	if qual == "$LATEST" {
		writeError(w, errInvalidParameter("$LATEST version cannot be deleted without deleting the function."))
		return
	}
	k := fnKey{f.Tenant, f.Name}
	n, err := strconv.Atoi(qual)
	c.mu.RLock()
	v := c.versions[k][n]
	var users []string
	for _, a := range c.aliases[k] {
		if a.Version == qual {
			users = append(users, a.Name)
		}
	}
	c.mu.RUnlock()
	if err != nil || v == nil {
		writeError(w, errNotFound("Function not found: %s:%s", c.arn(f), qual))
		return
	}
	if len(users) > 0 {
		sort.Strings(users)
		writeError(w, errConflict("Unable to delete version because the following aliases reference it: %v", users))
		return
	}
	if err := c.store.deleteVersion(r.Context(), f.Tenant, f.Name, n); err != nil {
		writeError(w, err)
		return
	}
	c.mu.Lock()
	delete(c.versions[k], n)
	if len(c.versions[k]) == 0 {
		delete(c.versions, k)
	}
	c.mu.Unlock()
	if n != f.Version {
		c.pool.retireVersion(f.UID, n)
	}
	c.releaseCode(v.CodeSHA256)
	w.WriteHeader(http.StatusNoContent)
}

// Aliases.

type aliasConfiguration struct {
	AliasArn        string `json:"AliasArn"`
	Name            string `json:"Name"`
	FunctionVersion string `json:"FunctionVersion"`
	Description     string `json:"Description"`
	RevisionID      string `json:"RevisionId"`
}

func (c *Cloud) aliasConfiguration(f *function, a *alias) aliasConfiguration {
	return aliasConfiguration{AliasArn: c.arn(f) + ":" + a.Name, Name: a.Name, FunctionVersion: a.Version,
		Description: a.Description, RevisionID: a.RevisionID}
}

// validAliasName is Lambda's rule: 1 to 128 characters from
// [a-zA-Z0-9-_], not all digits (a number is a version).
func validAliasName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		ch := s[i]
		isDigit := ch >= '0' && ch <= '9'
		digits = digits && isDigit
		if !isDigit && !(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && ch != '-' && ch != '_' {
			return false
		}
	}
	return !digits
}

type aliasRequest struct {
	Name            string          `json:"Name"`
	FunctionVersion *string         `json:"FunctionVersion"`
	Description     *string         `json:"Description"`
	RevisionID      string          `json:"RevisionId"`
	RoutingConfig   *map[string]any `json:"RoutingConfig"`
}

// checkAliasTarget checks that version is $LATEST or a published version
// of f. The caller holds c.ctl.
func (c *Cloud) checkAliasTarget(f *function, version string) error {
	if version == "$LATEST" {
		return nil
	}
	n, err := strconv.Atoi(version)
	c.mu.RLock()
	v := c.versions[fnKey{f.Tenant, f.Name}][n]
	c.mu.RUnlock()
	if err != nil || v == nil {
		return errNotFound("Function not found: %s:%s", c.arn(f), version)
	}
	return nil
}

func routingUnsupported(req *aliasRequest) error {
	if req.RoutingConfig != nil {
		if w, ok := (*req.RoutingConfig)["AdditionalVersionWeights"].(map[string]any); ok && len(w) > 0 {
			return errInvalidParameter("RoutingConfig (weighted aliases) is not supported by the local cloud")
		}
	}
	return nil
}

func (c *Cloud) createAlias(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var req aliasRequest
	check := func() error {
		if !validAliasName(req.Name) {
			return errInvalidParameter("invalid alias name %q: use 1 to 128 characters from [a-zA-Z0-9-_], not all digits", req.Name)
		}
		if req.FunctionVersion == nil || *req.FunctionVersion == "" {
			return errInvalidParameter("FunctionVersion is required")
		}
		return routingUnsupported(&req)
	}
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: currentVersion, body: &req, check: check, write: true}, func(f *function) error {
		k := fnKey{tenant, f.Name}
		c.mu.RLock()
		exists := c.aliases[k][req.Name] != nil
		c.mu.RUnlock()
		if exists {
			return errConflict("Alias already exists: %s:%s", c.arn(f), req.Name)
		}
		if err := c.checkAliasTarget(f, *req.FunctionVersion); err != nil {
			return err
		}
		a := &alias{Name: req.Name, Version: *req.FunctionVersion, RevisionID: newID("")}
		if req.Description != nil {
			a.Description = *req.Description
		}
		if err := c.putAlias(r, f, a); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, c.aliasConfiguration(f, a))
		return nil
	})
}

// putAlias stores a and makes it current. The caller holds c.ctl.
func (c *Cloud) putAlias(r *http.Request, f *function, a *alias) error {
	if err := c.store.putAlias(r.Context(), f.Tenant, f.Name, a); err != nil {
		return err
	}
	k := fnKey{f.Tenant, f.Name}
	c.mu.Lock()
	if c.aliases[k] == nil {
		c.aliases[k] = map[string]*alias{}
	}
	c.aliases[k][a.Name] = a
	c.mu.Unlock()
	return nil
}

// aliasOf returns f's alias rawAlias (escaped, from the path), or
// ResourceNotFoundException.
func (c *Cloud) aliasOf(f *function, rawAlias string) (*alias, error) {
	name, err := url.PathUnescape(rawAlias)
	if err != nil {
		return nil, errInvalidParameter("bad alias name %q", rawAlias)
	}
	c.mu.RLock()
	a := c.aliases[fnKey{f.Tenant, f.Name}][name]
	c.mu.RUnlock()
	if a == nil {
		return nil, errNotFound("Alias not found: %s:%s", c.arn(f), name)
	}
	return a, nil
}

func (c *Cloud) getAlias(w http.ResponseWriter, r *http.Request, tenant, raw, rawAlias string) {
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: anyVersion}, func(f *function) error {
		a, err := c.aliasOf(f, rawAlias)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c.aliasConfiguration(f, a))
		return nil
	})
}

func (c *Cloud) updateAlias(w http.ResponseWriter, r *http.Request, tenant, raw, rawAlias string) {
	var req aliasRequest
	check := func() error { return routingUnsupported(&req) }
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: anyVersion, body: &req, check: check, write: true}, func(f *function) error {
		old, err := c.aliasOf(f, rawAlias)
		if err != nil {
			return err
		}
		if req.RevisionID != "" && req.RevisionID != old.RevisionID {
			return errPreconditionFailed()
		}
		a := *old
		if req.FunctionVersion != nil {
			if err := c.checkAliasTarget(f, *req.FunctionVersion); err != nil {
				return err
			}
			a.Version = *req.FunctionVersion
		}
		if req.Description != nil {
			a.Description = *req.Description
		}
		a.RevisionID = newID("")
		if err := c.putAlias(r, f, &a); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c.aliasConfiguration(f, &a))
		return nil
	})
}

func (c *Cloud) deleteAlias(w http.ResponseWriter, r *http.Request, tenant, raw, rawAlias string) {
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: anyVersion, write: true}, func(f *function) error {
		a, err := c.aliasOf(f, rawAlias)
		if ae, ok := err.(*apiError); ok && ae.code == codeNotFound {
			w.WriteHeader(http.StatusNoContent) // deleting a missing alias succeeds, as on Lambda
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.store.deleteAlias(r.Context(), tenant, f.Name, a.Name); err != nil {
			return err
		}
		k := fnKey{tenant, f.Name}
		c.mu.Lock()
		delete(c.aliases[k], a.Name)
		if len(c.aliases[k]) == 0 {
			delete(c.aliases, k)
		}
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func (c *Cloud) listAliases(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var p page
	c.withFunction(w, r, fnCall{tenant: tenant, raw: raw, find: anyVersion, page: &p}, func(f *function) error {
		version := r.URL.Query().Get("FunctionVersion")
		var all []aliasConfiguration
		c.mu.RLock()
		for _, a := range c.aliases[fnKey{tenant, f.Name}] {
			if version == "" || a.Version == version {
				all = append(all, c.aliasConfiguration(f, a))
			}
		}
		c.mu.RUnlock()
		sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		aliases, next := paginate(all, p.marker, p.maxItems, func(a aliasConfiguration) string { return a.Name })
		if aliases == nil {
			aliases = []aliasConfiguration{}
		}
		writeJSON(w, http.StatusOK, struct {
			Aliases    []aliasConfiguration `json:"Aliases"`
			NextMarker string               `json:"NextMarker,omitempty"`
		}{aliases, next})
		return nil
	})
}

// pageParams reads a list call's MaxItems (1 to 10000, default 50) and
// Marker.
func pageParams(r *http.Request) (int, string, error) {
	q := r.URL.Query()
	maxItems := 50
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return 0, "", errInvalidParameter("MaxItems must be between 1 and 10000")
		}
		maxItems = n
	}
	return maxItems, q.Get("Marker"), nil
}

// paginate returns the page of all after the item whose key is marker
// (from the start when marker is ""), and the next page's marker.
func paginate[T any](all []T, marker string, maxItems int, key func(T) string) ([]T, string) {
	start := 0
	if marker != "" {
		for i, x := range all {
			if key(x) == marker {
				start = i + 1
				break
			}
		}
	}
	all = all[start:]
	if len(all) > maxItems {
		return all[:maxItems], key(all[maxItems-1])
	}
	return all, ""
}

func errPreconditionFailed() *apiError {
	return &apiError{status: http.StatusPreconditionFailed, code: "PreconditionFailedException",
		message: "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"}
}
