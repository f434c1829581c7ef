package stmtcache

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the plain driver, for the benchmark's baseline
)

func open(t testing.TB) (*sql.DB, *Connector) {
	t.Helper()
	c := NewConnector("file::memory:?_pragma=busy_timeout(1000)")
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1) // each connection to :memory: is its own database
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, c
}

func TestARepeatedQueryIsPreparedOnce(t *testing.T) {
	db, c := open(t)
	before := c.Prepared()
	for i := range 50 {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := db.QueryRow(`SELECT v FROM kv WHERE k = ?`, fmt.Sprint("k", i)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != i {
			t.Fatalf("k%d = %d", i, v)
		}
	}
	if got := c.Prepared() - before; got != 2 {
		t.Fatalf("50 inserts and 50 selects prepared %d statements, want 2", got)
	}
}

// The same query inside the loop over its own rows gets a statement of its
// own; both read what they should.
func TestNestedUseOfOneQuery(t *testing.T) {
	db, c := open(t)
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT k, v FROM kv WHERE v >= ? ORDER BY v`
	before := c.Prepared()
	outer, err := tx.Query(q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var k string
		var v int
		if err := outer.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.Query(q, v)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for inner.Next() {
			n++
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%d", k, n))
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "k0:3 k1:2 k2:1"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
	// The outer query's statement, cached, plus one per nested use, which
	// may not share it.
	if p := c.Prepared() - before; p != 4 {
		t.Fatalf("prepared %d statements, want 4 (the cached one and one per nested use)", p)
	}
	// Given back: the next use takes the cached statement again.
	before = c.Prepared()
	var n int
	if err := tx.QueryRow(q, 1).Scan(new(string), &n); err != nil {
		t.Fatal(err)
	}
	if p := c.Prepared() - before; p != 0 {
		t.Fatalf("a query after its rows closed prepared %d statements, want 0", p)
	}
}

// A failed statement leaves its cached statement usable, and errors come
// back as the driver gave them.
func TestErrorsLeaveTheStatementUsable(t *testing.T) {
	db, _ := open(t)
	const ins = `INSERT INTO kv (k, v) VALUES (?, ?)`
	if _, err := db.Exec(ins, "a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ins, "a", 2); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("duplicate key: %v, want a UNIQUE constraint error", err)
	}
	if _, err := db.Exec(ins, "b", 2); err != nil {
		t.Fatalf("the statement after a failed one: %v", err)
	}
	if _, err := db.Exec(`SELECT nope FROM kv`); err == nil {
		t.Fatal("a query that does not prepare succeeded")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2", n, err)
	}
}

// Named arguments bypass the cache (modernc's statements take none) and
// still work.
func TestNamedArguments(t *testing.T) {
	db, _ := open(t)
	if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (:k, :v)`, sql.Named("k", "x"), sql.Named("v", 7)); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRow(`SELECT v FROM kv WHERE k = :k`, sql.Named("k", "x")).Scan(&v); err != nil || v != 7 {
		t.Fatalf("v = %d, %v; want 7", v, err)
	}
}

// The cache holds at most MaxStatements; beyond it idle statements make
// room, and every query still answers.
func TestTheCacheIsBounded(t *testing.T) {
	db, _ := open(t)
	sc, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for i := range MaxStatements + 50 {
		var v int
		if err := sc.QueryRowContext(context.Background(), fmt.Sprintf("SELECT %d", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("SELECT %d = %d, %v", i, v, err)
		}
	}
	err = sc.Raw(func(dc any) error {
		if n := len(dc.(*conn).stmts); n != MaxStatements {
			return fmt.Errorf("the connection keeps %d statements, want %d", n, MaxStatements)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPointQuery compares a write transaction of the local cloud's
// shape (a select and an update by key) on the plain driver and through
// the cache. Run with
//
//	go test ./localcloud/stmtcache -run '^$' -bench . -benchtime 2s
func BenchmarkPointQuery(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			var db *sql.DB
			if cached {
				db, _ = open(b)
			} else {
				var err error
				db, err = sql.Open("sqlite", "file::memory:")
				if err != nil {
					b.Fatal(err)
				}
				db.SetMaxOpenConns(1)
				b.Cleanup(func() { _ = db.Close() })
				if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 100 {
				if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				k := fmt.Sprint("k", i%100)
				var v int
				if err := tx.QueryRow(`SELECT v FROM kv WHERE k = ? AND v >= ?`, k, 0).Scan(&v); err != nil {
					b.Fatal(err)
				}
				if _, err := tx.Exec(`UPDATE kv SET v = ? WHERE k = ?`, v+1, k); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
