package postgres

import (
	"testing"

	"github.com/latchauth/latch/storetest"
)

// TestEndSSOSessionRollsBack: a failing outbox insert undoes the whole
// EndSSOSession, the revocations included.
func TestEndSSOSessionRollsBack(t *testing.T) {
	s := open(t, newSchema(t))
	storetest.EndSSOSessionRollsBack(t, s, func(t *testing.T) {
		for _, q := range []string{
			`CREATE FUNCTION outbox_broken() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'outbox broken'; END $$`,
			"CREATE TRIGGER outbox_broken BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_broken()",
		} {
			if _, err := s.pool.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
	})
}
