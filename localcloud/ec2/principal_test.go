package ec2

import (
	"net/http"
	"strings"

	"github.com/gust-dev/gust/tenants"
)

// trustKeyID is the test stand-in for the local cloud's authentication: it
// trusts the access key id of a SigV4 Authorization header as the tenant,
// without checking the signature, and puts that principal in the request's
// context. It lets this package's tests exercise EC2 semantics with any
// static credentials; a request with no Authorization header carries no
// principal. The real path (localcloud.Server) always verifies.
func trustKeyID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		if key, _, _ := strings.Cut(cred, "/"); ok && key != "" {
			r = r.WithContext(tenants.WithPrincipal(r.Context(), tenants.Principal{Tenant: key, AccessKeyID: key}))
		}
		h.ServeHTTP(w, r)
	})
}

// testAuthorization is an Authorization header trustKeyID accepts for tenant.
func testAuthorization(tenant string) string {
	return "AWS4-HMAC-SHA256 Credential=" + tenant + "/20260102/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)
}
