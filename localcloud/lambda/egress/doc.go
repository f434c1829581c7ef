// Package egress is the network way out of a function's sandbox: the
// egress policy a function is deployed with, and the HTTP proxy that
// enforces it.
//
// # Threat model
//
// Functions are hostile, multi-tenant code. Their sandbox's network
// namespace holds only lo, so the proxy, reached through HTTP_PROXY and
// HTTPS_PROXY, is the only way out. Its connections leave from gust's own
// network namespace, where loopback, link-local and this machine's
// addresses reach gust's services, the cloud metadata endpoint and,
// through them, other tenants. The proxy therefore refuses those
// destinations whatever the policy says (even "all"), checks every address
// a name resolves to, and dials the address it checked rather than the
// name, so a second DNS answer cannot swap in a forbidden address. It
// bounds what one function can hold: concurrent connections, time to send
// request headers, and idle tunnels.
package egress
