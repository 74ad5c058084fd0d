package instance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

// keyBound is how soon another instance must apply a key revocation or an
// immediate rotation without Redis: the key-ring version is checked every
// second.
const keyBound = 10 * time.Second

// jwksKids returns the kids h publishes.
func (h *harness) jwksKids() map[string]bool {
	h.t.Helper()
	kids := map[string]bool{}
	for _, kid := range h.jwksOrder() {
		kids[kid] = true
	}
	return kids
}

// jwksOrder returns the kids h publishes in the JWKS's order: the active
// key first.
func (h *harness) jwksOrder() []string {
	h.t.Helper()
	r := h.do("GET", "/.well-known/jwks.json", "")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if r.code != http.StatusOK || json.Unmarshal(r.raw, &set) != nil {
		h.t.Fatalf("JWKS: %d %s", r.code, r.raw)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// waitFor polls cond until it holds, failing t after keyBound.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > keyBound {
			t.Fatalf("%s: not within %v", what, keyBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(began)
}

// TestKeyRevocationReachesAnotherInstance: two instances on one SQLite
// database, no Redis. A key revoked through one (as latch keys revoke does)
// is, within seconds, neither published nor trusted by the other, which
// signs with the new key; an immediate rotation while a scheduled one is
// pending is picked up the same way.
func TestKeyRevocationReachesAnotherInstance(t *testing.T) {
	a := start(t, "", nil)
	b := start(t, a.dir, nil)
	ctx, cancel := context.WithCancel(t.Context())
	b.in.Start(ctx)
	t.Cleanup(func() { cancel(); b.in.Wait() })
	a.addUser(adaEmail, adaPass)
	a.addClients()

	tok := b.login(adaEmail, adaPass).str("access_token")
	stolen, _ := segment(t, tok, 0)["kid"].(string)
	expect(t, "/v1/me before the revocation", b.do("GET", "/v1/me", "", bearer(tok)...), http.StatusOK, "")

	res, err := a.in.Ring.Revoke(t.Context(), stolen)
	if err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "the other instance refuses the revoked key's token", func() bool {
		return b.do("GET", "/v1/me", "", bearer(tok)...).code == http.StatusUnauthorized
	})
	// The JWKS follows the key ring's own reload, not the feed that
	// refused the token: it may come a moment later, within the bound.
	waitFor(t, "the other instance to stop publishing the revoked key", func() bool { return !b.jwksKids()[stolen] })
	// The kid travels the revocation feed that remote verifiers follow.
	feed := b.do("GET", "/v1/revocations?after=0", "", basic("svc", svcSecret)...)
	entries, _ := feed.body["revocations"].([]any)
	found := false
	for _, e := range entries {
		if m, _ := e.(map[string]any); m["kind"] == "kid" && m["value"] == stolen {
			found = true
		}
	}
	if feed.code != http.StatusOK || !found {
		t.Fatalf("the revocation feed lacks a kid entry for %s: %d %s", stolen, feed.code, feed.raw)
	}
	fresh := b.login(adaEmail, adaPass).str("access_token")
	if kid := segment(t, fresh, 0)["kid"]; kid != res.Rotated.ID {
		t.Fatalf("the other instance signs with %v, want the new key %s", kid, res.Rotated.ID)
	}
	expect(t, "/v1/me with a token of the new key", b.do("GET", "/v1/me", "", bearer(fresh)...), http.StatusOK, "")
	t.Logf("revocation applied by the other instance after %v", took.Round(time.Millisecond))

	// rotate --now with a scheduled rotation pending.
	pending, err := a.in.Ring.Rotate(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other instance publishes the pending key", func() bool { return b.jwksKids()[pending.ID] })
	now, err := a.in.Ring.Rotate(t.Context(), true)
	if err != nil {
		t.Fatalf("immediate rotation with a pending key: %v", err)
	}
	// The JWKS lists the active key first; poll it rather than sign in
	// (sign-ins are rate limited).
	took = waitFor(t, "the other instance signs with the immediate key", func() bool {
		kids := b.jwksOrder()
		return len(kids) > 0 && kids[0] == now.ID && !slices.Contains(kids, pending.ID)
	})
	if kid := segment(t, b.login(adaEmail, adaPass).str("access_token"), 0)["kid"]; kid != now.ID {
		t.Fatalf("the other instance signs with %v, want %s", kid, now.ID)
	}
	t.Logf("immediate rotation applied by the other instance after %v", took.Round(time.Millisecond))
}
