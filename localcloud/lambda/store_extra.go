package lambda

import (
	"context"

	"encoding/json"
	"fmt"
	"time"
)

// The function-level state beside functions: published versions, aliases
// and reserved concurrency, in lambda.db like the functions themselves.
// Each table is keyed by (tenant, name) first, and DeleteFunction deletes
// a function's rows from all of them in one transaction.
const extraSchema = `
CREATE TABLE IF NOT EXISTS versions (
	tenant        TEXT NOT NULL,
	name          TEXT NOT NULL,
	version       INTEGER NOT NULL,
	uid           TEXT NOT NULL,
	code_sha256   TEXT NOT NULL,
	code_size     INTEGER NOT NULL,
	last_modified TEXT NOT NULL,
	config        TEXT NOT NULL,
	PRIMARY KEY (tenant, name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
	tenant      TEXT NOT NULL,
	name        TEXT NOT NULL,
	alias       TEXT NOT NULL,
	version     TEXT NOT NULL,
	description TEXT NOT NULL,
	revision_id TEXT NOT NULL,
	PRIMARY KEY (tenant, name, alias)
);
CREATE TABLE IF NOT EXISTS concurrency (
	tenant   TEXT NOT NULL,
	name     TEXT NOT NULL,
	reserved INTEGER NOT NULL,
	PRIMARY KEY (tenant, name)
);`

// alias is a named pointer to a version ($LATEST or a published number).
type alias struct {
	Name        string
	Version     string
	Description string
	RevisionID  string
}

// extras is everything of extraSchema, as Open loads it.
type extras struct {
	versions map[fnKey]map[int]*function
	aliases  map[fnKey]map[string]*alias
	reserved map[fnKey]int
}

func (s *store) loadExtras(ctx context.Context) (*extras, error) {
	x := &extras{versions: map[fnKey]map[int]*function{}, aliases: map[fnKey]map[string]*alias{}, reserved: map[fnKey]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, name, version, uid, code_sha256, code_size, last_modified, config FROM versions`)
	if err != nil {
		return nil, fmt.Errorf("loading versions, %w", err)
	}
	for rows.Next() {
		f := &function{}
		var lm, cfg string
		if err := rows.Scan(&f.Tenant, &f.Name, &f.Version, &f.UID, &f.CodeSHA256, &f.CodeSize, &lm, &cfg); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scanning version, %w", err)
		}
		f.LastModified, _ = time.Parse(time.RFC3339Nano, lm)
		if err := json.Unmarshal([]byte(cfg), &f.Config); err != nil {
			rows.Close()
			return nil, fmt.Errorf("decoding config of %s/%s:%d, %w", f.Tenant, f.Name, f.Version, err)
		}
		k := fnKey{f.Tenant, f.Name}
		if x.versions[k] == nil {
			x.versions[k] = map[int]*function{}
		}
		x.versions[k][f.Version] = f
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("loading versions, %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT tenant, name, alias, version, description, revision_id FROM aliases`)
	if err != nil {
		return nil, fmt.Errorf("loading aliases, %w", err)
	}
	for rows.Next() {
		var k fnKey
		a := &alias{}
		if err := rows.Scan(&k.tenant, &k.name, &a.Name, &a.Version, &a.Description, &a.RevisionID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scanning alias, %w", err)
		}
		if x.aliases[k] == nil {
			x.aliases[k] = map[string]*alias{}
		}
		x.aliases[k][a.Name] = a
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("loading aliases, %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT tenant, name, reserved FROM concurrency`)
	if err != nil {
		return nil, fmt.Errorf("loading concurrency, %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k fnKey
		var n int
		if err := rows.Scan(&k.tenant, &k.name, &n); err != nil {
			return nil, fmt.Errorf("scanning concurrency, %w", err)
		}
		x.reserved[k] = n
	}
	return x, rows.Err()
}

func (s *store) putVersion(ctx context.Context, f *function) error {
	cfg, err := json.Marshal(f.Config)
	if err != nil {
		return fmt.Errorf("encoding config, %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO versions (tenant, name, version, uid, code_sha256, code_size, last_modified, config)
		VALUES (?,?,?,?,?,?,?,?)`, f.Tenant, f.Name, f.Version, f.UID, f.CodeSHA256, f.CodeSize,
		f.LastModified.UTC().Format(time.RFC3339Nano), string(cfg))
	if err != nil {
		return fmt.Errorf("storing version %s:%d, %w", f.Name, f.Version, err)
	}
	return nil
}

func (s *store) deleteVersion(ctx context.Context, tenant, name string, version int) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM versions WHERE tenant = ? AND name = ? AND version = ?`, tenant, name, version); err != nil {
		return fmt.Errorf("deleting version %s:%d, %w", name, version, err)
	}
	return nil
}

func (s *store) putAlias(ctx context.Context, tenant, name string, a *alias) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO aliases (tenant, name, alias, version, description, revision_id)
		VALUES (?,?,?,?,?,?)`, tenant, name, a.Name, a.Version, a.Description, a.RevisionID)
	if err != nil {
		return fmt.Errorf("storing alias %s:%s, %w", name, a.Name, err)
	}
	return nil
}

func (s *store) deleteAlias(ctx context.Context, tenant, name, aliasName string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM aliases WHERE tenant = ? AND name = ? AND alias = ?`, tenant, name, aliasName); err != nil {
		return fmt.Errorf("deleting alias %s:%s, %w", name, aliasName, err)
	}
	return nil
}

// putReserved sets the function's reserved concurrency; n < 0 removes it.
func (s *store) putReserved(ctx context.Context, tenant, name string, n int) error {
	var err error
	if n < 0 {
		_, err = s.db.ExecContext(ctx, `DELETE FROM concurrency WHERE tenant = ? AND name = ?`, tenant, name)
	} else {
		_, err = s.db.ExecContext(ctx, `INSERT OR REPLACE INTO concurrency (tenant, name, reserved) VALUES (?,?,?)`, tenant, name, n)
	}
	if err != nil {
		return fmt.Errorf("storing concurrency of %s, %w", name, err)
	}
	return nil
}

// deleteAll deletes the function and everything of extraSchema that
// belongs to it, in one transaction.
func (s *store) deleteAll(ctx context.Context, tenant, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting function %s, %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, table := range []string{"functions", "versions", "aliases", "concurrency"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant = ? AND name = ?`, tenant, name); err != nil {
			return fmt.Errorf("deleting function %s, %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting function %s, %w", name, err)
	}
	return nil
}
