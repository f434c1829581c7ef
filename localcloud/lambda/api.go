package lambda

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gust-dev/gust/localcloud/lambda/egress"
	"github.com/gust-dev/gust/tenants"
)

// Paths and headers of the Lambda REST API and gust's extensions.
const (
	functionsPath = "/2015-03-31/functions"

	HeaderEnvironmentID       = "X-Gust-Environment-Id"
	HeaderColdStart           = "X-Gust-Cold-Start"
	HeaderLocalCloud          = "X-Gust-Local-Cloud"
	HeaderRequestID           = "X-Gust-Request-Id"
	HeaderMaxEnvsPerSubTenant = "X-Gust-Max-Envs-Per-Subtenant"
	TagMaxEnvsPerSubTenant    = "gust:max-envs-per-subtenant"
	HeaderEgress              = "X-Gust-Egress"
	TagEgress                 = "gust:egress"

	// EnvironmentsSuffix and LogsSuffix follow /2015-03-31/functions/{name}/.
	EnvironmentsSuffix = "gust-environments"
	LogsSuffix         = "gust-logs"

	TenancyPerTenant = "PER_TENANT"
)

var (
	localCloudHeader = []string{"1"}
	jsonContentType  = []string{"application/json"}
	coldTrue         = []string{"true"}
	coldFalse        = []string{"false"}
)

// ServeHTTP serves the Lambda REST API for the principal the request's
// context carries (tenants.WithPrincipal): the local cloud's server
// verifies the request's signature and sets it; this service trusts it.
// The principal's tenant owns every function the call sees or makes.
// Without a principal the call fails with MissingAuthenticationToken; the
// platform's own principal, which acts for no tenant until it assumes a
// role, gets AccessDeniedException.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, CodePathPrefix) {
		c.ServeCode(w, r) // signed by its URL, not by SigV4
		return
	}
	w = &apiWriter{ResponseWriter: w, log: c.cfg.Logger, r: r} // for writeError
	w.Header()[HeaderLocalCloud] = localCloudHeader
	principal, ok := tenants.PrincipalFrom(r.Context())
	switch {
	case !ok:
		writeError(w, &apiError{status: http.StatusForbidden, code: CodeMissingAuthenticationToken, message: "Missing Authentication Token"})
		return
	case principal.Tenant == "":
		writeError(w, &apiError{status: http.StatusForbidden, code: codeAccessDenied,
			message: "User: " + principal.ARN() + " is not authorized to perform this operation: the platform principal must assume a tenant's role first"})
		return
	case !ValidTenantID(principal.Tenant):
		// The registry only has valid names; a tenant id is used in paths.
		writeError(w, errUnrecognizedClient("The security token included in the request is invalid."))
		return
	}
	tenant := principal.Tenant
	path := r.URL.EscapedPath()
	if c.serveOther(w, r, tenant, path) {
		return
	}
	rest, ok := strings.CutPrefix(path, functionsPath)
	if !ok || (rest != "" && rest[0] != '/') {
		writeError(w, &apiError{status: http.StatusNotFound, code: codeUnknownOperation, message: "unknown operation " + r.Method + " " + r.URL.Path})
		return
	}
	if rest == "" || rest == "/" {
		switch r.Method {
		case http.MethodPost:
			c.createFunction(w, r, tenant)
		case http.MethodGet:
			c.listFunctions(w, r, tenant)
		default:
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: codeUnknownOperation, message: "method not allowed"})
		}
		return
	}
	rawName, sub, _ := strings.Cut(rest[1:], "/")
	name, uerr := url.PathUnescape(rawName)
	if uerr != nil {
		writeError(w, errInvalidParameter("bad function name %q", rawName))
		return
	}
	switch {
	case sub == "invocations" && r.Method == http.MethodPost:
		c.invoke(w, r, tenant, name)
	case sub == "" && r.Method == http.MethodGet:
		c.getFunction(w, r, tenant, name, false)
	case sub == "configuration" && r.Method == http.MethodGet:
		c.getFunction(w, r, tenant, name, true)
	case sub == "" && r.Method == http.MethodDelete:
		c.deleteFunctionHTTP(w, r, tenant, name)
	case sub == "code" && r.Method == http.MethodPut:
		c.updateCode(w, r, tenant, name)
	case sub == "configuration" && r.Method == http.MethodPut:
		c.updateConfiguration(w, r, tenant, name)
	case sub == EnvironmentsSuffix && r.Method == http.MethodGet:
		c.environments(w, r, tenant, name)
	case sub == LogsSuffix && r.Method == http.MethodGet:
		c.functionLogs(w, r, tenant, name)
	case sub == "versions" && r.Method == http.MethodPost:
		c.publishVersion(w, r, tenant, name)
	case sub == "versions" && r.Method == http.MethodGet:
		c.listVersions(w, r, tenant, name)
	case sub == "aliases" && r.Method == http.MethodPost:
		c.createAlias(w, r, tenant, name)
	case sub == "aliases" && r.Method == http.MethodGet:
		c.listAliases(w, r, tenant, name)
	case strings.HasPrefix(sub, "aliases/") && !strings.Contains(sub[len("aliases/"):], "/"):
		a := sub[len("aliases/"):]
		switch r.Method {
		case http.MethodGet:
			c.getAlias(w, r, tenant, name, a)
		case http.MethodPut:
			c.updateAlias(w, r, tenant, name, a)
		case http.MethodDelete:
			c.deleteAlias(w, r, tenant, name, a)
		default:
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: codeUnknownOperation, message: "method not allowed"})
		}
	default:
		writeError(w, &apiError{status: http.StatusNotFound, code: codeUnknownOperation, message: "unknown operation " + r.Method + " " + r.URL.Path})
	}
}

func (c *Cloud) arn(f *function) string {
	return "arn:aws:lambda:" + c.cfg.Region + ":" + tenants.AccountID(f.Tenant) + ":function:" + f.Name
}

// parseFunctionName accepts the forms Lambda does: a name, a name with a
// qualifier ("name:1"), a partial ARN ("123456789012:function:name") or a
// full ARN. An ARN naming another account is reported as not found, like
// any function the tenant cannot see.
func parseFunctionName(tenant, s string) (name, qualifier string, err error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 1:
		name = parts[0]
	case len(parts) == 2:
		name, qualifier = parts[0], parts[1]
	case len(parts) >= 7 && len(parts) <= 8 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		if parts[4] != tenants.AccountID(tenant) {
			return "", "", errNotFound("Function not found: %s", s)
		}
		name = parts[6]
		if len(parts) == 8 {
			qualifier = parts[7]
		}
	case (len(parts) == 3 || len(parts) == 4) && parts[1] == "function":
		if parts[0] != tenants.AccountID(tenant) {
			return "", "", errNotFound("Function not found: %s", s)
		}
		name = parts[2]
		if len(parts) == 4 {
			qualifier = parts[3]
		}
	default:
		return "", "", errInvalidParameter("invalid function name %q", s)
	}
	if !ValidFunctionName(name) {
		return "", "", errInvalidParameter("invalid function name %q: use 1 to 64 characters from [a-zA-Z0-9-_]", name)
	}
	return name, qualifier, nil
}

// lookup resolves the tenant's function and checks the qualifier: empty,
// $LATEST or the current version. Older versions cannot be invoked: gust
// keeps only the current code running.
func (c *Cloud) lookup(r *http.Request, tenant, raw string) (*function, error) {
	f, qual, err := c.named(tenant, raw)
	if err != nil {
		return nil, err
	}
	if r.URL.RawQuery != "" {
		if q := r.URL.Query().Get("Qualifier"); q != "" {
			qual = q
		}
	}
	if qual != "" && qual != "$LATEST" && qual != strconv.Itoa(f.Version) {
		return nil, errNotFound("Function not found: %s:%s", c.arn(f), qual)
	}
	return f, nil
}

// named resolves raw (a name, a qualified name or an ARN) to the tenant's
// function and returns the qualifier it carried, unchecked. Another
// tenant's function is not found, like a missing one.
func (c *Cloud) named(tenant, raw string) (*function, string, error) {
	name, qual, err := parseFunctionName(tenant, raw)
	if err != nil {
		return nil, "", err
	}
	f := c.function(tenant, name)
	if f == nil {
		return nil, "", errNotFound("Function not found: %s", c.arnFor(tenant, name))
	}
	return f, qual, nil
}

func (c *Cloud) arnFor(tenant, name string) string {
	return "arn:aws:lambda:" + c.cfg.Region + ":" + tenants.AccountID(tenant) + ":function:" + name
}

// Wire shapes. Field names are Lambda's JSON member names.

type environmentVars struct {
	Variables map[string]string `json:"Variables"`
}

type tenancyConfig struct {
	TenantIsolationMode string `json:"TenantIsolationMode"`
}

type ephemeralStorage struct {
	Size int `json:"Size"`
}

type functionConfiguration struct {
	FunctionName     string           `json:"FunctionName"`
	FunctionArn      string           `json:"FunctionArn"`
	Runtime          string           `json:"Runtime"`
	Role             string           `json:"Role"`
	Handler          string           `json:"Handler"`
	CodeSize         int64            `json:"CodeSize"`
	CodeSha256       string           `json:"CodeSha256"`
	Description      string           `json:"Description"`
	Timeout          int              `json:"Timeout"`
	MemorySize       int              `json:"MemorySize"`
	LastModified     string           `json:"LastModified"`
	Version          string           `json:"Version"`
	Environment      *environmentVars `json:"Environment,omitempty"`
	TenancyConfig    *tenancyConfig   `json:"TenancyConfig,omitempty"`
	EphemeralStorage ephemeralStorage `json:"EphemeralStorage"`
	State            string           `json:"State"`
	LastUpdateStatus string           `json:"LastUpdateStatus"`
	PackageType      string           `json:"PackageType"`
	Architectures    []string         `json:"Architectures"`
	RevisionID       string           `json:"RevisionId"`
}

func (c *Cloud) configuration(f *function) functionConfiguration {
	sum, _ := hex.DecodeString(f.CodeSHA256)
	out := functionConfiguration{
		FunctionName:     f.Name,
		FunctionArn:      c.arn(f),
		Runtime:          f.Config.Runtime,
		Role:             f.Config.Role,
		Handler:          f.Config.Handler,
		CodeSize:         f.CodeSize,
		CodeSha256:       base64.StdEncoding.EncodeToString(sum),
		Description:      f.Config.Description,
		Timeout:          f.Config.TimeoutSec,
		MemorySize:       f.Config.MemoryMB,
		LastModified:     f.LastModified.UTC().Format("2006-01-02T15:04:05.000-0700"),
		Version:          strconv.Itoa(f.Version),
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    []string{"x86_64"},
		RevisionID:       f.UID + "-" + strconv.Itoa(f.Version),
		EphemeralStorage: ephemeralStorage{Size: f.Config.EphemeralMB},
	}
	if out.EphemeralStorage.Size == 0 {
		out.EphemeralStorage.Size = DefaultEphemeralMB
	}
	if len(f.Config.Env) > 0 {
		out.Environment = &environmentVars{Variables: f.Config.Env}
	}
	if f.Config.Tenancy != "" {
		out.TenancyConfig = &tenancyConfig{TenantIsolationMode: f.Config.Tenancy}
	}
	return out
}

type codeInput struct {
	ZipFile  []byte `json:"ZipFile"`
	S3Bucket string `json:"S3Bucket"`
	ImageURI string `json:"ImageUri"`
}

type updateCodeRequest struct {
	ZipFile []byte `json:"ZipFile"`
	DryRun  bool   `json:"DryRun"`
}

type createRequest struct {
	FunctionName  string            `json:"FunctionName"`
	Code          *codeInput        `json:"Code"`
	Role          string            `json:"Role"`
	Runtime       string            `json:"Runtime"`
	Handler       string            `json:"Handler"`
	Description   string            `json:"Description"`
	Timeout       *int              `json:"Timeout"`
	MemorySize    *int              `json:"MemorySize"`
	Environment   *environmentVars  `json:"Environment"`
	TenancyConfig *tenancyConfig    `json:"TenancyConfig"`
	Tags          map[string]string `json:"Tags"`
	PackageType   string            `json:"PackageType"`

	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
}

func (c *Cloud) createFunction(w http.ResponseWriter, r *http.Request, tenant string) {
	var req createRequest
	if err := c.decodeBody(r, &req, c.MaxRequestBytes()); err != nil {
		writeError(w, err)
		return
	}
	if !ValidFunctionName(req.FunctionName) {
		writeError(w, errInvalidParameter("invalid function name %q: use 1 to 64 characters from [a-zA-Z0-9-_]", req.FunctionName))
		return
	}
	if req.PackageType != "" && req.PackageType != "Zip" {
		writeError(w, errInvalidParameter("PackageType %s is not supported by the local cloud: deploy a zip", req.PackageType))
		return
	}
	if req.Code == nil || len(req.Code.ZipFile) == 0 {
		writeError(w, errInvalidParameter("Code.ZipFile is required: the local cloud takes code inline (S3 and images are not supported)"))
		return
	}
	if err := c.checkIsolation(); err != nil {
		writeError(w, err)
		return
	}
	if req.Role == "" {
		// The execution role is the tenant's own, in its account.
		req.Role = "arn:aws:iam::" + tenants.AccountID(tenant) + ":role/" + DefaultRoleName
	}
	cfg := functionConfig{
		TimeoutSec:  int(DefaultTimeout / time.Second),
		MemoryMB:    DefaultMemoryMB,
		Description: req.Description,
		Role:        req.Role,
		Runtime:     req.Runtime,
		Handler:     req.Handler,
		Tags:        req.Tags,
	}
	if req.TenancyConfig != nil {
		cfg.Tenancy = req.TenancyConfig.TenantIsolationMode
	}
	if req.Environment != nil {
		cfg.Env = req.Environment.Variables
	}
	if req.Timeout != nil {
		cfg.TimeoutSec = *req.Timeout
	}
	if req.MemorySize != nil {
		cfg.MemoryMB = *req.MemorySize
	}
	if v, ok := req.Tags[TagMaxEnvsPerSubTenant]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, errInvalidParameter("tag %s must be an integer", TagMaxEnvsPerSubTenant))
			return
		}
		cfg.MaxEnvsPerSubTenant = n
	}
	if err := maxEnvsHeader(r, &cfg); err != nil {
		writeError(w, err)
		return
	}
	if v, ok := req.Tags[TagEgress]; ok {
		cfg.Egress = v
	}
	egressHeader(r, &cfg)
	if err := setEphemeral(&cfg, req.EphemeralStorage); err != nil {
		writeError(w, err)
		return
	}
	if err := c.validateConfig(&cfg); err != nil {
		writeError(w, err)
		return
	}

	c.ctl.Lock()
	defer c.ctl.Unlock()
	if c.function(tenant, req.FunctionName) != nil {
		writeError(w, errConflict("Function already exist: %s", req.FunctionName))
		return
	}
	sha, size, err := c.store.putCode(req.Code.ZipFile)
	if err != nil {
		writeError(w, err)
		return
	}
	f := &function{Tenant: tenant, Name: req.FunctionName, UID: newID(""), Version: 1,
		CodeSHA256: sha, CodeSize: size, LastModified: c.cfg.Now(), Config: cfg}
	if err := c.store.put(r.Context(), f); err != nil {
		writeError(w, err)
		return
	}
	c.setFunction(f)
	writeJSON(w, http.StatusCreated, c.configuration(f))
}

// validateConfig checks and normalises a configuration.
func (c *Cloud) validateConfig(cfg *functionConfig) error {
	switch cfg.Tenancy {
	case "", TenancyPerTenant:
	default:
		return errInvalidParameter("TenancyConfig.TenantIsolationMode must be %s", TenancyPerTenant)
	}
	switch cfg.Runtime {
	case "":
		cfg.Runtime = "provided.al2023"
	case "provided.al2023", "provided.al2", "provided":
	default:
		return errInvalidParameter("runtime %s is not supported by the local cloud: use provided.al2023 with a bootstrap executable", cfg.Runtime)
	}
	if cfg.Handler == "" {
		cfg.Handler = "bootstrap"
	}
	if cfg.TimeoutSec < 1 || cfg.TimeoutSec > 900 {
		return errInvalidParameter("Timeout must be between 1 and 900 seconds")
	}
	if cfg.MemoryMB < 128 || cfg.MemoryMB > 10240 {
		return errInvalidParameter("MemorySize must be between 128 and 10240 MB")
	}
	if cfg.MaxEnvsPerSubTenant < 0 || cfg.MaxEnvsPerSubTenant > c.cfg.MaxEnvsPerFunction {
		return errInvalidParameter("max environments per sub-tenant must be between 1 and %d", c.cfg.MaxEnvsPerFunction)
	}
	if err := validateEnvVars(cfg.Env); err != nil {
		return errInvalidParameter("%v", err)
	}
	if cfg.EphemeralMB != 0 && (cfg.EphemeralMB < MinEphemeralMB || cfg.EphemeralMB > MaxEphemeralMB) {
		return errInvalidParameter("EphemeralStorage.Size must be between %d and %d MB", MinEphemeralMB, MaxEphemeralMB)
	}
	// The default size is stored as 0, so an update that names it makes no
	// new version.
	if cfg.EphemeralMB == DefaultEphemeralMB {
		cfg.EphemeralMB = 0
	}
	pol, err := egress.ParsePolicy(cfg.Egress)
	if err != nil {
		return errInvalidParameter("%v (the %s header or %s tag: none, all or HOST[:PORT],...)", err, HeaderEgress, TagEgress)
	}
	cfg.Egress = ""
	if !pol.None() {
		cfg.Egress = pol.String()
	}
	// Report the effective per-sub-tenant limit and egress policy as tags,
	// so GetFunction round-trips them through the standard API. Tags may be
	// the published version's map: copy, never write it.
	tags := make(map[string]string, len(cfg.Tags)+2)
	for k, v := range cfg.Tags {
		tags[k] = v
	}
	if cfg.MaxEnvsPerSubTenant > 0 {
		tags[TagMaxEnvsPerSubTenant] = strconv.Itoa(cfg.MaxEnvsPerSubTenant)
	}
	if cfg.Egress != "" {
		tags[TagEgress] = cfg.Egress
	} else {
		delete(tags, TagEgress) // none: no tag
	}
	if len(tags) == 0 {
		tags = nil
	}
	cfg.Tags = tags
	return nil
}

// egressHeader sets the egress policy from the X-Gust-Egress header, when
// the request has one; validateConfig checks it. Repeated header lines are
// one comma-separated list, as HTTP has it.
func egressHeader(r *http.Request, cfg *functionConfig) {
	if vs := r.Header.Values(HeaderEgress); len(vs) > 0 {
		cfg.Egress = strings.Join(vs, ",")
	}
}

// setEphemeral sets the size of /tmp from Lambda's EphemeralStorage, when
// the request has it.
func setEphemeral(cfg *functionConfig, es *ephemeralStorage) error {
	if es == nil {
		return nil
	}
	if es.Size < MinEphemeralMB || es.Size > MaxEphemeralMB {
		return errInvalidParameter("EphemeralStorage.Size %d MB is out of range: it must be between %d and %d MB", es.Size, MinEphemeralMB, MaxEphemeralMB)
	}
	cfg.EphemeralMB = es.Size
	return nil
}

func maxEnvsHeader(r *http.Request, cfg *functionConfig) error {
	v := r.Header.Get(HeaderMaxEnvsPerSubTenant)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errInvalidParameter("%s must be a positive integer", HeaderMaxEnvsPerSubTenant)
	}
	cfg.MaxEnvsPerSubTenant = n
	return nil
}

func (c *Cloud) getFunction(w http.ResponseWriter, r *http.Request, tenant, raw string, configOnly bool) {
	cur, f, qual, err := c.qualifiedLookup(r, tenant, raw)
	if err != nil {
		writeError(w, err)
		return
	}
	conf := c.qualifiedConfiguration(f, qual)
	if configOnly {
		writeJSON(w, http.StatusOK, conf)
		return
	}
	type code struct {
		RepositoryType string `json:"RepositoryType"`
		Location       string `json:"Location"`
	}
	var concurrency *concurrencyBody
	c.mu.RLock()
	if n, ok := c.reserved[fnKey{tenant, cur.Name}]; ok {
		concurrency = &concurrencyBody{ReservedConcurrentExecutions: &n}
	}
	c.mu.RUnlock()
	// The per-sub-tenant limit in force, the default included: the tag
	// says only what the deploy set.
	maxSub := f.Config.MaxEnvsPerSubTenant
	if maxSub <= 0 {
		maxSub = c.cfg.MaxEnvsPerSubTenant
	}
	w.Header().Set(HeaderMaxEnvsPerSubTenant, strconv.Itoa(maxSub))
	writeJSON(w, http.StatusOK, struct {
		Configuration functionConfiguration `json:"Configuration"`
		Code          code                  `json:"Code"`
		Tags          map[string]string     `json:"Tags,omitempty"`
		Concurrency   *concurrencyBody      `json:"Concurrency,omitempty"`
	}{Configuration: conf, Code: code{RepositoryType: "S3", Location: c.codeLocation(r, f)},
		Tags: cur.Config.Tags, Concurrency: concurrency})
}

func (c *Cloud) listFunctions(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	maxItems := 50
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, errInvalidParameter("MaxItems must be between 1 and 10000"))
			return
		}
		maxItems = n
	}
	marker := q.Get("Marker")
	c.mu.RLock()
	var mine []*function
	for k, f := range c.fns {
		if k.tenant == tenant && k.name > marker {
			mine = append(mine, f)
		}
	}
	c.mu.RUnlock()
	sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
	out := struct {
		Functions  []functionConfiguration `json:"Functions"`
		NextMarker string                  `json:"NextMarker,omitempty"`
	}{Functions: []functionConfiguration{}}
	for i, f := range mine {
		if i == maxItems {
			out.NextMarker = mine[i-1].Name
			break
		}
		out.Functions = append(out.Functions, c.configuration(f))
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteFunctionHTTP deletes the function with its versions, aliases and
// reserved concurrency, or, given a Qualifier, one published version.
func (c *Cloud) deleteFunctionHTTP(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	c.ctl.Lock()
	f, qual, err := c.named(tenant, raw)
	if err == nil && r.URL.RawQuery != "" {
		if q := r.URL.Query().Get("Qualifier"); q != "" {
			qual = q
		}
	}
	if err == nil && qual != "" {
		c.deleteVersion(w, r, f, qual)
		c.ctl.Unlock()
		return
	}
	var shas []string
	if err == nil {
		if err = c.store.deleteAll(r.Context(), tenant, f.Name); err == nil {
			k := fnKey{tenant, f.Name}
			c.mu.Lock()
			delete(c.fns, k)
			for _, v := range c.versions[k] {
				shas = append(shas, v.CodeSHA256)
			}
			delete(c.versions, k)
			delete(c.aliases, k)
			delete(c.reserved, k)
			c.mu.Unlock()
			c.pool.setReserved(f.UID, -1)
		}
	}
	c.ctl.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	c.pool.removeFunction(f.UID)
	c.logs.removeFunction(tenant, f.Name)
	// Now that its environments are gone, its code can go at once.
	c.ctl.Lock()
	c.releaseCode(append(shas, f.CodeSHA256)...)
	c.ctl.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *Cloud) updateCode(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var req updateCodeRequest
	if err := c.decodeBody(r, &req, c.MaxRequestBytes()); err != nil {
		writeError(w, err)
		return
	}
	if len(req.ZipFile) == 0 {
		writeError(w, errInvalidParameter("ZipFile is required: the local cloud takes code inline"))
		return
	}
	c.ctl.Lock()
	defer c.ctl.Unlock()
	old, err := c.lookup(r, tenant, raw)
	if err != nil {
		writeError(w, err)
		return
	}
	sha, size, err := c.store.putCode(req.ZipFile)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.DryRun {
		c.releaseCode(sha) // validated, not deployed
		writeJSON(w, http.StatusOK, c.configuration(old))
		return
	}
	f := *old
	f.Version, f.CodeSHA256, f.CodeSize, f.LastModified = old.Version+1, sha, size, c.cfg.Now()
	c.publish(w, r, &f)
}

func (c *Cloud) updateConfiguration(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	var req struct {
		Role        *string          `json:"Role"`
		Runtime     *string          `json:"Runtime"`
		Handler     *string          `json:"Handler"`
		Description *string          `json:"Description"`
		Timeout     *int             `json:"Timeout"`
		MemorySize  *int             `json:"MemorySize"`
		Environment *environmentVars `json:"Environment"`

		EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
	}
	if err := c.decodeBody(r, &req, 1<<20); err != nil {
		writeError(w, err)
		return
	}
	c.ctl.Lock()
	defer c.ctl.Unlock()
	old, err := c.lookup(r, tenant, raw)
	if err != nil {
		writeError(w, err)
		return
	}
	cfg := old.Config
	setIf(&cfg.Role, req.Role)
	setIf(&cfg.Runtime, req.Runtime)
	setIf(&cfg.Handler, req.Handler)
	setIf(&cfg.Description, req.Description)
	setIf(&cfg.TimeoutSec, req.Timeout)
	setIf(&cfg.MemoryMB, req.MemorySize)
	if req.Environment != nil {
		cfg.Env = req.Environment.Variables
	}
	if err := maxEnvsHeader(r, &cfg); err != nil {
		writeError(w, err)
		return
	}
	egressHeader(r, &cfg)
	if err := setEphemeral(&cfg, req.EphemeralStorage); err != nil {
		writeError(w, err)
		return
	}
	if err := c.validateConfig(&cfg); err != nil {
		writeError(w, err)
		return
	}
	if sameConfig(cfg, old.Config) {
		writeJSON(w, http.StatusOK, c.configuration(old))
		return
	}
	f := *old
	f.Version, f.Config, f.LastModified = old.Version+1, cfg, c.cfg.Now()
	c.publish(w, r, &f)
}

// publish stores f as the function's new current version and retires the
// environments of the older ones. The caller holds c.ctl.
//
// Code the older version ran, or the new one would have, is removed once
// no function refers to it and no environment runs it (releaseCode).
func (c *Cloud) publish(w http.ResponseWriter, r *http.Request, f *function) {
	old := c.function(f.Tenant, f.Name)
	if err := c.store.put(r.Context(), f); err != nil {
		c.releaseCode(f.CodeSHA256)
		writeError(w, err)
		return
	}
	c.setFunction(f)
	c.pool.retire(f.UID, f.Version, c.publishedNumbers(f.Tenant, f.Name))
	if old != nil && old.CodeSHA256 != f.CodeSHA256 {
		c.releaseCode(old.CodeSHA256)
	}
	writeJSON(w, http.StatusOK, c.configuration(f))
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func sameConfig(a, b functionConfig) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// environmentsOutput is the gust-environments endpoint's response.
type environmentsOutput struct {
	Environments []environmentOutput `json:"Environments"`
	// MemoryLimitEnforced says whether this local cloud can enforce
	// MemorySize at all, and MemoryLimitNote why not.
	MemoryLimitEnforced bool   `json:"MemoryLimitEnforced"`
	MemoryLimitNote     string `json:"MemoryLimitNote,omitempty"`
	// Isolation is the local cloud's isolation level.
	Isolation string `json:"Isolation"`
}

type environmentOutput struct {
	EnvironmentID       string `json:"EnvironmentId"`
	FunctionName        string `json:"FunctionName"`
	Version             string `json:"Version"`
	SubTenant           string `json:"SubTenant"`
	State               string `json:"State"` // idle, busy or retired
	Invocations         int    `json:"Invocations"`
	PID                 int    `json:"Pid"`
	MemoryMB            int    `json:"MemoryMB"`
	MemoryLimitEnforced bool   `json:"MemoryLimitEnforced"`
	// Isolation is the environment's isolation level (sandbox or none)
	// and UID the uid its bootstrap runs as on the host.
	Isolation string `json:"Isolation"`
	UID       int    `json:"Uid"`
	// PidsMax and CPUShare are the cgroup limits in force, 0 where not
	// enforced; CPUShare is cpu.shares on cgroup v1, cpu.weight on v2.
	PidsMax     int    `json:"PidsMax"`
	CPUShare    int    `json:"CpuShare"`
	EphemeralMB int    `json:"EphemeralStorageMB"`
	Started     string `json:"Started"`
	LastUsed    string `json:"LastUsed"`
}

func (c *Cloud) environments(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	f, _, err := c.named(tenant, raw)
	if err != nil {
		writeError(w, err)
		return
	}
	snaps := c.pool.list(f.UID)
	sort.Slice(snaps, func(i, j int) bool {
		if snaps[i].SubTenant != snaps[j].SubTenant {
			return snaps[i].SubTenant < snaps[j].SubTenant
		}
		return snaps[i].Started.Before(snaps[j].Started)
	})
	out := environmentsOutput{Environments: make([]environmentOutput, 0, len(snaps)),
		MemoryLimitEnforced: c.mem.enforced(), MemoryLimitNote: c.mem.reason}
	out.Isolation, _ = c.Isolation()
	for _, s := range snaps {
		state := s.State
		if s.State == "starting" {
			state = "busy"
		}
		if s.Retired {
			state = "retired"
		}
		out.Environments = append(out.Environments, environmentOutput{
			EnvironmentID: s.ID, FunctionName: f.Name, Version: strconv.Itoa(s.Version), SubTenant: s.SubTenant,
			State: state, Invocations: s.Invocations, PID: s.PID, MemoryMB: s.MemoryMB, MemoryLimitEnforced: s.MemoryLimit,
			Isolation: s.Isolation, UID: s.UID, PidsMax: s.PidsMax, CPUShare: s.CPUShare, EphemeralMB: s.TmpMB,
			Started: s.Started.UTC().Format(time.RFC3339Nano), LastUsed: s.LastUsed.UTC().Format(time.RFC3339Nano),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Cloud) functionLogs(w http.ResponseWriter, r *http.Request, tenant, raw string) {
	f, _, err := c.named(tenant, raw)
	if err != nil {
		writeError(w, err)
		return
	}
	sub := r.URL.Query().Get("subtenant")
	if sub != "" && !ValidSubTenantID(sub) {
		writeError(w, errInvalidParameter("invalid sub-tenant id: use 1 to 256 characters from [a-zA-Z0-9._:/=+-@ ]"))
		return
	}
	c.writeLogs(w, r, tenant, f.Name, sub)
}

// readBody reads a request body of at most limit bytes, in one allocation
// when the Content-Length is known. A body over the limit gets tooLarge's
// error, given the declared Content-Length, or 0 when only reading the body
// found it too large.
func readBody(r *http.Request, limit int64, tooLarge func(declared int64) error) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength)
	}
	var b []byte
	var err error
	if r.ContentLength > 0 {
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	}
	if err != nil {
		return nil, errInvalidContent("reading request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(0)
	}
	return b, nil
}

// decodeBody decodes a JSON request body of at most limit bytes.
func (c *Cloud) decodeBody(r *http.Request, v any, limit int64) error {
	b, err := readBody(r, limit, func(declared int64) error {
		if declared > 0 {
			return errTooLarge("request body is %d bytes, more than the %d allowed", declared, limit)
		}
		return errTooLarge("request body is more than the %d bytes allowed", limit)
	})
	if err != nil {
		return err
	}
	if zh, ok := v.(zipHolder); ok {
		if rest, zip := cutZipFile(b); zip != nil {
			if json.Unmarshal(rest, v) == nil && !zh.ambiguousZipFile() {
				*zh.zipFile() = zip
				return nil
			}
			zh.reset() // decode the whole body the slow way below
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errInvalidParameter("invalid value for %s: %v", te.Field, err)
		}
		return errInvalidContent("could not parse request body into json: %v", err)
	}
	return nil
}

// zipHolder is a request with a ZipFile member, which cutZipFile decodes
// without encoding/json.
type zipHolder interface {
	zipFile() *[]byte
	// ambiguousZipFile reports whether another member could have been
	// the "ZipFile" key cutZipFile found (a variable or tag of that name).
	ambiguousZipFile() bool
	reset()
}

func (r *createRequest) zipFile() *[]byte {
	if r.Code == nil {
		r.Code = &codeInput{}
	}
	return &r.Code.ZipFile
}

func (r *createRequest) ambiguousZipFile() bool {
	_, inTags := r.Tags["ZipFile"]
	inEnv := false
	if r.Environment != nil {
		_, inEnv = r.Environment.Variables["ZipFile"]
	}
	return inTags || inEnv || r.Code == nil
}

func (r *createRequest) reset() { *r = createRequest{} }

func (r *updateCodeRequest) zipFile() *[]byte       { return &r.ZipFile }
func (r *updateCodeRequest) ambiguousZipFile() bool { return false }
func (r *updateCodeRequest) reset()                 { *r = updateCodeRequest{} }

// cutZipFile removes the (first) "ZipFile" member from a JSON body and
// returns it base64-decoded. encoding/json needs ~25 ms per MB of base64
// (validating, then unquoting, then decoding); a direct decode is ~20x
// faster, which keeps deploying a 100 MB binary interactive. Anything
// unusual (escapes, bad base64) leaves the body whole for encoding/json.
func cutZipFile(b []byte) (rest, zip []byte) {
	key := []byte(`"ZipFile"`)
	i := bytes.Index(b, key)
	if i < 0 {
		return b, nil
	}
	j := i + len(key)
	for j < len(b) && (b[j] == ' ' || b[j] == ':' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
		j++
	}
	if j >= len(b) || b[j] != '"' {
		return b, nil
	}
	end := bytes.IndexByte(b[j+1:], '"')
	if end < 0 {
		return b, nil
	}
	enc := b[j+1 : j+1+end]
	if bytes.IndexByte(enc, '\\') >= 0 {
		return b, nil
	}
	zip = make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(zip, enc)
	if err != nil {
		return b, nil
	}
	rest = make([]byte, 0, len(b)-len(enc))
	rest = append(append(append(rest, b[:j]...), `""`...), b[j+2+end:]...)
	return rest, zip[:n]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
