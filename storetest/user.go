package storetest

import (
	"errors"
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
