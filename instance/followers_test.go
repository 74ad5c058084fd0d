package instance_test

import (
	"net/http"
	"testing"
)

// TestFeedFollowers: an open revocation stream is listed by the server's
// FeedFollowers with the cursor it has vouched for, which follows the
// feed's head as entries are added, and is gone once the stream closes.
func TestFeedFollowers(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	svc := basic("svc", svcSecret)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.srv.URL+"/v1/revocations/stream", nil)
	req.Header.Set(svc[0], svc[1])
	res, err := h.srv.Client().Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", res, err)
	}
	head := func() int64 {
		n, err := h.in.Store.RevocationHead(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, "the stream listed, vouched at the head", func() bool {
		f := h.in.Server.FeedFollowers()
		return len(f) == 1 && f[0].ClientID == "svc" && f[0].Cursor == head() && !f[0].SyncedAt.IsZero() && !f[0].Since.IsZero()
	})
	tok := h.login(adaEmail, adaPass).str("access_token")
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(tok)...), http.StatusNoContent, "")
	if head() == 0 {
		t.Fatal("the logout added no revocation")
	}
	waitFor(t, "the stream's cursor at the new head", func() bool {
		f := h.in.Server.FeedFollowers()
		return len(f) == 1 && f[0].Cursor == head()
	})
	res.Body.Close()
	waitFor(t, "the closed stream gone", func() bool { return len(h.in.Server.FeedFollowers()) == 0 })
}
