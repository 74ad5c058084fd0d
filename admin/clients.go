package admin

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// Clients is the console's client registry: list and create, with the
// rules of `latch client add` (auth.Service.CreateClient), recorded as
// client_created (by auth) and admin_action events.
type Clients struct {
	auth  *auth.Service
	audit audit
}

// NewClients returns Clients.
func NewClients(a *auth.Service, events latch.EventStore, now func() time.Time, log *slog.Logger) *Clients {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Clients{auth: a, audit: audit{events: events, now: now, log: log}}
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
