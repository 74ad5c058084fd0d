package admin_test

import (
	"testing"

	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
)

// TestRedteam12_EditDuringRotation: an edit whose read precedes a secret
// rotation must not write the old secret's hash back: the operator who
// rotated a leaked secret was shown a new one, and the leaked one would
// work again (and the new one not at all).
func TestRedteam12_EditDuringRotation(t *testing.T) {
	c, st, a := newClients(t)
	ctx := t.Context()
	by := admin.Caller{AdminID: "u_root"}
	_, leaked, err := c.Create(ctx, by, auth.NewClient{ID: "dash", RedirectURIs: []string{"https://dash.example.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	var rotated string
	st.between = func() {
		var err error
		if rotated, err = c.RotateSecret(ctx, by, "dash"); err != nil {
			t.Errorf("rotate: %v", err)
		}
	}
	name := "Dashboard"
	if _, err := c.Update(ctx, by, "dash", admin.Edit{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if rotated == "" {
		t.Fatal("the rotation did not run")
	}
	if _, err := a.AuthenticateClient(ctx, "dash", leaked, true); err == nil {
		t.Error("after rotating the secret, the old (leaked) secret works again")
	}
	if _, err := a.AuthenticateClient(ctx, "dash", rotated, true); err != nil {
		t.Errorf("the rotated secret, shown once, does not work: %v", err)
	}
	if cl, _ := st.Store.Client(ctx, "dash"); cl == nil || cl.Name != name {
		t.Errorf("the edit was lost: %+v", cl)
	}
}
