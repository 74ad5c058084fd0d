package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// withSession returns a store holding one user and one session, "s1".
func withSession(t *testing.T) *Store {
	t.Helper()
	s := openTemp(t)
	ctx := t.Context()
	u := &latch.User{ID: "u1", Email: "u1@example.com", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &latch.Session{ID: "s1", UserID: "u1", CreatedAt: t0, AuthTime: t0, LastUsedAt: t0,
		ExpiresAt: t0.Add(time.Hour), Generation: 1}
	if err := s.CreateSession(ctx, sess, []byte("s1/1")); err != nil {
		t.Fatal(err)
	}
	return s
}

// generation numbers the tokens insertToken stores.
var generation atomic.Int64

// insertToken returns a job function that records hash as a refresh token
// of session s1, at a generation of its own.
func insertToken(ctx context.Context, hash string) func(*sql.Tx) error {
	g := generation.Add(1) + 1
	return func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES (?, 's1', ?, 0)",
			[]byte(hash), g)
		return err
	}
}

// newJob returns a queued job, as do makes it.
func newJob(ctx context.Context, fn func(*sql.Tx) error) *job {
	return &job{ctx: ctx, fn: fn, res: make(chan result, 1)}
}

// stored reports whether hash is a stored refresh token, read through the
// store's read pool, which sees committed data only.
func stored(t *testing.T, s *Store, hash string) bool {
	t.Helper()
	_, err := s.RefreshToken(t.Context(), []byte(hash))
	switch {
	case err == nil:
		return true
	case errors.Is(err, latch.ErrNotFound):
		return false
	}
	t.Fatalf("RefreshToken(%s): %v", hash, err)
	return false
}

// A job that fails inside a batch is rolled back alone, and its error (or
// panic) reaches it alone; the other jobs of the batch are committed.
func TestBatchFailingJobIsolated(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	boom := errors.New("boom")
	jobs := []*job{
		newJob(ctx, insertToken(ctx, "a")),
		newJob(ctx, func(tx *sql.Tx) error {
			if err := insertToken(ctx, "b")(tx); err != nil {
				return err
			}
			return boom // after a write, which must be undone
		}),
		newJob(ctx, insertToken(ctx, "c")),
		newJob(ctx, insertToken(ctx, "a")), // duplicate key: a statement fails
		newJob(ctx, func(tx *sql.Tx) error {
			insertToken(ctx, "d")(tx)
			panic("job panics")
		}),
		newJob(ctx, insertToken(ctx, "e")),
	}
	s.wr.run(jobs)

	res := make([]result, len(jobs))
	for i, j := range jobs {
		res[i] = <-j.res
	}
	for _, i := range []int{0, 2, 5} {
		if res[i].err != nil || res[i].panicked {
			t.Errorf("job %d: %+v, want success", i, res[i])
		}
	}
	if !errors.Is(res[1].err, boom) {
		t.Errorf("job 1: %+v, want its own error", res[1])
	}
	if !conflict(res[3].err) {
		t.Errorf("job 3: %+v, want a uniqueness violation", res[3])
	}
	if !res[4].panicked || res[4].panicVal != "job panics" {
		t.Errorf("job 4: %+v, want its panic", res[4])
	}
	for hash, want := range map[string]bool{"a": true, "b": false, "c": true, "d": false, "e": true} {
		if got := stored(t, s, hash); got != want {
			t.Errorf("token %s stored = %v, want %v", hash, got, want)
		}
	}
}

// A conditional Rotate that loses inside a batch reports latch.ErrConflict
// to its caller alone, whichever batch it lands in.
func TestBatchRotateConflictIsolated(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 { // all race from generation 1: one wins
				errs[i] = s.Rotate(ctx, latch.Rotation{SessionID: "s1", FromGeneration: 1,
					NewHash: fmt.Appendf(nil, "r%d", i), At: t0})
			} else {
				errs[i] = s.wr.do(ctx, insertToken(ctx, fmt.Sprintf("x%d", i)))
			}
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case i%2 == 1 && err != nil:
			t.Errorf("insert %d: %v", i, err)
		case i%2 == 1 && !stored(t, s, fmt.Sprintf("x%d", i)):
			t.Errorf("insert %d succeeded but is not stored", i)
		case i%2 == 0 && err == nil:
			won++
		case i%2 == 0 && !errors.Is(err, latch.ErrConflict):
			t.Errorf("rotate %d: %v, want success or ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d rotations won, want 1", won)
	}
	sess, err := s.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if sess.Generation != 2 {
		t.Errorf("generation %d, want 2", sess.Generation)
	}
}

// No job of a batch is answered before the batch's commit, and nothing of
// it is visible to readers before then.
func TestBatchAnsweredAfterCommit(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	jobs := []*job{newJob(ctx, insertToken(ctx, "a")), newJob(ctx, insertToken(ctx, "b"))}
	commits := 0
	s.wr.commit = func(tx *sql.Tx) error {
		commits++
		for i, j := range jobs {
			if len(j.res) != 0 {
				t.Errorf("job %d answered before the commit", i)
			}
		}
		if stored(t, s, "a") || stored(t, s, "b") {
			t.Error("a job's write is visible before the commit")
		}
		return tx.Commit()
	}
	s.wr.run(jobs)
	for i, j := range jobs {
		if r := <-j.res; r.err != nil {
			t.Errorf("job %d: %v", i, r.err)
		}
	}
	if commits != 1 {
		t.Errorf("%d commits for one batch, want 1", commits)
	}
	if !stored(t, s, "a") || !stored(t, s, "b") {
		t.Error("the batch is not visible after its commit")
	}
}

// If the COMMIT of a batch fails (here: a deferred foreign key violation,
// which SQLite reports at COMMIT and which leaves the transaction open),
// every job of the batch gets the error, none is applied, and the next
// batch starts clean.
func TestBatchCommitFails(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	jobs := []*job{
		newJob(ctx, insertToken(ctx, "a")),
		newJob(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx,
				"INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES (CAST('orphan' AS BLOB), 'nope', 1, 0)")
			return err
		}),
		newJob(ctx, insertToken(ctx, "c")),
	}
	s.wr.run(jobs)
	for i, j := range jobs {
		r := <-j.res
		if r.err == nil || !strings.Contains(r.err.Error(), "commit") {
			t.Errorf("job %d: %v, want the commit's error", i, r.err)
		}
	}
	for _, hash := range []string{"a", "orphan", "c"} {
		if stored(t, s, hash) {
			t.Errorf("token %s stored by a batch whose commit failed", hash)
		}
	}
	// The writer goes on: the failed transaction did not stay open.
	if err := s.inTx(ctx, insertToken(ctx, "next")); err != nil {
		t.Fatalf("write after a failed commit: %v", err)
	}
	if !stored(t, s, "next") {
		t.Error("write after a failed commit not stored")
	}
}

// A simulated crash at COMMIT (the commit rolls back and fails) reaches
// every caller of the batch through the public path.
func TestBatchCommitCrash(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	crash := errors.New("disk gone")
	s.wr.commit = func(tx *sql.Tx) error {
		tx.Rollback()
		return crash
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.inTx(ctx, insertToken(ctx, fmt.Sprint(i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, crash) {
			t.Errorf("job %d: %v, want the commit's error", i, err)
		}
		if stored(t, s, fmt.Sprint(i)) {
			t.Errorf("job %d applied although its commit failed", i)
		}
	}
}

// block returns a job function that reports on started when it runs and
// then waits until release is closed, holding the writer.
func block(started chan<- struct{}, release <-chan struct{}) func(*sql.Tx) error {
	return func(*sql.Tx) error {
		close(started)
		<-release
		return nil
	}
}

// A job whose caller gives up before it has started is skipped, and the
// caller gets its context's error at once.
func TestCanceledJobSkipped(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	started, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() { holder <- s.inTx(ctx, block(started, release)) }()
	<-started // the writer is busy

	cctx, cancel := context.WithCancel(ctx)
	ran := atomic.Bool{}
	done := make(chan error, 1)
	go func() {
		done <- s.inTx(cctx, func(tx *sql.Tx) error {
			ran.Store(true)
			return insertToken(ctx, "skipped")(tx)
		})
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled job: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	// A later job has run, so the canceled one would have by now.
	if err := s.inTx(ctx, insertToken(ctx, "later")); err != nil {
		t.Fatal(err)
	}
	if ran.Load() || stored(t, s, "skipped") {
		t.Error("a job canceled before it started was run")
	}

	// The same when the writer has taken the job already: it skips it,
	// and runs its neighbours.
	ran.Store(false)
	gone := newJob(cctx, func(tx *sql.Tx) error {
		ran.Store(true)
		return insertToken(ctx, "skipped2")(tx)
	})
	next := newJob(ctx, insertToken(ctx, "next"))
	s.wr.run([]*job{gone, next})
	if r := <-next.res; r.err != nil {
		t.Errorf("neighbour of a canceled job: %v", r.err)
	}
	if ran.Load() || stored(t, s, "skipped2") {
		t.Error("the writer ran a job whose caller had given up")
	}
	if len(gone.res) != 0 || gone.state.Load() != abandoned {
		t.Error("the writer answered a skipped job or did not mark it abandoned")
	}
}

// A job that has started runs to its end even if its caller gives up, and
// the caller waits for that end.
func TestStartedJobCompletes(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	cctx, cancel := context.WithCancel(ctx)
	started, release := make(chan struct{}), make(chan struct{})
	finished := atomic.Bool{}
	done := make(chan error, 1)
	go func() {
		done <- s.inTx(cctx, func(tx *sql.Tx) error {
			block(started, release)(tx)
			finished.Store(true)
			return nil
		})
	}()
	<-started
	cancel()
	close(release)
	err := <-done
	if !finished.Load() {
		t.Error("caller returned before its started job ended")
	}
	if err != nil {
		t.Errorf("started job: %v, want its own outcome (success)", err)
	}
}

// A caller that hangs up while its statement runs does not undo the other
// jobs of its batch. The driver interrupts a statement whose context ends,
// and SQLite rolls back the whole transaction for an interrupted write;
// the write connection therefore never passes cancellation on.
func TestCancelMidStatementSparesBatch(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	running := make(chan struct{})
	go func() {
		<-running
		cancel()
	}()
	jobs := []*job{
		newJob(ctx, insertToken(ctx, "a")),
		newJob(cctx, func(tx *sql.Tx) error {
			close(running)
			// A write statement that takes a while: it deletes nothing.
			_, err := tx.ExecContext(cctx, `DELETE FROM events WHERE at = (
				WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)
				SELECT -sum(x) FROM c)`)
			return err
		}),
		newJob(ctx, insertToken(ctx, "c")),
	}
	s.wr.run(jobs)
	for i, j := range jobs {
		if r := <-j.res; i != 1 && r.err != nil {
			t.Errorf("job %d: %v, want success", i, r.err)
		}
	}
	if !stored(t, s, "a") || !stored(t, s, "c") {
		t.Error("a caller hanging up undid its neighbours in the batch")
	}
}

// A query whose prepared statement is still reading rows can run again on
// the same connection: the second runs unprepared instead of resetting
// the first's statement under it.
func TestStatementCacheBusy(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	for _, hash := range []string{"a", "b", "c"} {
		if err := s.inTx(ctx, insertToken(ctx, hash)); err != nil {
			t.Fatal(err)
		}
	}
	const q = "SELECT hash FROM refresh_tokens WHERE session_id = ? ORDER BY hash"
	read := func(query func(context.Context, string, ...any) (*sql.Rows, error)) {
		t.Helper()
		outer, err := query(ctx, q, "s1")
		if err != nil {
			t.Fatal(err)
		}
		defer outer.Close()
		var got []string
		for outer.Next() {
			var h []byte
			if err := outer.Scan(&h); err != nil {
				t.Fatal(err)
			}
			inner, err := query(ctx, q, "s1")
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
			if n != 4 {
				t.Errorf("inner query read %d rows, want 4", n)
			}
			got = append(got, string(h))
		}
		if err := outer.Err(); err != nil {
			t.Fatal(err)
		}
		if want := "a b c s1/1"; strings.Join(got, " ") != want {
			t.Errorf("outer query read %q, want %q", got, want)
		}
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read(c.QueryContext) // a reader
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		read(tx.QueryContext) // the writer
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The write connection leaves checkpoints to the checkpointer, which the
// writer asks for one every checkpointEvery committed jobs.
func TestCheckpointOffWritePath(t *testing.T) {
	s := withSession(t)
	ctx := t.Context()
	var auto, sync int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
	})
	if err != nil {
		t.Fatal(err)
	}
	if auto != 0 || sync != 2 {
		t.Errorf("write connection: wal_autocheckpoint = %d, synchronous = %d; want 0 and 2 (FULL)", auto, sync)
	}

	before := s.cp.runs.Load()
	for i := range checkpointEvery {
		if err := s.inTx(ctx, insertToken(ctx, fmt.Sprintf("k%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.cp.runs.Load() == before {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after %d committed jobs", checkpointEvery)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The WAL is back in the database file: a checkpoint finds nothing
	// left to copy beyond what the writer may have added since.
	var busy, log, done int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || done != log {
		t.Errorf("wal_checkpoint = %d %d %d, want a complete checkpoint", busy, log, done)
	}
}

// Close may be called twice, and writes after it fail.
func TestCloseTwice(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir()+"/latch.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	err = s.inTx(t.Context(), func(*sql.Tx) error { return nil })
	if !errors.Is(err, errClosed) {
		t.Errorf("write after Close: %v, want errClosed", err)
	}
}

// A caller whose context ends just after the writer took its job, but
// before the writer ran it, returns its context's error: the writer
// abandons such a job without an answer, so a caller waiting for one
// would wait forever.
func TestCanceledAfterTakenReturns(t *testing.T) {
	w := &writer{jobs: make(chan *job), quit: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		j := <-w.jobs // taken, as the loop takes it
		cancel()      // the caller gives up before the batch runs
		w.run([]*job{j})
	}()
	done := make(chan error, 1)
	go func() { done <- w.do(ctx, func(*sql.Tx) error { return nil }) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("do = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("do waits for an answer to a job the writer abandoned")
	}
}
