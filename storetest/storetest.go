// Package storetest is a conformance suite for implementations of
// latch.Store. A backend's tests call Run with a function that opens a fresh,
// empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) latch.Store {
//			s, err := mystore.Open(t.Context(), ...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite tests only the contract documented in package latch, including
// that the store is safe for concurrent use and that Rotate and RotateKeys
// are atomic under contention. Beyond the doc comments it expects what any
// sensible backend does: times round-trip
// with at least microsecond precision (the suite uses times on whole
// microseconds and compares them with time.Time.Equal), an empty byte slice
// or map may come back as nil, the first refresh token of a session is
// created at the session's CreatedAt and a rotated one at Rotation.At, and
// revocation entries appended by RevokeSession and RevokeUser are created at
// the revocation time.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// Run runs the conformance suite as subtests of t. Each subtest calls open
// for a store of its own, which must be empty; open is responsible for
// closing it when the subtest ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) latch.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s latch.Store)
	}{
		{"Users", testUsers},
		{"UserEmails", testUserEmails},
		{"Clients", testClients},
		{"ClientUpdateDelete", testClientUpdateDelete},
		{"Sessions", testSessions},
		{"Rotate", testRotate},
		{"RotateStale", testRotateStale},
		{"RotateRevoked", testRotateRevoked},
		{"RotateConcurrent", testRotateConcurrent},
		{"RotateChainConcurrent", testRotateChainConcurrent},
		{"ClearSuccessors", testClearSuccessors},
		{"SessionsByUser", testSessionsByUser},
		{"RevokeSession", testRevokeSession},
		{"RevokeCoversLongerTokens", testRevokeCoversLongerTokens},
		{"ReplayGrace", testReplayGrace},
		{"ReplayGraceConcurrent", testReplayGraceConcurrent},
		{"RevokeUser", testRevokeUser},
		{"RevokeUserAndLock", testRevokeUserAndLock},
		{"Revocations", testRevocations},
		{"RevocationHead", testRevocationHead},
		{"Events", testEvents},
		{"PublishEvents", testPublishEvents},
		{"PublishEventsConcurrent", testPublishEventsConcurrent},
		{"Keys", testKeys},
		{"KeysConcurrent", testKeysConcurrent},
		{"KeyRevocation", testKeyRevocation},
		{"KeyFamilies", testKeyFamilies},
		{"KeyFamiliesConcurrent", testKeyFamiliesConcurrent},
		{"Prune", testPrune},
		{"SessionSSOLink", testSessionSSOLink},
		{"SSOSessions", testSSOSessions},
		{"EndSSOSession", testEndSSOSession},
		{"EndSSOSessionConcurrent", testEndSSOSessionConcurrent},
		{"RevokeUserEndsSSO", testRevokeUserEndsSSO},
		{"AuthorizationCodes", testAuthorizationCodes},
		{"RedeemConcurrent", testRedeemConcurrent},
		{"Consents", testConsents},
		{"Outbox", testOutbox},
		{"OutboxLeaseExpiry", testOutboxLeaseExpiry},
		{"OutboxConcurrent", testOutboxConcurrent},
		{"PruneOIDC", testPruneOIDC},
		{"AccountTokens", testAccountTokens},
		{"AccountTokenConsumeConcurrent", testAccountTokenConsumeConcurrent},
		{"AccountStates", testAccountStates},
		{"DeleteUser", testDeleteUser},
		{"Challenges", testChallenges},
		{"ChallengeConsumeConcurrent", testChallengeConsumeConcurrent},
		{"ChallengeFailConcurrent", testChallengeFailConcurrent},
		{"ChallengeLimitConcurrent", testChallengeLimitConcurrent},
		{"Devices", testDevices},
		{"SignInAlerts", testSignInAlerts},
		{"SignInAlertAnswerConcurrent", testSignInAlertAnswerConcurrent},
		{"CreateSessionOutbox", testCreateSessionOutbox},
		{"CreateSessionLocked", testCreateSessionLocked},
		{"CreateSessionLockRace", testCreateSessionLockRace},
		{"PruneDevices", testPruneDevices},
		{"Admins", testAdmins},
		{"FirstAdminConcurrent", testFirstAdminConcurrent},
		{"ConsoleUsers", testConsoleUsers},
		{"ConsoleEvents", testConsoleEvents},
		{"CountEvents", testCountEvents},
		{"CountLiveSessions", testCountLiveSessions},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f(t, open(t))
		})
	}
}

// base is the suite's reference time: in the future, so that no clock-based
// shortcut in a store can pass by accident, and not on a whole second, so
// that lost precision shows.
var base = time.Date(2031, time.March, 14, 15, 9, 26, 535897000, time.UTC)

// hash returns the SHA-256 of s, standing in for a refresh token hash.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// newUser returns a user with the id and the email "<id>@example.com".
func newUser(id string) *latch.User {
	return &latch.User{
		ID:           id,
		Email:        id + "@example.com",
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		CreatedAt:    base,
		UpdatedAt:    base,
	}
}

// newSession returns a session of user created at created that expires a
// day later.
func newSession(id, userID string, created time.Time) *latch.Session {
	return &latch.Session{
		ID:         id,
		UserID:     userID,
		ClientID:   "web",
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64)",
		IP:         "192.0.2.7",
		CreatedAt:  created,
		AuthTime:   created.Add(-time.Minute),
		LastUsedAt: created,
		ExpiresAt:  created.Add(24 * time.Hour),
		Generation: 1,
		// The first access token, issued at sign-in.
		AccessExpiresAt: created.Add(5 * time.Minute),
	}
}

// mustUser stores a user with the id.
func mustUser(t *testing.T, s latch.Store, id string) *latch.User {
	t.Helper()
	u := newUser(id)
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return u
}

// mustSession stores sess with the token hash of "<id>/1".
func mustSession(t *testing.T, s latch.Store, sess *latch.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess, hash(sess.ID+"/1")); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

// mustGetSession returns the stored session with the id.
func mustGetSession(t *testing.T, s latch.Store, id string) *latch.Session {
	t.Helper()
	sess, err := s.Session(t.Context(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return sess
}

// mustRevocations returns every entry after seq that is live at now.
func mustRevocations(t *testing.T, s latch.Store, after int64, now time.Time) []latch.Revocation {
	t.Helper()
	list, err := s.RevocationsAfter(t.Context(), after, now, 1000)
	if err != nil {
		t.Fatalf("RevocationsAfter(%d): %v", after, err)
	}
	return list
}

// wantErr fails t unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// checkEqual fails t if got and want, of the same struct type, differ:
// times are compared with Equal, byte slices and maps treat nil as empty.
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := diff(reflect.ValueOf(got), reflect.ValueOf(want), ""); d != "" {
		t.Errorf("%s:%s", what, d)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// diff describes how got differs from want, or returns "".
func diff(got, want reflect.Value, path string) string {
	if got.Type() != want.Type() {
		return fmt.Sprintf(" %s: type %s, want %s", path, got.Type(), want.Type())
	}
	switch {
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			return fmt.Sprintf(" %s = %v, want %v", path, g, w)
		}
	case got.Kind() == reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return fmt.Sprintf(" %s = %v, want %v", path, got, want)
			}
			return ""
		}
		return diff(got.Elem(), want.Elem(), path)
	case got.Kind() == reflect.Struct:
		var d string
		for i := range got.NumField() {
			d += diff(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name)
		}
		return d
	case got.Kind() == reflect.Slice && got.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			return fmt.Sprintf(" %s = %x, want %x", path, got.Bytes(), want.Bytes())
		}
	case got.Kind() == reflect.Slice || got.Kind() == reflect.Map:
		if got.Len() == 0 && want.Len() == 0 {
			return ""
		}
		fallthrough
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			return fmt.Sprintf(" %s = %#v, want %#v", path, got.Interface(), want.Interface())
		}
	}
	return ""
}

func testPing(t *testing.T, s latch.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
