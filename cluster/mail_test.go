package cluster_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchauth/latch/mail/mailtest"
)

// TestEmailsExactlyOnceAcrossInstances: three instances on one PostgreSQL
// and Redis share one durable outbox. Password-reset requests arrive at
// every instance while the SMTP server refuses the first deliveries;
// once it recovers, each user has exactly one reset email (one Message-ID,
// one link), none lost and none sent twice.
func TestEmailsExactlyOnceAcrossInstances(t *testing.T) {
	sink := mailtest.Start(t)
	var refused atomic.Int32
	sink.SetFail(func(step string) string {
		if step == "DATA" && refused.Add(1) <= 6 {
			return "451 4.3.0 try again later"
		}
		return ""
	})
	c := newCluster(t, options{env: map[string]string{"LATCH_MAIL_SMTP_URL": sink.URL()}})
	const users = 12
	for i := range users {
		if _, err := c.run("a long enough password\n", "user", "add", "--email", fmt.Sprintf("user%d@example.com", i), "--password-stdin"); err != nil {
			t.Fatalf("user add: %v", err)
		}
	}
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			n := c.nodes[i%len(c.nodes)]
			r := c.must(n, "POST", "/v1/auth/password/forgot", map[string]string{"email": fmt.Sprintf("user%d@example.com", i)})
			if r.code != http.StatusAccepted {
				t.Errorf("forgot on %s: %d %s", n.name, r.code, r.body)
			}
		})
	}
	wg.Wait()
	waitFor(t, "every reset email accepted", 60*time.Second, func() bool { return len(sink.Accepted()) >= users })
	if refused.Load() < 6 {
		t.Fatalf("the SMTP server refused %d deliveries, want the first 6: the retry path was not exercised", refused.Load())
	}
	// Nothing is left to send: every outbox row is delivered (a copy
	// still due could go out later and make a duplicate).
	conn, err := pgx.Connect(t.Context(), c.storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	waitFor(t, "the outbox drained", 30*time.Second, func() bool {
		var pending int
		err := conn.QueryRow(t.Context(), "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL").Scan(&pending)
		return err == nil && pending == 0
	})
	ids := map[string]int{}
	to := map[string]int{}
	for _, raw := range sink.Accepted() {
		ids[mailtest.Header(raw, "Message-Id")]++
		to[strings.ToLower(mailtest.Header(raw, "To"))]++
	}
	if got := len(sink.Accepted()); got != users {
		t.Errorf("%d emails accepted, want %d (one per user)", got, users)
	}
	for id, n := range ids {
		if n != 1 || id == "" {
			t.Errorf("Message-ID %q accepted %d times", id, n)
		}
	}
	for i := range users {
		addr := fmt.Sprintf("user%d@example.com", i)
		found := 0
		for k, n := range to {
			if strings.Contains(k, addr) {
				found += n
			}
		}
		if found != 1 {
			t.Errorf("%s got %d emails, want 1", addr, found)
		}
	}
}
