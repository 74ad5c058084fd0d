package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/latchauth/latch/outbox"
)

// SMTPConfig is an SMTP server to send through, as an smtp_url names it.
type SMTPConfig struct {
	// Host and Port are the server's address.
	Host string
	Port int
	// ImplicitTLS is true for smtps:// (TLS from the first byte, port 465
	// by default). Otherwise the connection must be upgraded with
	// STARTTLS unless StartTLSOff.
	ImplicitTLS bool
	// StartTLSOff sends in cleartext (?starttls=off): only for a local
	// mail sink, never across a network.
	StartTLSOff bool
	// Username and Password authenticate, if Username is not empty. The
	// mechanism is the strongest the server offers; PLAIN and LOGIN only
	// over TLS.
	Username, Password string
}

// ParseSMTPURL reads an smtp_url: smtp://[user:pass@]host[:port] (port 587
// by default, STARTTLS required, or ?starttls=off for a local sink) or
// smtps://[user:pass@]host[:port] (implicit TLS, port 465 by default).
// User name and password are percent-encoded. Errors never echo the
// password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPConfig{}, errors.New("not a URL (use smtp://user:pass@host:587 or smtps://user:pass@host:465)")
	}
	var c SMTPConfig
	switch u.Scheme {
	case "smtp":
		c.Port = 587
	case "smtps":
		c.Port, c.ImplicitTLS = 465, true
	default:
		return SMTPConfig{}, fmt.Errorf("%s: scheme must be smtp or smtps", u.Redacted())
	}
	c.Host = u.Hostname()
	if c.Host == "" {
		return SMTPConfig{}, fmt.Errorf("%s: no host", u.Redacted())
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPConfig{}, fmt.Errorf("%s: port must be 1 to 65535", u.Redacted())
		}
		c.Port = n
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" || u.Opaque != "" {
		return SMTPConfig{}, fmt.Errorf("%s: no path or fragment allowed", u.Redacted())
	}
	q := u.Query()
	for k, v := range q {
		switch {
		case k == "starttls" && len(v) == 1 && v[0] == "off" && !c.ImplicitTLS:
			c.StartTLSOff = true
		case k == "starttls" && !c.ImplicitTLS:
			return SMTPConfig{}, fmt.Errorf("%s: starttls accepts only off (the default is required)", u.Redacted())
		default:
			return SMTPConfig{}, fmt.Errorf("%s: unknown parameter %q (smtp:// accepts starttls=off; smtps:// none)", u.Redacted(), k)
		}
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	return c, nil
}

// Addr is the server's host:port.
func (c SMTPConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Security says how the connection is protected: "implicit TLS",
// "STARTTLS" or "none".
func (c SMTPConfig) Security() string {
	switch {
	case c.ImplicitTLS:
		return "implicit TLS"
	case c.StartTLSOff:
		return "none"
	}
	return "STARTTLS"
}

// SMTP sends mail through an SMTP server, one connection per message.
type SMTP struct {
	cfg     SMTPConfig
	tls     *tls.Config
	timeout time.Duration
}

// SMTPOptions are the optional settings of NewSMTP.
type SMTPOptions struct {
	// TLS, if not nil, replaces the default TLS configuration (the
	// system's roots, the host name of the URL, TLS 1.2 at least); tests
	// trust their own certificate with it.
	TLS *tls.Config
	// Timeout bounds connecting and each command; 15 s if zero. The
	// context passed to Send bounds the whole.
	Timeout time.Duration
}

// NewSMTP returns a Sender that sends through the server cfg names.
func NewSMTP(cfg SMTPConfig, opt SMTPOptions) *SMTP {
	s := &SMTP{cfg: cfg, tls: opt.TLS, timeout: opt.Timeout}
	if s.tls == nil {
		s.tls = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	if s.timeout <= 0 {
		s.timeout = 15 * time.Second
	}
	return s
}

// Send sends m. A rejection of the recipient or of the message with a
// 5xx reply is permanent (outbox.Permanent); a 4xx reply, a network or TLS
// failure, or a failed authentication (a configuration the operator can
// fix while the outbox retries) is not.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := compose(m)
	if err != nil {
		return outbox.Permanent(err)
	}
	// The connection is dialled here, not by go-mail, so that it is closed
	// whatever happens: go-mail leaves it open when the greeting, STARTTLS
	// or authentication fails, and does not watch ctx once connected.
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{}
		var conn net.Conn
		var err error
		if s.cfg.ImplicitTLS {
			conn, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(dctx, network, addr)
		} else {
			conn, err = d.DialContext(dctx, network, addr)
		}
		if err == nil {
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
		return conn, err
	}
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	defer closeAll()
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()

	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port), gomail.WithTimeout(s.timeout), gomail.WithTLSConfig(s.tls),
		gomail.WithDialContextFunc(dial),
	}
	switch {
	case s.cfg.ImplicitTLS:
		// TLS from the first byte (dial); nothing to upgrade.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case s.cfg.StartTLSOff:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
		if s.cfg.ImplicitTLS {
			// go-mail does not know a dialled TLS connection is
			// encrypted: name the mechanisms (PLAIN and LOGIN check
			// for TLS themselves).
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
		} else {
			// After STARTTLS the strongest mechanism offered; in
			// cleartext never PLAIN or LOGIN.
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return outbox.Permanent(fmt.Errorf("mail: smtp client: %w", err))
	}
	err = c.DialAndSendWithContext(ctx, msg)
	if msg.IsDelivered() {
		// The server accepted the message; a failure after that (RSET,
		// QUIT) must not send it again.
		return nil
	}
	if err == nil {
		return errors.New("mail: smtp: the server did not confirm the message")
	}
	return classify(s.cfg.Addr(), err)
}

// classify wraps an SMTP failure: permanent for a 5xx reply to RCPT TO or
// to the message's data, retryable otherwise.
func classify(addr string, err error) error {
	err = fmt.Errorf("mail: smtp %s: %w", addr, err)
	var se *gomail.SendError
	if errors.As(err, &se) && !se.IsTemp() {
		switch se.Reason {
		case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
			if code := se.ErrorCode(); code >= 500 && code < 600 {
				return outbox.Permanent(err)
			}
		}
	}
	return err
}
