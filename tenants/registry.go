package tenants

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// Errors of the registry. They are wrapped with the name concerned; test
// them with errors.Is or the Is… helpers. No error the registry returns
// ever holds a secret.
var (
	// ErrExists: a tenant of that name, or of the same account id,
	// exists already.
	ErrExists = errors.New("already exists")
	// ErrNotFound: no tenant of that name.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a malformed argument (name, duration, session name).
	ErrInvalid = errors.New("invalid argument")
	// ErrAccessDenied: the caller may not do that; no detail is given, so
	// callers cannot probe which tenants exist.
	ErrAccessDenied = errors.New("access denied")
)

// IsExists reports whether err is ErrExists.
func IsExists(err error) bool { return errors.Is(err, ErrExists) }

// IsNotFound reports whether err is ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsInvalid reports whether err is ErrInvalid.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// IsAccessDenied reports whether err is ErrAccessDenied.
func IsAccessDenied(err error) bool { return errors.Is(err, ErrAccessDenied) }

// Credentials is an access key with its secret, as Create, RotateKey,
// PlatformCredentials and AssumeRole hand it out. Its String, GoString,
// Format and LogValue redact the secret and the session token, so a
// Credentials printed or logged by mistake leaks nothing. (encoding/json
// still sees every field: whoever marshals one must mean to.)
type Credentials struct {
	Tenant, AccountID, AccessKeyID, SecretAccessKey, SessionToken string
	// Expiration is when temporary credentials stop working; zero for a
	// long-term key.
	Expiration time.Time
}

func (c Credentials) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenants.Credentials{Tenant: %q, AccountID: %q, AccessKeyID: %q, SecretAccessKey: %s",
		c.Tenant, c.AccountID, c.AccessKeyID, redacted(c.SecretAccessKey))
	if c.SessionToken != "" {
		b.WriteString(", SessionToken: REDACTED")
	}
	if !c.Expiration.IsZero() {
		b.WriteString(", Expiration: " + c.Expiration.UTC().Format(time.RFC3339))
	}
	b.WriteString("}")
	return b.String()
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// GoString redacts like String, for %#v.
func (c Credentials) GoString() string { return c.String() }

// Format makes every verb (%v, %+v, %#v, %s, %d, ...) print String, so no
// verb reaches the fields.
func (c Credentials) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// LogValue redacts the secret and token for log/slog.
func (c Credentials) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("tenant", c.Tenant),
		slog.String("account_id", c.AccountID),
		slog.String("access_key_id", c.AccessKeyID),
	}
	if !c.Expiration.IsZero() {
		attrs = append(attrs, slog.Time("expiration", c.Expiration))
	}
	return slog.GroupValue(attrs...)
}

// KeyInfo describes a tenant's long-term access key, without its secret.
type KeyInfo struct {
	AccessKeyID string
	Created     time.Time
	Expires     time.Time // zero: none (the key is current)
	LastUsed    time.Time // zero: never
}

// TenantInfo describes a tenant, without secrets.
type TenantInfo struct {
	Name, AccountID string
	Created         time.Time
	LastUsed        time.Time // zero: never
	// Keys are the tenant's working long-term keys, oldest first; the
	// last one is current, older ones are in their grace period.
	Keys []KeyInfo
}

// Registry is the tenant registry, one SQLite file. Several Registries,
// in this process or others, may share the file: each sees the others'
// changes within one lookup. It is safe for concurrent use.
type Registry struct {
	db *sql.DB
	// now is the clock; tests replace it before use.
	now func() time.Time
	// maxSkew is the SigV4 skew allowed; 0 means 5 minutes.
	maxSkew time.Duration

	// ver is a dedicated connection that reads PRAGMA data_version, which
	// changes when any other connection commits; it guards the caches.
	verMu   sync.Mutex
	verConn *sql.Conn
	verStmt *sql.Stmt
	cache   cache
	// opened is the monotonic origin of lastSync, the last time
	// data_version was read (a Duration since opened; 0 at first, so the
	// first lookup reads it).
	opened   time.Time
	lastSync atomic.Int64

	// touches carries last-use records to the background writer.
	touches   chan touch
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// File format markers: PRAGMA application_id says "this is a gust tenant
// registry", user_version is the schema version.
const (
	applicationID = 0x67757374 // "gust"
	schemaVersion = 1
)

const schema = `
CREATE TABLE IF NOT EXISTS tenants (
	name       TEXT PRIMARY KEY,
	account_id TEXT NOT NULL UNIQUE,
	created    INTEGER NOT NULL,
	last_used  INTEGER NOT NULL DEFAULT 0
);
-- Long-term keys. tenant '' is the platform's own principal.
CREATE TABLE IF NOT EXISTS access_keys (
	access_key_id TEXT PRIMARY KEY,
	tenant        TEXT NOT NULL,
	secret        TEXT NOT NULL,
	created       INTEGER NOT NULL,
	expires       INTEGER NOT NULL DEFAULT 0,
	last_used     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS access_keys_tenant ON access_keys (tenant);
-- Temporary credentials from AssumeRole.
CREATE TABLE IF NOT EXISTS sessions (
	access_key_id TEXT PRIMARY KEY,
	tenant        TEXT NOT NULL,
	secret        TEXT NOT NULL,
	session_token TEXT NOT NULL,
	role_arn      TEXT NOT NULL,
	session_name  TEXT NOT NULL,
	created       INTEGER NOT NULL,
	expires       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_tenant ON sessions (tenant);
-- Keys that sign sub-tenant tokens. expires 0 marks the current one.
CREATE TABLE IF NOT EXISTS signing_keys (
	kid     TEXT PRIMARY KEY,
	tenant  TEXT NOT NULL,
	secret  BLOB NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS signing_keys_tenant ON signing_keys (tenant);
`

// Open opens the registry at path, creating the file (mode 0600) and its
// schema when missing. Several processes may open the same file. A file
// that is not a registry is an error that says so.
func Open(path string) (*Registry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open tenant registry %s: %w", path, err)
	}
	// Create the file ourselves so its mode is 0600 from the start: it
	// holds secrets. SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open tenant registry: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		err = f.Chmod(0o600)
	}
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open tenant registry: %w", err)
	}

	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	// _txlock=immediate: every write transaction takes the write lock up
	// front, so two processes never deadlock upgrading read locks;
	// busy_timeout makes the other one wait instead of failing.
	dsn := "file:" + esc + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open tenant registry %s: %w", abs, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := initSchema(db, abs); err != nil {
		db.Close()
		return nil, err
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open tenant registry %s: %w", abs, err)
	}
	stmt, err := conn.PrepareContext(ctx, "PRAGMA data_version")
	if err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("open tenant registry %s: %w", abs, err)
	}
	r := &Registry{
		db:      db,
		now:     time.Now,
		verConn: conn,
		verStmt: stmt,
		opened:  time.Now().Add(-syncEvery),
		touches: make(chan touch, 1024),
		done:    make(chan struct{}),
	}
	r.cache.reset()
	r.wg.Add(1)
	go r.recordLastUse()
	return r, nil
}

func initSchema(db *sql.DB, path string) error {
	notRegistry := func(err error) error {
		if err != nil {
			return fmt.Errorf("open tenant registry %s: the file is not a gust tenant registry: %w", path, err)
		}
		return fmt.Errorf("open tenant registry %s: the file is not a gust tenant registry", path)
	}
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == 26 { // SQLITE_NOTADB
			return notRegistry(nil)
		}
		return fmt.Errorf("open tenant registry %s: %w", path, err)
	}
	defer tx.Rollback()
	var appID, version, objects int
	if err := tx.QueryRow("PRAGMA application_id").Scan(&appID); err != nil {
		return notRegistry(err)
	}
	if err := tx.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return notRegistry(err)
	}
	if err := tx.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&objects); err != nil {
		return notRegistry(err)
	}
	switch {
	case appID == applicationID && version > schemaVersion:
		return fmt.Errorf("open tenant registry %s: schema version %d is newer than this gust understands (%d)", path, version, schemaVersion)
	case appID == applicationID:
	case appID == 0 && objects == 0:
		// A new, empty file: make it a registry.
	default:
		return notRegistry(nil)
	}
	if _, err := tx.Exec(schema); err != nil {
		return fmt.Errorf("open tenant registry %s: creating schema: %w", path, err)
	}
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return fmt.Errorf("open tenant registry %s: %w", path, err)
	}
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("open tenant registry %s: %w", path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("open tenant registry %s: %w", path, err)
	}
	return nil
}

// Close stops the background writer, flushing pending last-use records,
// and closes the file.
func (r *Registry) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.done)
		r.wg.Wait()
		r.verMu.Lock()
		r.verStmt.Close()
		r.verConn.Close()
		r.verMu.Unlock()
		err = r.db.Close()
	})
	return err
}

// Create creates tenant name with its first access key and token signing
// key, and returns the key with its secret: the only time the caller sees
// it besides Credentials. ErrExists when the tenant (or another one with
// the same account id) exists; ErrInvalid for a bad name.
func (r *Registry) Create(ctx context.Context, name string) (Credentials, error) {
	if !ValidName(name) {
		return Credentials{}, fmt.Errorf("tenant name %q: %w: 1 to %d characters from [a-zA-Z0-9_-], starting with a letter or digit", name, ErrInvalid, MaxNameLen)
	}
	now := r.now()
	account := AccountID(name)
	var creds Credentials
	err := r.write(ctx, func(tx *sql.Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT name FROM tenants WHERE name = ? OR account_id = ?`, name, account).Scan(&other)
		switch {
		case err == nil && other == name:
			return fmt.Errorf("tenant %q: %w", name, ErrExists)
		case err == nil:
			return fmt.Errorf("tenant %q: account id %s belongs to tenant %q: %w", name, account, other, ErrExists)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (name, account_id, created) VALUES (?, ?, ?)`, name, account, toDB(now)); err != nil {
			return err
		}
		creds, err = insertAccessKey(ctx, tx, name, now)
		if err != nil {
			return err
		}
		return insertSigningKey(ctx, tx, name, now)
	})
	if err != nil {
		return Credentials{}, err
	}
	return creds, nil
}

// Get describes tenant name. ErrNotFound when there is none.
func (r *Registry) Get(ctx context.Context, name string) (TenantInfo, error) {
	var t TenantInfo
	var created, lastUsed int64
	err := r.db.QueryRowContext(ctx, `SELECT name, account_id, created, last_used FROM tenants WHERE name = ?`, name).
		Scan(&t.Name, &t.AccountID, &created, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return TenantInfo{}, fmt.Errorf("tenant %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return TenantInfo{}, fmt.Errorf("reading tenant %q: %w", name, err)
	}
	t.Created, t.LastUsed = fromDB(created), fromDB(lastUsed)
	keys, err := r.keyInfos(ctx, name)
	if err != nil {
		return TenantInfo{}, err
	}
	t.Keys = keys[name]
	return t, nil
}

// List describes every tenant, sorted by name. It holds no secrets.
func (r *Registry) List(ctx context.Context) ([]TenantInfo, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT name, account_id, created, last_used FROM tenants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	defer rows.Close()
	var out []TenantInfo
	for rows.Next() {
		var t TenantInfo
		var created, lastUsed int64
		if err := rows.Scan(&t.Name, &t.AccountID, &created, &lastUsed); err != nil {
			return nil, fmt.Errorf("listing tenants: %w", err)
		}
		t.Created, t.LastUsed = fromDB(created), fromDB(lastUsed)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	keys, err := r.keyInfos(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Keys = keys[out[i].Name]
	}
	return out, nil
}

// keyInfos returns the working long-term keys of tenant, or of every
// tenant when tenant is "", oldest first.
func (r *Registry) keyInfos(ctx context.Context, tenant string) (map[string][]KeyInfo, error) {
	q := `SELECT tenant, access_key_id, created, expires, last_used FROM access_keys
		WHERE tenant <> '' AND (expires = 0 OR expires > ?)`
	args := []any{toDB(r.now())}
	if tenant != "" {
		q += ` AND tenant = ?`
		args = append(args, tenant)
	}
	rows, err := r.db.QueryContext(ctx, q+` ORDER BY tenant, created, rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing access keys: %w", err)
	}
	defer rows.Close()
	out := map[string][]KeyInfo{}
	for rows.Next() {
		var t string
		var k KeyInfo
		var created, expires, lastUsed int64
		if err := rows.Scan(&t, &k.AccessKeyID, &created, &expires, &lastUsed); err != nil {
			return nil, fmt.Errorf("listing access keys: %w", err)
		}
		k.Created, k.Expires, k.LastUsed = fromDB(created), fromDB(expires), fromDB(lastUsed)
		out[t] = append(out[t], k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing access keys: %w", err)
	}
	return out, nil
}

// Credentials returns the tenant's newest long-term key with its secret.
// ErrNotFound when there is no such tenant.
func (r *Registry) Credentials(ctx context.Context, name string) (Credentials, error) {
	var c Credentials
	var expires int64
	err := r.db.QueryRowContext(ctx, `SELECT t.name, t.account_id, k.access_key_id, k.secret, k.expires
		FROM tenants t JOIN access_keys k ON k.tenant = t.name
		WHERE t.name = ? AND (k.expires = 0 OR k.expires > ?)
		ORDER BY k.created DESC, k.rowid DESC LIMIT 1`, name, toDB(r.now())).
		Scan(&c.Tenant, &c.AccountID, &c.AccessKeyID, &c.SecretAccessKey, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Credentials{}, fmt.Errorf("tenant %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("reading credentials of tenant %q: %w", name, err)
	}
	return c, nil
}

// RotateKey issues the tenant a new long-term key and returns it. Every
// older key of the tenant that has no earlier expiry now expires at
// now+grace; grace 0 stops them at once. ErrNotFound, or ErrInvalid for a
// negative grace.
func (r *Registry) RotateKey(ctx context.Context, name string, grace time.Duration) (Credentials, error) {
	if grace < 0 {
		return Credentials{}, fmt.Errorf("grace %s: %w: must not be negative", grace, ErrInvalid)
	}
	now := r.now()
	var creds Credentials
	err := r.write(ctx, func(tx *sql.Tx) error {
		if err := tenantExists(ctx, tx, name); err != nil {
			return err
		}
		var err error
		if creds, err = insertAccessKey(ctx, tx, name, now); err != nil {
			return err
		}
		end := toDB(now.Add(grace))
		if _, err := tx.ExecContext(ctx, `UPDATE access_keys SET expires = ?
			WHERE tenant = ? AND access_key_id <> ? AND (expires = 0 OR expires > ?)`,
			end, name, creds.AccessKeyID, end); err != nil {
			return err
		}
		return purgeExpired(ctx, tx, now)
	})
	if err != nil {
		return Credentials{}, err
	}
	return creds, nil
}

// Delete removes tenant name with its keys, sessions and signing keys, in
// one transaction: every Registry on the file stops accepting them at its
// next lookup. ErrNotFound when there is none. Whether the tenant still
// owns functions or instances is the caller's business.
func (r *Registry) Delete(ctx context.Context, name string) error {
	return r.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 || name == "" {
			return fmt.Errorf("tenant %q: %w", name, ErrNotFound)
		}
		for _, q := range []string{
			`DELETE FROM access_keys WHERE tenant = ?`,
			`DELETE FROM sessions WHERE tenant = ?`,
			`DELETE FROM signing_keys WHERE tenant = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// PlatformCredentials returns the platform principal's long-term key
// (Tenant "", AccountID PlatformAccountID), creating it on the first call;
// later calls, from any process, return the same key.
func (r *Registry) PlatformCredentials(ctx context.Context) (Credentials, error) {
	now := r.now()
	var c Credentials
	err := r.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT access_key_id, secret FROM access_keys
			WHERE tenant = '' AND (expires = 0 OR expires > ?)
			ORDER BY created DESC, rowid DESC LIMIT 1`, toDB(now)).Scan(&c.AccessKeyID, &c.SecretAccessKey)
		if errors.Is(err, sql.ErrNoRows) {
			c, err = insertAccessKey(ctx, tx, "", now)
		}
		return err
	})
	if err != nil {
		return Credentials{}, err
	}
	c.Tenant, c.AccountID = "", PlatformAccountID
	return c, nil
}

// write runs fn in a write transaction and drops this Registry's caches
// after it commits (other Registries notice through data_version).
func (r *Registry) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("tenant registry: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if isRegistryError(err) {
			return err
		}
		return fmt.Errorf("tenant registry: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("tenant registry: %w", err)
	}
	r.invalidate()
	return nil
}

func isRegistryError(err error) bool {
	return errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrAccessDenied)
}

func tenantExists(ctx context.Context, tx *sql.Tx, name string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("tenant %q: %w", name, ErrNotFound)
	}
	return err
}

func insertAccessKey(ctx context.Context, tx *sql.Tx, tenant string, now time.Time) (Credentials, error) {
	c := Credentials{Tenant: tenant, AccountID: AccountID(tenant), AccessKeyID: newKeyID("AKIA"), SecretAccessKey: newSecret()}
	if tenant == "" {
		c.AccountID = PlatformAccountID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO access_keys (access_key_id, tenant, secret, created) VALUES (?, ?, ?, ?)`,
		c.AccessKeyID, tenant, c.SecretAccessKey, toDB(now))
	if err != nil {
		return Credentials{}, err
	}
	return c, nil
}

func insertSigningKey(ctx context.Context, tx *sql.Tx, tenant string, now time.Time) error {
	secret := make([]byte, 32)
	rand.Read(secret)
	_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, tenant, secret, created) VALUES (?, ?, ?, ?)`,
		newKID(), tenant, secret, toDB(now))
	return err
}

// purgeExpired removes keys, sessions and signing keys that no longer
// work: expired credentials go lazily, with the next write.
func purgeExpired(ctx context.Context, tx *sql.Tx, now time.Time) error {
	n := toDB(now)
	for _, q := range []string{
		`DELETE FROM access_keys WHERE expires <> 0 AND expires <= ?`,
		`DELETE FROM sessions WHERE expires <= ?`,
		`DELETE FROM signing_keys WHERE expires <> 0 AND expires <= ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, n); err != nil {
			return err
		}
	}
	return nil
}

// newKeyID returns prefix and 16 characters of uppercase base32, like
// AWS's key ids (AKIA… long-term, ASIA… temporary).
func newKeyID(prefix string) string {
	b := make([]byte, 10) // 80 bits: exactly 16 base32 characters
	rand.Read(b)
	return prefix + base32.StdEncoding.EncodeToString(b)
}

// newSecret returns a 40-character secret access key (240 random bits).
func newSecret() string {
	b := make([]byte, 30)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// newSessionToken returns an 88-character session token (528 random bits).
func newSessionToken() string {
	b := make([]byte, 66)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func newKID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "gk-" + hex.EncodeToString(b)
}

// Times are stored as Unix nanoseconds; 0 is the zero time ("none").
func toDB(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromDB(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
