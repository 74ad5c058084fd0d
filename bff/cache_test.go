package bff

import (
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/gateway"
)

// liveSession stores a session of sub in sid whose access token verifies
// (signed by the stub auth server's key, valid an hour) and returns its
// cookie value and id.
// It is valid 3 hours, beyond the unit's idle timeout (1h).
func (u *unit) liveSession(sub, sid string) (string, string) {
	u.t.Helper()
	value := newCookieValue()
	id, _ := sessionID(value)
	now := u.clock.Now()
	at := lowS(sign(u.t, u.key, "at+jwt", map[string]any{"iss": u.iss, "aud": u.iss, "sub": sub, "sid": sid, "client_id": "gw",
		"iat": now.Unix(), "exp": now.Add(3 * time.Hour).Unix(), "jti": newCookieValue()}))
	s := u.m.sealer
	g := &latch.GatewaySession{ID: id, Subject: sub, SID: sid,
		AccessToken:     s.Seal([]byte(at), tokenAAD("access", id)),
		RefreshToken:    s.Seal([]byte("rt-"+id), tokenAAD("refresh", id)),
		IDToken:         s.Seal([]byte("idt"), tokenAAD("id", id)),
		AccessExpiresAt: now.Add(3 * time.Hour), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour), Version: 1}
	if err := u.store.CreateGatewaySession(u.t.Context(), g); err != nil {
		u.t.Fatal(err)
	}
	return value, id
}

// lowS returns an ES256 compact JWS with its S in the lower half of the
// group order, the only form Latch's verifier accepts.
func lowS(jws string) string {
	i := strings.LastIndexByte(jws, '.')
	sig, err := base64.RawURLEncoding.DecodeString(jws[i+1:])
	if err != nil || len(sig) != 64 {
		panic("lowS: not an ES256 signature")
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	if s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		s.Sub(n, s).FillBytes(sig[32:])
	}
	return jws[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func (u *unit) lookup(value string) (*gateway.BrowserSession, error) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: u.m.cookie, Value: value})
	return u.m.Lookup(req)
}

// TestRowCacheEndedHere: a session this instance ends (logout,
// back-channel logout, revocation, idle) is refused at once, although its
// row is cached (for an hour here, so that only the drop can refuse it).
func TestRowCacheEndedHere(t *testing.T) {
	t.Run("end", func(t *testing.T) {
		u := newUnit(t)
		u.m.rows.ttl = time.Hour
		value, id := u.liveSession("u1", "s1")
		if _, err := u.lookup(value); err != nil {
			t.Fatalf("Lookup of a live session: %v", err)
		}
		if err := u.m.end(t.Context(), id, latch.GatewayEndLogout); err != nil {
			t.Fatal(err)
		}
		if _, err := u.lookup(value); !errors.Is(err, gateway.ErrNoSession) {
			t.Errorf("Lookup right after end = %v, want ErrNoSession", err)
		}
	})
	t.Run("back-channel logout", func(t *testing.T) {
		u := newUnit(t)
		u.m.rows.ttl = time.Hour
		value, _ := u.liveSession("u1", "s1")
		if _, err := u.lookup(value); err != nil {
			t.Fatalf("Lookup of a live session: %v", err)
		}
		now := u.clock.Now()
		tok := sign(t, u.key, "logout+jwt", map[string]any{"iss": u.iss, "aud": "gw", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": newCookieValue(), "sid": "s1", "sub": "u1", "events": map[string]any{eventLogout: map[string]any{}}})
		if rec := u.postLogout(tok); rec.Code != http.StatusOK {
			t.Fatalf("logout token: %d %s", rec.Code, rec.Body)
		}
		if _, err := u.lookup(value); !errors.Is(err, gateway.ErrNoSession) {
			t.Errorf("Lookup right after back-channel logout = %v, want ErrNoSession", err)
		}
	})
}

// TestRowCacheBounded: a session ended behind this instance's back (by
// another gateway instance, with no fan-out to tell) stops being served
// once the cached row is older than rowCacheTTL.
func TestRowCacheBounded(t *testing.T) {
	u := newUnit(t)
	value, id := u.liveSession("u1", "s1")
	if _, err := u.lookup(value); err != nil {
		t.Fatalf("Lookup of a live session: %v", err)
	}
	if err := u.store.EndGatewaySession(t.Context(), id, latch.GatewayEndLogout, u.clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Lookup refuses a session ended in the store", 5*time.Second, func() bool {
		_, err := u.lookup(value)
		return errors.Is(err, gateway.ErrNoSession)
	})
}

// TestRowCacheIdleRechecked: a cached row that looks idle is read again
// before the session is ended for idleness: another instance may have
// touched it.
func TestRowCacheIdleRechecked(t *testing.T) {
	u := newUnit(t)
	u.m.rows.ttl = time.Hour // the row stays cached however slow the machine
	value, id := u.liveSession("u1", "s1")
	if _, err := u.lookup(value); err != nil {
		t.Fatal(err)
	}
	u.clock.Advance(90 * time.Minute) // past the idle timeout (1h) by the cached row
	if err := u.store.TouchGatewaySession(t.Context(), id, u.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := u.lookup(value); err != nil {
		t.Errorf("Lookup of a session touched elsewhere = %v", err)
	}
	if u.ended(id).Ended() {
		t.Error("a session touched by another instance was ended as idle")
	}
}

// BenchmarkLookup is Lookup of a live session with a valid access token,
// reading the store every time (the row dropped from the cache before each
// call, as Lookup did before the row cache) and with the row cache.
func BenchmarkLookup(b *testing.B) {
	u := newUnit(b)
	value, id := u.liveSession("u1", "s1")
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: u.m.cookie, Value: value})
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u.m.rows.drop(id)
			if _, err := u.m.Lookup(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := u.m.Lookup(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
