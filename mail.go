package latch

import (
	"encoding/json"
	"errors"
	"fmt"
)

// OutboxEmail is the kind of outbox messages that are emails to send:
// Payload is an EmailMessage, rendered and sent by package mail.
const OutboxEmail = "email"

// EmailMessage is the payload of an OutboxEmail message: which template
// to render for whom, with what. The deliverer renders it when it sends,
// so that a message enqueued in a transaction holds no rendered secret
// beyond what Data carries (a one-time link's token, which expires).
type EmailMessage struct {
	// To is the recipient's address.
	To string `json:"to"`
	// Template names an embedded template of package mail
	// ("verify_email", "reset_password"…).
	Template string `json:"template"`
	// Data are the template's values (links are made absolute by the
	// deliverer from the issuer).
	Data map[string]string `json:"data,omitempty"`
}

// Payload encodes m for OutboxMessage.Payload.
func (m EmailMessage) Payload() []byte {
	p, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("latch: encode email message: %v", err)) // strings always encode
	}
	return p
}

// ParseEmailMessage decodes the payload of an OutboxEmail message.
func ParseEmailMessage(payload []byte) (EmailMessage, error) {
	var m EmailMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return EmailMessage{}, fmt.Errorf("latch: email payload: %w", err)
	}
	if m.To == "" || m.Template == "" {
		return EmailMessage{}, errors.New("latch: email payload without recipient or template")
	}
	return m, nil
}
