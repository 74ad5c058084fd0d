package sqlite

import (
	"database/sql"
	"sync"
	"sync/atomic"
)

// checkpointEvery is the number of committed write jobs after which the
// writer asks for a checkpoint. SQLite's own default, every 1000 pages of
// WAL, comes to a few hundred refreshes.
const checkpointEvery = 500

// checkpointer copies the WAL back into the database file, off the write
// path.
//
// SQLite checkpoints by default in the connection that commits, once the
// WAL has grown past 1000 pages: the writer then copies the pages and
// syncs the database file while every queued writer waits, a stall of
// several WAL syncs at a time. The write connection therefore has
// wal_autocheckpoint off, and the writer hands checkpoints to this
// goroutine, which runs them as PASSIVE checkpoints on a connection of the
// read pool: they take no write lock, so writes and reads go on meanwhile.
// A checkpoint that cannot finish (a reader still needs old pages) is
// completed by a later one, as with SQLite's own.
type checkpointer struct {
	db        *sql.DB
	kick      chan struct{} // buffered: requests coalesce
	quit      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	runs      atomic.Int64 // checkpoints attempted, for tests
}

// newCheckpointer starts a checkpointer on db.
func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{
		db:   db,
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go c.loop()
	return c
}

// request asks for a checkpoint soon, without waiting for it.
func (c *checkpointer) request() {
	select {
	case c.kick <- struct{}{}:
	default: // one is pending already
	}
}

// close stops the checkpointer once a checkpoint in progress is done.
func (c *checkpointer) close() {
	c.closeOnce.Do(func() { close(c.quit) })
	<-c.done
}

func (c *checkpointer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		// An error (say, a busy lock) is retried at the next request;
		// until then the WAL is only longer, nothing is lost.
		c.db.ExecContext(bg, "PRAGMA wal_checkpoint(PASSIVE)")
		c.runs.Add(1)
	}
}
