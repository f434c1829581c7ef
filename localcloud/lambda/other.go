package lambda

import (
	"net/http"
	"net/url"
	"strings"
)

// DefaultRoleName is the execution role a function created without one
// gets, in its tenant's account.
const DefaultRoleName = "gust-function"

// serveOther serves the Lambda operations whose paths are not under
// /2015-03-31/functions (each has its own API date), and reports whether
// path was one of them.
func (c *Cloud) serveOther(w http.ResponseWriter, r *http.Request, tenant, path string) bool {
	switch {
	case path == "/2016-08-19/account-settings" || path == "/2016-08-19/account-settings/":
		if r.Method != http.MethodGet {
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: codeUnknownOperation, message: "method not allowed"})
			return true
		}
		c.getAccountSettings(w, tenant)
		return true
	case strings.HasPrefix(path, "/2017-03-31/tags/"):
		arn := strings.TrimPrefix(path, "/2017-03-31/tags/")
		switch r.Method {
		case http.MethodPost:
			c.tagResource(w, r, tenant, arn)
		case http.MethodDelete:
			c.untagResource(w, r, tenant, arn)
		case http.MethodGet:
			c.listTags(w, r, tenant, arn)
		default:
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: codeUnknownOperation, message: "method not allowed"})
		}
		return true
	}
	for _, date := range []string{"/2017-10-31/functions/", "/2019-09-30/functions/"} {
		rest, ok := strings.CutPrefix(path, date)
		if !ok {
			continue
		}
		raw, ok := strings.CutSuffix(rest, "/concurrency")
		if !ok || strings.Contains(raw, "/") {
			return false
		}
		name, err := url.PathUnescape(raw)
		if err != nil {
			writeError(w, errInvalidParameter("bad function name %q", raw))
			return true
		}
		switch {
		case r.Method == http.MethodPut && date == "/2017-10-31/functions/":
			c.putConcurrency(w, r, tenant, name)
		case r.Method == http.MethodDelete && date == "/2017-10-31/functions/":
			c.deleteConcurrency(w, r, tenant, name)
		case r.Method == http.MethodGet && date == "/2019-09-30/functions/":
			c.getConcurrency(w, r, tenant, name)
		default:
			return false
		}
		return true
	}
	return false
}
