// Package mailtest provides an SMTP server for tests: a sink on 127.0.0.1
// that records what it receives and can be told to fail.
package mailtest

import (
	"bufio"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
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
	// data are the messages whose data the sink read, accepted or not;
	// accepted those it answered 250.
	data, accepted []string
	// commands are every command verb received.
	commands []string
}

// Start starts a sink; the test's cleanup stops it, closing any
// connection a client left open.
func Start(t testing.TB) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{ln: ln, ehlo: []string{"8BITMIME", "ENHANCEDSTATUSCODES"}, conns: map[net.Conn]bool{}}
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

// URL is the sink's smtp_url (cleartext: the sink offers no STARTTLS).
func (s *Sink) URL() string { return "smtp://" + s.ln.Addr().String() + "?starttls=off" }

// SetFail replaces the failure function: f returns, for a step ("MAIL",
// "RCPT", "DATA", or "END" after the data was read), the reply to give
// instead of success ("451 4.3.0 try later"), or "" for success. nil
// fails nothing.
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
	var rcpt bool
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
			rcpt = false
			ok = reply("250 2.0.0 ok")
		case "MAIL":
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
