package instance_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

// breakableStore is a store whose revocation feed can be made unreachable.
type breakableStore struct {
	latch.Store
	down atomic.Bool
}

var errStoreDown = errors.New("store unreachable (test)")

func (b *breakableStore) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]latch.Revocation, error) {
	if b.down.Load() {
		return nil, errStoreDown
	}
	return b.Store.RevocationsAfter(ctx, after, now, limit)
}

// TestStaleSourceMakesFollowersStale is the scenario of issue 8 item 1:
// a remote verifier follows the stream of instance A; A loses its store;
// a token is revoked through instance B, which shares the store. A's
// stream stays open and keeps sending heartbeats, but they carry the age
// of A's own data, so the verifier (default fail-closed policy) refuses
// the token within MaxStale instead of accepting it as long as the
// stream lives. Once A reads its store again, the token is revoked.
func TestStaleSourceMakesFollowersStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	b := start(t, dir, nil)
	b.addClients()
	b.addUser(adaEmail, adaPass)

	// Instance A on the same data, on the real clock, with its follower
	// running, behind its own HTTP server.
	cfg := testConfig(t, dir, nil)
	st, err := instance.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	bs := &breakableStore{Store: st}
	logs := &syncBuffer{}
	in, err := instance.Open(t.Context(), cfg, instance.Options{
		Store: bs,
		Log:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.Start(ctx)
	srv := httptest.NewServer(in.Server)
	t.Cleanup(func() {
		in.Server.CloseStreams()
		srv.Close()
		cancel()
		in.Wait()
		in.Close()
		if t.Failed() {
			t.Logf("instance A log:\n%s", logs.String())
		}
	})
	a := &harness{t: t, dir: dir, cfg: cfg, in: in, srv: srv, logs: logs}

	v := remoteVerifier(t, a, srv.URL, nil) // MaxStale: the default, 10 s
	tok := b.login(adaEmail, adaPass).str("access_token")
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}

	bs.down.Store(true)
	down := time.Now()
	expect(t, "logout through B", b.do("POST", "/v1/auth/logout", "", bearer(tok)...), http.StatusNoContent, "")
	for {
		_, err := v.Verify(tok)
		if errors.Is(err, verifier.ErrStale) || errors.Is(err, verifier.ErrRevoked) {
			t.Logf("refused %v after A lost its store: %v", time.Since(down).Round(time.Millisecond), err)
			break
		}
		if err != nil {
			t.Fatalf("while A's store is down: %v", err)
		}
		if time.Since(down) > verifier.DefaultMaxStale+2*time.Second {
			t.Fatalf("the verifier still accepts a token revoked %v ago through another instance (MaxStale %v): A's heartbeats vouch for data it does not have",
				time.Since(down).Round(time.Millisecond), verifier.DefaultMaxStale)
		}
		time.Sleep(20 * time.Millisecond)
	}

	bs.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(tok)
		if errors.Is(err, verifier.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's store is back, but the verifier says %v, want ErrRevoked", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyRevokedOnServer: a kid entry in the server's revocation set
// makes the server's own verifier refuse a valid token signed with that
// key (the entry `latch keys revoke` writes).
func TestKeyRevokedOnServer(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	tok := h.login(adaEmail, adaPass).str("access_token")
	expect(t, "/v1/me before", h.do("GET", "/v1/me", "", bearer(tok)...), http.StatusOK, "")
	hdr, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var head struct{ Kid string }
	if err := json.Unmarshal(raw, &head); err != nil || head.Kid == "" {
		t.Fatalf("token header %s: %v", raw, err)
	}
	h.in.Revocations.Add(latch.Revocation{Seq: h.in.Revocations.Cursor() + 1, Kind: revocation.Key, Value: head.Kid, ExpiresAt: time.Now().Add(time.Hour)})
	expect(t, "/v1/me with a revoked key", h.do("GET", "/v1/me", "", bearer(tok)...), http.StatusUnauthorized, "invalid_token")
}

// TestRevocationStreamsPerClient: one client holds at most
// revocation.max_streams_per_client streams (4 by default); the next gets
// 429, and a closed stream frees its slot.
func TestRevocationStreamsPerClient(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	svc := basic("svc", svcSecret)
	open := func() *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", h.srv.URL+"/v1/revocations/stream", nil)
		req.Header.Set(svc[0], svc[1])
		res, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var streams []*http.Response
	for i := range h.cfg.Revocation.MaxStreamsPerClient {
		res := open()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, res.StatusCode)
		}
		streams = append(streams, res)
	}
	if n := len(streams); n != 4 {
		t.Fatalf("default max_streams_per_client = %d, want 4", n)
	}
	res := open()
	body := make([]byte, 512)
	n, _ := res.Body.Read(body)
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body[:n]), "too_many_streams") || res.Header.Get("Retry-After") == "" {
		t.Fatalf("stream beyond the bound: %d %s %v", res.StatusCode, body[:n], res.Header)
	}
	// Pages are not bounded by it.
	expect(t, "a page meanwhile", h.do("GET", "/v1/revocations", "", svc...), http.StatusOK, "")
	streams[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res := open()
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream did not free its slot: %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range streams[1:] {
		s.Body.Close()
	}
}

// TestNewRemoteWithoutPermission: a verifier whose client lacks
// read-revocations fails at start, and says why.
func TestNewRemoteWithoutPermission(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	_, err := verifier.NewRemote(t.Context(), verifier.RemoteConfig{
		Issuer: h.cfg.Issuer, Audience: h.cfg.Audience,
		JWKSURL: h.srv.URL + "/.well-known/jwks.json", RevocationsURL: h.srv.URL,
		ClientID: "other", ClientSecret: svcSecret + "-other",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "read-revocations") {
		t.Fatalf("NewRemote with a client lacking the permission: %v", err)
	}
}

// TestRevocationCursorAhead: a reader whose cursor is beyond every seq the
// feed ever assigned (it followed another deployment, or the store was
// restored from a backup) is told so with 409 cursor_ahead, on pages and
// on the stream, instead of an empty answer that vouches for a set that
// silently misses every entry under its cursor; a follower in that state
// never counts itself synced, so its verifier fails closed.
func TestRevocationCursorAhead(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	svc := basic("svc", svcSecret)
	expect(t, "page from 0", h.do("GET", "/v1/revocations?after=0", "", svc...), http.StatusOK, "")
	expect(t, "page ahead", h.do("GET", "/v1/revocations?after=50", "", svc...), http.StatusConflict, "cursor_ahead")
	expect(t, "stream ahead", h.do("GET", "/v1/revocations/stream?after=50", "", svc...), http.StatusConflict, "cursor_ahead")
	expect(t, "stream ahead by Last-Event-ID", h.do("GET", "/v1/revocations/stream", "", append(svc, "Last-Event-ID", "50")...), http.StatusConflict, "cursor_ahead")

	// A cursor the feed did reach stays good after its entry is gone.
	h.addUser(adaEmail, adaPass)
	tok := h.login(adaEmail, adaPass).str("access_token")
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(tok)...), http.StatusNoContent, "")
	expect(t, "page at the head", h.do("GET", "/v1/revocations?after=1", "", svc...), http.StatusOK, "")

	// A follower that holds entries up to 50 from elsewhere.
	set := revocation.NewSet()
	set.Add(revocation.Entry{Seq: 50})
	rem := revocation.NewRemote(h.srv.URL, revocation.RemoteOptions{
		ClientID: "svc", ClientSecret: svcSecret, HTTPClient: h.srv.Client(),
		PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	go rem.Run(t.Context(), set)
	waitFor(t, "the follower told its cursor is ahead", func() bool {
		var se *revocation.StatusError
		return errors.As(rem.Err(), &se) && se.Code == http.StatusConflict && se.OAuthError == "cursor_ahead"
	})
	if !set.LastSync().IsZero() {
		t.Fatalf("a follower ahead of the feed counts itself synced at %v", set.LastSync())
	}
}

// TestRevocationStreamEndsWithItsToken: a stream opened with a
// client_credentials token ends when the token expires, instead of
// reading the feed (every revoked session and user) for as long as the
// connection lives; the reader reconnects with a fresh token, its
// permission checked again.
func TestRevocationStreamEndsWithItsToken(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("svc", svcSecret)...)
	expect(t, "client_credentials", tok, http.StatusOK, "")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/revocations/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
	lines := streamLines(t, h, req)
	exp, _ := tok.body["expires_in"].(float64)
	h.clock.Advance(time.Duration(exp+1) * time.Second)
	// A revocation wakes the stream after its token expired.
	at := h.login(adaEmail, adaPass).str("access_token")
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(at)...), http.StatusNoContent, "")
	for l := range lines {
		if strings.HasPrefix(l, "event: revocation") {
			t.Fatal("a stream whose token expired sent an entry")
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the stream outlived its token")
	}
}

// TestRevocationStreamEndsAfterAnHour: a stream opened with Basic (no
// token expiry to bound it) still ends after an hour, so its heartbeats'
// clock cannot drift forever and the client's permission is checked again.
func TestRevocationStreamEndsAfterAnHour(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/revocations/stream", nil)
	req.SetBasicAuth("svc", svcSecret)
	lines := streamLines(t, h, req)
	// Within the hour a revocation arrives on the stream: it is live.
	at := h.login(adaEmail, adaPass).str("access_token")
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(at)...), http.StatusNoContent, "")
	for l := range lines {
		if strings.HasPrefix(l, "event: revocation") {
			break
		}
	}
	h.clock.Advance(time.Hour + time.Second)
	at = h.login(adaEmail, adaPass).str("access_token")
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(at)...), http.StatusNoContent, "")
	for l := range lines {
		if strings.HasPrefix(l, "event: revocation") {
			t.Fatal("a stream older than an hour sent an entry")
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the stream outlived its hour")
	}
}

// streamLines opens the revocation stream with req and returns its lines
// as they come; the channel closes when the stream ends.
func streamLines(t *testing.T, h *harness, req *http.Request) <-chan string {
	t.Helper()
	res, err := h.srv.Client().Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("open the stream: %v %v", res, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}
