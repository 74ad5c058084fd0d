package mail

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/outbox"
)

// Handler is the outbox.Handler of latch.OutboxEmail messages: it parses
// the latch.EmailMessage, renders its template and sends it.
//
// A payload that does not parse, an unknown template, data the template
// cannot use, an address that is not one, and a recipient the SMTP server
// rejects for good (5xx) are permanent failures: the outbox gives the
// message up at once. Everything else (the server answering 4xx, the
// network, TLS) is retried by the outbox with backoff.
//
// Every attempt at one outbox message sends the same Message-ID
// (MessageID), so that a duplicate, which at-least-once delivery allows,
// can be recognised.
type Handler struct {
	sender    Sender
	templates *Templates
	from      string
	host      string
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// Sender sends the rendered messages.
	Sender Sender
	// Issuer is the issuer URL: links are made absolute from it, and its
	// host names the Message-IDs.
	Issuer string
	// From is the sender address; empty means DefaultFrom(Issuer).
	From string
}

// NewHandler returns the handler of OutboxEmail messages.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Sender == nil {
		return nil, errors.New("mail: no sender")
	}
	t, err := NewTemplates(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	from := cfg.From
	if from == "" {
		from = DefaultFrom(cfg.Issuer)
	}
	if from, err = ParseAddress(from); err != nil {
		return nil, err
	}
	return &Handler{sender: cfg.Sender, templates: t, from: from, host: mailHost(cfg.Issuer)}, nil
}

// DefaultFrom is the sender address when none is configured:
// "Latch <no-reply@HOST>", HOST the issuer's host name (an IP address in
// brackets, as a domain literal).
func DefaultFrom(issuer string) string {
	return "Latch <no-reply@" + mailHost(issuer) + ">"
}

// mailHost is the issuer's host name as the right-hand side of an address
// or a Message-ID: a name as it is, an IP address in brackets
// ("[2001:db8::1]"), "localhost" if the issuer has none.
func mailHost(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return "localhost"
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		return "[" + a.WithZone("").String() + "]"
	}
	return u.Hostname()
}

// Templates returns the handler's templates.
func (h *Handler) Templates() *Templates { return h.templates }

// Deliver renders and sends the email of m.
func (h *Handler) Deliver(ctx context.Context, m latch.OutboxMessage) error {
	em, err := latch.ParseEmailMessage(m.Payload)
	if err != nil {
		return outbox.Permanent(err)
	}
	to, err := ParseAddress(em.To)
	if err != nil {
		return outbox.Permanent(err)
	}
	r, err := h.templates.Render(em.Template, em.To, em.Data)
	if errors.Is(err, ErrUnknownTemplate) || errors.Is(err, ErrBadData) {
		return outbox.Permanent(err)
	}
	if err != nil {
		return outbox.Permanent(fmt.Errorf("mail: %w", err)) // a template bug does not heal by retrying
	}
	return h.sender.Send(ctx, Message{
		From: h.from, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
		ID: MessageID(m, h.host), Date: m.CreatedAt,
	})
}
