package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/verifier/revocation"
)

type fakeSigner struct{}

func (fakeSigner) Sign(jwt.Claims) (string, error) { return "signed", nil }

type fakeSealer struct{}

func (fakeSealer) Seal(p, _ []byte) []byte          { return p }
func (fakeSealer) Open(s, _ []byte) ([]byte, error) { return s, nil }
func (fakeSealer) MAC(_ string, m []byte) []byte    { return m }

// racingStore runs between, once, right after a client is read: another
// request (another administrator, a script) acting between the read and
// the write of an edit.
type racingStore struct {
	*sqlite.Store
	between func()
}

func (s *racingStore) Client(ctx context.Context, id string) (*latch.Client, error) {
	c, err := s.Store.Client(ctx, id)
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return c, err
}

func newClients(t *testing.T) (*admin.Clients, *racingStore, *auth.Service) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := password.NewHasher(password.DefaultParams, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := auth.New(auth.Config{
		Issuer: "https://id.example", Audience: "https://id.example", ClientID: "latch",
		AccessTokenTTL: 5 * time.Minute, RefreshIdleTimeout: time.Hour, RefreshAbsoluteTTL: 24 * time.Hour,
	}, auth.Deps{Store: st, Signer: fakeSigner{}, Sealer: fakeSealer{}, Hasher: h, Revocations: revocation.NewSet(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rs := &racingStore{Store: st}
	return admin.NewClients(a, rs, nil, log), rs, a
}

// TestRedteam12_EditDuringDelete: a client deleted between an edit's (or a
// rotation's) read and write is not found (404), not a server error.
func TestRedteam12_EditDuringDelete(t *testing.T) {
	for _, op := range []string{"edit", "rotate"} {
		c, st, _ := newClients(t)
		ctx := t.Context()
		by := admin.Caller{AdminID: "u_root"}
		if _, _, err := c.Create(ctx, by, auth.NewClient{ID: "dash", RedirectURIs: []string{"https://dash.example.com/cb"}}); err != nil {
			t.Fatal(err)
		}
		st.between = func() {
			if err := c.Delete(ctx, by, "dash"); err != nil {
				t.Errorf("delete: %v", err)
			}
		}
		var err error
		if op == "edit" {
			name := "Dashboard"
			_, err = c.Update(ctx, by, "dash", admin.Edit{Name: &name})
		} else {
			_, err = c.RotateSecret(ctx, by, "dash")
		}
		if !errors.Is(err, admin.ErrClientNotFound) {
			t.Errorf("%s of a client deleted meanwhile: %v, want ErrClientNotFound", op, err)
		}
	}
}
