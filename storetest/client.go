package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

func testClients(t *testing.T, s latch.Store) {
	ctx := t.Context()
	svc := &latch.Client{ID: "svc", Name: "Service «Ω» &amp; co", SecretHash: "sha256:abc", Scopes: []string{"read", "write"}, Audience: "https://api.example", Delivery: latch.DeliveryBearer,
		Permissions:            []string{latch.PermissionReadRevocations},
		RedirectURIs:           []string{"https://dash.example.com/callback", "https://dash.example.com/cb?x=1 y"},
		PostLogoutRedirectURIs: []string{"https://dash.example.com/bye"},
		BackchannelLogoutURI:   "https://dash.example.com/backchannel",
		FirstParty:             true, IDTokenSignedResponseAlg: "ES256", CreatedAt: base}
	app := &latch.Client{ID: "app", Delivery: latch.DeliveryCookie, CreatedAt: base.Add(1)}
	legacy := &latch.Client{ID: "legacy", CreatedAt: base}
	for _, c := range []*latch.Client{svc, app, legacy} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatalf("CreateClient(%s): %v", c.ID, err)
		}
	}
	if err := s.CreateClient(ctx, &latch.Client{ID: "svc", CreatedAt: base}); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("duplicate CreateClient error = %v, want ErrConflict", err)
	}
	got, err := s.Client(ctx, "svc")
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	checkEqual(t, "Client(svc)", got, svc)
	if got.Public() {
		t.Error("a client with a secret reports Public")
	}
	if !got.Can(latch.PermissionReadRevocations) {
		t.Errorf("Client(svc).Permissions = %v: the permission was not kept", got.Permissions)
	}
	got, err = s.Client(ctx, "app")
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	if !got.Public() || len(got.Scopes) != 0 || got.Delivery != latch.DeliveryCookie || got.Permissions != nil || got.Can(latch.PermissionReadRevocations) ||
		got.RedirectURIs != nil || got.PostLogoutRedirectURIs != nil || got.BackchannelLogoutURI != "" || got.FirstParty || got.IDTokenSignedResponseAlg != "" || got.Name != "" {
		t.Errorf("public client = %+v", got)
	}
	if got, err := s.Client(ctx, "legacy"); err != nil || got.Delivery != latch.DeliveryBearer {
		t.Errorf("a client stored without a delivery mode = %+v, %v; want bearer", got, err)
	}
	if _, err := s.Client(ctx, "nope"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("Client(nope) error = %v, want ErrNotFound", err)
	}
	list, err := s.Clients(ctx)
	if err != nil {
		t.Fatalf("Clients: %v", err)
	}
	if len(list) != 3 || list[0].ID != "app" || list[1].ID != "legacy" || list[2].ID != "svc" {
		t.Errorf("Clients = %v, want app, legacy, svc", list)
	}
}

// testClientUpdateDelete: UpdateClient replaces every setting but the id,
// the secret and CreatedAt; SetClientSecret replaces the secret alone;
// DeleteClient removes the client and its consents; all are ErrNotFound
// for an unknown id.
func testClientUpdateDelete(t *testing.T, s latch.Store) {
	ctx := t.Context()
	c := &latch.Client{ID: "dash", SecretHash: "sha256:old", Scopes: []string{"openid"}, Delivery: latch.DeliveryBearer,
		RedirectURIs: []string{"https://dash.example.com/cb"}, CreatedAt: base}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	upd := &latch.Client{ID: "dash", Name: "Dashboard", SecretHash: "sha256:new", Scopes: []string{"openid", "profile"}, Audience: "https://api.example",
		Delivery: latch.DeliveryBearer, RedirectURIs: []string{"https://dash.example.com/cb", "https://dash.example.com/cb2"},
		PostLogoutRedirectURIs: []string{"https://dash.example.com/bye"}, FirstParty: true, CreatedAt: base.Add(time.Hour)}
	if err := s.UpdateClient(ctx, upd); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	got, err := s.Client(ctx, "dash")
	if err != nil {
		t.Fatal(err)
	}
	want := *upd
	want.CreatedAt, want.SecretHash = base, "sha256:old" // the secret is SetClientSecret's
	checkEqual(t, "the updated client", got, &want)
	wantErr(t, "UpdateClient of an unknown client", s.UpdateClient(ctx, &latch.Client{ID: "nobody"}), latch.ErrNotFound)
	if err := s.SetClientSecret(ctx, "dash", "sha256:new"); err != nil {
		t.Fatalf("SetClientSecret: %v", err)
	}
	got, err = s.Client(ctx, "dash")
	if err != nil {
		t.Fatal(err)
	}
	want.SecretHash = "sha256:new"
	checkEqual(t, "the client with its new secret", got, &want)
	wantErr(t, "SetClientSecret of an unknown client", s.SetClientSecret(ctx, "nobody", "sha256:x"), latch.ErrNotFound)

	mustUser(t, s, "alice")
	if err := s.GrantConsent(ctx, &latch.Consent{UserID: "alice", ClientID: "dash", Scopes: []string{"openid"}, GrantedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "dash"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	if _, err := s.Client(ctx, "dash"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("the deleted client: %v", err)
	}
	if _, err := s.Consent(ctx, "alice", "dash"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("a consent to the deleted client: %v", err)
	}
	wantErr(t, "DeleteClient of an unknown client", s.DeleteClient(ctx, "dash"), latch.ErrNotFound)
}
