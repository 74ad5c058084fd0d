package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxBatch bounds the number of write jobs committed together. A batch
// holds SQLite's write lock for the time of all its jobs, so the bound
// keeps a batch short while letting one fsync serve many writers.
const maxBatch = 32

// errClosed is returned for writes attempted after Close.
var errClosed = errors.New("sqlite: store closed")

// writer runs the write transactions of a Store on its one write
// connection, committing the jobs queued at the same time together.
//
// A single goroutine takes a queued job, then whatever else is queued at
// that moment (up to maxBatch; it never waits to fill a batch), and runs
// them all inside one BEGIN IMMEDIATE … COMMIT, each job in a SAVEPOINT of
// its own: a job that fails is rolled back to its savepoint and its error
// reaches its caller alone, while its neighbours go on. One COMMIT, and so
// one fsync, then makes the whole batch durable. Nothing is acknowledged
// before that: a caller gets its result once the commit that includes its
// job has returned, and if the commit fails every job of the batch gets the
// error and none of them is applied.
//
// Under load this turns a queue of transactions, each paying BEGIN, COMMIT
// and a WAL sync of its own, into a few batches paying them once; without
// load a batch has one job and the cost is that of a plain transaction plus
// a savepoint.
type writer struct {
	db        *sql.DB   // the write connection (a pool of one)
	jobs      chan *job // unbuffered: a queued job waits in its sender
	quit      chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed when loop has returned
	// commit commits a batch: (*sql.Tx).Commit, replaced by tests to
	// look at a batch before its commit or to make the commit fail.
	commit func(*sql.Tx) error
	// checkpoint asks for a checkpoint; see checkpointer.
	checkpoint func()
	committed  int // jobs committed since the last checkpoint request
}

// Job states, see job.state.
const (
	queued int32 = iota
	started
	abandoned
)

// job is one write transaction waiting for the writer.
type job struct {
	ctx context.Context
	fn  func(*sql.Tx) error
	// state moves from queued to started (by the writer, which will then
	// answer on res) or to abandoned (by whichever side first sees ctx
	// done; the job is then skipped).
	state atomic.Int32
	res   chan result // buffered: the writer never blocks on a caller
}

// result is the outcome of a job: its error, or the value it panicked with.
type result struct {
	err      error
	panicked bool
	panicVal any
}

// newWriter starts the writer goroutine on db, which must be limited to a
// single connection. The writer calls checkpoint after every
// checkpointEvery committed jobs.
func newWriter(db *sql.DB, checkpoint func()) *writer {
	w := &writer{
		db:         db,
		jobs:       make(chan *job),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		commit:     (*sql.Tx).Commit,
		checkpoint: checkpoint,
	}
	go w.loop()
	return w
}

// close stops the writer once its current batch is done. Writes attempted
// afterwards fail with errClosed.
func (w *writer) close() {
	w.closeOnce.Do(func() { close(w.quit) })
	<-w.done
}

// do runs fn in a write transaction and returns fn's error or the commit's.
// fn is run by the writer goroutine, possibly together with other jobs in
// one transaction: it must do nothing but statements on tx, and must close
// any rows it opens. If ctx ends before the job has started, do returns
// ctx.Err() and fn does not run; once started, the job runs to its end and
// do waits for the outcome. A panic in fn is rolled back and re-raised in
// the caller's goroutine.
func (w *writer) do(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, fn: fn, res: make(chan result, 1)}
	select {
	case w.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errClosed
	}
	var r result
	select {
	case r = <-j.res:
	case <-ctx.Done():
		// Abandoned by us now, or by the writer already (it took the job
		// after ctx ended and skipped it, answering nothing): return.
		if j.state.CompareAndSwap(queued, abandoned) || j.state.Load() == abandoned {
			return ctx.Err()
		}
		r = <-j.res // started: it completes, and so do we
	}
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// loop takes batches of queued jobs and runs them until quit is closed.
func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*job, 0, maxBatch)
	for {
		select {
		case j := <-w.jobs:
			batch = append(batch[:0], j)
		case <-w.quit:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-w.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		w.run(batch)
		clear(batch)
	}
}

// run runs the jobs of batch that have not been abandoned in one
// transaction, each in a savepoint, commits, and answers every job it ran.
func (w *writer) run(batch []*job) {
	jobs := make([]*job, 0, len(batch))
	for _, j := range batch {
		if j.ctx.Err() != nil {
			j.state.CompareAndSwap(queued, abandoned)
		}
		if j.state.CompareAndSwap(queued, started) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return
	}
	res := make([]result, len(jobs))
	err := w.runTx(jobs, res)
	if err == nil {
		if w.committed += len(jobs); w.committed >= checkpointEvery {
			w.committed = 0
			w.checkpoint()
		}
	} else {
		// Nothing of the batch is applied: a job that succeeded on its
		// own gets the transaction's error, a job that failed keeps its
		// own.
		for i := range res {
			if res[i].err == nil && !res[i].panicked {
				res[i].err = err
			}
		}
	}
	for i, j := range jobs {
		j.res <- res[i]
	}
}

// bg is the context of the writer's own statements (BEGIN, SAVEPOINT,
// COMMIT): they must not be cut short by any one caller.
var bg = context.Background()

// runTx runs jobs in one transaction and records each job's own outcome in
// res. It returns an error, having rolled the transaction back, if the
// transaction as a whole could not be committed.
func (w *writer) runTx(jobs []*job, res []result) error {
	tx, err := w.db.BeginTx(bg, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for i, j := range jobs {
		if _, err := tx.ExecContext(bg, "SAVEPOINT job"); err != nil {
			tx.Rollback()
			return fmt.Errorf("savepoint: %w", err)
		}
		res[i] = call(j.fn, tx)
		if res[i].err != nil || res[i].panicked {
			// An error that ended the whole transaction (SQLite rolls
			// back on some I/O errors) makes this fail too, and the
			// batch is abandoned rather than committed in part.
			if _, err := tx.ExecContext(bg, "ROLLBACK TO job"); err != nil {
				tx.Rollback()
				return fmt.Errorf("roll back a failed job: %w", err)
			}
		}
		if _, err := tx.ExecContext(bg, "RELEASE job"); err != nil {
			tx.Rollback()
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	if err := w.commit(tx); err != nil {
		// A COMMIT that fails (a deferred constraint, a busy or full
		// disk) can leave SQLite's transaction open; the driver then
		// rolls it back, so that the next batch starts clean
		// (TestBatchCommitFails holds it to that).
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// call runs fn on tx and returns its error, or the value it panicked with.
func call(fn func(*sql.Tx) error, tx *sql.Tx) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{panicked: true, panicVal: p}
		}
	}()
	return result{err: fn(tx)}
}
