package admin

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// audit records the admin_action events: every action of the console and
// of admin clients is itself a security event, naming who (the
// administrator in Detail "admin", or the admin client in ClientID), what
// (Detail "action"), the target (UserID when a user, Detail "target"
// otherwise) and from where (IP, UserAgent).
type audit struct {
	events latch.EventStore
	now    func() time.Time
	log    *slog.Logger
}

// record appends the event. The action is done: a failure here is
// logged, not returned.
func (a audit) record(ctx context.Context, by Caller, action, userID string, detail map[string]string) {
	d := map[string]string{"action": action}
	for k, v := range detail {
		d[k] = v
	}
	if by.AdminID != "" {
		d["admin"] = by.AdminID
	}
	e := &latch.Event{Type: latch.EventAdminAction, At: a.now().UTC().Truncate(time.Microsecond), UserID: userID,
		ClientID: by.ClientID, IP: cut(by.Device.IP, auth.MaxIPLen), UserAgent: cut(by.Device.UserAgent, auth.MaxUserAgentLen), Detail: d}
	if err := a.events.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		a.log.Error("recording security event failed", "type", e.Type, "action", action, "err", err)
	}
}
