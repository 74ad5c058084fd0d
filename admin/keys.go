package admin

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/keys"
)

// Ring is the part of the signing-key ring (keys.Ring) the console uses.
type Ring interface {
	List() []keys.Info
	RotateFamily(ctx context.Context, family string, immediate bool) (latch.SigningKey, error)
	Revoke(ctx context.Context, kid string) (keys.Revoked, error)
}

// Keys is the console's view of the signing-key ring: list, rotate now and
// revoke, as latch keys does, recorded as keys_rotated and key_revoked
// events (and admin_action).
type Keys struct {
	ring    Ring
	changed func(ctx context.Context, revoked bool)
	audit   audit
}

// NewKeys returns Keys. changed, if not nil, is called after a change so
// that the other instances reload the ring (and the feed, when revoked).
func NewKeys(r Ring, events latch.EventStore, changed func(ctx context.Context, revoked bool), now func() time.Time, log *slog.Logger) *Keys {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Keys{ring: r, changed: changed, audit: audit{events: events, now: now, log: log}}
}

// List returns the ring, key by key.
func (k *Keys) List() []keys.Info { return k.ring.List() }

// Rotate rotates every family now (the new keys sign at once): what an
// operator does from the console, after a suspected exposure, or on a
// schedule of their own. Families that fail are reported, the others
// rotate.
func (k *Keys) Rotate(ctx context.Context, by Caller) ([]latch.SigningKey, error) {
	var out []latch.SigningKey
	var first error
	for _, fam := range keys.Families() {
		nk, err := k.ring.RotateFamily(ctx, fam, true)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("admin: rotate the %s keys: %w", fam, err)
			}
			continue
		}
		out = append(out, nk)
		d := map[string]string{"kid": nk.ID, "family": nk.Family, "algorithm": nk.Algorithm, "immediate": "true"}
		k.event(ctx, by, latch.EventKeysRotated, d)
		k.audit.record(ctx, by, "rotate_keys", "", map[string]string{"kid": nk.ID, "family": nk.Family})
	}
	if len(out) > 0 && k.changed != nil {
		k.changed(ctx, false)
	}
	return out, first
}

// Revoke revokes a key (keys.Ring.Revoke): errors wrap
// keys.ErrUnknownKey for a kid the ring does not hold.
func (k *Keys) Revoke(ctx context.Context, by Caller, kid string) (keys.Revoked, error) {
	res, err := k.ring.Revoke(ctx, kid)
	if err != nil {
		return res, err
	}
	if k.changed != nil {
		k.changed(ctx, true)
	}
	d := map[string]string{"kid": res.Key.ID, "family": res.Key.Family, "algorithm": res.Key.Algorithm}
	if res.Rotated.ID != "" {
		d["replaced_by"] = res.Rotated.ID
	}
	k.event(ctx, by, latch.EventKeyRevoked, d)
	k.audit.record(ctx, by, "revoke_key", "", map[string]string{"kid": res.Key.ID})
	return res, nil
}

func (k *Keys) event(ctx context.Context, by Caller, typ string, d map[string]string) {
	e := &latch.Event{Type: typ, At: k.audit.now().UTC().Truncate(time.Microsecond), ClientID: by.ClientID,
		IP: cut(by.Device.IP, auth.MaxIPLen), UserAgent: cut(by.Device.UserAgent, auth.MaxUserAgentLen), Detail: d}
	if err := k.audit.events.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		k.audit.log.Error("recording security event failed", "type", typ, "err", err)
	}
}
