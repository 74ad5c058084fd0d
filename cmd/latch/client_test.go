package main

import (
	"path/filepath"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
)

// TestClientAddCan: --can read-revocations is stored on the client; a
// client registered without it does not get it; an unknown permission
// and a permission on a public client are refused.
func TestClientAddCan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "api", "--generate-secret", "--can", "read-revocations"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "plain", "--generate-secret"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "x", "--generate-secret", "--can", "everything"); err == nil {
		t.Fatal("an unknown permission was accepted")
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "y", "--public", "--can", "read-revocations"); err == nil {
		t.Fatal("a public client was given read-revocations")
	}
	cfg := config.Defaults()
	cfg.DataDir = dir
	st, err := instance.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, want := range map[string]bool{"api": true, "plain": false} {
		c, err := st.Client(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Can(latch.PermissionReadRevocations); got != want {
			t.Errorf("client %s: Can(read-revocations) = %v, want %v (%v)", id, got, want, c.Permissions)
		}
	}
	for _, id := range []string{"x", "y"} {
		if _, err := st.Client(t.Context(), id); err == nil {
			t.Errorf("refused client %s was stored", id)
		}
	}
}
