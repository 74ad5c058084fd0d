package keys

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
)

// verifyAs checks tok as a verifier of one token type does: the typ header
// must be typ and the kid a key of family, bound to its algorithm.
func verifyAs(r *Ring, family, typ, tok string, now time.Time) error {
	_, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != typ {
			return nil, fmt.Errorf("typ %v, want %s", t.Header["typ"], typ)
		}
		kid, _ := t.Header["kid"].(string)
		alg, pub, ok := r.FamilyKey(family, kid)
		if !ok {
			return nil, fmt.Errorf("kid %q is not a key of family %s", kid, family)
		}
		if t.Method.Alg() != alg {
			return nil, fmt.Errorf("kid %s is for %s, token says %s", kid, alg, t.Method.Alg())
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{EdDSA, ES256, RS256}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(testIssuer),
	)
	return err
}

// header decodes the JOSE header of tok.
func headerOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// idClaims are id_token claims (OpenID Connect Core §2).
func idClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "usr_01JQ8Z6W4K2M7N9P3R5T8V1X4Y", "aud": "dash",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Add(-time.Minute).Unix(),
		"nonce": "n-0S6_WzA2Mj", "sid": "sso_01JQ8Z7A1B2C3D4E5F6G7H8J9K",
	}
}

// logoutClaims are back-channel logout token claims (Back-Channel Logout
// 1.0 §2.4).
func logoutClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": "dash", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "bWJq", "sid": "sso_01JQ8Z7A1B2C3D4E5F6G7H8J9K",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
}

func mustSign(t testing.TB, s *Signer, claims any) string {
	t.Helper()
	tok, err := s.Sign(claims)
	if err != nil {
		t.Fatalf("%s %s: %v", s.Family(), s.Type(), err)
	}
	return tok
}

func idSigner(t testing.TB, r *Ring) *Signer {
	t.Helper()
	s, err := r.IDTokens("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func logoutSigner(t testing.TB, r *Ring) *Signer {
	t.Helper()
	s, err := r.LogoutTokens(RS256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFamiliesAtFirstStart: a new ring holds an active key of each family
// — the access-token key of the configured algorithm and an RS256 key for
// id_tokens, distinct even when the access algorithm is RS256 — and each
// signer signs with its family's key under its own typ; each token verifies
// only as its own type.
func TestFamiliesAtFirstStart(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			c, store := newClock(), &memStore{}
			r := newTestRing(t, store, mustKEK(t), Config{Algorithm: alg}, c)
			if got := Families(); !slices.Equal(got, []string{FamilyAccess, FamilyID}) {
				t.Fatalf("Families = %v", got)
			}
			acc, id := listFamily(r, FamilyAccess), listFamily(r, FamilyID)
			if len(acc) != 1 || acc[0].State != StateActive || acc[0].Algorithm != alg ||
				len(id) != 1 || id[0].State != StateActive || id[0].Algorithm != RS256 || acc[0].ID == id[0].ID {
				t.Fatalf("keys at first start: %+v", r.List())
			}
			now := c.Now()
			for _, tc := range []struct {
				signer   *Signer
				claims   any
				alg, kid string
				family   string
				typ      string
			}{
				{r.AccessTokens(), claimsAt(now), alg, acc[0].ID, FamilyAccess, "at+jwt"},
				{idSigner(t, r), idClaims(now), RS256, id[0].ID, FamilyID, "JWT"},
				{logoutSigner(t, r), logoutClaims(now), RS256, id[0].ID, FamilyID, "logout+jwt"},
			} {
				tok := mustSign(t, tc.signer, tc.claims)
				h := headerOf(t, tok)
				if len(h) != 3 || h["alg"] != tc.alg || h["kid"] != tc.kid || h["typ"] != tc.typ {
					t.Fatalf("%s header %v, want alg %s kid %s typ %s", tc.typ, h, tc.alg, tc.kid, tc.typ)
				}
				if tc.signer.Algorithm() != tc.alg || tc.signer.Type() != tc.typ || tc.signer.Family() != tc.family {
					t.Fatalf("%s signer says %s %s %s", tc.typ, tc.signer.Algorithm(), tc.signer.Type(), tc.signer.Family())
				}
				if err := verifyAs(r, tc.family, tc.typ, tok, now); err != nil {
					t.Fatalf("%s as itself: %v", tc.typ, err)
				}
				// As the other family's token it fails on the key alone,
				// even with the typ check passed.
				other := map[string]string{FamilyAccess: FamilyID, FamilyID: FamilyAccess}[tc.family]
				if err := verifyAs(r, other, tc.typ, tok, now); err == nil || !strings.Contains(err.Error(), "not a key of family") {
					t.Fatalf("%s verified with the %s keys: %v", tc.typ, other, err)
				}
			}
			if tok := signAt(t, r, now); kidOf(t, tok) != acc[0].ID || headerOf(t, tok)["typ"] != "at+jwt" {
				t.Fatal("Ring.Sign does not sign access tokens with the access key")
			}
			if _, _, ok := r.FamilyKey(FamilyAccess, id[0].ID); ok {
				t.Fatal("FamilyKey(access) returns the id key")
			}
			if _, _, ok := r.FamilyKey(FamilyID, acc[0].ID); ok {
				t.Fatal("FamilyKey(id) returns the access key")
			}
			for _, kid := range []string{acc[0].ID, id[0].ID} {
				if _, _, ok := r.PublicKey(kid); !ok {
					t.Fatalf("PublicKey(%s) not found", kid)
				}
			}
			// id_tokens are never signed with the access key, even when a
			// client asks for the access algorithm.
			for _, other := range []string{EdDSA, ES256, "HS256", "none"} {
				if _, err := r.IDTokens(other); !errors.Is(err, ErrUnsupportedAlgorithm) {
					t.Fatalf("IDTokens(%s) = %v, want ErrUnsupportedAlgorithm", other, err)
				}
				if _, err := r.LogoutTokens(other); !errors.Is(err, ErrUnsupportedAlgorithm) {
					t.Fatalf("LogoutTokens(%s) = %v, want ErrUnsupportedAlgorithm", other, err)
				}
			}
			if got := r.IDTokenAlgorithms(); !slices.Equal(got, []string{RS256}) {
				t.Fatalf("IDTokenAlgorithms = %v", got)
			}
			// The JWKS lists both, access key first, each with its alg.
			var doc struct {
				Keys []struct{ Kid, Alg, Use string }
			}
			jwks(t, r)
			if err := json.Unmarshal(r.JWKS(), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Keys) != 2 || doc.Keys[0].Kid != acc[0].ID || doc.Keys[0].Alg != alg ||
				doc.Keys[1].Kid != id[0].ID || doc.Keys[1].Alg != RS256 || doc.Keys[0].Use != "sig" || doc.Keys[1].Use != "sig" {
				t.Fatalf("JWKS %s", r.JWKS())
			}
		})
	}
}

// TestAccessVerifierRefusesIDKey: a token with typ at+jwt and access-token
// claims, signed with the id_token key (as anyone holding it, or a bug
// that let an id_token signer pick its typ, could make), verifies against
// the whole ring but not against the access family; likewise an id_token
// signed with the access key.
func TestAccessVerifierRefusesIDKey(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{Algorithm: EdDSA}, c)
	now := c.Now()
	forge := func(family, alg, typ string, claims jwt.Claims) string {
		k := r.snap.Load().active(family, now)
		tk := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
		tk.Header["kid"], tk.Header["typ"] = k.id, typ
		tok, err := tk.SignedString(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forged := forge(FamilyID, RS256, TokenType, claimsAt(now))
	if _, err := verify(r, forged, now); err != nil {
		t.Fatalf("the forged token does not even verify against the whole ring (the test proves nothing): %v", err)
	}
	if err := verifyAs(r, FamilyAccess, TokenType, forged, now); err == nil {
		t.Fatal("an at+jwt signed with the id_token key verifies as an access token")
	}
	forgedID := forge(FamilyAccess, EdDSA, IDTokenType, idClaims(now))
	if err := verifyAs(r, FamilyID, IDTokenType, forgedID, now); err == nil {
		t.Fatal("an id_token signed with the access-token key verifies as an id_token")
	}
}

// TestSignerHeadersCached: each key encodes the header of each token type
// of its family once; tokens carry exactly those bytes, and a reload that
// changes nothing keeps them.
func TestSignerHeadersCached(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	now := c.Now()
	acc, id := r.snap.Load().active(FamilyAccess, now), r.snap.Load().active(FamilyID, now)
	if len(acc.headers) != 1 || len(id.headers) != 2 {
		t.Fatalf("cached headers: access %d, id %d", len(acc.headers), len(id.headers))
	}
	for _, tc := range []struct {
		signer *Signer
		claims any
		want   string
	}{
		{r.AccessTokens(), claimsAt(now), acc.headers[0]},
		{idSigner(t, r), idClaims(now), id.headers[0]},
		{logoutSigner(t, r), logoutClaims(now), id.headers[1]},
	} {
		want, err := header(tc.signer.Algorithm(), headerOf(t, tc.want)["kid"].(string), tc.signer.Type())
		if err != nil || want != tc.want {
			t.Fatalf("cached %s header %q, want %q (%v)", tc.signer.Type(), tc.want, want, err)
		}
		for range 3 {
			if tok := mustSign(t, tc.signer, tc.claims); !strings.HasPrefix(tok, tc.want) {
				t.Fatalf("%s token %s does not start with the cached header %s", tc.signer.Type(), tok, tc.want)
			}
		}
	}
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := r.snap.Load().active(FamilyID, now)
	if after == id || &after.headers[0] != &id.headers[0] {
		t.Fatal("a reload encoded the headers again")
	}
}

// stripFamily returns a store holding the keys of store except those of
// family: a data directory written before the family existed.
func stripFamily(store *memStore, family string) *memStore {
	out := &memStore{}
	for _, k := range store.keys {
		if k.Family != family {
			out.keys = append(out.keys, k)
		}
	}
	return out
}

// TestUpgradedRingGainsIDFamily: a ring stored before FamilyID existed
// (access keys only) gets its RS256 key, active at once, when a ring first
// opens it; its access keys stay as they were and their tokens verify.
// Instances starting together create one id key.
func TestUpgradedRingGainsIDFamily(t *testing.T) {
	c, kek := newClock(), mustKEK(t)
	old := newTestRing(t, &memStore{}, kek, Config{}, c)
	accessKid := listFamily(old, FamilyAccess)[0].ID
	tok := signAt(t, old, c.Now())
	c.Add(time.Hour)

	store := stripFamily(old.store.(*memStore), FamilyID)
	r := newTestRing(t, store, kek, Config{}, c)
	id := listFamily(r, FamilyID)
	if len(id) != 1 || id[0].State != StateActive || id[0].Algorithm != RS256 || !id[0].CreatedAt.Equal(c.Now()) {
		t.Fatalf("id family after the upgrade: %+v", id)
	}
	// A binary from before key families, still running during a rolling
	// upgrade, signs with the newest key of the whole ring past its
	// NotBefore: that must stay the access key, so the id key is dated
	// before it.
	all, _ := store.Keys(context.Background())
	var oldView latch.SigningKey
	for _, k := range all {
		if k.RevokedAt.IsZero() && !c.Now().Before(k.NotBefore) {
			oldView = k
		}
	}
	if oldView.ID != accessKid || !id[0].NotBefore.Before(listFamily(r, FamilyAccess)[0].NotBefore) {
		t.Fatalf("a binary from before key families would sign with %s, want the access key %s (id key %+v)", oldView.ID, accessKid, id[0])
	}
	// The id family's schedule counts from the key's creation, not from
	// its earlier date.
	cfg := r.Config()
	c.Set(id[0].CreatedAt.Add(cfg.RotationPeriod - cfg.PublishDelay() - time.Second))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.due(FamilyID) {
		t.Fatal("the id family is due before one period after its first key was made")
	}
	c.Add(time.Second)
	if !r.due(FamilyID) {
		t.Fatal("the id family is not due one period after its first key was made")
	}
	c.Set(id[0].CreatedAt)
	if acc := listFamily(r, FamilyAccess); len(acc) != 1 || acc[0].ID != accessKid || acc[0].State != StateActive || !acc[0].NotAfter.IsZero() {
		t.Fatalf("access family after the upgrade: %+v", acc)
	}
	if err := verifyAs(r, FamilyAccess, TokenType, tok, c.Now().Add(-time.Hour)); err != nil {
		t.Fatalf("a token of before the upgrade: %v", err)
	}
	if err := verifyAs(r, FamilyID, IDTokenType, mustSign(t, idSigner(t, r), idClaims(c.Now())), c.Now()); err != nil {
		t.Fatal(err)
	}

	// Six instances open the same old ring at once: one id key.
	racy := stripFamily(old.store.(*memStore), FamilyID)
	rings := make([]*Ring, 6)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() {
			var err error
			if rings[i], err = NewRing(context.Background(), racy, kek, Config{}, c.Now); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := racy.countFamily(FamilyID); n != 1 || racy.count() != 1 {
		t.Fatalf("instances starting together stored %d id keys and %d access keys, want 1 and 1", n, racy.count())
	}
	want := listFamily(rings[0], FamilyID)[0].ID
	for i, ring := range rings {
		if kid := kidOf(t, mustSign(t, idSigner(t, ring), idClaims(c.Now()))); kid != want {
			t.Fatalf("ring %d signs id_tokens with %s, want %s", i, kid, want)
		}
	}
}

// TestFamiliesRotateIndependently: rotating one family adds a key to it
// alone, with its own pending state and retention; an immediate rotation
// supersedes only its own family's pending key.
func TestFamiliesRotateIndependently(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	cfg := Config{}.WithDefaults()
	r := newTestRing(t, store, mustKEK(t), cfg, c)
	firstAcc, firstID := listFamily(r, FamilyAccess)[0], listFamily(r, FamilyID)[0]
	c.Add(time.Hour)

	idPending, err := r.RotateFamily(ctx, FamilyID, false)
	if err != nil {
		t.Fatal(err)
	}
	if idPending.Family != FamilyID || idPending.Algorithm != RS256 || !idPending.NotBefore.Equal(c.Now().Add(cfg.PublishDelay())) {
		t.Fatalf("id rotation added %+v", idPending)
	}
	if got := store.get(firstID.ID).NotAfter; !got.Equal(idPending.NotBefore.Add(cfg.IDTokenLifetime + cfg.JWKSMaxAge)) {
		t.Fatalf("replaced id key NotAfter %v, want its successor's NotBefore + id_token lifetime + max-age", got)
	}
	if store.count() != 1 || !store.get(firstAcc.ID).NotAfter.IsZero() {
		t.Fatal("rotating the id family touched the access family")
	}
	if _, err := r.RotateFamily(ctx, FamilyID, false); !errors.Is(err, ErrRotationPending) || !strings.Contains(err.Error(), idPending.ID) {
		t.Fatalf("second id rotation: %v", err)
	}
	// The access family has nothing pending: it rotates.
	accPending, err := r.Rotate(ctx, false)
	if err != nil {
		t.Fatalf("access rotation while an id key is pending: %v", err)
	}
	if accPending.Family != FamilyAccess || accPending.Algorithm != EdDSA {
		t.Fatalf("access rotation added %+v", accPending)
	}
	if got := store.get(firstAcc.ID).NotAfter; !got.Equal(accPending.NotBefore.Add(cfg.TokenLifetime + cfg.JWKSMaxAge)) {
		t.Fatalf("replaced access key NotAfter %v", got)
	}
	if _, err := r.RotateFamily(ctx, "gateway", true); !errors.Is(err, ErrUnknownFamily) {
		t.Fatalf("RotateFamily(unknown) = %v", err)
	}

	// rotate --now of the id family supersedes its pending key only.
	idNow, err := r.RotateFamily(ctx, FamilyID, true)
	if err != nil {
		t.Fatal(err)
	}
	if infoOf(r, idPending.ID).State != StateRevoked || infoOf(r, accPending.ID).State != StatePending {
		t.Fatalf("after id rotate --now: %+v", r.List())
	}
	if kid := kidOf(t, mustSign(t, idSigner(t, r), idClaims(c.Now()))); kid != idNow.ID {
		t.Fatalf("id_tokens signed with %s, want %s", kid, idNow.ID)
	}
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != firstAcc.ID {
		t.Fatalf("access tokens signed with %s, want %s until the pending key activates", kid, firstAcc.ID)
	}
	// Published: both active keys first, the pending access key and the
	// retired id key; not the superseded one.
	set := jwks(t, r)
	for _, kid := range []string{firstAcc.ID, idNow.ID, accPending.ID, firstID.ID} {
		if _, ok := set[kid]; !ok {
			t.Fatalf("JWKS lacks %s: %s", kid, r.JWKS())
		}
	}
	if _, ok := set[idPending.ID]; ok || len(set) != 4 {
		t.Fatalf("JWKS %s", r.JWKS())
	}
	var doc struct{ Keys []struct{ Kid string } }
	json.Unmarshal(r.JWKS(), &doc)
	if doc.Keys[0].Kid != firstAcc.ID || doc.Keys[1].Kid != idNow.ID {
		t.Fatalf("active keys are not first in the JWKS: %s", r.JWKS())
	}
	c.Set(accPending.NotBefore)
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != accPending.ID {
		t.Fatalf("access tokens signed with %s at the pending key's NotBefore", kid)
	}
	if kid := kidOf(t, mustSign(t, idSigner(t, r), idClaims(c.Now()))); kid != idNow.ID {
		t.Fatal("the access key's activation moved the id family")
	}
}

// TestTickFamilySchedules: each family rotates one period after its own
// newest key, and a change of the access algorithm rotates only the
// access family.
func TestTickFamilySchedules(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	cfg := Config{RotationPeriod: 7 * 24 * time.Hour}.WithDefaults()
	r := newTestRing(t, store, kek, cfg, c)
	first := listFamily(r, FamilyAccess)[0]
	c.Add(2 * 24 * time.Hour)
	idKey, err := r.RotateFamily(ctx, FamilyID, true) // the id family's schedule moves two days on
	if err != nil {
		t.Fatal(err)
	}

	c.Set(first.NotBefore.Add(cfg.RotationPeriod - cfg.PublishDelay()))
	if rotated, err := r.Tick(ctx); err != nil || !rotated {
		t.Fatalf("Tick when the access family is due: %v, %v", rotated, err)
	}
	if store.count() != 2 || store.countFamily(FamilyID) != 2 {
		t.Fatalf("after the access family's Tick: %d access, %d id keys; want 2 and 2", store.count(), store.countFamily(FamilyID))
	}
	idDue := idKey.NotBefore.Add(cfg.RotationPeriod - cfg.PublishDelay())
	c.Set(idDue.Add(-time.Second))
	if rotated, err := r.Tick(ctx); err != nil || rotated {
		t.Fatalf("Tick before the id family is due: %v, %v", rotated, err)
	}
	c.Set(idDue)
	if rotated, err := r.Tick(ctx); err != nil || !rotated {
		t.Fatalf("Tick when the id family is due: %v, %v", rotated, err)
	}
	if store.count() != 2 || store.countFamily(FamilyID) != 3 {
		t.Fatalf("after the id family's Tick: %d access, %d id keys; want 2 and 3", store.count(), store.countFamily(FamilyID))
	}
	idList := listFamily(r, FamilyID)
	if next := idList[len(idList)-1]; next.State != StatePending || !next.NotBefore.Equal(idKey.NotBefore.Add(cfg.RotationPeriod)) {
		t.Fatalf("scheduled id key %+v", next)
	}

	// tokens.algorithm changes: only the access family follows.
	c.Add(time.Hour)
	es := newTestRing(t, store, kek, Config{Algorithm: ES256, RotationPeriod: cfg.RotationPeriod}, c)
	ids := store.countFamily(FamilyID)
	if rotated, err := es.Tick(ctx); err != nil || !rotated {
		t.Fatalf("Tick after the algorithm change: %v, %v", rotated, err)
	}
	acc := listFamily(es, FamilyAccess)
	if next := acc[len(acc)-1]; next.Algorithm != ES256 || next.State != StatePending || store.countFamily(FamilyID) != ids {
		t.Fatalf("after the algorithm change: access %+v, %d id keys (was %d)", acc, store.countFamily(FamilyID), ids)
	}
}

// TestRevokeRotatesOnlyItsFamily: revoking a family's active key replaces
// it at once within that family; the other family's keys, pending ones
// included, stay as they were.
func TestRevokeRotatesOnlyItsFamily(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	acc, id := listFamily(r, FamilyAccess)[0], listFamily(r, FamilyID)[0]
	c.Add(time.Hour)
	accPending, err := r.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	oldID := mustSign(t, idSigner(t, r), idClaims(c.Now()))

	res, err := r.Revoke(ctx, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotated.Family != FamilyID || res.Rotated.Algorithm != RS256 || !res.Rotated.NotBefore.Equal(c.Now()) || res.Key.Family != FamilyID {
		t.Fatalf("Revoke(id key) = %+v", res)
	}
	if store.count() != 2 || infoOf(r, acc.ID).State != StateActive || infoOf(r, accPending.ID).State != StatePending {
		t.Fatalf("revoking the id key changed the access family: %+v", listFamily(r, FamilyAccess))
	}
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != acc.ID {
		t.Fatalf("access tokens signed with %s after the id key's revocation", kid)
	}
	if kid := kidOf(t, mustSign(t, idSigner(t, r), idClaims(c.Now()))); kid != res.Rotated.ID {
		t.Fatalf("id_tokens signed with %s, want %s", kid, res.Rotated.ID)
	}
	if err := verifyAs(r, FamilyID, IDTokenType, oldID, c.Now()); err == nil {
		t.Fatal("an id_token of the revoked key verifies")
	}

	res, err = r.Revoke(ctx, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotated.Family != FamilyAccess || res.Rotated.Algorithm != EdDSA || store.countFamily(FamilyID) != 2 {
		t.Fatalf("Revoke(access key) = %+v, %d id keys", res, store.countFamily(FamilyID))
	}
	if infoOf(r, accPending.ID).State != StateRevoked {
		t.Fatal("the access family's pending key was not superseded")
	}
	for _, fam := range []string{FamilyAccess, FamilyID} {
		if got := kidOf(t, mustSign(t, map[string]*Signer{FamilyAccess: r.AccessTokens(), FamilyID: idSigner(t, r)}[fam], idClaims(c.Now()))); infoOf(r, got).State != StateActive {
			t.Fatalf("%s family signs with a key in state %s", fam, infoOf(r, got).State)
		}
	}
	if len(store.feed) != 2 {
		t.Fatalf("feed %+v, want the two revoked kids", store.feed)
	}
}

// TestUnknownFamilyKeys: a key of a family this program does not know (a
// newer version's) is listed and published, never signs and never counts
// for a known family.
func TestUnknownFamilyKeys(t *testing.T) {
	c, kek := newClock(), mustKEK(t)
	donor := newTestRing(t, &memStore{}, kek, Config{}, c)
	k := donor.store.(*memStore).keys[0]
	k.Family = "gateway"
	store := &memStore{keys: []latch.SigningKey{k}}
	r := newTestRing(t, store, kek, Config{}, c)
	if store.count() != 1 || store.countFamily(FamilyID) != 1 {
		t.Fatalf("a gateway key stood in for a known family: %d access, %d id", store.count(), store.countFamily(FamilyID))
	}
	if kid := kidOf(t, signAt(t, r, c.Now())); kid == k.ID {
		t.Fatal("access tokens signed with the gateway key")
	}
	if _, ok := jwks(t, r)[k.ID]; !ok || infoOf(r, k.ID).Family != "gateway" {
		t.Fatalf("gateway key not listed or published: %+v", r.List())
	}
	if _, _, ok := r.FamilyKey(FamilyAccess, k.ID); ok {
		t.Fatal("the gateway key is trusted for access tokens")
	}
}

// TestLoadRingCreatesNothing: LoadRing (latch keys list) reads the ring as
// stored; a family without a key stays without one. NewRing on the same
// store then creates the missing family's key.
func TestLoadRingCreatesNothing(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	r, err := LoadRing(ctx, store, kek, Config{}, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Keys(ctx); len(got) != 0 || len(r.List()) != 0 {
		t.Fatalf("LoadRing on an empty store created %d keys (ring lists %d)", len(got), len(r.List()))
	}
	newTestRing(t, store, kek, Config{}, c)
	stored, _ := store.Keys(ctx)
	if len(stored) != len(Families()) {
		t.Fatalf("NewRing left %d keys, want one per family (%d)", len(stored), len(Families()))
	}
	r, err = LoadRing(ctx, store, kek, Config{}, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.List()) != len(stored) {
		t.Fatalf("LoadRing lists %d keys of %d stored", len(r.List()), len(stored))
	}
}
