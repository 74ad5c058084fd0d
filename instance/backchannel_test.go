package instance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/latchauth/latch"
	"github.com/latchauth/latch/backchannel"
)

// TestBackchannelLogoutFromOutbox: an SSO session ended in the store
// reaches the relying party that registered a back-channel logout URI,
// through the instance's outbox worker, at once after Notify: a logout
// token signed with a key of the instance's JWKS, typ logout+jwt.
func TestBackchannelLogoutFromOutbox(t *testing.T) {
	h := start(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	h.in.Start(ctx)
	t.Cleanup(func() { cancel(); h.in.Wait() })

	var mu sync.Mutex
	var tokens []string
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, r.PostFormValue("logout_token"))
		mu.Unlock()
	}))
	defer rp.Close()

	st, now := h.in.Store, h.clock.Now()
	userID := h.addUser("bcl@example.com", "correct horse battery staple")
	if err := st.CreateClient(ctx, &latch.Client{ID: "dash", SecretHash: "x", BackchannelLogoutURI: rp.URL,
		RedirectURIs: []string{"https://dash.example/cb"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sso := &latch.SSOSession{ID: "sso1", UserID: userID, AuthTime: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateSSOSession(ctx, sso); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSSOClient(ctx, "sso1", "dash", now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EndSSOSession(ctx, "sso1", "logout", now, latch.Cover{Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h.in.Outbox.Notify()
	waitFor(t, "the back-channel logout", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens) == 1
	})

	mu.Lock()
	token := tokens[0]
	mu.Unlock()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.in.Ring.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	hdr := jws.Signatures[0].Header
	ks := set.Key(hdr.KeyID)
	if len(ks) != 1 || hdr.ExtraHeaders["typ"] != "logout+jwt" {
		t.Fatalf("header %+v: kid not in the JWKS or typ not logout+jwt", hdr)
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c["iss"] != h.cfg.Issuer || c["aud"] != "dash" || c["sub"] != userID || c["sid"] != "sso1" || c["events"] == nil {
		t.Errorf("claims %v", c)
	}
	if _, ok := c["events"].(map[string]any)[backchannel.EventLogout]; !ok {
		t.Errorf("events %v", c["events"])
	}
}
