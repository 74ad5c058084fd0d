package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// newSSO returns an SSO session of user created at created that lasts a
// week.
func newSSO(id, userID string, created time.Time) *latch.SSOSession {
	return &latch.SSOSession{
		ID:         id,
		UserID:     userID,
		AuthTime:   created.Add(-time.Second),
		AMR:        []string{"pwd", "otp"},
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64)",
		IP:         "192.0.2.8",
		CreatedAt:  created,
		LastSeenAt: created,
		ExpiresAt:  created.Add(7 * 24 * time.Hour),
	}
}

// mustSSO stores sso.
func mustSSO(t *testing.T, s latch.Store, sso *latch.SSOSession) {
	t.Helper()
	if err := s.CreateSSOSession(t.Context(), sso); err != nil {
		t.Fatalf("CreateSSOSession(%s): %v", sso.ID, err)
	}
}

// mustGetSSO returns the stored SSO session with the id.
func mustGetSSO(t *testing.T, s latch.Store, id string) *latch.SSOSession {
	t.Helper()
	sso, err := s.SSOSession(t.Context(), id)
	if err != nil {
		t.Fatalf("SSOSession(%s): %v", id, err)
	}
	return sso
}

// linkedSession returns a family of user created from the SSO session.
func linkedSession(id, userID, clientID, ssoID string, created time.Time) *latch.Session {
	sess := newSession(id, userID, created)
	sess.ClientID = clientID
	sess.SSOSessionID = ssoID
	sess.Scope = "openid email offline_access"
	return sess
}

// mustClient stores a client with the back-channel logout URI.
func mustClient(t *testing.T, s latch.Store, id, backchannel string) {
	t.Helper()
	c := &latch.Client{ID: id, SecretHash: "sha256:" + id, BackchannelLogoutURI: backchannel,
		RedirectURIs: []string{"https://" + id + ".example/cb"}, CreatedAt: base}
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("CreateClient(%s): %v", id, err)
	}
}

func testSessionSSOLink(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSSO(t, s, newSSO("sso1", "alice", base))

	linked := linkedSession("f1", "alice", "dash", "sso1", base)
	mustSession(t, s, linked)
	checkEqual(t, "Session(f1)", mustGetSession(t, s, "f1"), linked)
	plain := newSession("f2", "alice", base.Add(time.Second))
	mustSession(t, s, plain)
	list, err := s.SessionsByUser(ctx, "alice", base)
	if err != nil {
		t.Fatalf("SessionsByUser: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("SessionsByUser = %d sessions, want 2", len(list))
	}
	checkEqual(t, "SessionsByUser[0]", list[0], plain)
	checkEqual(t, "SessionsByUser[1]", list[1], linked)

	// A family of an unknown or ended SSO session is refused: it would
	// outlive the SSO session's end.
	err = s.CreateSession(ctx, linkedSession("f3", "alice", "dash", "nope", base), hash("f3/1"))
	wantErr(t, "CreateSession(unknown SSO session)", err, latch.ErrNotFound)
	if _, err := s.EndSSOSession(ctx, "sso1", "logout", base.Add(time.Minute), latch.Cover{Until: base.Add(time.Hour)}); err != nil {
		t.Fatalf("EndSSOSession: %v", err)
	}
	err = s.CreateSession(ctx, linkedSession("f4", "alice", "dash", "sso1", base.Add(2*time.Minute)), hash("f4/1"))
	wantErr(t, "CreateSession(ended SSO session)", err, latch.ErrNotFound)
	for _, id := range []string{"f3", "f4"} {
		if _, err := s.Session(ctx, id); !errors.Is(err, latch.ErrNotFound) {
			t.Errorf("refused family %s was stored: Session error %v", id, err)
		}
		if _, err := s.RefreshToken(ctx, hash(id+"/1")); !errors.Is(err, latch.ErrNotFound) {
			t.Errorf("token of refused family %s was stored: RefreshToken error %v", id, err)
		}
	}
}

func testSSOSessions(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	sso := newSSO("sso1", "alice", base)
	mustSSO(t, s, sso)
	checkEqual(t, "SSOSession", mustGetSSO(t, s, "sso1"), sso)
	if got := mustGetSSO(t, s, "sso1"); got.Ended() || !got.Live(base) || got.Live(sso.ExpiresAt) {
		t.Errorf("new SSO session: Ended %v, Live(created) %v, Live(expiry) %v", got.Ended(), got.Live(base), got.Live(sso.ExpiresAt))
	}
	wantErr(t, "CreateSSOSession(duplicate)", s.CreateSSOSession(ctx, newSSO("sso1", "alice", base)), latch.ErrConflict)
	_, err := s.SSOSession(ctx, "nope")
	wantErr(t, "SSOSession(unknown)", err, latch.ErrNotFound)

	// Touch raises LastSeenAt, never lowers it.
	if err := s.TouchSSOSession(ctx, "sso1", base.Add(time.Hour)); err != nil {
		t.Fatalf("TouchSSOSession: %v", err)
	}
	if err := s.TouchSSOSession(ctx, "sso1", base.Add(time.Minute)); err != nil {
		t.Fatalf("TouchSSOSession(earlier): %v", err)
	}
	if got := mustGetSSO(t, s, "sso1"); !got.LastSeenAt.Equal(base.Add(time.Hour)) {
		t.Errorf("LastSeenAt = %v, want %v", got.LastSeenAt, base.Add(time.Hour))
	}
	wantErr(t, "TouchSSOSession(unknown)", s.TouchSSOSession(ctx, "nope", base), latch.ErrNotFound)
	wantErr(t, "TouchSSOSession(at expiry)", s.TouchSSOSession(ctx, "sso1", sso.ExpiresAt), latch.ErrNotFound)

	// Recording clients: twice is fine; unknown and ended sessions refuse.
	for range 2 {
		if err := s.RecordSSOClient(ctx, "sso1", "dash", base.Add(time.Minute)); err != nil {
			t.Fatalf("RecordSSOClient: %v", err)
		}
	}
	wantErr(t, "RecordSSOClient(unknown)", s.RecordSSOClient(ctx, "nope", "dash", base), latch.ErrNotFound)

	mustSSO(t, s, newSSO("sso2", "alice", base))
	if _, err := s.EndSSOSession(ctx, "sso2", "logout", base.Add(time.Minute), latch.Cover{Until: base.Add(time.Hour)}); err != nil {
		t.Fatalf("EndSSOSession: %v", err)
	}
	ended := mustGetSSO(t, s, "sso2")
	if !ended.Ended() || !ended.RevokedAt.Equal(base.Add(time.Minute)) || ended.RevokeReason != "logout" || ended.Live(base.Add(time.Hour)) {
		t.Errorf("ended SSO session = %+v", ended)
	}
	wantErr(t, "TouchSSOSession(ended)", s.TouchSSOSession(ctx, "sso2", base.Add(time.Hour)), latch.ErrNotFound)
	if got := mustGetSSO(t, s, "sso2"); !got.LastSeenAt.Equal(base) {
		t.Errorf("touching an ended SSO session moved LastSeenAt to %v", got.LastSeenAt)
	}
	wantErr(t, "RecordSSOClient(ended)", s.RecordSSOClient(ctx, "sso2", "dash", base.Add(time.Hour)), latch.ErrNotFound)
	_, err = s.EndSSOSession(ctx, "nope", "logout", base, latch.Cover{Until: base})
	wantErr(t, "EndSSOSession(unknown)", err, latch.ErrNotFound)
}

// claimAll claims every message due at now for owner.
func claimAll(t *testing.T, s latch.Store, owner string, now time.Time) []latch.OutboxMessage {
	t.Helper()
	list, err := s.ClaimOutbox(t.Context(), owner, now, now.Add(time.Minute), 1000)
	if err != nil {
		t.Fatalf("ClaimOutbox(%s): %v", owner, err)
	}
	return list
}

func testEndSSOSession(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	// rp1 is recorded and has a URI; rp2 has a URI and only a family (no
	// record); rp3 is recorded without a URI; rp4 has a URI but served
	// another SSO session.
	mustClient(t, s, "rp1", "https://rp1.example/bcl")
	mustClient(t, s, "rp2", "https://rp2.example/bcl")
	mustClient(t, s, "rp3", "")
	mustClient(t, s, "rp4", "https://rp4.example/bcl")
	mustSSO(t, s, newSSO("sso1", "alice", base))
	mustSSO(t, s, newSSO("sso2", "alice", base))
	mustSSO(t, s, newSSO("sso3", "bob", base))
	for _, r := range []struct{ sso, client string }{{"sso1", "rp1"}, {"sso1", "rp3"}, {"sso2", "rp4"}, {"sso3", "rp4"}} {
		if err := s.RecordSSOClient(ctx, r.sso, r.client, base); err != nil {
			t.Fatalf("RecordSSOClient(%s, %s): %v", r.sso, r.client, err)
		}
	}
	f1 := linkedSession("f1", "alice", "rp1", "sso1", base)
	f2 := linkedSession("f2", "alice", "rp2", "sso1", base.Add(time.Second))
	f2.AccessExpiresAt = base.Add(2 * time.Hour) // issued under a longer lifetime
	f3 := linkedSession("f3", "alice", "rp1", "sso1", base)
	f4 := linkedSession("f4", "alice", "rp4", "sso2", base)
	f5 := newSession("f5", "alice", base)
	f6 := linkedSession("f6", "bob", "rp4", "sso3", base)
	for _, f := range []*latch.Session{f1, f2, f3, f4, f5, f6} {
		mustSession(t, s, f)
	}
	if _, err := s.RevokeSession(ctx, "f3", "earlier", base.Add(time.Minute), latch.Cover{Until: base.Add(time.Hour)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	head := mustRevocations(t, s, 0, base)
	after := head[len(head)-1].Seq

	at := base.Add(time.Hour)
	cover := latch.Cover{Until: at.Add(10 * time.Minute), Margin: time.Minute}
	ids, err := s.EndSSOSession(ctx, "sso1", "logout", at, cover)
	if err != nil {
		t.Fatalf("EndSSOSession: %v", err)
	}
	if !slices.Equal(ids, []string{"f1", "f2"}) {
		t.Errorf("EndSSOSession revoked %v, want [f1 f2]", ids)
	}

	// The feed entries and the outbox messages, read together right after
	// the one call.
	feed := mustRevocations(t, s, after, base)
	msgs := claimAll(t, s, "worker", at)

	want := []latch.Revocation{
		{Kind: latch.RevokeSession, Value: "f1", CreatedAt: at, ExpiresAt: cover.Until},
		{Kind: latch.RevokeSession, Value: "f2", CreatedAt: at, ExpiresAt: base.Add(2*time.Hour + time.Minute)},
	}
	if len(feed) != len(want) {
		t.Fatalf("feed after EndSSOSession = %+v, want %d entries", feed, len(want))
	}
	for i := range want {
		want[i].Seq = feed[i].Seq
		checkEqual(t, fmt.Sprintf("feed[%d]", i), feed[i], want[i])
	}
	for _, f := range []*latch.Session{f1, f2} {
		got := mustGetSession(t, s, f.ID)
		if !got.RevokedAt.Equal(at) || got.RevokeReason != "logout" {
			t.Errorf("%s: RevokedAt %v, reason %q; want %v, logout", f.ID, got.RevokedAt, got.RevokeReason, at)
		}
	}
	if got := mustGetSession(t, s, "f3"); got.RevokeReason != "earlier" || !got.RevokedAt.Equal(base.Add(time.Minute)) {
		t.Errorf("a family revoked earlier was revoked again: %+v", got)
	}
	for _, id := range []string{"f4", "f5", "f6"} {
		if got := mustGetSession(t, s, id); got.Revoked() {
			t.Errorf("family %s of another SSO session (or none) was revoked", id)
		}
	}
	for _, id := range []string{"sso2", "sso3"} {
		if mustGetSSO(t, s, id).Ended() {
			t.Errorf("%s was ended with sso1", id)
		}
	}

	if len(msgs) != 2 {
		t.Fatalf("outbox after EndSSOSession = %+v, want 2 messages (rp1, rp2)", msgs)
	}
	for i, c := range []string{"rp1", "rp2"} {
		m := msgs[i]
		wantPayload := latch.BackchannelLogout{ClientID: c, UserID: "alice", SSOSessionID: "sso1"}.Payload()
		if m.Kind != latch.OutboxBackchannelLogout || m.Key != "bcl:sso1:"+c || !bytes.Equal(m.Payload, wantPayload) ||
			!m.CreatedAt.Equal(at) || !m.NotBefore.Equal(at) || m.Attempts != 0 || m.ID == 0 {
			t.Errorf("message %d = %+v (payload %s), want %s for %s", i, m, m.Payload, wantPayload, c)
		}
		b, err := latch.ParseBackchannelLogout(m.Payload)
		if err != nil || b != (latch.BackchannelLogout{ClientID: c, UserID: "alice", SSOSessionID: "sso1"}) {
			t.Errorf("ParseBackchannelLogout(%s) = %+v, %v", m.Payload, b, err)
		}
	}

	// A second end does nothing: no family, no feed entry, no message.
	ids, err = s.EndSSOSession(ctx, "sso1", "again", at.Add(time.Hour), cover)
	if err != nil || len(ids) != 0 {
		t.Errorf("second EndSSOSession = %v, %v; want none, nil", ids, err)
	}
	if got := mustRevocations(t, s, feed[len(feed)-1].Seq, base); len(got) != 0 {
		t.Errorf("second EndSSOSession appended %+v", got)
	}
	for _, m := range msgs {
		if err := s.CompleteOutbox(ctx, m.ID, "worker", at); err != nil {
			t.Fatalf("CompleteOutbox: %v", err)
		}
	}
	if got := claimAll(t, s, "worker", at.Add(2*time.Hour)); len(got) != 0 {
		t.Errorf("second EndSSOSession enqueued %+v", got)
	}
	if got := mustGetSSO(t, s, "sso1"); !got.RevokedAt.Equal(at) || got.RevokeReason != "logout" {
		t.Errorf("second EndSSOSession changed the SSO session: %+v", got)
	}
}

// testRevokeUserEndsSSO checks that RevokeUser (logout-all, "sign out
// everywhere") ends every SSO session of the user that has not been ended
// and tells its clients, as EndSSOSession would, and touches nothing else.
func testRevokeUserEndsSSO(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	mustClient(t, s, "rp1", "https://rp1.example/bcl")
	mustClient(t, s, "rp2", "https://rp2.example/bcl")
	mustClient(t, s, "rp3", "")
	// sso1: live, rp1 and rp3 recorded, a family of rp2. sso2: ended
	// earlier, its message delivered. old: past its expiry but never
	// ended (the clients' own sessions may outlive it). sso3: bob's.
	mustSSO(t, s, newSSO("sso1", "alice", base))
	mustSSO(t, s, newSSO("sso2", "alice", base))
	old := newSSO("old", "alice", base.Add(-8*24*time.Hour))
	mustSSO(t, s, old)
	mustSSO(t, s, newSSO("sso3", "bob", base))
	for _, r := range []struct{ sso, client string }{{"sso1", "rp1"}, {"sso1", "rp3"}, {"sso2", "rp1"}, {"old", "rp1"}, {"sso3", "rp1"}} {
		if err := s.RecordSSOClient(ctx, r.sso, r.client, old.CreatedAt); err != nil {
			t.Fatalf("RecordSSOClient(%s, %s): %v", r.sso, r.client, err)
		}
	}
	mustSession(t, s, linkedSession("f1", "alice", "rp2", "sso1", base))
	mustSession(t, s, linkedSession("f3", "bob", "rp1", "sso3", base))
	earlier := base.Add(time.Minute)
	if _, err := s.EndSSOSession(ctx, "sso2", "logout", earlier, latch.Cover{Until: earlier.Add(time.Hour)}); err != nil {
		t.Fatalf("EndSSOSession(sso2): %v", err)
	}
	for _, m := range claimAll(t, s, "worker", earlier) {
		if err := s.CompleteOutbox(ctx, m.ID, "worker", earlier); err != nil {
			t.Fatalf("CompleteOutbox: %v", err)
		}
	}

	at := base.Add(time.Hour)
	ids, err := s.RevokeUser(ctx, "alice", "logout_all", at, latch.Cover{Until: at.Add(10 * time.Minute)}, "")
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if !slices.Equal(ids, []string{"f1"}) {
		t.Errorf("RevokeUser revoked %v, want [f1]", ids)
	}
	for _, id := range []string{"sso1", "old"} {
		if got := mustGetSSO(t, s, id); !got.RevokedAt.Equal(at) || got.RevokeReason != "logout_all" {
			t.Errorf("%s after RevokeUser: RevokedAt %v, reason %q; want %v, logout_all", id, got.RevokedAt, got.RevokeReason, at)
		}
	}
	if got := mustGetSSO(t, s, "sso2"); !got.RevokedAt.Equal(earlier) || got.RevokeReason != "logout" {
		t.Errorf("an SSO session ended earlier was ended again: %+v", got)
	}
	if got := mustGetSSO(t, s, "sso3"); got.Ended() {
		t.Errorf("another user's SSO session was ended: %+v", got)
	}
	if got := mustGetSession(t, s, "f3"); got.Revoked() {
		t.Errorf("another user's family was revoked: %+v", got)
	}
	// Another user's SSO session still takes families and clients.
	if err := s.RecordSSOClient(ctx, "sso3", "rp2", at); err != nil {
		t.Errorf("RecordSSOClient(bob's sso3) after alice's RevokeUser: %v", err)
	}

	msgs := claimAll(t, s, "worker", at)
	got := map[string]latch.BackchannelLogout{}
	for _, m := range msgs {
		b, err := latch.ParseBackchannelLogout(m.Payload)
		if err != nil {
			t.Fatalf("message %+v: %v", m, err)
		}
		if m.Kind != latch.OutboxBackchannelLogout || !m.CreatedAt.Equal(at) || !m.NotBefore.Equal(at) ||
			m.Key != latch.BackchannelLogoutKey(b.SSOSessionID, b.ClientID) {
			t.Errorf("message %+v (payload %s)", m, m.Payload)
		}
		got[m.Key] = b
	}
	want := map[string]latch.BackchannelLogout{
		"bcl:sso1:rp1": {ClientID: "rp1", UserID: "alice", SSOSessionID: "sso1"},
		"bcl:sso1:rp2": {ClientID: "rp2", UserID: "alice", SSOSessionID: "sso1"},
		"bcl:old:rp1":  {ClientID: "rp1", UserID: "alice", SSOSessionID: "old"},
	}
	if len(got) != len(want) || len(msgs) != len(want) {
		t.Errorf("RevokeUser enqueued %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("message %s = %+v, want %+v", k, got[k], w)
		}
	}

	for _, m := range msgs {
		if err := s.CompleteOutbox(ctx, m.ID, "worker", at); err != nil {
			t.Fatalf("CompleteOutbox: %v", err)
		}
	}

	// Once more: nothing left to end, nothing enqueued.
	if _, err := s.RevokeUser(ctx, "alice", "again", at.Add(time.Minute), latch.Cover{Until: at.Add(time.Hour)}, ""); err != nil {
		t.Fatalf("second RevokeUser: %v", err)
	}
	if got := mustGetSSO(t, s, "sso1"); !got.RevokedAt.Equal(at) || got.RevokeReason != "logout_all" {
		t.Errorf("second RevokeUser ended sso1 again: %+v", got)
	}
	if again := claimAll(t, s, "other", at.Add(time.Minute)); len(again) != 0 {
		t.Errorf("second RevokeUser enqueued %+v", again)
	}
}

// newCode returns an authorization code of user for client dash, created
// at created, living a minute.
func newCode(code, userID string, created time.Time) *latch.AuthorizationCode {
	return &latch.AuthorizationCode{
		Hash:          hash(code),
		ClientID:      "dash",
		RedirectURI:   "https://dash.example.com/callback",
		UserID:        userID,
		SSOSessionID:  "sso1",
		Scope:         "openid email",
		Nonce:         "n-0S6_WzA2Mj",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		AuthTime:      created.Add(-time.Minute),
		AMR:           []string{"pwd"},
		CreatedAt:     created,
		ExpiresAt:     created.Add(time.Minute),
	}
}

func testAuthorizationCodes(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	c := newCode("code1", "alice", base)
	if err := s.CreateAuthorizationCode(ctx, c); err != nil {
		t.Fatalf("CreateAuthorizationCode: %v", err)
	}
	wantErr(t, "CreateAuthorizationCode(duplicate)", s.CreateAuthorizationCode(ctx, newCode("code1", "alice", base)), latch.ErrConflict)
	wantErr(t, "AttachCodeSession(unredeemed)", s.AttachCodeSession(ctx, hash("code1"), "f1"), latch.ErrNotFound)

	at := base.Add(10 * time.Second)
	got, err := s.RedeemAuthorizationCode(ctx, hash("code1"), at)
	if err != nil {
		t.Fatalf("RedeemAuthorizationCode: %v", err)
	}
	want := *c
	want.RedeemedAt = at
	checkEqual(t, "redeemed code", got, &want)
	if !got.Redeemed() {
		t.Error("redeemed code reports Redeemed false")
	}

	// Presented again: the stored code, marked reused, and ErrConflict,
	// so that the caller can revoke what it issued.
	reuse := at.Add(time.Second)
	got, err = s.RedeemAuthorizationCode(ctx, hash("code1"), reuse)
	wantErr(t, "RedeemAuthorizationCode(used)", err, latch.ErrConflict)
	if got == nil || !bytes.Equal(got.Hash, hash("code1")) || !got.RedeemedAt.Equal(at) || got.SessionID != "" || !got.ReusedAt.Equal(reuse) {
		t.Errorf("used code returned %+v, want the stored code redeemed at %v, reused at %v", got, at, reuse)
	}
	// The first exchange attaches its family after the replay: attached,
	// but ErrConflict, so that the exchange revokes it.
	wantErr(t, "AttachCodeSession(after a replay)", s.AttachCodeSession(ctx, hash("code1"), "f1"), latch.ErrConflict)
	// A later replay, even past expiry, finds the family to revoke; the
	// first reuse time stays.
	got, err = s.RedeemAuthorizationCode(ctx, hash("code1"), c.ExpiresAt.Add(time.Second))
	wantErr(t, "RedeemAuthorizationCode(used, expired)", err, latch.ErrConflict)
	if got == nil || got.SessionID != "f1" || !got.ReusedAt.Equal(reuse) {
		t.Errorf("used code returned %+v, want SessionID f1, ReusedAt %v", got, reuse)
	}
	wantErr(t, "AttachCodeSession(unknown)", s.AttachCodeSession(ctx, hash("nope"), "f1"), latch.ErrNotFound)

	_, err = s.RedeemAuthorizationCode(ctx, hash("nope"), at)
	wantErr(t, "RedeemAuthorizationCode(unknown)", err, latch.ErrNotFound)

	// Expired unredeemed: not found, and it stays unredeemed.
	old := newCode("code2", "alice", base)
	if err := s.CreateAuthorizationCode(ctx, old); err != nil {
		t.Fatalf("CreateAuthorizationCode: %v", err)
	}
	got, err = s.RedeemAuthorizationCode(ctx, hash("code2"), old.ExpiresAt)
	wantErr(t, "RedeemAuthorizationCode(expired)", err, latch.ErrNotFound)
	if got != nil {
		t.Errorf("expired code returned %+v", got)
	}
	if _, err := s.RedeemAuthorizationCode(ctx, hash("code2"), old.ExpiresAt.Add(-time.Microsecond)); err != nil {
		t.Errorf("code in its last microsecond: %v", err)
	}

	// A code without PKCE, nonce and AMR round-trips.
	bare := &latch.AuthorizationCode{Hash: hash("code3"), ClientID: "svc", RedirectURI: "https://svc/cb", UserID: "alice",
		Scope: "openid", AuthTime: base, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
	if err := s.CreateAuthorizationCode(ctx, bare); err != nil {
		t.Fatalf("CreateAuthorizationCode(bare): %v", err)
	}
	got, err = s.RedeemAuthorizationCode(ctx, hash("code3"), base)
	if err != nil {
		t.Fatalf("RedeemAuthorizationCode(bare): %v", err)
	}
	want = *bare
	want.RedeemedAt = base
	checkEqual(t, "bare code", got, &want)

	// Attaching without a replay.
	if err := s.AttachCodeSession(ctx, hash("code3"), "f3"); err != nil {
		t.Fatalf("AttachCodeSession: %v", err)
	}
	if err := s.AttachCodeSession(ctx, hash("code3"), "f3"); err != nil {
		t.Errorf("AttachCodeSession(same family again): %v", err)
	}
	wantErr(t, "AttachCodeSession(other family)", s.AttachCodeSession(ctx, hash("code3"), "f4"), latch.ErrConflict)
	got, err = s.RedeemAuthorizationCode(ctx, hash("code3"), base.Add(time.Second))
	wantErr(t, "RedeemAuthorizationCode(used code3)", err, latch.ErrConflict)
	if got == nil || got.SessionID != "f3" {
		t.Errorf("used code3 returned %+v, want SessionID f3 (the first family kept)", got)
	}
}

func testRedeemConcurrent(t *testing.T, s latch.Store) {
	const n = 20
	ctx := t.Context()
	mustUser(t, s, "alice")
	if err := s.CreateAuthorizationCode(ctx, newCode("code1", "alice", base)); err != nil {
		t.Fatalf("CreateAuthorizationCode: %v", err)
	}
	errs := make([]error, n)
	codes := make([]*latch.AuthorizationCode, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i], errs[i] = s.RedeemAuthorizationCode(ctx, hash("code1"), base.Add(time.Duration(i+1)*time.Millisecond))
		})
	}
	close(start)
	wg.Wait()
	wins, conflicts := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, latch.ErrConflict):
			conflicts++
			if codes[i] == nil || !codes[i].Redeemed() || codes[i].ReusedAt.IsZero() {
				t.Errorf("redemption %d lost with ErrConflict but returned %+v", i, codes[i])
			}
		default:
			t.Errorf("redemption %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 || conflicts != n-1 {
		t.Errorf("%d redemptions succeeded and %d conflicted, want 1 and %d", wins, conflicts, n-1)
	}
}

func testConsents(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	c := &latch.Consent{UserID: "alice", ClientID: "dash", Scopes: []string{"profile", "openid", "profile"}, GrantedAt: base}
	if err := s.GrantConsent(ctx, c); err != nil {
		t.Fatalf("GrantConsent: %v", err)
	}
	if !slices.Equal(c.Scopes, []string{"openid", "profile"}) {
		t.Errorf("GrantConsent set Scopes %v, want [openid profile]", c.Scopes)
	}
	// A second grant adds scopes; none is lost.
	c2 := &latch.Consent{UserID: "alice", ClientID: "dash", Scopes: []string{"email", "openid"}, GrantedAt: base.Add(time.Hour)}
	if err := s.GrantConsent(ctx, c2); err != nil {
		t.Fatalf("GrantConsent(more): %v", err)
	}
	want := &latch.Consent{UserID: "alice", ClientID: "dash", Scopes: []string{"email", "openid", "profile"}, GrantedAt: base.Add(time.Hour)}
	checkEqual(t, "GrantConsent result", c2, want)
	got, err := s.Consent(ctx, "alice", "dash")
	if err != nil {
		t.Fatalf("Consent: %v", err)
	}
	checkEqual(t, "Consent", got, want)
	_, err = s.Consent(ctx, "alice", "other")
	wantErr(t, "Consent(no grant)", err, latch.ErrNotFound)
	_, err = s.Consent(ctx, "bob", "dash")
	wantErr(t, "Consent(other user)", err, latch.ErrNotFound)

	for _, g := range []*latch.Consent{
		{UserID: "alice", ClientID: "Admin", Scopes: []string{"openid"}, GrantedAt: base},
		{UserID: "alice", ClientID: "blog", GrantedAt: base},
		{UserID: "bob", ClientID: "dash", Scopes: []string{"openid"}, GrantedAt: base},
	} {
		if err := s.GrantConsent(ctx, g); err != nil {
			t.Fatalf("GrantConsent(%s, %s): %v", g.UserID, g.ClientID, err)
		}
	}
	list, err := s.ConsentsByUser(ctx, "alice")
	if err != nil {
		t.Fatalf("ConsentsByUser: %v", err)
	}
	var clients []string
	for _, c := range list {
		clients = append(clients, c.ClientID)
	}
	if !slices.Equal(clients, []string{"Admin", "blog", "dash"}) {
		t.Errorf("ConsentsByUser clients = %v, want [Admin blog dash] (byte order)", clients)
	}
	if len(list) == 3 && len(list[1].Scopes) != 0 {
		t.Errorf("consent without scopes came back with %v", list[1].Scopes)
	}

	if err := s.RevokeConsent(ctx, "alice", "dash"); err != nil {
		t.Fatalf("RevokeConsent: %v", err)
	}
	_, err = s.Consent(ctx, "alice", "dash")
	wantErr(t, "Consent(revoked)", err, latch.ErrNotFound)
	wantErr(t, "RevokeConsent(again)", s.RevokeConsent(ctx, "alice", "dash"), latch.ErrNotFound)
	if _, err := s.Consent(ctx, "bob", "dash"); err != nil {
		t.Errorf("revoking alice's consent touched bob's: %v", err)
	}
	// Granting after a revocation starts afresh.
	if err := s.GrantConsent(ctx, &latch.Consent{UserID: "alice", ClientID: "dash", Scopes: []string{"openid"}, GrantedAt: base}); err != nil {
		t.Fatalf("GrantConsent(after revoke): %v", err)
	}
	if got, err := s.Consent(ctx, "alice", "dash"); err != nil || !slices.Equal(got.Scopes, []string{"openid"}) {
		t.Errorf("consent after revoke and grant = %+v, %v; want [openid]", got, err)
	}
}

// message returns an outbox message due at notBefore.
func message(key string, notBefore time.Time) *latch.OutboxMessage {
	return &latch.OutboxMessage{Kind: "test", Key: key, Payload: []byte(`{"k":"` + key + `"}`), CreatedAt: base, NotBefore: notBefore}
}

// mustEnqueue enqueues m.
func mustEnqueue(t *testing.T, s latch.Store, m *latch.OutboxMessage) {
	t.Helper()
	if err := s.EnqueueOutbox(t.Context(), m); err != nil {
		t.Fatalf("EnqueueOutbox(%s): %v", m.Key, err)
	}
}

// ids returns the ids of the messages.
func ids(l []latch.OutboxMessage) []int64 {
	var out []int64
	for _, m := range l {
		out = append(out, m.ID)
	}
	return out
}

func testOutbox(t *testing.T, s latch.Store) {
	ctx := t.Context()
	a, b, later := message("a", base.Add(time.Second)), message("b", base), message("later", base.Add(time.Hour))
	for _, m := range []*latch.OutboxMessage{a, b, later} {
		mustEnqueue(t, s, m)
		if m.ID == 0 {
			t.Fatalf("EnqueueOutbox(%s) set no ID", m.Key)
		}
	}
	if a.ID >= b.ID || b.ID >= later.ID {
		t.Errorf("IDs %d, %d, %d do not increase", a.ID, b.ID, later.ID)
	}
	dup := message("a", base)
	mustEnqueue(t, s, dup)
	if dup.ID != 0 {
		t.Errorf("duplicate key got ID %d, want 0 (no-op)", dup.ID)
	}
	// Without a key, nothing is deduplicated.
	n1, n2 := message("", base.Add(2*time.Second)), message("", base.Add(2*time.Second))
	mustEnqueue(t, s, n1)
	mustEnqueue(t, s, n2)
	if n1.ID == 0 || n2.ID == 0 || n1.ID == n2.ID {
		t.Errorf("keyless messages got IDs %d and %d, want two new ones", n1.ID, n2.ID)
	}

	now := base.Add(time.Minute)
	got, err := s.ClaimOutbox(ctx, "w1", now, now.Add(time.Minute), 2)
	if err != nil {
		t.Fatalf("ClaimOutbox: %v", err)
	}
	if !slices.Equal(ids(got), []int64{b.ID, a.ID}) {
		t.Fatalf("ClaimOutbox(limit 2) = %v, want [%d %d] (oldest due first)", ids(got), b.ID, a.ID)
	}
	checkEqual(t, "claimed message", got[1], *a)
	rest := claimAll(t, s, "w2", now)
	if !slices.Equal(ids(rest), []int64{n1.ID, n2.ID}) {
		t.Errorf("second claim = %v, want the keyless ones [%d %d] (a and b are leased, later is not due)", ids(rest), n1.ID, n2.ID)
	}
	if got := claimAll(t, s, "w3", now); len(got) != 0 {
		t.Errorf("messages leased to others claimed again: %v", ids(got))
	}

	// Complete: only by the lease holder, only once.
	wantErr(t, "CompleteOutbox(other owner)", s.CompleteOutbox(ctx, b.ID, "w2", now), latch.ErrConflict)
	if err := s.CompleteOutbox(ctx, b.ID, "w1", now); err != nil {
		t.Fatalf("CompleteOutbox: %v", err)
	}
	wantErr(t, "CompleteOutbox(again)", s.CompleteOutbox(ctx, b.ID, "w1", now), latch.ErrConflict)
	wantErr(t, "RetryOutbox(delivered)", s.RetryOutbox(ctx, b.ID, "w1", "x", now, false, now), latch.ErrConflict)
	wantErr(t, "CompleteOutbox(unknown)", s.CompleteOutbox(ctx, 1<<40, "w1", now), latch.ErrNotFound)
	wantErr(t, "RetryOutbox(unknown)", s.RetryOutbox(ctx, 1<<40, "w1", "x", now, false, now), latch.ErrNotFound)

	// Retry: the lease is released and the message due again at next.
	wantErr(t, "RetryOutbox(other owner)", s.RetryOutbox(ctx, a.ID, "w2", "x", now, false, now), latch.ErrConflict)
	next := now.Add(10 * time.Minute)
	if err := s.RetryOutbox(ctx, a.ID, "w1", "connection refused", next, false, now); err != nil {
		t.Fatalf("RetryOutbox: %v", err)
	}
	wantErr(t, "CompleteOutbox(after retry)", s.CompleteOutbox(ctx, a.ID, "w1", now), latch.ErrConflict)
	if got := claimAll(t, s, "w3", next.Add(-time.Microsecond)); !slices.Equal(ids(got), []int64{n1.ID, n2.ID}) {
		t.Errorf("claim before the retry is due = %v, want only [%d %d], whose leases expired", ids(got), n1.ID, n2.ID)
	}
	got = claimAll(t, s, "w3", next)
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("claim at the retry time = %v, want [%d]", ids(got), a.ID)
	}
	want := *a
	want.Attempts, want.LastError, want.NotBefore = 1, "connection refused", next
	checkEqual(t, "retried message", got[0], want)

	// Give up: failed, never claimed again.
	if err := s.RetryOutbox(ctx, a.ID, "w3", "410 gone", next.Add(time.Minute), true, next); err != nil {
		t.Fatalf("RetryOutbox(give up): %v", err)
	}
	wantErr(t, "CompleteOutbox(failed)", s.CompleteOutbox(ctx, a.ID, "w3", next), latch.ErrConflict)
	for _, m := range claimAll(t, s, "w4", next.Add(24*time.Hour)) {
		if m.ID == a.ID || m.ID == b.ID {
			t.Errorf("a delivered or failed message was claimed again: %+v", m)
		}
	}
}

func testOutboxLeaseExpiry(t *testing.T, s latch.Store) {
	ctx := t.Context()
	m := message("m", base)
	mustEnqueue(t, s, m)
	got, err := s.ClaimOutbox(ctx, "first", base, base.Add(time.Minute), 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimOutbox(first) = %v, %v", ids(got), err)
	}
	if got := claimAll(t, s, "second", base.Add(time.Minute-time.Microsecond)); len(got) != 0 {
		t.Errorf("claimed inside another owner's lease: %v", ids(got))
	}
	// The first owner's lease expires (it died, or hangs): another owner
	// takes the message, and the first can no longer settle it.
	got, err = s.ClaimOutbox(ctx, "second", base.Add(time.Minute), base.Add(2*time.Minute), 10)
	if err != nil || len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("ClaimOutbox(second, after the lease) = %v, %v; want [%d]", ids(got), err, m.ID)
	}
	wantErr(t, "CompleteOutbox(expired lease)", s.CompleteOutbox(ctx, m.ID, "first", base.Add(time.Minute)), latch.ErrConflict)
	wantErr(t, "RetryOutbox(expired lease)", s.RetryOutbox(ctx, m.ID, "first", "x", base, false, base), latch.ErrConflict)
	if err := s.CompleteOutbox(ctx, m.ID, "second", base.Add(time.Minute)); err != nil {
		t.Errorf("CompleteOutbox(second): %v", err)
	}
}

func testOutboxConcurrent(t *testing.T, s latch.Store) {
	const messages, owners = 50, 3
	ctx := t.Context()
	want := map[int64]bool{}
	for i := range messages {
		m := message(fmt.Sprintf("m%02d", i), base.Add(time.Duration(i)*time.Millisecond))
		mustEnqueue(t, s, m)
		want[m.ID] = true
	}
	now := base.Add(time.Second)
	claimed := make([][]int64, owners)
	errs := make([]error, owners)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for o := range owners {
		wg.Go(func() {
			<-start
			// Bounded: a store that hands out leased messages again
			// would otherwise keep this loop going for ever.
			for range messages + 1 {
				got, err := s.ClaimOutbox(ctx, fmt.Sprintf("owner%d", o), now, now.Add(time.Hour), 4)
				if err != nil {
					errs[o] = err
					return
				}
				if len(got) == 0 {
					return
				}
				claimed[o] = append(claimed[o], ids(got)...)
			}
		})
	}
	close(start)
	wg.Wait()
	seen := map[int64]int{}
	for o := range owners {
		if errs[o] != nil {
			t.Errorf("owner %d: %v", o, errs[o])
		}
		for _, id := range claimed[o] {
			if prev, ok := seen[id]; ok {
				t.Errorf("message %d leased to owners %d and %d", id, prev, o)
			}
			seen[id] = o
			// Only the holder may complete it.
			for other := range owners {
				err := s.CompleteOutbox(ctx, id, fmt.Sprintf("owner%d", other), now)
				if other != o && !errors.Is(err, latch.ErrConflict) {
					t.Errorf("owner %d completed message %d of owner %d: %v", other, id, o, err)
				}
				if other == o && err != nil {
					t.Errorf("owner %d could not complete its message %d: %v", o, id, err)
				}
			}
		}
	}
	if len(seen) != messages {
		t.Errorf("%d of %d messages were leased", len(seen), messages)
	}
	for id := range want {
		if _, ok := seen[id]; !ok {
			t.Errorf("message %d was never leased", id)
		}
	}
}

func testPruneOIDC(t *testing.T, s latch.Store) {
	ctx := t.Context()
	now := base.Add(72 * time.Hour)
	keep := 24 * time.Hour
	mustUser(t, s, "alice")

	// Codes: one expired, one live.
	expired := newCode("expired", "alice", now.Add(-2*time.Minute))
	live := newCode("live", "alice", now.Add(-30*time.Second))
	for _, c := range []*latch.AuthorizationCode{expired, live} {
		if err := s.CreateAuthorizationCode(ctx, c); err != nil {
			t.Fatalf("CreateAuthorizationCode: %v", err)
		}
	}

	// SSO sessions: expired, ended, live.
	oldSSO := newSSO("old", "alice", base)
	oldSSO.ExpiresAt = now
	mustSSO(t, s, oldSSO)
	mustSSO(t, s, newSSO("ended", "alice", base))
	mustSSO(t, s, newSSO("live", "alice", base))
	if err := s.RecordSSOClient(ctx, "live", "dash", base); err != nil {
		t.Fatalf("RecordSSOClient: %v", err)
	}
	if _, err := s.EndSSOSession(ctx, "ended", "logout", now.Add(-time.Hour), latch.Cover{Until: now}); err != nil {
		t.Fatalf("EndSSOSession: %v", err)
	}

	// Outbox: delivered and failed before and inside the window, and a
	// pending one older than the window.
	msgs := map[string]*latch.OutboxMessage{}
	for _, k := range []string{"delivered-old", "delivered-new", "failed-old", "failed-new", "pending"} {
		m := message(k, base)
		mustEnqueue(t, s, m)
		msgs[k] = m
	}
	claimAll(t, s, "w", base)
	settle := map[string]time.Time{
		"delivered-old": now.Add(-keep - time.Second), "delivered-new": now.Add(-keep + time.Second),
		"failed-old": now.Add(-keep - time.Second), "failed-new": now.Add(-keep + time.Second),
	}
	for k, at := range settle {
		var err error
		if k[0] == 'd' {
			err = s.CompleteOutbox(ctx, msgs[k].ID, "w", at)
		} else {
			err = s.RetryOutbox(ctx, msgs[k].ID, "w", "gone", at, true, at)
		}
		if err != nil {
			t.Fatalf("settle %s: %v", k, err)
		}
	}

	if err := s.Prune(ctx, now, keep); err != nil {
		t.Fatalf("Prune: %v", err)
	}

	if _, err := s.RedeemAuthorizationCode(ctx, hash("expired"), expired.CreatedAt); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("expired code after Prune: %v, want ErrNotFound", err)
	}
	if _, err := s.RedeemAuthorizationCode(ctx, hash("live"), now); err != nil {
		t.Errorf("live code after Prune: %v", err)
	}
	for id, kept := range map[string]bool{"old": false, "ended": false, "live": true} {
		_, err := s.SSOSession(ctx, id)
		if kept && err != nil || !kept && !errors.Is(err, latch.ErrNotFound) {
			t.Errorf("SSO session %s after Prune: %v (kept %v)", id, err, kept)
		}
	}
	if err := s.RecordSSOClient(ctx, "live", "dash", now); err != nil {
		t.Errorf("live SSO session after Prune: %v", err)
	}
	// A pruned message is unknown (ErrNotFound); a kept settled one is
	// not leased any more (ErrConflict); the pending one is still leased.
	for k, m := range msgs {
		err := s.CompleteOutbox(ctx, m.ID, "nobody", now)
		want := latch.ErrConflict
		if k == "delivered-old" || k == "failed-old" {
			want = latch.ErrNotFound
		}
		wantErr(t, "message "+k+" after Prune", err, want)
	}
	if err := s.CompleteOutbox(ctx, msgs["pending"].ID, "w", now); err != nil {
		t.Errorf("pending message after Prune: %v", err)
	}
}

// EndSSOSessionRollsBack checks that EndSSOSession, and RevokeUser which
// ends the user's SSO sessions alike, are each one transaction: s
// is an empty store, and breakOutbox makes every later insert into the
// outbox fail (a trigger, say), so that EndSSOSession fails after it has
// ended the SSO session, revoked its family and appended to the feed.
// None of that may remain: the SSO session is live, the family live, the
// feed and the outbox unchanged.
func EndSSOSessionRollsBack(t *testing.T, s latch.Store, breakOutbox func(t *testing.T)) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustClient(t, s, "rp1", "https://rp1.example/bcl")
	mustSSO(t, s, newSSO("sso1", "alice", base))
	if err := s.RecordSSOClient(ctx, "sso1", "rp1", base); err != nil {
		t.Fatalf("RecordSSOClient: %v", err)
	}
	mustSession(t, s, linkedSession("f1", "alice", "rp1", "sso1", base))
	breakOutbox(t)

	at := base.Add(time.Hour)
	if _, err := s.EndSSOSession(ctx, "sso1", "logout", at, latch.Cover{Until: at.Add(time.Hour)}); err == nil {
		t.Fatal("EndSSOSession succeeded although the outbox insert fails")
	}
	// RevokeUser ends the SSO session in its own transaction, as one.
	if _, err := s.RevokeUser(ctx, "alice", "logout_all", at, latch.Cover{Until: at.Add(time.Hour)}, ""); err == nil {
		t.Fatal("RevokeUser succeeded although the outbox insert fails")
	}
	if got := mustGetSSO(t, s, "sso1"); got.Ended() {
		t.Errorf("the SSO session stayed ended after a failed EndSSOSession or RevokeUser: %+v", got)
	}
	if got := mustGetSession(t, s, "f1"); got.Revoked() {
		t.Errorf("the family stayed revoked after a failed EndSSOSession or RevokeUser: %+v", got)
	}
	if feed := mustRevocations(t, s, 0, base); len(feed) != 0 {
		t.Errorf("the feed kept %+v after a failed EndSSOSession or RevokeUser", feed)
	}
	if got := claimAll(t, s, "w", at); len(got) != 0 {
		t.Errorf("the outbox kept %+v after a failed EndSSOSession or RevokeUser", got)
	}
}

// testEndSSOSessionConcurrent races EndSSOSession against the creation of
// families from the SSO session and the recording of clients in it: once
// it has returned, no live family of the SSO session is left, and every
// client recorded before it was told.
func testEndSSOSessionConcurrent(t *testing.T, s latch.Store) {
	const n = 20
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSSO(t, s, newSSO("sso1", "alice", base))
	for i := range n {
		mustClient(t, s, fmt.Sprintf("rp%02d", i), fmt.Sprintf("https://rp%02d.example/bcl", i))
	}
	createErrs, recordErrs := make([]error, n), make([]error, n)
	start := make(chan struct{})
	done, endReturned := make(chan struct{}, n), make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			// Half the workers go before the end, a quarter race it and
			// a quarter come after it.
			if i >= 3*n/4 {
				<-endReturned
			}
			client := fmt.Sprintf("rp%02d", i)
			recordErrs[i] = s.RecordSSOClient(ctx, "sso1", client, base)
			f := linkedSession(fmt.Sprintf("f%02d", i), "alice", client, "sso1", base)
			createErrs[i] = s.CreateSession(ctx, f, hash(f.ID+"/1"))
			done <- struct{}{}
		})
	}
	var ended []string
	var endErr error
	wg.Go(func() {
		<-start
		for range n / 2 {
			<-done
		}
		ended, endErr = s.EndSSOSession(ctx, "sso1", "logout", base.Add(time.Minute), latch.Cover{Until: base.Add(time.Hour)})
		close(endReturned)
	})
	close(start)
	wg.Wait()
	if endErr != nil {
		t.Fatalf("EndSSOSession: %v", endErr)
	}
	told := map[string]bool{}
	for _, m := range claimAll(t, s, "w", base.Add(time.Hour)) {
		b, err := latch.ParseBackchannelLogout(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		told[b.ClientID] = true
	}
	for i := range n {
		client := fmt.Sprintf("rp%02d", i)
		switch err := recordErrs[i]; {
		case err == nil && !told[client]:
			t.Errorf("%s was recorded in the SSO session but not told of its end", client)
		case err != nil && !errors.Is(err, latch.ErrNotFound):
			t.Errorf("RecordSSOClient(%s): %v, want nil or ErrNotFound", client, err)
		}
		id := fmt.Sprintf("f%02d", i)
		switch err := createErrs[i]; {
		case err == nil:
			if got := mustGetSession(t, s, id); !got.Revoked() {
				t.Errorf("family %s of the ended SSO session is live", id)
			}
			if !slices.Contains(ended, id) {
				t.Errorf("family %s was revoked but EndSSOSession did not report it (%v)", id, ended)
			}
		case !errors.Is(err, latch.ErrNotFound):
			t.Errorf("CreateSession(%s): %v, want nil or ErrNotFound", id, err)
		}
	}
}
