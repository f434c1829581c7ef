package devserver

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" driver used for the pre-flight check
)

// ErrDatabaseLocked is returned by Start when another process holds the
// database file.
var ErrDatabaseLocked = errors.New("database file is in use by another process")

// fileLock is an exclusive flock on the database file. SQLite's own locks
// are per transaction; two Temporal servers on one file would both start and
// then corrupt each other's shard ownership, so gust holds this lock for the
// server's whole life.
type fileLock struct{ f *os.File }

func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// prepareDatabase locks and checks the database file, creates the schema in a
// new one, and registers the namespaces. On return without error s.lock is
// held (for file databases).
func (c Config) prepareDatabase(s *Server) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if c.DatabaseFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		// A random name keeps two in-memory servers in one process apart.
		conf.DatabaseName = "gust-" + strconv.FormatUint(rand.Uint64(), 36)
		return conf, c.createNamespaces(conf)
	}

	path := c.DatabaseFile
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening database file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrDatabaseLocked)
	}
	s.lock = &fileLock{f: f}
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading database file: %w", err)
	}
	conf.ConnectAttributes = map[string]string{"mode": "rwc", "busy_timeout": "5000"}
	conf.DatabaseName = path

	if info.Size() == 0 {
		// New database. If the schema fails half way, remove the file so the
		// next start does not mistake it for a real one. Only a file that was
		// empty when we found it is ever removed.
		if err := sqliteschema.SetupSchema(conf); err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("creating temporal schema in %s: %w", path, err)
		}
	} else if err := checkDatabase(path); err != nil {
		return nil, err
	}
	if err := c.createNamespaces(conf); err != nil {
		return nil, err
	}
	return conf, nil
}

// sqliteHeader opens every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// checkDatabase fails with a clear message when path is corrupt or is not a
// Temporal database, before the server gets a chance to panic on it.
//
// A crash in the middle of a write transaction leaves a hot rollback
// journal (path-journal) beside a database that is not corrupt: SQLite
// rolls the journal back on the next open, but only with write access. So
// a file that starts with SQLite's header and has a hot journal is opened
// read-write and SQLite recovers it; any other file is opened read-only.
// A file without the header is never opened for writing, so a foreign
// file is never changed.
func checkDatabase(path string) error {
	if err := checkHeader(path); err != nil {
		return err
	}
	mode := "ro"
	if hotJournal(path) {
		mode = "rw"
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode="+mode+"&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("opening database %s: %w", path, err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow("PRAGMA quick_check").Scan(&result); err != nil {
		return fmt.Errorf("database %s is corrupt: %w", path, err)
	}
	if result != "ok" {
		return fmt.Errorf("database %s is corrupt: %s", path, result)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('namespaces','executions','history_node')`).Scan(&n); err != nil {
		return fmt.Errorf("reading database %s: %w", path, err)
	}
	if n != 3 {
		return fmt.Errorf("database %s is not a temporal database (missing schema tables)", path)
	}
	return nil
}

// checkHeader reports a file that is not a SQLite database at all.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening database %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return fmt.Errorf("database %s is not a sqlite database", path)
	}
	return nil
}

// hotJournal reports whether a rollback journal that SQLite would roll
// back lies beside path: a non-empty path-journal whose header is not
// zeroed (SQLite zeroes or deletes it on commit).
func hotJournal(path string) bool {
	f, err := os.Open(path + "-journal")
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 8)
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return !bytes.Equal(head, make([]byte, 8))
}

func (c Config) createNamespaces(conf *config.SQL) error {
	nss := make([]*sqliteschema.NamespaceConfig, 0, len(c.Namespaces))
	for _, name := range c.Namespaces {
		ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, nil)
		if err != nil {
			return fmt.Errorf("namespace %q: %w", name, err)
		}
		nss = append(nss, ns)
	}
	if err := sqliteschema.CreateNamespaces(conf, nss...); err != nil {
		return fmt.Errorf("registering namespaces: %w", err)
	}
	return nil
}
