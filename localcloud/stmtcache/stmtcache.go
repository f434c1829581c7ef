// Package stmtcache opens SQLite (modernc.org/sqlite) databases whose
// connections keep their prepared statements by query text, so a query
// run again is not parsed again.
//
// database/sql prepares every Exec and Query that is not run through a
// *sql.Stmt, and modernc.org/sqlite parses the text each time: under load
// the local cloud spent about a tenth of its CPU in SQLite's parser (the
// same few dozen queries, each write transaction, over and over). Holding
// *sql.Stmt values at every call site would do as well, but a transaction
// must re-bind each of them (Tx.Stmt); caching in the connection keeps the
// call sites as they are.
//
// SQLite itself expires a prepared statement whose plan depends on a bound
// value each time that value is bound again, and parses it anew at its
// next step: a bound LIMIT or OFFSET, and a bound LIKE or GLOB pattern. The
// cache cannot save those parses; write such a limit into the text.
//
// Invariants: a cached statement is used by one call at a time (a query's
// statement stays taken until its rows are closed; a second use meanwhile,
// such as the same query nested inside the loop over the first's rows,
// prepares a statement of its own and finalizes it after). A connection
// keeps at most MaxStatements statements, and finalizes them when it
// closes.
package stmtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"

	"modernc.org/sqlite"
)

// MaxStatements bounds the statements one connection keeps. Queries built
// with a varying number of placeholders would otherwise grow the cache
// without end; when it is full, an idle statement makes room.
const MaxStatements = 256

// Connector opens connections of one data source name (modernc.org/sqlite's
// DSN syntax). Use it with sql.OpenDB.
type Connector struct {
	dsn  string
	base sqlite.Driver
	// prepared counts the statements prepared, cached or not.
	prepared atomic.Int64
}

// NewConnector returns a connector of dsn.
func NewConnector(dsn string) *Connector { return &Connector{dsn: dsn} }

// Open opens dsn as a *sql.DB whose connections cache their statements.
func Open(dsn string) *sql.DB { return sql.OpenDB(NewConnector(dsn)) }

// Prepared reports how many statements the connector's connections have
// prepared so far: what caching saves shows as a count that stops growing
// while the same queries run again.
func (c *Connector) Prepared() int64 { return c.prepared.Load() }

// Connect implements driver.Connector.
func (c *Connector) Connect(context.Context) (driver.Conn, error) {
	bc, err := c.base.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	b, ok := bc.(baseConn)
	if !ok {
		_ = bc.Close()
		return nil, fmt.Errorf("stmtcache: %T lacks the interfaces of a context-aware connection", bc)
	}
	return &conn{base: b, owner: c, stmts: map[string]*entry{}}, nil
}

// Driver implements driver.Connector.
func (c *Connector) Driver() driver.Driver { return &c.base }

// baseConn is what the wrapped driver's connections implement.
type baseConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// conn is one connection and its statements. database/sql never uses a
// connection from two goroutines at once, so it needs no lock.
type conn struct {
	base  baseConn
	owner *Connector
	stmts map[string]*entry
}

// entry is a cached statement; busy while a call or its rows use it.
type entry struct {
	stmt driver.Stmt
	busy bool
}

var (
	_ driver.ExecerContext  = (*conn)(nil)
	_ driver.QueryerContext = (*conn)(nil)
	_ driver.ConnBeginTx    = (*conn)(nil)
)

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares a statement the caller owns (sql.DB.Prepare):
// it is not cached.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.owner.prepared.Add(1)
	return c.base.PrepareContext(ctx, query)
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.base.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.base.BeginTx(ctx, opts)
}

func (c *conn) Ping(ctx context.Context) error         { return c.base.Ping(ctx) }
func (c *conn) ResetSession(ctx context.Context) error { return c.base.ResetSession(ctx) }
func (c *conn) IsValid() bool                          { return c.base.IsValid() }

// Close finalizes the cached statements, then closes the connection.
func (c *conn) Close() error {
	var errs []error
	for q, e := range c.stmts {
		errs = append(errs, e.stmt.Close())
		delete(c.stmts, q)
	}
	errs = append(errs, c.base.Close())
	return errors.Join(errs...)
}

// take returns a statement of query for one use and the function that
// gives it back: the cached one if it is free, else a new one, cached if
// there is room.
func (c *conn) take(ctx context.Context, query string) (driver.Stmt, func() error, error) {
	if e, ok := c.stmts[query]; ok && !e.busy {
		e.busy = true
		return e.stmt, func() error { e.busy = false; return nil }, nil
	}
	c.owner.prepared.Add(1)
	s, err := c.base.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := c.stmts[query]; ok || !c.makeRoom() {
		// Taken (a nested use), or no room: this one is for this use only.
		return s, s.Close, nil
	}
	e := &entry{stmt: s, busy: true}
	c.stmts[query] = e
	return s, func() error { e.busy = false; return nil }, nil
}

// makeRoom reports whether the cache can take one more statement,
// finalizing an idle one if it is full.
func (c *conn) makeRoom() bool {
	if len(c.stmts) < MaxStatements {
		return true
	}
	for q, e := range c.stmts { // any idle one will do
		if !e.busy {
			_ = e.stmt.Close()
			delete(c.stmts, q)
			return true
		}
	}
	return false
}

// values turns positional arguments into the driver's old-style values. The
// statement interface modernc.org/sqlite implements takes no names, so a
// call with a named argument goes to the connection uncached.
func values(args []driver.NamedValue) ([]driver.Value, bool) {
	vs := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" || a.Ordinal != i+1 {
			return nil, false
		}
		vs[i] = a.Value
	}
	return vs, true
}

// ExecContext runs query on its cached statement. The statement interface
// takes no context, so a context already done stops the call before it
// starts but not during it; the local cloud's statements are short.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	vs, ok := values(args)
	if !ok {
		c.owner.prepared.Add(1) // the driver prepares it
		return c.base.ExecContext(ctx, query, args)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, give, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := s.Exec(vs) //nolint:staticcheck // modernc.org/sqlite's statements implement no StmtExecContext
	return res, errors.Join(err, give())
}

// QueryContext runs query on its cached statement, which stays taken until
// the rows are closed.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	vs, ok := values(args)
	if !ok {
		c.owner.prepared.Add(1) // the driver prepares it
		return c.base.QueryContext(ctx, query, args)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, give, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	r, err := s.Query(vs) //nolint:staticcheck // modernc.org/sqlite's statements implement no StmtQueryContext
	if err != nil {
		return nil, errors.Join(err, give())
	}
	return &rows{Rows: r, give: give}, nil
}

// rows gives its statement back when closed.
type rows struct {
	driver.Rows
	give func() error
}

func (r *rows) Close() error {
	err := r.Rows.Close()
	if r.give != nil {
		err = errors.Join(err, r.give())
		r.give = nil
	}
	return err
}
