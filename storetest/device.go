package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// newDevice returns a device of the user first seen at base in Seoul.
func newDevice(id, userID, cookieID string) *latch.Device {
	return &latch.Device{
		ID: id, UserID: userID, CookieID: cookieID, Family: "Chrome|Windows 10",
		Browser: "Chrome 120", OS: "Windows 10", CreatedAt: base, LastSeenAt: base, LastIP: "192.0.2.7",
		LastPlace: latch.Place{Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 4766},
	}
}

// testDevices: devices and places round-trip, are updated in place, are
// known by cookie for their user only, and are renamed and forgotten by
// their user only.
func testDevices(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")

	d := newDevice("dev_a", "alice", "cookie-a")
	if err := s.RecordDeviceUse(ctx, d); err != nil {
		t.Fatalf("RecordDeviceUse: %v", err)
	}
	wantErr(t, "RecordDeviceUse(unknown user)", s.RecordDeviceUse(ctx, newDevice("dev_x", "nobody", "")), latch.ErrNotFound)
	list, err := s.Devices(ctx, "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("Devices = %v, %v; want one", list, err)
	}
	checkEqual(t, "Devices[0]", *list[0], *d)

	// A later use from another address and country updates the row.
	later := *d
	later.LastSeenAt = base.Add(time.Hour)
	later.LastIP = "198.51.100.9"
	later.LastPlace = latch.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, Located: true, ASN: 3320}
	later.Name = "ignored: only RenameDevice names"
	if err := s.RecordDeviceUse(ctx, &later); err != nil {
		t.Fatal(err)
	}
	list, _ = s.Devices(ctx, "alice")
	if len(list) != 1 || list[0].LastIP != "198.51.100.9" || list[0].LastPlace.Country != "DE" ||
		!list[0].LastSeenAt.Equal(later.LastSeenAt) || !list[0].CreatedAt.Equal(base) || list[0].Name != "" {
		t.Errorf("after a second use: %+v", list)
	}
	places, err := s.Places(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(places.Countries, []string{"DE", "KR"}) || !slices.Equal(places.ASNs, []uint{3320, 4766}) {
		t.Errorf("Places = %+v; want DE, KR and 3320, 4766", places)
	}
	if p, _ := s.Places(ctx, "bob"); len(p.Countries)+len(p.ASNs) != 0 {
		t.Errorf("bob's places = %+v; want none", p)
	}

	// A device without a cookie gets one later.
	nc := newDevice("dev_b", "alice", "")
	nc.LastSeenAt = base.Add(2 * time.Hour)
	if err := s.RecordDeviceUse(ctx, nc); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeviceKnown(ctx, "alice", ""); ok || err != nil {
		t.Errorf("DeviceKnown(empty) = %v, %v; want false", ok, err)
	}
	nc.CookieID = "cookie-b"
	if err := s.RecordDeviceUse(ctx, nc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, cookie string
		want         bool
	}{{"alice", "cookie-a", true}, {"alice", "cookie-b", true}, {"bob", "cookie-a", false}, {"alice", "cookie-z", false}} {
		if ok, err := s.DeviceKnown(ctx, c.user, c.cookie); ok != c.want || err != nil {
			t.Errorf("DeviceKnown(%s, %s) = %v, %v; want %v", c.user, c.cookie, ok, err, c.want)
		}
	}
	list, _ = s.Devices(ctx, "alice")
	if len(list) != 2 || list[0].ID != "dev_b" || list[1].ID != "dev_a" {
		t.Errorf("Devices order: %+v; want dev_b (latest) first", list)
	}
	// Another user's cookie id is no conflict.
	if err := s.RecordDeviceUse(ctx, newDevice("dev_c", "bob", "cookie-a")); err != nil {
		t.Errorf("bob's device with alice's cookie id: %v", err)
	}

	// Rename and forget act on the owner's devices only.
	wantErr(t, "RenameDevice(other user)", s.RenameDevice(ctx, "bob", "dev_a", "mine"), latch.ErrNotFound)
	wantErr(t, "ForgetDevice(other user)", s.ForgetDevice(ctx, "bob", "dev_a"), latch.ErrNotFound)
	if err := s.RenameDevice(ctx, "alice", "dev_a", "Work laptop"); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.Devices(ctx, "alice"); list[1].Name != "Work laptop" {
		t.Errorf("after RenameDevice: %+v", list[1])
	}
	if err := s.ForgetDevice(ctx, "alice", "dev_a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.DeviceKnown(ctx, "alice", "cookie-a"); ok {
		t.Error("a forgotten device is still known")
	}
	wantErr(t, "ForgetDevice(again)", s.ForgetDevice(ctx, "alice", "dev_a"), latch.ErrNotFound)
}

// newAlert returns an alert of the user for the device, created at base,
// valid for a week.
func newAlert(id, userID, deviceID string) *latch.SignInAlert {
	return &latch.SignInAlert{
		ID: id, UserID: userID, DeviceID: deviceID, MeHash: hash(id + "/me"), NotMeHash: hash(id + "/not-me"),
		CreatedAt: base, ExpiresAt: base.Add(7 * 24 * time.Hour),
		IP: "192.0.2.7", Country: "KR", City: "Seoul", Browser: "Chrome 120", OS: "Windows 10",
	}
}

// testSignInAlerts: an alert is read without being spent, answered once
// (either link spends both), only before it expires; "yes" confirms its
// device in the same call.
func testSignInAlerts(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	if err := s.RecordDeviceUse(ctx, newDevice("dev_a", "alice", "c")); err != nil {
		t.Fatal(err)
	}
	a := newAlert("al_1", "alice", "dev_a")
	if err := s.CreateSignInAlert(ctx, a); err != nil {
		t.Fatalf("CreateSignInAlert: %v", err)
	}
	wantErr(t, "CreateSignInAlert(same id)", s.CreateSignInAlert(ctx, a), latch.ErrConflict)
	now := base.Add(time.Hour)

	got, answer, err := s.SignInAlert(ctx, a.NotMeHash, now)
	if err != nil || answer != latch.AlertAnswerNotMe {
		t.Fatalf("SignInAlert(not me) = %v, %q, %v", got, answer, err)
	}
	checkEqual(t, "SignInAlert", *got, *a)
	if _, answer, _ := s.SignInAlert(ctx, a.MeHash, now); answer != latch.AlertAnswerMe {
		t.Errorf("SignInAlert(me) answer %q", answer)
	}
	_, _, err = s.SignInAlert(ctx, hash("unknown"), now)
	wantErr(t, "SignInAlert(unknown)", err, latch.ErrNotFound)
	_, _, err = s.SignInAlert(ctx, a.MeHash, a.ExpiresAt)
	wantErr(t, "SignInAlert(expired)", err, latch.ErrNotFound)
	_, err = s.AnswerSignInAlert(ctx, a.MeHash, a.ExpiresAt)
	wantErr(t, "AnswerSignInAlert(expired)", err, latch.ErrNotFound)

	got, err = s.AnswerSignInAlert(ctx, a.MeHash, now)
	if err != nil || got.Answer != latch.AlertAnswerMe || !got.AnsweredAt.Equal(now) {
		t.Fatalf("AnswerSignInAlert(me) = %+v, %v", got, err)
	}
	if list, _ := s.Devices(ctx, "alice"); len(list) != 1 || !list[0].ConfirmedAt.Equal(now) {
		t.Errorf("device after yes-it-was-me: %+v; want confirmed at %v", list, now)
	}
	// Either link is spent now.
	for _, h := range [][]byte{a.MeHash, a.NotMeHash} {
		_, err = s.AnswerSignInAlert(ctx, h, now)
		wantErr(t, "AnswerSignInAlert(answered)", err, latch.ErrNotFound)
		_, _, err = s.SignInAlert(ctx, h, now)
		wantErr(t, "SignInAlert(answered)", err, latch.ErrNotFound)
	}

	b := newAlert("al_2", "alice", "dev_a")
	b.CreatedAt = base.Add(time.Minute)
	if err := s.CreateSignInAlert(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err = s.AnswerSignInAlert(ctx, b.NotMeHash, now)
	if err != nil || got.Answer != latch.AlertAnswerNotMe {
		t.Fatalf("AnswerSignInAlert(not me) = %+v, %v", got, err)
	}
	list, err := s.SignInAlerts(ctx, "alice", 10)
	if err != nil || len(list) != 2 || list[0].ID != "al_2" || list[1].Answer != latch.AlertAnswerMe {
		t.Errorf("SignInAlerts = %+v, %v; want al_2 then al_1", list, err)
	}
	if list, _ := s.SignInAlerts(ctx, "alice", 1); len(list) != 1 {
		t.Errorf("SignInAlerts(limit 1) gave %d", len(list))
	}
}

// testSignInAlertAnswerConcurrent: of concurrent answers to one alert,
// through either link, exactly one succeeds.
func testSignInAlertAnswerConcurrent(t *testing.T, s latch.Store) {
	mustUser(t, s, "alice")
	a := newAlert("al_1", "alice", "dev_a")
	if err := s.CreateSignInAlert(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 16 {
		h := a.MeHash
		if i%2 == 1 {
			h = a.NotMeHash
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AnswerSignInAlert(t.Context(), h, base.Add(time.Minute)); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent answers succeeded; want 1", wins)
	}
}

// testCreateSessionOutbox: the messages given to CreateSession are
// enqueued with the session, and not at all when the session is refused.
func testCreateSessionOutbox(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	msg := func(to string) *latch.OutboxMessage {
		return &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: base, NotBefore: base,
			Payload: latch.EmailMessage{To: to, Template: "new_device"}.Payload()}
	}
	m := msg("alice@example.com")
	if err := s.CreateSession(ctx, newSession("s1", "alice", base), hash("s1/1"), m); err != nil {
		t.Fatalf("CreateSession with a message: %v", err)
	}
	if m.ID == 0 {
		t.Error("CreateSession did not set the message's ID")
	}
	// Refused (the token hash is taken): its message is not enqueued.
	err := s.CreateSession(ctx, newSession("s2", "alice", base), hash("s1/1"), msg("lost@example.com"))
	wantErr(t, "CreateSession(duplicate hash)", err, latch.ErrConflict)
	if _, err := s.Session(ctx, "s2"); err == nil {
		t.Error("the refused session was stored")
	}
	claimed, err := s.ClaimOutbox(ctx, "test", base, base.Add(time.Minute), 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != m.ID {
		t.Errorf("ClaimOutbox = %+v, %v; want only the message of the created session", claimed, err)
	}
}

// testCreateSessionLocked: a locked user gets no session (ErrLocked), and
// none of its messages; unlocked, it does.
func testCreateSessionLocked(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	if err := s.LockUser(ctx, "alice", latch.LockReasonResetRequired, base); err != nil {
		t.Fatal(err)
	}
	m := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: base, NotBefore: base,
		Payload: latch.EmailMessage{To: "alice@example.com", Template: "new_device"}.Payload()}
	err := s.CreateSession(ctx, newSession("s1", "alice", base), hash("s1/1"), m)
	wantErr(t, "CreateSession(locked user)", err, latch.ErrLocked)
	err = s.CreateSession(ctx, newSession("s2", "alice", base), hash("s2/1"))
	wantErr(t, "CreateSession(locked user, no message)", err, latch.ErrLocked)
	if live, _ := s.SessionsByUser(ctx, "alice", base); len(live) != 0 {
		t.Errorf("a locked user has sessions: %+v", live)
	}
	if claimed, _ := s.ClaimOutbox(ctx, "test", base, base.Add(time.Minute), 10); len(claimed) != 0 {
		t.Errorf("the refused session's message was enqueued: %+v", claimed)
	}
	if err := s.UnlockUser(ctx, "alice", "", base); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, newSession("s3", "alice", base))
}

// testCreateSessionLockRace: sign-ins racing a lock that is followed by
// RevokeUser (as every lock is) leave no live session.
func testCreateSessionLockRace(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "s" + string(rune('a'+i))
			_ = s.CreateSession(ctx, newSession(id, "alice", base), hash(id+"/1"))
		}()
	}
	if err := s.LockUser(ctx, "alice", latch.LockReasonResetRequired, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeUser(ctx, "alice", "account_locked", base, latch.Cover{Until: base.Add(time.Hour)}, ""); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if live, _ := s.SessionsByUser(ctx, "alice", base); len(live) != 0 {
		t.Errorf("%d sessions alive after the lock and RevokeUser", len(live))
	}
}

// testPruneDevices: Prune forgets devices unseen for DeviceRetention and
// alerts expired longer ago than events are kept, and nothing newer.
func testPruneDevices(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	old := newDevice("dev_old", "alice", "c-old")
	recent := newDevice("dev_new", "alice", "c-new")
	recent.LastSeenAt = base.Add(latch.DeviceRetention)
	for _, d := range []*latch.Device{old, recent} {
		if err := s.RecordDeviceUse(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	stale := newAlert("al_old", "alice", "dev_old")
	fresh := newAlert("al_new", "alice", "dev_new")
	fresh.ExpiresAt = base.Add(latch.DeviceRetention)
	for _, a := range []*latch.SignInAlert{stale, fresh} {
		if err := s.CreateSignInAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	now := base.Add(latch.DeviceRetention + time.Second)
	if err := s.Prune(ctx, now, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Devices(ctx, "alice"); len(list) != 1 || list[0].ID != "dev_new" {
		t.Errorf("devices after Prune: %+v; want dev_new only", list)
	}
	if list, _ := s.SignInAlerts(ctx, "alice", 10); len(list) != 1 || list[0].ID != "al_new" {
		t.Errorf("alerts after Prune: %+v; want al_new only", list)
	}
}
