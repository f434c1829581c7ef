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
	conf.ConnectAttributes = map[string]string{"mode": "rwc", "busy_timeout": "5000"}
	conf.DatabaseName = path
	lock, err := lockExisting(path)
	if errors.Is(err, os.ErrNotExist) {
		lock, err = createDatabase(conf)
	}
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := checkDatabase(path); err != nil {
		return nil, err
	}
	if err := c.createNamespaces(conf); err != nil {
		return nil, err
	}
	return conf, nil
}

// sqliteHeader opens every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// lockExisting locks the database file at path, which must exist. An
// empty file is refused: gust never leaves one (see createDatabase), so it
// is someone else's, and taking it over could hide a mistake in the path.
func lockExisting(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("opening database file: %w", err)
	}
	lock, err := flock(f, path)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("reading database file: %w", err)
	}
	if info.Size() == 0 {
		lock.release()
		return nil, fmt.Errorf("database %s is an empty file that gust did not create; remove it, or choose another state dir", path)
	}
	return lock, nil
}

// createDatabase makes a new database at conf.DatabaseName, whole or not
// at all: the schema is written to a locked side file that is linked into
// place only when complete, so a crash half way never leaves a file at the
// database's path. A side file a crash left is rewritten by the next start.
func createDatabase(conf *config.SQL) (*fileLock, error) {
	path := conf.DatabaseName
	init := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".init")
	f, err := os.OpenFile(init, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating database file: %w", err)
	}
	lock, err := flock(f, path)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		lock.release()
		return nil, fmt.Errorf("creating database file: %w", err)
	}
	initConf := *conf
	initConf.DatabaseName = init
	if err := sqliteschema.SetupSchema(&initConf); err != nil {
		lock.release()
		_ = os.Remove(init)
		return nil, fmt.Errorf("creating temporal schema in %s: %w", path, err)
	}
	// Link, not rename: it fails rather than replace a database another
	// process made at path meanwhile.
	if err := os.Link(init, path); err != nil {
		lock.release()
		return nil, fmt.Errorf("creating database %s: %w", path, err)
	}
	_ = os.Remove(init)
	return lock, nil
}

// flock takes the exclusive lock on f, or closes it and fails.
func flock(f *os.File, path string) (*fileLock, error) {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrDatabaseLocked)
	}
	return &fileLock{f: f}, nil
}

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
