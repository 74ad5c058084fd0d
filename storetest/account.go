package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// newAccountToken returns a token of the purpose for alice@example.com,
// created at base and valid for 30 minutes.
func newAccountToken(name, purpose, userID string) *latch.AccountToken {
	return &latch.AccountToken{
		Hash: hash(name), Purpose: purpose, UserID: userID, Email: userID + "@example.com",
		CreatedAt: base, ExpiresAt: base.Add(30 * time.Minute),
	}
}

// testAccountTokens: a token is consumed once, only for its purpose, only
// before it expires; its email is enqueued in the same call.
func testAccountTokens(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")

	msg := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: base, NotBefore: base,
		Payload: latch.EmailMessage{To: "alice@example.com", Template: "reset_password"}.Payload()}
	reset := newAccountToken("reset", latch.PurposeResetPassword, "alice")
	if err := s.CreateAccountToken(ctx, reset, msg); err != nil {
		t.Fatalf("CreateAccountToken: %v", err)
	}
	if msg.ID == 0 {
		t.Error("CreateAccountToken did not set the enqueued message's ID")
	}
	claimed, err := s.ClaimOutbox(ctx, "test", base, base.Add(time.Minute), 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != msg.ID || claimed[0].Kind != latch.OutboxEmail {
		t.Fatalf("ClaimOutbox after CreateAccountToken: %v, %v; want the one email", claimed, err)
	}
	wantErr(t, "CreateAccountToken(duplicate hash)", s.CreateAccountToken(ctx, newAccountToken("reset", latch.PurposeVerifyEmail, "alice"), nil), latch.ErrConflict)
	wantErr(t, "CreateAccountToken(unknown user)", s.CreateAccountToken(ctx, newAccountToken("x", latch.PurposeVerifyEmail, "nobody"), nil), latch.ErrNotFound)

	// Another purpose does not consume it.
	_, err = s.ConsumeAccountToken(ctx, reset.Hash, latch.PurposeVerifyEmail, base.Add(time.Minute))
	wantErr(t, "ConsumeAccountToken(other purpose)", err, latch.ErrNotFound)
	_, err = s.ConsumeAccountToken(ctx, hash("unknown"), latch.PurposeResetPassword, base.Add(time.Minute))
	wantErr(t, "ConsumeAccountToken(unknown)", err, latch.ErrNotFound)

	// Reading does not spend it; another purpose reads nothing.
	if got, err := s.AccountToken(ctx, reset.Hash, latch.PurposeResetPassword, base.Add(time.Minute)); err != nil || got.UserID != "alice" || !got.UsedAt.IsZero() {
		t.Errorf("AccountToken = %+v, %v; want alice's unused token", got, err)
	}
	_, err = s.AccountToken(ctx, reset.Hash, latch.PurposeVerifyEmail, base.Add(time.Minute))
	wantErr(t, "AccountToken(other purpose)", err, latch.ErrNotFound)
	_, err = s.AccountToken(ctx, reset.Hash, latch.PurposeResetPassword, reset.ExpiresAt)
	wantErr(t, "AccountToken(expired)", err, latch.ErrNotFound)

	at := base.Add(time.Minute)
	got, err := s.ConsumeAccountToken(ctx, reset.Hash, latch.PurposeResetPassword, at)
	if err != nil {
		t.Fatalf("ConsumeAccountToken: %v", err)
	}
	want := *reset
	want.UsedAt = at
	checkEqual(t, "consumed token", got, &want)
	_, err = s.ConsumeAccountToken(ctx, reset.Hash, latch.PurposeResetPassword, at.Add(time.Second))
	wantErr(t, "ConsumeAccountToken(used)", err, latch.ErrNotFound)
	_, err = s.AccountToken(ctx, reset.Hash, latch.PurposeResetPassword, at.Add(time.Second))
	wantErr(t, "AccountToken(used)", err, latch.ErrNotFound)

	// Retiring ends the user's other links of that purpose, and only those.
	mustUser(t, s, "bob")
	other1 := newAccountToken("other1", latch.PurposeResetPassword, "alice")
	other2 := newAccountToken("other2", latch.PurposeResetPassword, "alice")
	keepVerify := newAccountToken("keep-verify", latch.PurposeVerifyEmail, "alice")
	bobs := newAccountToken("bobs", latch.PurposeResetPassword, "bob")
	for _, tok := range []*latch.AccountToken{other1, other2, keepVerify, bobs} {
		if err := s.CreateAccountToken(ctx, tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.RetireAccountTokens(ctx, "alice", latch.PurposeResetPassword, at); err != nil || n != 2 {
		t.Errorf("RetireAccountTokens = %d, %v; want 2 (the used one is not counted)", n, err)
	}
	for _, tok := range []*latch.AccountToken{other1, other2} {
		_, err = s.ConsumeAccountToken(ctx, tok.Hash, latch.PurposeResetPassword, at)
		wantErr(t, "ConsumeAccountToken(retired)", err, latch.ErrNotFound)
	}
	if _, err := s.ConsumeAccountToken(ctx, keepVerify.Hash, latch.PurposeVerifyEmail, at); err != nil {
		t.Errorf("retiring reset links spent a verification link: %v", err)
	}
	if _, err := s.ConsumeAccountToken(ctx, bobs.Hash, latch.PurposeResetPassword, at); err != nil {
		t.Errorf("retiring alice's links spent bob's: %v", err)
	}

	// Expired: at ExpiresAt it is gone.
	verify := newAccountToken("verify", latch.PurposeVerifyEmail, "alice")
	if err := s.CreateAccountToken(ctx, verify, nil); err != nil {
		t.Fatalf("CreateAccountToken(verify): %v", err)
	}
	_, err = s.ConsumeAccountToken(ctx, verify.Hash, latch.PurposeVerifyEmail, verify.ExpiresAt)
	wantErr(t, "ConsumeAccountToken(expired)", err, latch.ErrNotFound)
	if _, err := s.ConsumeAccountToken(ctx, verify.Hash, latch.PurposeVerifyEmail, verify.ExpiresAt.Add(-time.Microsecond)); err != nil {
		t.Errorf("ConsumeAccountToken just before expiry: %v", err)
	}

	// Prune removes expired tokens: a fresh one expiring later survives.
	late := newAccountToken("late", latch.PurposeVerifyEmail, "alice")
	late.ExpiresAt = base.Add(2 * time.Hour)
	if err := s.CreateAccountToken(ctx, late, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(ctx, base.Add(time.Hour), time.Hour); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if err := s.CreateAccountToken(ctx, newAccountToken("verify", latch.PurposeVerifyEmail, "alice"), nil); err != nil {
		t.Errorf("the expired token's hash is still taken after Prune: %v", err)
	}
	if _, err := s.ConsumeAccountToken(ctx, late.Hash, latch.PurposeVerifyEmail, base.Add(time.Hour)); err != nil {
		t.Errorf("Prune removed a token that had not expired: %v", err)
	}
}

// testAccountTokenConsumeConcurrent: of many concurrent consumers of one
// token exactly one wins.
func testAccountTokenConsumeConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	tok := newAccountToken("reset", latch.PurposeResetPassword, "alice")
	if err := s.CreateAccountToken(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.ConsumeAccountToken(ctx, tok.Hash, latch.PurposeResetPassword, base.Add(time.Duration(i+1)*time.Second))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of %d concurrent consumers won, want exactly 1", wins, n)
	}
	for _, err := range errs {
		wantErr(t, "losing consumer", err, latch.ErrNotFound)
	}
}

// testAccountStates: verifying an email holds only for the current
// address and keeps its first time; SetEmail clears it; locks and
// conditional unlocks.
func testAccountStates(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute)

	wantErr(t, "VerifyEmail(old address)", s.VerifyEmail(ctx, "alice", "old@example.com", t1), latch.ErrNotFound)
	wantErr(t, "VerifyEmail(unknown user)", s.VerifyEmail(ctx, "nobody", "nobody@example.com", t1), latch.ErrNotFound)
	if err := s.VerifyEmail(ctx, "alice", "alice@example.com", t1); err != nil {
		t.Fatalf("VerifyEmail: %v", err)
	}
	if err := s.VerifyEmail(ctx, "alice", "alice@example.com", t2); err != nil {
		t.Fatalf("VerifyEmail again: %v", err)
	}
	u, err := s.UserByID(ctx, "alice")
	if err != nil || !u.EmailVerifiedAt.Equal(t1) {
		t.Fatalf("after VerifyEmail: %+v, %v; want EmailVerifiedAt %v", u, err, t1)
	}
	if b, _ := s.UserByID(ctx, "bob"); b == nil || b.EmailVerified() {
		t.Errorf("verifying alice verified bob: %+v", b)
	}
	if err := s.SetEmail(ctx, "alice", "alice@example.com", "alice2@example.com", t2); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, "alice"); u == nil || u.EmailVerified() {
		t.Errorf("a changed email is still verified: %+v", u)
	}

	// Locks.
	if err := s.LockUser(ctx, "alice", latch.LockReasonResetRequired, t1); err != nil {
		t.Fatalf("LockUser: %v", err)
	}
	if err := s.LockUser(ctx, "alice", latch.LockReasonAdmin, t2); err != nil {
		t.Fatalf("LockUser again: %v", err)
	}
	u, _ = s.UserByEmail(ctx, "alice2@example.com")
	if u == nil || !u.LockedAt.Equal(t1) || u.LockReason != latch.LockReasonAdmin {
		t.Fatalf("after two locks: %+v; want LockedAt %v, reason admin", u, t1)
	}
	wantErr(t, "UnlockUser(other reason)", s.UnlockUser(ctx, "alice", latch.LockReasonResetRequired, t2), latch.ErrConflict)
	if u, _ := s.UserByID(ctx, "alice"); u == nil || !u.Locked() {
		t.Fatalf("a refused unlock unlocked: %+v", u)
	}
	if err := s.UnlockUser(ctx, "alice", latch.LockReasonAdmin, t2); err != nil {
		t.Fatalf("UnlockUser: %v", err)
	}
	if u, _ := s.UserByID(ctx, "alice"); u == nil || u.Locked() || u.LockReason != "" {
		t.Fatalf("after UnlockUser: %+v", u)
	}
	if err := s.UnlockUser(ctx, "alice", latch.LockReasonAdmin, t2); err != nil {
		t.Errorf("UnlockUser(unlocked): %v", err)
	}
	if err := s.LockUser(ctx, "alice", latch.LockReasonAdmin, t2); err != nil {
		t.Fatal(err)
	}
	// A lock a reset may lift never replaces an operator's.
	if err := s.LockUser(ctx, "alice", latch.LockReasonResetRequired, t2); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, "alice"); u == nil || u.LockReason != latch.LockReasonAdmin {
		t.Fatalf("an admin lock after a reset_required lock: %+v, want reason admin", u)
	}
	wantErr(t, "UnlockUser(reset_required) of an admin lock", s.UnlockUser(ctx, "alice", latch.LockReasonResetRequired, t2), latch.ErrConflict)
	if err := s.UnlockUser(ctx, "alice", "", t2); err != nil {
		t.Errorf("UnlockUser(any reason): %v", err)
	}
	wantErr(t, "LockUser(unknown)", s.LockUser(ctx, "nobody", latch.LockReasonAdmin, t1), latch.ErrNotFound)
	wantErr(t, "UnlockUser(unknown)", s.UnlockUser(ctx, "nobody", "", t1), latch.ErrNotFound)
	if b, _ := s.UserByID(ctx, "bob"); b == nil || b.Locked() {
		t.Errorf("locking alice locked bob: %+v", b)
	}
}

// testDeleteUser: the user goes with its sessions and tokens; others stay.
func testDeleteUser(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	mustSession(t, s, newSession("a1", "alice", base))
	mustSession(t, s, newSession("b1", "bob", base))
	tok := newAccountToken("reset", latch.PurposeResetPassword, "alice")
	if err := s.CreateAccountToken(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.UserByID(ctx, "alice")
	wantErr(t, "UserByID(deleted)", err, latch.ErrNotFound)
	_, err = s.Session(ctx, "a1")
	wantErr(t, "Session(of deleted user)", err, latch.ErrNotFound)
	_, err = s.ConsumeAccountToken(ctx, tok.Hash, latch.PurposeResetPassword, base.Add(time.Minute))
	wantErr(t, "ConsumeAccountToken(of deleted user)", err, latch.ErrNotFound)
	if _, err := s.Session(ctx, "b1"); err != nil {
		t.Errorf("another user's session went: %v", err)
	}
	wantErr(t, "DeleteUser(again)", s.DeleteUser(ctx, "alice"), latch.ErrNotFound)
}
