package lambda_test

import (
	"net/http"
	"strings"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/tenants"
)

// trustKeyID is the test stand-in for the local cloud's authentication: it
// trusts the access key id of a SigV4 Authorization header as the tenant,
// without checking the signature, and puts that principal in the request's
// context, so this package's tests exercise Lambda semantics with any
// static credentials. A request without a well-formed tenant key id carries
// no principal. The real path (localcloud.Server) always verifies.
func trustKeyID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		if key, _, _ := strings.Cut(cred, "/"); ok && lambda.ValidTenantID(key) {
			r = r.WithContext(tenants.WithPrincipal(r.Context(), tenants.Principal{Tenant: key, AccessKeyID: key}))
		}
		h.ServeHTTP(w, r)
	})
}
