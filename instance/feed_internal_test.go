package instance

import (
	"context"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/sqlite"
)

// TestKeyFeedSignalsKeyRevocations: a page of the revocation feed holding
// a kid entry asks for a ring reload; other pages do not.
func TestKeyFeedSignalsKeyRevocations(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/latch.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	f := keyFeed{RevocationStore: st, changed: make(chan struct{}, 1)}
	page := func(after int64) {
		t.Helper()
		if _, err := f.RevocationsAfter(context.Background(), after, now, 100); err != nil {
			t.Fatal(err)
		}
	}
	signalled := func() bool {
		select {
		case <-f.changed:
			return true
		default:
			return false
		}
	}
	seq, err := st.AddRevocation(t.Context(), &latch.Revocation{Kind: latch.RevokeSession, Value: "ses_1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	page(0)
	if signalled() {
		t.Fatal("a session revocation asked for a ring reload")
	}
	if _, err := st.AddRevocation(t.Context(), &latch.Revocation{Kind: latch.RevokeKey, Value: "kid1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	page(seq)
	if !signalled() {
		t.Fatal("a key revocation on the feed did not ask for a ring reload")
	}
}
