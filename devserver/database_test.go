package devserver

import (
	"bytes"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary a process that crashes in the middle of
// a write transaction (see TestMain).
const childEnv = "GUST_TEST_HOT_JOURNAL_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		crashMidTransaction(path)
		return
	}
	os.Exit(m.Run())
}

// crashMidTransaction rewrites every row of path's data table in one
// transaction with a cache too small to hold it, so SQLite writes changed
// pages to the database file under a rollback journal; then it says so on
// stdout and waits to be killed.
func crashMidTransaction(path string) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(DELETE)&_pragma=cache_size(8)")
	if err != nil {
		panic(err)
	}
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		panic(err)
	}
	if _, err := tx.Exec(`UPDATE data SET v = randomblob(900)`); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("in transaction\n")
	time.Sleep(time.Hour)
}

// newTemporalLikeDB makes a SQLite database with the tables checkDatabase
// looks for and a data table of n rows whose v is 'before'.
func newTemporalLikeDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "temporal.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(DELETE)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE namespaces (id BLOB)`,
		`CREATE TABLE executions (id BLOB)`,
		`CREATE TABLE history_node (id BLOB)`,
		`CREATE TABLE data (k INTEGER PRIMARY KEY, v BLOB)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ` + strconv.Itoa(n) + `) INSERT INTO data SELECT i, 'before' FROM n`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path
}

// TestCheckDatabaseRecoversHotJournal: after a kill -9 in the middle of a
// write transaction, the start-up check lets SQLite roll the hot journal
// back, instead of calling the database corrupt (a read-only open cannot
// roll back: "attempt to write a readonly database"), and the data is as
// it was before the transaction.
func TestCheckDatabaseRecoversHotJournal(t *testing.T) {
	path := newTemporalLikeDB(t, 2000)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+path)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("in transaction\n"))
	if _, err := out.Read(line); err != nil || string(line) != "in transaction\n" {
		_ = child.Process.Kill()
		t.Fatalf("child did not reach its transaction: %q %v", line, err)
	}
	_ = child.Process.Kill() // SIGKILL: no rollback, no cleanup
	_ = child.Wait()
	if !hotJournal(path) {
		t.Fatal("the crash left no hot journal; the test would prove nothing")
	}

	if err := checkDatabase(path); err != nil {
		t.Fatalf("checkDatabase after a crash: %v", err)
	}
	if _, err := os.Stat(path + "-journal"); !os.IsNotExist(err) {
		t.Errorf("the journal is still there after recovery: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, before int
	if err := db.QueryRow(`SELECT count(*), sum(v = 'before') FROM data`).Scan(&rows, &before); err != nil {
		t.Fatal(err)
	}
	if rows != 2000 || before != 2000 {
		t.Errorf("after recovery: %d rows, %d as before the transaction; want 2000 and 2000", rows, before)
	}
}

// TestCheckDatabaseNeverWritesForeignFiles: a file that is not a SQLite
// database is reported and left byte for byte as it was, even with a
// journal-like file beside it; a SQLite database without Temporal's
// tables is reported as such.
func TestCheckDatabaseNeverWritesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "temporal.db")
	foreign := bytes.Repeat([]byte("my precious notes\n"), 300)
	if err := os.WriteFile(path, foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-journal", bytes.Repeat([]byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7}, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	err := checkDatabase(path)
	if err == nil || !strings.Contains(err.Error(), "not a sqlite database") {
		t.Fatalf("checkDatabase on a foreign file: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, foreign) {
		t.Error("checkDatabase changed a foreign file")
	}

	plain := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", "file:"+plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (t TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := checkDatabase(plain); err == nil || !strings.Contains(err.Error(), "not a temporal database") {
		t.Errorf("checkDatabase on a non-temporal sqlite database: %v", err)
	}

	if err := checkDatabase(newTemporalLikeDB(t, 10)); err != nil {
		t.Errorf("checkDatabase on a healthy database: %v", err)
	}
}

// TestEmptyDatabaseFileIsNotTakenOver: an empty file at the database's
// path is not gust's (gust creates a database whole, by linking it into
// place), so it is refused and left alone.
func TestEmptyDatabaseFileIsNotTakenOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "temporal.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	_, err := Config{DatabaseFile: path, Namespaces: []string{"default"}}.prepareDatabase(s)
	s.lock.release()
	if err == nil || !strings.Contains(err.Error(), "empty file that gust did not create") {
		t.Fatalf("prepareDatabase on an empty file: %v", err)
	}
	if info, err := os.Stat(path); err != nil || info.Size() != 0 {
		t.Errorf("the empty file was changed: %v %v", info, err)
	}
}

// TestNewDatabaseIsCreatedWhole: a new database appears at its path only
// with its schema, and a side file a crash left half written is
// rewritten, not used.
func TestNewDatabaseIsCreatedWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "temporal.db")
	init := filepath.Join(dir, ".temporal.db.init")
	if err := os.WriteFile(init, []byte("half a schema, then kill -9"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	_, err := Config{DatabaseFile: path, Namespaces: []string{"default"}}.prepareDatabase(s)
	if err != nil {
		t.Fatalf("prepareDatabase on a new path: %v", err)
	}
	if _, err := os.Stat(init); !os.IsNotExist(err) {
		t.Errorf("the side file is still there: %v", err)
	}
	if err := checkDatabase(path); err != nil {
		t.Errorf("the new database: %v", err)
	}
	// The lock is held on the database itself: a second start is refused.
	if _, err := (Config{DatabaseFile: path, Namespaces: []string{"default"}}).prepareDatabase(&Server{}); !errors.Is(err, ErrDatabaseLocked) {
		t.Errorf("a second prepareDatabase while the first holds it: %v", err)
	}
	s.lock.release()
	s2 := &Server{}
	if _, err := (Config{DatabaseFile: path, Namespaces: []string{"default"}}).prepareDatabase(s2); err != nil {
		t.Errorf("reopening the database: %v", err)
	}
	s2.lock.release()
}
