package instance_test

import (
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/keys"
)

// jwksAlgs returns kid → alg of the keys h publishes.
func (h *harness) jwksAlgs() map[string]string {
	h.t.Helper()
	r := h.do("GET", "/.well-known/jwks.json", "")
	var set struct {
		Keys []struct{ Kid, Alg, Use string }
	}
	if r.code != http.StatusOK || json.Unmarshal(r.raw, &set) != nil {
		h.t.Fatalf("JWKS: %d %s", r.code, r.raw)
	}
	algs := map[string]string{}
	for _, k := range set.Keys {
		if k.Use != "sig" {
			h.t.Fatalf("JWKS key %s has use %q", k.Kid, k.Use)
		}
		algs[k.Kid] = k.Alg
	}
	return algs
}

// claimsOf decodes the claims of a compact JWS.
func claimsOf(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	return jwt.MapClaims(segment(t, tok, 1))
}

// TestUpgradedDataDirGainsIDKey: a data directory written before key
// families existed (schema without migration 0008, EdDSA access keys only)
// gets its RS256 id_token key when the instance starts; its access key
// keeps signing, tokens issued before the upgrade keep verifying, and the
// JWKS publishes both keys.
func TestUpgradedDataDirGainsIDKey(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	tok := h.login(adaEmail, adaPass).str("access_token")
	accessKid, _ := segment(t, tok, 0)["kid"].(string)
	dir := h.dir
	h.close()

	// Back to the schema and keys of before the upgrade.
	db, err := sql.Open("sqlite", filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DELETE FROM signing_keys WHERE family <> 'access'",
		"DROP INDEX signing_keys_family",
		"ALTER TABLE signing_keys DROP COLUMN family",
		// 0017, 0016, 0015, 0014, 0013, 0012, 0011, 0010 and 0009 go too, so that 0008 applies again.
		"DROP TABLE setup_tokens",
		"DROP INDEX users_role",
		"ALTER TABLE users DROP COLUMN role",
		"DROP INDEX events_type_id",
		"DROP INDEX events_user_id",
		"DROP INDEX events_ip_id",
		"DROP INDEX sessions_live",
		"DROP INDEX events_at_type",
		"CREATE INDEX events_at ON events (at)",
		"DROP TABLE challenges",
		"DROP INDEX events_unpublished",
		"ALTER TABLE events DROP COLUMN published",
		"DROP TABLE sign_in_alerts",
		"DROP TABLE account_places",
		"DROP TABLE devices",
		"DROP TABLE account_tokens",
		"ALTER TABLE users DROP COLUMN email_verified_at",
		"ALTER TABLE users DROP COLUMN locked_at",
		"ALTER TABLE users DROP COLUMN lock_reason",
		"ALTER TABLE clients DROP COLUMN name",
		"DROP TABLE gateway_sessions",
		"DROP TABLE outbox",
		"DROP TABLE consents",
		"DROP TABLE authorization_codes",
		"DROP TABLE sso_clients",
		"DROP TABLE sso_sessions",
		"DROP INDEX sessions_sso",
		"ALTER TABLE sessions DROP COLUMN sso_session_id",
		"ALTER TABLE sessions DROP COLUMN scope",
		"ALTER TABLE clients DROP COLUMN redirect_uris",
		"ALTER TABLE clients DROP COLUMN post_logout_redirect_uris",
		"ALTER TABLE clients DROP COLUMN backchannel_logout_uri",
		"ALTER TABLE clients DROP COLUMN first_party",
		"ALTER TABLE clients DROP COLUMN id_token_alg",
		"DELETE FROM schema_migrations WHERE version >= 8",
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM signing_keys").Scan(&n); err != nil || n != 1 {
		t.Fatalf("old data directory holds %d keys (%v), want the one access key", n, err)
	}
	db.Close()

	up := start(t, dir, nil)
	list := up.in.Ring.List()
	var id keys.Info
	for _, k := range list {
		if k.Family == keys.FamilyID {
			id = k
		}
	}
	if len(list) != 2 || id.Algorithm != keys.RS256 || id.State != keys.StateActive {
		t.Fatalf("keys after the upgrade: %+v", list)
	}
	for _, k := range list {
		if k.Family == keys.FamilyAccess && (k.ID != accessKid || k.State != keys.StateActive || k.Algorithm != keys.EdDSA) {
			t.Fatalf("the access key changed in the upgrade: %+v", k)
		}
	}
	expect(t, "/v1/me with a token of before the upgrade", up.do("GET", "/v1/me", "", bearer(tok)...), http.StatusOK, "")
	if algs := up.jwksAlgs(); len(algs) != 2 || algs[accessKid] != keys.EdDSA || algs[id.ID] != keys.RS256 {
		t.Fatalf("JWKS after the upgrade: %v", algs)
	}
	fresh := up.login(adaEmail, adaPass).str("access_token")
	if kid := segment(t, fresh, 0)["kid"]; kid != accessKid {
		t.Fatalf("access tokens signed with %v after the upgrade, want %s", kid, accessKid)
	}
	s, err := up.in.Ring.IDTokens("")
	if err != nil {
		t.Fatal(err)
	}
	idTok, err := s.Sign(jwt.MapClaims{"iss": up.cfg.Issuer, "sub": "x", "aud": "dash"})
	if err != nil || segment(t, idTok, 0)["kid"] != id.ID {
		t.Fatalf("id_token after the upgrade: %v", err)
	}
	// A second start adds nothing.
	up.close()
	again := start(t, dir, nil)
	if got := again.in.Ring.List(); len(got) != 2 {
		t.Fatalf("a second start changed the ring: %+v", got)
	}
}

// TestAccessTokenSignedWithIDKeyRefused: the server's verifier trusts only
// the access-token keys. The claims of a genuine access token, signed
// again with the published RS256 id_token key under typ at+jwt and that
// key's kid, are refused; signed again with the access key they pass, so
// the key is the only reason.
func TestAccessTokenSignedWithIDKeyRefused(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	tok := h.login(adaEmail, adaPass).str("access_token")
	claims := claimsOf(t, tok)

	resigned, err := h.in.Ring.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "/v1/me with the claims signed again by the access key", h.do("GET", "/v1/me", "", bearer(resigned)...), http.StatusOK, "")

	// The id key's private half, as whoever holds it has it.
	kek, _, err := instance.LoadKEK(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := h.in.Store.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var forged string
	for _, k := range stored {
		if k.Family != keys.FamilyID {
			continue
		}
		der, err := kek.Open(k.Private, []byte(k.ID))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		jt := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		jt.Header["kid"], jt.Header["typ"] = k.ID, keys.TokenType
		if forged, err = jt.SignedString(priv.(crypto.Signer)); err != nil {
			t.Fatal(err)
		}
		if h.jwksAlgs()[k.ID] != keys.RS256 {
			t.Fatalf("the id key %s is not published", k.ID)
		}
	}
	if forged == "" {
		t.Fatal("no id key in the store")
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(forged, ".", 2)[0])
	if !strings.Contains(string(hdr), `"typ":"at+jwt"`) {
		t.Fatalf("forged header %s", hdr)
	}
	expect(t, "/v1/me with an at+jwt signed by the id_token key", h.do("GET", "/v1/me", "", bearer(forged)...), http.StatusUnauthorized, "")
}
