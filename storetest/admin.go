package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// testAdmins: roles round-trip and are counted; a setup token creates the
// first administrator once, never after one exists, never when used or
// expired, and a refused attempt changes nothing.
func testAdmins(t *testing.T, s latch.Store) {
	ctx := t.Context()
	if n, err := s.CountAdmins(ctx); err != nil || n != 0 {
		t.Fatalf("CountAdmins of an empty store = %d, %v; want 0", n, err)
	}
	tok := &latch.SetupToken{Hash: hash("setup"), CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateSetupToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateSetupToken with a taken hash", s.CreateSetupToken(ctx, tok), latch.ErrConflict)

	// An expired token and an unknown one create nobody.
	wantErr(t, "CreateFirstAdmin with an expired token",
		s.CreateFirstAdmin(ctx, tok.Hash, base.Add(time.Hour), newUser("late")), latch.ErrNotFound)
	wantErr(t, "CreateFirstAdmin with an unknown token",
		s.CreateFirstAdmin(ctx, hash("other"), base.Add(time.Minute), newUser("stranger")), latch.ErrNotFound)
	// A taken email: refused, and the token stays usable.
	mustUser(t, s, "taken")
	clash := newUser("clash")
	clash.Email = "taken@example.com"
	wantErr(t, "CreateFirstAdmin with a taken email", s.CreateFirstAdmin(ctx, tok.Hash, base.Add(time.Minute), clash), latch.ErrConflict)

	first := newUser("first")
	if err := s.CreateFirstAdmin(ctx, tok.Hash, base.Add(time.Minute), first); err != nil {
		t.Fatalf("CreateFirstAdmin: %v", err)
	}
	u, err := s.UserByID(ctx, "first")
	if err != nil || u.Role != latch.RoleAdmin || !u.Admin() {
		t.Fatalf("the first admin = %+v, %v; want role admin", u, err)
	}
	for _, id := range []string{"late", "stranger", "clash"} {
		if _, err := s.UserByID(ctx, id); err == nil {
			t.Errorf("a refused CreateFirstAdmin created %s", id)
		}
	}
	// Replayed: refused.
	wantErr(t, "CreateFirstAdmin with a used token",
		s.CreateFirstAdmin(ctx, tok.Hash, base.Add(2*time.Minute), newUser("replay")), latch.ErrNotFound)
	// A fresh token once an admin exists: void.
	tok2 := &latch.SetupToken{Hash: hash("setup2"), CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateSetupToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateFirstAdmin once an admin exists",
		s.CreateFirstAdmin(ctx, tok2.Hash, base.Add(time.Minute), newUser("second")), latch.ErrAdminExists)
	if _, err := s.UserByID(ctx, "second"); err == nil {
		t.Error("a void setup token created a user")
	}

	// Roles.
	if err := s.SetRole(ctx, "taken", latch.RoleAdmin, base); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountAdmins(ctx); err != nil || n != 2 {
		t.Errorf("CountAdmins = %d, %v; want 2", n, err)
	}
	if err := s.SetRole(ctx, "first", "", base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UserByID(ctx, "first"); err != nil || u.Admin() || !u.UpdatedAt.Equal(base.Add(time.Second)) {
		t.Errorf("demoted admin = %+v, %v; want no role, UpdatedAt moved", u, err)
	}
	wantErr(t, "SetRole of an unknown user", s.SetRole(ctx, "nobody", latch.RoleAdmin, base), latch.ErrNotFound)
	// CreateUser keeps the role it is given.
	made := newUser("made")
	made.Role = latch.RoleAdmin
	if err := s.CreateUser(ctx, made); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UserByID(ctx, "made"); err != nil || !u.Admin() {
		t.Errorf("CreateUser with the admin role = %+v, %v", u, err)
	}
}

// testFirstAdminConcurrent: many setup tokens (one per instance) spent at
// once create exactly one administrator.
func testFirstAdminConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	const n = 8
	for i := range n {
		if err := s.CreateSetupToken(ctx, &latch.SetupToken{Hash: hash(string(rune('a' + i))), CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.CreateFirstAdmin(ctx, hash(string(rune('a'+i))), base.Add(time.Minute), newUser("admin"+string(rune('a'+i))))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				wantErr(t, "losing CreateFirstAdmin", err, latch.ErrAdminExists)
			}
		}()
	}
	close(start)
	wg.Wait()
	if c, err := s.CountAdmins(ctx); wins != 1 || err != nil || c != 1 {
		t.Errorf("%d of %d concurrent setups won, %d admins (%v); want exactly 1", wins, n, c, err)
	}
}
