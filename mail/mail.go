// Package mail sends the emails of Latch: verification links, password
// reset links and security notices.
//
// Emails are never sent from a request. The code that needs one enqueues a
// latch.OutboxEmail message (a latch.EmailMessage: recipient, template,
// data) in the durable outbox, in the same transaction as what made it
// necessary; Handler delivers it from there: it renders the template
// (Templates) and hands the Message to a Sender.
//
// Two Senders exist: SMTP, configured with an smtp:// or smtps:// URL
// (mail.smtp_url), and Dir, a development outbox that writes one .eml file
// per message into a directory (DATA_DIR/outbox, the default when no SMTP
// server is configured).
//
// # Delivery is at least once; duplicates carry one Message-ID
//
// The outbox delivers at least once: an instance that dies after the SMTP
// server accepted a message but before the outbox recorded it, or a server
// that accepted the data and then dropped the connection before its reply,
// leaves the message to be sent again. Every attempt at one outbox message
// carries the same Message-ID (MessageID: derived from the outbox message's
// id and creation time and the issuer's host, nothing else), so that a
// receiver, or a person, can recognise the second copy as a duplicate; Dir
// names its file after the Message-ID, so that a duplicate replaces the
// first copy.
package mail

import (
	"context"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch"
)

// Message is one email, rendered and ready to send.
type Message struct {
	// From is the sender, an RFC 5322 address ("Latch <no-reply@example.com>").
	From string
	// To is the recipient's address.
	To string
	// Subject is the subject line (one line).
	Subject string
	// Text is the plain-text body; HTML, if not empty, its HTML
	// alternative.
	Text, HTML string
	// ID is the Message-ID without the angle brackets
	// ("latch.42.k3x9@example.com"); see MessageID.
	ID string
	// Date is the Date header; the zero time means now.
	Date time.Time
	// Headers are further headers (such as Auto-Submitted), by name.
	Headers map[string]string
}

// Sender sends emails.
type Sender interface {
	// Send sends m. An error made with outbox.Permanent means m can never
	// be sent (a recipient the server rejects for good); any other error
	// means it may be sent later. Errors never carry the body or a
	// credential.
	Send(ctx context.Context, m Message) error
}

// MessageID returns the Message-ID (without angle brackets) of every
// attempt to deliver outbox message m, as mail from host (the issuer's
// host name): "latch.ID.CREATED@host", CREATED being m.CreatedAt in
// microseconds, base 36. The outbox id alone would repeat in a new
// deployment whose ids start again at 1; with its creation time it does
// not.
func MessageID(m latch.OutboxMessage, host string) string {
	created := strconv.FormatInt(m.CreatedAt.UnixMicro(), 36)
	return fmt.Sprintf("latch.%d.%s@%s", m.ID, created, host)
}

// ParseAddress checks that s is one RFC 5322 address (with or without a
// display name) and returns it as it is written in a header.
func ParseAddress(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("mail: address %q contains a line break", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("mail: address %q: %w", s, err)
	}
	return a.String(), nil
}
