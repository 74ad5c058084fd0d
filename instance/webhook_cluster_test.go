package instance_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/internal/testenv"
)

// TestTwoInstancesSendEachEventOnce: two instances of one deployment
// (one SQLite data directory; one PostgreSQL database), both relaying and
// delivering, while users sign in on both: the receiver gets each event
// exactly once (by webhook-id and by event id).
func TestTwoInstancesSendEachEventOnce(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			rc := newHookReceiver(t)
			kek := make([]byte, 32)
			rand.Read(kek)
			mutate := func(c *config.Config) {
				withHook(rc.srv.URL)(c)
				c.KEK = base64.StdEncoding.EncodeToString(kek)
				c.Login.RatePerIP = 0
			}
			dirA := filepath.Join(t.TempDir(), "latch-data")
			dirB := dirA
			if backend == "postgres" {
				u := testenv.PostgresSchema(t, "latch_hooks_")
				dirB = filepath.Join(t.TempDir(), "latch-data")
				m := mutate
				mutate = func(c *config.Config) { m(c); c.Store = u }
			}
			a := start(t, dirA, mutate)
			b := start(t, dirB, mutate)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			a.in.Start(ctx)
			b.in.Start(ctx)
			const users = 6
			for i := range users {
				email := fmt.Sprintf("user%d@example.com", i)
				a.addUser(email, adaPass)
				h := a
				if i%2 == 1 {
					h = b
				}
				h.login(email, adaPass)
				if r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": email, "password": "not the password"})); r.code == http.StatusOK {
					t.Fatal("a wrong password signed in")
				}
			}
			// user_created, login_succeeded and login_failed for each user.
			const want = 3 * users
			waitUntil(t, "every event at the receiver", func() bool {
				rc.mu.Lock()
				defer rc.mu.Unlock()
				return len(rc.got) >= want
			})
			// One more round through both relays and workers before the
			// count is final: an event after all the others settled.
			a.addUser("last@example.com", adaPass)
			waitUntil(t, "the last event", func() bool { return rc.has(latch.EventUserCreated, lastUser(t, a)) })
			cancel()
			rc.mu.Lock()
			defer rc.mu.Unlock()
			seen := map[int64]int{}
			for _, p := range rc.got {
				seen[p.Data.ID]++
			}
			if len(rc.got) != want+1 || len(seen) != want+1 {
				t.Errorf("receiver got %d requests for %d events, want %d each", len(rc.got), len(seen), want+1)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("event %d delivered %d times", id, n)
				}
			}
			for _, id := range rc.ids() {
				if id.n != 1 {
					t.Errorf("webhook-id %s delivered %d times", id.id, id.n)
				}
			}
		})
	}
}

func lastUser(t *testing.T, h *harness) string {
	t.Helper()
	u, err := h.in.Store.UserByEmail(t.Context(), "last@example.com")
	if err != nil {
		return ""
	}
	return u.ID
}
