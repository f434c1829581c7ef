package tenants

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// AssumeRole durations, as STS allows them for a role whose maximum
// session duration is raised to 12 hours.
const (
	DefaultSessionDuration = time.Hour
	MinSessionDuration     = 15 * time.Minute
	MaxSessionDuration     = 12 * time.Hour
)

// sessionNameRE is STS's RoleSessionName pattern.
var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// AssumeRole is STS AssumeRole. Only the platform principal (caller.Platform,
// with its long-term key) may assume, and only a role ARN equal to
// PlatformRoleARN(t) of an existing tenant t; anything else is
// ErrAccessDenied, an unknown tenant's role too, so callers cannot probe
// names. duration 0 means 1h; outside 15m..12h is ErrInvalid, and so is a
// sessionName that does not match [\w+=,.@-]{2,64}. It returns temporary
// credentials of the tenant: key id "ASIA"+16 characters, a secret, a
// session token and their Expiration. Expired sessions are removed as a
// side effect.
func (r *Registry) AssumeRole(ctx context.Context, caller Principal, roleARN, sessionName string, duration time.Duration) (Credentials, error) {
	if !caller.Platform || caller.Tenant != "" || caller.RoleARN != "" {
		return Credentials{}, fmt.Errorf("assume role: %w", ErrAccessDenied)
	}
	if duration == 0 {
		duration = DefaultSessionDuration
	}
	if duration < MinSessionDuration || duration > MaxSessionDuration {
		return Credentials{}, fmt.Errorf("assume role: duration %s: %w: must be from %s to %s", duration, ErrInvalid, MinSessionDuration, MaxSessionDuration)
	}
	if !sessionNameRE.MatchString(sessionName) {
		return Credentials{}, fmt.Errorf("assume role: session name: %w: must match [\\w+=,.@-]{2,64}", ErrInvalid)
	}
	account, ok := platformRoleAccount(roleARN)
	if !ok {
		return Credentials{}, fmt.Errorf("assume role: %w", ErrAccessDenied)
	}
	now := r.now()
	c := Credentials{
		AccountID:       account,
		AccessKeyID:     newKeyID("ASIA"),
		SecretAccessKey: newSecret(),
		SessionToken:    newSessionToken(),
		Expiration:      now.Add(duration).UTC(),
	}
	err := r.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT name FROM tenants WHERE account_id = ?`, account).Scan(&c.Tenant)
		if err == sql.ErrNoRows {
			return fmt.Errorf("assume role: %w", ErrAccessDenied)
		}
		if err != nil {
			return err
		}
		// The ARN must be exactly the tenant's: no case games, no other
		// role name in the account.
		if PlatformRoleARN(c.Tenant) != roleARN {
			return fmt.Errorf("assume role: %w", ErrAccessDenied)
		}
		if err := purgeExpired(ctx, tx, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions
			(access_key_id, tenant, secret, session_token, role_arn, session_name, created, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.AccessKeyID, c.Tenant, c.SecretAccessKey, c.SessionToken, roleARN, sessionName, toDB(now), toDB(c.Expiration))
		return err
	})
	if err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// platformRoleAccount returns the account of "arn:aws:iam::ACCOUNT:role/
// gust-platform"; ok is false for any other shape.
func platformRoleAccount(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::")
	if !ok {
		return "", false
	}
	account, role, ok := strings.Cut(rest, ":")
	if !ok || role != "role/"+PlatformRoleName || len(account) != 12 || strings.Trim(account, "0123456789") != "" || account == PlatformAccountID {
		return "", false
	}
	return account, true
}
