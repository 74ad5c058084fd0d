package sqlite

import (
	"testing"

	"github.com/latchauth/latch/storetest"
)

// TestEndSSOSessionRollsBack: a failing outbox insert undoes the whole
// EndSSOSession, the revocations included.
func TestEndSSOSessionRollsBack(t *testing.T) {
	s := openTemp(t)
	storetest.EndSSOSessionRollsBack(t, s, func(t *testing.T) {
		if _, err := s.w.ExecContext(t.Context(),
			"CREATE TRIGGER outbox_broken BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox broken'); END"); err != nil {
			t.Fatal(err)
		}
	})
}
