package tenants

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gust-dev/gust/limits"
)

// Sub-tenant tokens are JWTs signed HS256 with a per-tenant key named by
// the "kid" header. Claims: iss "gust", "tenant", sub (the sub-tenant),
// optional "fn" (the only function the token may invoke), iat, exp.
const (
	tokenIssuer     = "gust"
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 24 * time.Hour
	// maxTokenLen bounds what VerifyToken parses.
	maxTokenLen = 8 << 10
	// MaxSubTenantLen is the longest sub-tenant id (limits.MaxSubTenantIDLen).
	MaxSubTenantLen = limits.MaxSubTenantIDLen
)

// TokenClaims is what a verified sub-tenant token allows: invoking as
// SubTenant of Tenant, and only Function when it is set.
type TokenClaims struct {
	Tenant, SubTenant, Function string
	IssuedAt, Expires           time.Time
}

type jwtClaims struct {
	Tenant   string `json:"tenant"`
	Function string `json:"fn,omitempty"`
	jwt.RegisteredClaims
}

// TokenError is a token VerifyToken refuses. Its message is safe to log
// and to show the caller.
type TokenError struct {
	expired bool
	msg     string
}

func (e *TokenError) Error() string { return e.msg }

// IsTokenExpired reports whether err refuses a token that has expired
// (and was otherwise valid).
func IsTokenExpired(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.expired
}

// IsTokenInvalid reports whether err refuses a token as tampered,
// malformed, signed with a wrong algorithm or an unknown or foreign key.
func IsTokenInvalid(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && !te.expired
}

func invalidToken(msg string) error { return &TokenError{msg: "invalid token: " + msg} }

// IssueToken signs a token that lets its bearer invoke as subTenant of
// tenant, and only function when it is not "". ttl 0 means 1h; more than
// 24h or negative is ErrInvalid. ErrNotFound for an unknown tenant.
func (r *Registry) IssueToken(ctx context.Context, tenant, subTenant, function string, ttl time.Duration) (string, error) {
	switch {
	case ttl == 0:
		ttl = DefaultTokenTTL
	case ttl < 0 || ttl > MaxTokenTTL:
		return "", fmt.Errorf("token ttl %s: %w: must be at most %s", ttl, ErrInvalid, MaxTokenTTL)
	}
	if !limits.ValidSubTenantID(subTenant) {
		return "", fmt.Errorf("sub-tenant %q: %w: %s", subTenant, ErrInvalid, limits.SubTenantIDRule)
	}
	if function != "" && !limits.ValidName(function) {
		return "", fmt.Errorf("function name %q: %w", function, ErrInvalid)
	}
	if !ValidName(tenant) {
		return "", fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
	}
	var kid string
	var secret []byte
	err := r.db.QueryRowContext(ctx, `SELECT kid, secret FROM signing_keys WHERE tenant = ? AND expires = 0
		ORDER BY created DESC, rowid DESC LIMIT 1`, tenant).Scan(&kid, &secret)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("tenant registry: reading signing key: %w", err)
	}
	// Whole seconds: that is what the claims carry.
	now := r.now().Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		Tenant:   tenant,
		Function: function,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   subTenant,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	})
	t.Header["kid"] = kid
	s, err := t.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}

// errKeyLookup marks a failure to read the signing key, which is ours,
// not the token's.
var errKeyLookup = errors.New("reading token signing key")

// VerifyToken checks a sub-tenant token and returns its claims. The
// method is pinned to HS256, exp is required, and the key named by kid
// must be a working key of the tenant the token claims. A refused token
// is a *TokenError (IsTokenExpired or IsTokenInvalid); any other error is
// the registry's failure.
func (r *Registry) VerifyToken(ctx context.Context, token string) (TokenClaims, error) {
	if len(token) > maxTokenLen {
		return TokenClaims{}, invalidToken("too long")
	}
	var claims jwtClaims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithTimeFunc(r.now),
	)
	var keyErr error
	_, err := p.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		e, err := r.lookupKID(kid)
		if err != nil {
			keyErr = err
			return nil, errKeyLookup
		}
		// A key of another tenant, or one past its grace, signs nothing.
		if !e.found || e.tenant != claims.Tenant ||
			!e.expires.IsZero() && !r.now().Before(e.expires) {
			return nil, errors.New("unknown key")
		}
		return e.secret, nil
	})
	switch {
	case keyErr != nil:
		return TokenClaims{}, keyErr
	case errors.Is(err, jwt.ErrTokenExpired):
		return TokenClaims{}, &TokenError{expired: true, msg: "token expired"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return TokenClaims{}, invalidToken("bad signature or algorithm")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return TokenClaims{}, invalidToken("unknown signing key")
	case err != nil:
		return TokenClaims{}, invalidToken("malformed or bad claims")
	}
	if !ValidName(claims.Tenant) || !limits.ValidSubTenantID(claims.Subject) ||
		claims.Function != "" && !limits.ValidName(claims.Function) || claims.IssuedAt == nil {
		return TokenClaims{}, invalidToken("bad claims")
	}
	return TokenClaims{
		Tenant:    claims.Tenant,
		SubTenant: claims.Subject,
		Function:  claims.Function,
		IssuedAt:  claims.IssuedAt.Time.UTC(),
		Expires:   claims.ExpiresAt.Time.UTC(),
	}, nil
}

// lookupKID returns the cached or stored token signing key kid.
func (r *Registry) lookupKID(kid string) (*kidEntry, error) {
	gen, err := r.sync()
	if err != nil {
		return nil, err
	}
	r.cache.mu.RLock()
	e := r.cache.kids[kid]
	r.cache.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	e = &kidEntry{}
	var expires int64
	err = r.db.QueryRowContext(context.Background(), `SELECT tenant, secret, expires FROM signing_keys WHERE kid = ?`, kid).
		Scan(&e.tenant, &e.secret, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("tenant registry: %w: %w", errKeyLookup, err)
	default:
		e.found, e.expires = true, fromDB(expires)
	}
	r.cache.mu.Lock()
	if r.cache.gen == gen {
		if len(r.cache.kids) >= maxCached {
			r.cache.kids = make(map[string]*kidEntry)
		}
		r.cache.kids[kid] = e
	}
	r.cache.mu.Unlock()
	return e, nil
}

// RotateSigningKey gives tenant a new token signing key, which signs from
// now on; the old keys keep verifying until now+grace (grace 0: they stop
// at once). ErrNotFound, or ErrInvalid for a negative grace.
func (r *Registry) RotateSigningKey(ctx context.Context, tenant string, grace time.Duration) error {
	if grace < 0 {
		return fmt.Errorf("grace %s: %w: must not be negative", grace, ErrInvalid)
	}
	now := r.now()
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := tenantExists(ctx, tx, tenant); err != nil {
			return err
		}
		end := toDB(now.Add(grace))
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET expires = ? WHERE tenant = ? AND (expires = 0 OR expires > ?)`, end, tenant, end); err != nil {
			return err
		}
		if err := insertSigningKey(ctx, tx, tenant, now); err != nil {
			return err
		}
		return purgeExpired(ctx, tx, now)
	})
}
