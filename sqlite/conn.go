package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// connector wraps the driver's connector to give every connection a cache
// of prepared statements and, for the write connection, to run every
// statement to its end whatever its caller's context says.
//
// The driver prepares (parses and compiles) a statement anew each time it
// is executed: on a refresh that was a fifth of the server's CPU time, in
// the writer's critical path as much as in the readers. A connection of
// this package keeps the statements it executes prepared, and only resets
// and binds them again.
//
// On the write connection (detach), the driver would answer a canceled
// context by interrupting the statement, and SQLite answers an interrupted
// write inside a transaction by rolling back the whole transaction: with
// jobs batched (see writer), one caller hanging up would undo its
// neighbours' work. database/sql still refuses to start a statement for a
// context that has ended, which fails that job alone.
type connector struct {
	driver.Connector
	detach bool
}

// Connect implements driver.Connector.
func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	dc, ok := cn.(driverConn)
	if !ok {
		cn.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks context methods", cn)
	}
	return &conn{driverConn: dc, detach: c.detach, stmts: make(map[string]*cached)}, nil
}

// driverConn is what database/sql uses of the driver's connections.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.SessionResetter
	driver.Validator
}

// maxCached bounds the statements a connection keeps prepared. Latch
// executes a few dozen distinct statements; any beyond are executed
// unprepared.
const maxCached = 64

// conn is a driver connection with a cache of prepared statements.
//
// database/sql uses a connection from one goroutine at a time (and closes
// rows under the same lock), so conn needs no lock of its own. A statement
// is busy while rows read from it are open: a second query with the same
// text meanwhile is executed unprepared.
type conn struct {
	driverConn
	detach bool
	stmts  map[string]*cached
}

// cached is a prepared statement of a conn.
type cached struct {
	st   driverStmt
	busy bool // rows read from st are open
}

// driverStmt is what database/sql uses of the driver's statements.
type driverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// ctx returns ctx, without its cancellation if c is detached.
func (c *conn) ctx(ctx context.Context) context.Context {
	if c.detach {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// stmt returns the prepared statement for query, preparing it if the cache
// has room, or nil if query is to be executed unprepared.
func (c *conn) stmt(ctx context.Context, query string) (*cached, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxCached {
		return nil, nil
	}
	st, err := c.driverConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	ds, ok := st.(driverStmt)
	if !ok {
		st.Close()
		return nil, nil
	}
	s := &cached{st: ds}
	c.stmts[query] = s
	return s, nil
}

// ExecContext implements driver.ExecerContext.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ctx = c.ctx(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.driverConn.ExecContext(ctx, query, args)
	}
	// The driver resets the statement before it returns.
	return s.st.ExecContext(ctx, args)
}

// QueryContext implements driver.QueryerContext.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ctx = c.ctx(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.driverConn.QueryContext(ctx, query, args)
	}
	r, err := s.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err // the driver has reset the statement
	}
	s.busy = true
	return &rows{Rows: r, s: s}, nil
}

// BeginTx implements driver.ConnBeginTx.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.driverConn.BeginTx(c.ctx(ctx), opts)
}

// PrepareContext implements driver.ConnPrepareContext. Statements that
// database/sql prepares explicitly are not cached; on a detached
// connection they are detached too.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.driverConn.PrepareContext(c.ctx(ctx), query)
	if err != nil || !c.detach {
		return st, err
	}
	if ds, ok := st.(driverStmt); ok {
		return detachedStmt{ds}, nil
	}
	return st, nil
}

// Close closes the prepared statements and the connection.
func (c *conn) Close() error {
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.driverConn.Close())...)
}

// rows are rows read from a cached statement, which they release on Close.
type rows struct {
	driver.Rows
	s *cached
}

// Close implements driver.Rows; the driver resets the statement.
func (r *rows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}

// detachedStmt passes its methods' contexts on without their cancellation.
type detachedStmt struct{ driverStmt }

func (s detachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.driverStmt.ExecContext(context.WithoutCancel(ctx), args)
}

func (s detachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.driverStmt.QueryContext(context.WithoutCancel(ctx), args)
}
