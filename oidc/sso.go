package oidc

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/tag"
)

// cookiePurpose keys the MAC of the SSO cookie.
const cookiePurpose = "latch sso cookie v1"

// StartSSO creates the SSO session of a browser that just signed in at
// Latch, and returns it with the value of its cookie. The cookie is the
// session's id and a MAC of it: the id alone (the sid that id_tokens and
// logout tokens carry to every app) does not make a cookie.
func (p *Provider) StartSSO(ctx context.Context, a *auth.Authentication, dev auth.Device) (*latch.SSOSession, string, error) {
	now := p.clock()
	authTime := a.Time
	if authTime.IsZero() {
		authTime = now
	}
	sso := &latch.SSOSession{
		ID: newSSOID(), UserID: a.UserID, AuthTime: authTime.UTC().Truncate(time.Microsecond), AMR: a.AMR,
		UserAgent: truncate(dev.UserAgent, 512), IP: dev.IP,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(p.cfg.SSOAbsolute),
	}
	if err := p.store.CreateSSOSession(ctx, sso); err != nil {
		return nil, "", wrap("create SSO session", err)
	}
	return sso, p.cookieValue(sso.ID), nil
}

// CookieMaxAge is how long the SSO cookie is kept: as long as the SSO
// session may live.
func (p *Provider) CookieMaxAge() time.Duration { return p.cfg.SSOAbsolute }

func (p *Provider) cookieValue(id string) string {
	return tag.Sign(p.mac, cookiePurpose, id)
}

// SSO returns the live SSO session that a cookie value names, or nil if
// the value is empty, forged, or names a session that ended, expired or
// sat idle past SSOIdle. Only store failures are errors.
func (p *Provider) SSO(ctx context.Context, cookie string) (*latch.SSOSession, error) {
	id, ok := p.cookieID(cookie)
	if !ok {
		return nil, nil
	}
	sso, err := p.store.SSOSession(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("load SSO session", err)
	}
	now := p.clock()
	if !sso.Live(now) || !now.Before(sso.LastSeenAt.Add(p.cfg.SSOIdle)) {
		return nil, nil
	}
	return sso, nil
}

// cookieID checks a cookie value's MAC in constant time and returns the
// SSO session id it carries.
func (p *Provider) cookieID(cookie string) (string, bool) {
	return tag.Open(p.mac, cookiePurpose, cookie, 64)
}

// touch records that the SSO session was used now; a failure only costs
// the idle timeout some accuracy.
func (p *Provider) touch(ctx context.Context, sso *latch.SSOSession) {
	if err := p.store.TouchSSOSession(ctx, sso.ID, p.clock()); err != nil && !errors.Is(err, latch.ErrNotFound) {
		p.log.Warn("recording SSO session use failed", "err", err)
	}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newSSOID returns "sso_" and 128 random bits.
func newSSOID() string {
	var b [16]byte
	rand.Read(b[:])
	return "sso_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
