package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// Clients is the console's client registry: list, create, edit, rotate a
// secret, delete, with the rules of `latch client add`
// (auth.Service.CreateClient and BuildClient), recorded as client_created
// (by auth) and admin_action events.
type Clients struct {
	auth  *auth.Service
	store ClientStore
	audit audit
}

// NewClients returns Clients.
func NewClients(a *auth.Service, st ClientStore, now func() time.Time, log *slog.Logger) *Clients {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Clients{auth: a, store: st, audit: audit{events: st, now: now, log: log}}
}

// List returns every registered client, by id.
func (c *Clients) List(ctx context.Context) ([]*latch.Client, error) { return c.auth.Clients(ctx) }

// Create registers a client. A confidential client (not n.Public) without
// a secret gets a generated one, returned once (only its hash is kept).
func (c *Clients) Create(ctx context.Context, by Caller, n auth.NewClient) (*latch.Client, string, error) {
	secret := ""
	if !n.Public && n.Secret == "" {
		n.Secret = auth.GenerateClientSecret()
		secret = n.Secret
	}
	cl, err := c.auth.CreateClient(ctx, n)
	if err != nil {
		return nil, "", err
	}
	c.audit.record(ctx, by, "create_client", "", map[string]string{"client": cl.ID})
	return cl, secret, nil
}

// ErrClientNotFound: no client has the id.
var ErrClientNotFound = errors.New("admin: no such client")

// ClientStore is what Clients changes besides auth.
type ClientStore interface {
	latch.ClientStore
	latch.EventStore
}

// Edit is a change of a client's settings: nil fields are kept.
type Edit struct {
	Name                   *string
	Scopes                 *[]string
	Audience               *string
	Delivery               *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	BackchannelLogoutURI   *string
	FirstParty             *bool
}

// current returns the stored client, or ErrClientNotFound.
func (c *Clients) current(ctx context.Context, id string) (*latch.Client, error) {
	cl, err := c.store.Client(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("admin: client: %w", err)
	}
	return cl, nil
}

// settings are a stored client's settings as auth.NewClient, with a
// stand-in secret for a confidential client (BuildClient requires one;
// the stored hash is kept unless the caller rotates it).
func settings(cl *latch.Client) auth.NewClient {
	n := auth.NewClient{ID: cl.ID, Name: cl.Name, Public: cl.Public(), Scopes: cl.Scopes, Audience: cl.Audience, Delivery: cl.Delivery,
		Permissions: cl.Permissions, RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs,
		BackchannelLogoutURI: cl.BackchannelLogoutURI, FirstParty: cl.FirstParty, IDTokenSignedResponseAlg: cl.IDTokenSignedResponseAlg}
	if !n.Public {
		n.Secret = auth.GenerateClientSecret()
	}
	return n
}

// Update applies e to the client, checked with the rules of latch client
// add (auth.Service.BuildClient).
func (c *Clients) Update(ctx context.Context, by Caller, id string, e Edit) (*latch.Client, error) {
	cl, err := c.current(ctx, id)
	if err != nil {
		return nil, err
	}
	n := settings(cl)
	if e.Name != nil {
		n.Name = *e.Name
	}
	if e.Scopes != nil {
		n.Scopes = *e.Scopes
	}
	if e.Audience != nil {
		n.Audience = *e.Audience
	}
	if e.Delivery != nil {
		n.Delivery = *e.Delivery
	}
	if e.RedirectURIs != nil {
		n.RedirectURIs = *e.RedirectURIs
	}
	if e.PostLogoutRedirectURIs != nil {
		n.PostLogoutRedirectURIs = *e.PostLogoutRedirectURIs
	}
	if e.BackchannelLogoutURI != nil {
		n.BackchannelLogoutURI = *e.BackchannelLogoutURI
	}
	if e.FirstParty != nil {
		n.FirstParty = *e.FirstParty
	}
	next, err := c.auth.BuildClient(n)
	if err != nil {
		return nil, err
	}
	// The store keeps the secret (a rotation racing this edit stays).
	next.SecretHash, next.CreatedAt = cl.SecretHash, cl.CreatedAt
	if err := c.store.UpdateClient(ctx, next); errors.Is(err, latch.ErrNotFound) {
		return nil, ErrClientNotFound // deleted since it was read
	} else if err != nil {
		return nil, fmt.Errorf("admin: update client: %w", err)
	}
	c.audit.record(ctx, by, "update_client", "", map[string]string{"client": id})
	return next, nil
}

// RotateSecret gives a confidential client a new generated secret,
// returned once; the old one stops working at once (tokens issued with it
// live out their lifetime).
func (c *Clients) RotateSecret(ctx context.Context, by Caller, id string) (string, error) {
	cl, err := c.current(ctx, id)
	if err != nil {
		return "", err
	}
	if cl.Public() {
		return "", ErrPublicClient
	}
	n := settings(cl)
	next, err := c.auth.BuildClient(n)
	if err != nil {
		return "", err
	}
	// Only the secret is written: an edit racing this rotation keeps its
	// settings, and cannot write the old secret back.
	if err := c.store.SetClientSecret(ctx, id, next.SecretHash); errors.Is(err, latch.ErrNotFound) {
		return "", ErrClientNotFound // deleted since it was read
	} else if err != nil {
		return "", fmt.Errorf("admin: rotate client secret: %w", err)
	}
	c.audit.record(ctx, by, "rotate_client_secret", "", map[string]string{"client": id})
	return n.Secret, nil
}

// ErrPublicClient: a public client has no secret to rotate.
var ErrPublicClient = errors.New("admin: a public client has no secret")

// Delete deletes the client and the consents to it.
func (c *Clients) Delete(ctx context.Context, by Caller, id string) error {
	if err := c.store.DeleteClient(ctx, id); errors.Is(err, latch.ErrNotFound) {
		return ErrClientNotFound
	} else if err != nil {
		return fmt.Errorf("admin: delete client: %w", err)
	}
	c.audit.record(ctx, by, "delete_client", "", map[string]string{"client": id})
	return nil
}
