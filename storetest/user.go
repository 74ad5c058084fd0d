package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

func testUsers(t *testing.T, s latch.Store) {
	ctx := t.Context()
	alice := mustUser(t, s, "alice")
	mustUser(t, s, "bob")

	got, err := s.UserByID(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkEqual(t, "UserByID", got, alice)
	got, err = s.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	checkEqual(t, "UserByEmail", got, alice)

	_, err = s.UserByID(ctx, "nobody")
	wantErr(t, "UserByID(unknown)", err, latch.ErrNotFound)
	_, err = s.UserByEmail(ctx, "nobody@example.com")
	wantErr(t, "UserByEmail(unknown)", err, latch.ErrNotFound)

	dup := newUser("alice2")
	dup.Email = alice.Email
	wantErr(t, "CreateUser(duplicate email)", s.CreateUser(ctx, dup), latch.ErrConflict)
	if _, err := s.UserByID(ctx, "alice2"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("user with a duplicate email was stored: UserByID error %v", err)
	}
	dup = newUser("alice")
	dup.Email = "other@example.com"
	wantErr(t, "CreateUser(duplicate id)", s.CreateUser(ctx, dup), latch.ErrConflict)

	at := base.Add(time.Hour)
	if err := s.SetPasswordHash(ctx, "alice", "$argon2id$new", at); err != nil {
		t.Fatalf("SetPasswordHash: %v", err)
	}
	want := *alice
	want.PasswordHash = "$argon2id$new"
	want.UpdatedAt = at
	got, err = s.UserByEmail(ctx, alice.Email)
	if err != nil {
		t.Fatalf("UserByEmail after SetPasswordHash: %v", err)
	}
	checkEqual(t, "after SetPasswordHash", got, &want)
	bob, err := s.UserByID(ctx, "bob")
	if err != nil {
		t.Fatalf("UserByID(bob): %v", err)
	}
	checkEqual(t, "other user after SetPasswordHash", bob, newUser("bob"))
}

// testUserEmails: emails are kept byte for byte (an NFD and an NFC
// spelling are two rows: canonicalising is the caller's business), Users
// walks every account by id, and SetEmail changes one email only while it
// is what the caller saw and never into another user's.
func testUserEmails(t *testing.T, s latch.Store) {
	ctx := t.Context()
	nfc, nfd, wide := "ren\u00e9@example.com", "rene\u0301@example.com", "ｋａｔｅ@example.com"
	for id, addr := range map[string]string{"u1": nfc, "u2": nfd, "u3": wide, "u4": "kate@example.com"} {
		u := newUser(id)
		u.Email = addr
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s, %+q): %v", id, addr, err)
		}
	}
	for _, addr := range []string{nfc, nfd, wide} {
		if u, err := s.UserByEmail(ctx, addr); err != nil || u.Email != addr {
			t.Errorf("UserByEmail(%+q) = %v, %v; want the row stored byte for byte", addr, u, err)
		}
	}
	for i := 5; i <= 9; i++ {
		mustUser(t, s, fmt.Sprintf("u%d", i))
	}

	var ids []string
	after := ""
	for page := 0; ; page++ {
		us, err := s.Users(ctx, after, 4)
		if err != nil {
			t.Fatalf("Users(%q, 4): %v", after, err)
		}
		if len(us) > 4 || page > 3 {
			t.Fatalf("Users(%q, 4) returned %d users on page %d", after, len(us), page)
		}
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		if len(us) < 4 {
			break
		}
		after = us[len(us)-1].ID
	}
	if want := []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}; !slices.Equal(ids, want) {
		t.Fatalf("walking Users by 4: %v, want %v", ids, want)
	}
	if us, err := s.Users(ctx, "u9", 10); err != nil || len(us) != 0 {
		t.Errorf("Users after the last id = %v, %v; want none", us, err)
	}
	us, err := s.Users(ctx, "u1", 1)
	if err != nil || len(us) != 1 {
		t.Fatalf("Users(u1, 1) = %v, %v", us, err)
	}
	want := newUser("u2")
	want.Email = nfd
	checkEqual(t, "Users(u1, 1)", us[0], want)

	at := base.Add(time.Hour)
	if err := s.SetEmail(ctx, "u2", nfd, nfc, at); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("SetEmail into another user's email: %v, want ErrConflict", err)
	}
	if err := s.SetEmail(ctx, "u3", nfd, "x@example.com", at); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("SetEmail with a stale from: %v, want ErrNotFound", err)
	}
	if err := s.SetEmail(ctx, "nobody", nfd, "x@example.com", at); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("SetEmail of an unknown user: %v, want ErrNotFound", err)
	}
	for id, addr := range map[string]string{"u2": nfd, "u3": wide} {
		got, err := s.UserByID(ctx, id)
		if err != nil || got.Email != addr || !got.UpdatedAt.Equal(base) {
			t.Errorf("after refused SetEmails, %s = %+v, %v; want unchanged", id, got, err)
		}
	}

	if err := s.SetEmail(ctx, "u3", wide, "kate2@example.com", at); err != nil {
		t.Fatalf("SetEmail: %v", err)
	}
	want = newUser("u3")
	want.Email, want.UpdatedAt = "kate2@example.com", at
	got, err := s.UserByEmail(ctx, "kate2@example.com")
	if err != nil {
		t.Fatalf("UserByEmail after SetEmail: %v", err)
	}
	checkEqual(t, "after SetEmail", got, want)
	if _, err := s.UserByEmail(ctx, wide); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("old email after SetEmail: %v, want ErrNotFound", err)
	}
	// The old email is free again.
	u := newUser("u10")
	u.Email = wide
	if err := s.CreateUser(ctx, u); err != nil {
		t.Errorf("CreateUser with the email given up: %v", err)
	}
}
