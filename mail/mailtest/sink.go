// Package mailtest provides an SMTP server for tests: a sink on 127.0.0.1
// that records what it receives and can be told to fail.
package mailtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sink is a small SMTP server on 127.0.0.1: it speaks enough ESMTP for an
// SMTP client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), offers no
// STARTTLS and no AUTH unless told (Extensions), and records what it
// receives. A failure function may answer a step with an error reply
// instead of success.
type Sink struct {
	ln net.Listener
	wg sync.WaitGroup

	mu sync.Mutex
	// fail returns the reply for step ("MAIL", "RCPT", "DATA", "END"
	// after the data) or "" for success.
	fail func(step string) string
	// ehlo is the extension list offered after the greeting line.
	ehlo  []string
	conns map[net.Conn]bool
	// tls, if not nil, is offered with STARTTLS (or, when implicit, from
	// the first byte); roots trust its certificate.
	tls      *tls.Config
	implicit bool
	roots    *x509.CertPool
	// user and pass, if user is not empty, are required (AUTH PLAIN,
	// offered only over TLS) before MAIL.
	user, pass string
	// auths are the user names that authenticated; tlsData counts the
	// messages whose data arrived over TLS.
	auths   []string
	tlsData int
	// data are the messages whose data the sink read, accepted or not;
	// accepted those it answered 250.
	data, accepted []string
	// commands are every command verb received.
	commands []string
}

// Start starts a sink in cleartext, without STARTTLS; the test's cleanup
// stops it, closing any connection a client left open.
func Start(t testing.TB) *Sink { return start(t, TLSNone, "", "") }

// TLS modes of StartTLS.
const (
	TLSNone     = "none"
	TLSStart    = "starttls"
	TLSImplicit = "implicit"
)

// StartTLS starts a sink with a self-signed certificate for 127.0.0.1
// (RootCAs trusts it), offered with STARTTLS (mode TLSStart) or from the
// first byte (TLSImplicit). If user is not empty, AUTH PLAIN with user and
// pass is offered over TLS and required before MAIL.
func StartTLS(t testing.TB, mode, user, pass string) *Sink { return start(t, mode, user, pass) }

// RootCAs returns a pool trusting the sink's certificate.
func (s *Sink) RootCAs() *x509.CertPool { return s.roots }

// Auths returns the user names that authenticated.
func (s *Sink) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// TLSData counts the messages whose data arrived over TLS.
func (s *Sink) TLSData() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsData
}

func start(t testing.TB, mode, user, pass string) *Sink {
	t.Helper()
	var ln net.Listener
	var err error
	s := &Sink{ehlo: []string{"8BITMIME", "ENHANCEDSTATUSCODES"}, conns: map[net.Conn]bool{}, user: user, pass: pass}
	if mode != TLSNone {
		s.tls, s.roots = selfSigned(t)
		s.implicit = mode == TLSImplicit
	}
	if s.implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", s.tls)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				s.serve(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// Extensions replaces the ESMTP extensions offered after EHLO (by default
// 8BITMIME and ENHANCEDSTATUSCODES), such as "AUTH PLAIN LOGIN".
func (s *Sink) Extensions(ext ...string) {
	s.mu.Lock()
	s.ehlo = ext
	s.mu.Unlock()
}

// URL is the sink's smtp_url: cleartext (?starttls=off) for Start,
// smtp:// with STARTTLS or smtps:// for StartTLS, with the credentials if
// any.
func (s *Sink) URL() string {
	cred := ""
	if s.user != "" {
		cred = url.UserPassword(s.user, s.pass).String() + "@"
	}
	switch {
	case s.implicit:
		return "smtps://" + cred + s.ln.Addr().String()
	case s.tls != nil:
		return "smtp://" + cred + s.ln.Addr().String()
	}
	return "smtp://" + cred + s.ln.Addr().String() + "?starttls=off"
}

// selfSigned returns a server configuration with a new certificate for
// 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest sink"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

// Drop, returned by a failure function for "RSET" or "QUIT", closes the
// connection without a reply.
const Drop = "drop"

// SetFail replaces the failure function: f returns, for a step ("MAIL",
// "RCPT", "DATA", or "END" after the data was read), the reply to give
// instead of success ("451 4.3.0 try later"), or "" for success; for
// "RSET" and "QUIT" it may return Drop. nil fails nothing.
func (s *Sink) SetFail(f func(step string) string) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *Sink) failing(step string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		return ""
	}
	return s.fail(step)
}

// Accepted returns the messages accepted so far.
func (s *Sink) Accepted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...)
}

// Data returns the data of every message received, accepted or not.
func (s *Sink) Data() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.data...)
}

// Commands returns every command verb received.
func (s *Sink) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Sink) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			if err := tp.PrintfLine("%s", l); err != nil {
				return false
			}
		}
		return true
	}
	if !reply("220 sink ESMTP ready") {
		return
	}
	var rcpt, authed bool
	_, secure := c.(*tls.Conn)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		s.commands = append(s.commands, verb)
		s.mu.Unlock()
		var ok bool
		switch verb {
		case "EHLO":
			s.mu.Lock()
			ehlo := append([]string(nil), s.ehlo...)
			s.mu.Unlock()
			if s.tls != nil && !secure {
				ehlo = append(ehlo, "STARTTLS")
			}
			if s.user != "" && secure {
				ehlo = append(ehlo, "AUTH PLAIN")
			}
			lines := []string{"250-sink"}
			for i, e := range ehlo {
				sep := "-"
				if i == len(ehlo)-1 {
					sep = " "
				}
				lines = append(lines, "250"+sep+e)
			}
			if len(ehlo) == 0 {
				lines = []string{"250 sink"}
			}
			ok = reply(lines...)
		case "HELO", "NOOP":
			ok = reply("250 2.0.0 ok")
		case "RSET":
			if s.failing("RSET") == Drop {
				return
			}
			rcpt = false
			ok = reply("250 2.0.0 ok")
		case "STARTTLS":
			if s.tls == nil || secure {
				ok = reply("502 5.5.1 not offered")
				break
			}
			if !reply("220 2.0.0 ready for TLS") {
				return
			}
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, secure, rcpt, authed = tc, true, false, false
			tp = textproto.NewConn(tc)
			ok = true
		case "AUTH":
			f := strings.Fields(line)
			if s.user == "" || !secure || len(f) != 3 || !strings.EqualFold(f[1], "PLAIN") {
				ok = reply("504 5.5.4 unrecognised authentication type")
				break
			}
			b, _ := base64.StdEncoding.DecodeString(f[2])
			parts := strings.Split(string(b), "\x00")
			if len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				ok = reply("535 5.7.8 authentication credentials invalid")
				break
			}
			authed = true
			s.mu.Lock()
			s.auths = append(s.auths, parts[1])
			s.mu.Unlock()
			ok = reply("235 2.7.0 authentication successful")
		case "MAIL":
			if s.user != "" && !authed {
				ok = reply("530 5.7.0 authentication required")
				break
			}
			if r := s.failing("MAIL"); r != "" {
				ok = reply(r)
				break
			}
			ok = reply("250 2.1.0 ok")
		case "RCPT":
			if r := s.failing("RCPT"); r != "" {
				ok = reply(r)
				break
			}
			rcpt = true
			ok = reply("250 2.1.5 ok")
		case "DATA":
			if !rcpt {
				ok = reply("503 5.5.1 no recipient")
				break
			}
			if r := s.failing("DATA"); r != "" {
				ok = reply(r)
				break
			}
			if !reply("354 go ahead") {
				return
			}
			b, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.data = append(s.data, string(b))
			if secure {
				s.tlsData++
			}
			s.mu.Unlock()
			if r := s.failing("END"); r != "" {
				ok = reply(r)
				break
			}
			s.mu.Lock()
			s.accepted = append(s.accepted, string(b))
			s.mu.Unlock()
			rcpt = false
			ok = reply("250 2.0.0 queued")
		case "QUIT":
			if s.failing("QUIT") == Drop {
				return
			}
			reply("221 2.0.0 bye")
			return
		default:
			ok = reply("502 5.5.2 not implemented")
		}
		if !ok {
			return
		}
	}
}

// Header returns the value of header name in the raw message, or "".
func Header(raw, name string) string {
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(raw)))
	h, _ := r.ReadMIMEHeader()
	return h.Get(name)
}
