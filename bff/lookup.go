package bff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/verifier"
	"golang.org/x/oauth2"
)

// Lookup returns r's live browser session with an access token that is
// not about to expire, or gateway.ErrNoSession: no cookie, a malformed,
// forged or unknown one, a session ended (logout, back-channel logout,
// revocation, a refused refresh), expired or idle too long. A session
// whose access token the verifier finds revoked — the auth server ended
// it; the revocation feed says so within its bound — is ended here.
//
// When the access token expires within RefreshBefore, it is refreshed
// once for the session across every concurrent request and every gateway
// instance sharing the store: one request takes the store's refresh
// lease, the others wait (at most 5 s) for the session's version to
// move and use the new token. Any other error means the gateway cannot
// tell (the store or the revocation data is unavailable): answer 503.
func (m *Manager) Lookup(r *http.Request) (*gateway.BrowserSession, error) {
	id, ok := m.requestSessionID(r)
	if !ok {
		return nil, gateway.ErrNoSession
	}
	return m.lookup(r.Context(), id)
}

// lookup is Lookup by session id.
func (m *Manager) lookup(ctx context.Context, id string) (*gateway.BrowserSession, error) {
	g, cached, err := m.loadCached(ctx, id)
	if err != nil {
		return nil, err
	}
	now := m.now()
	if now.Sub(g.LastSeenAt) > m.idle && cached {
		// Another instance may have touched it since: ask the store.
		if g, err = m.load(ctx, id); err != nil {
			return nil, err
		}
	}
	if now.Sub(g.LastSeenAt) > m.idle {
		m.end(ctx, id, latch.GatewayEndIdle)
		return nil, gateway.ErrNoSession
	}
	forced := false
	if g.AccessExpiresAt.Sub(now) < m.before {
		if g, err = m.refresh(ctx, g); err != nil {
			return nil, err
		}
	}
	for {
		access, err := m.sealer.Open(g.AccessToken, tokenAAD("access", g.ID))
		if err != nil {
			return nil, fmt.Errorf("bff: session %s: access token does not open: %w", short(g.ID), err)
		}
		claims, err := m.verifier.VerifyContext(ctx, string(access))
		switch {
		case err == nil:
			if now.Sub(g.LastSeenAt) >= touchEvery {
				sctx, cancel := m.storeCtx(ctx)
				err := m.store.TouchGatewaySession(sctx, g.ID, now)
				cancel()
				if err != nil && !errors.Is(err, latch.ErrNotFound) {
					m.log.Warn("touching a gateway session failed", "session", short(g.ID), "err", err)
				}
				m.rows.drop(g.ID) // its LastSeenAt moved
			}
			return &gateway.BrowserSession{ID: g.ID, AccessToken: string(access), Claims: claims}, nil
		case errors.Is(err, verifier.ErrRevoked):
			// The auth server ended the session (logout elsewhere,
			// reuse detection, sign out everywhere).
			m.end(ctx, g.ID, latch.GatewayEndRevoked)
			return nil, gateway.ErrNoSession
		case errors.Is(err, verifier.ErrStale):
			return nil, fmt.Errorf("bff: revocation data is stale: %w", err)
		case forced:
			return nil, fmt.Errorf("bff: session %s: the refreshed access token does not verify: %w", short(g.ID), err)
		}
		// Expired (the gateway was away), or signed by a key since
		// withdrawn: one refresh, then the new token must verify.
		forced = true
		if g, err = m.refresh(ctx, g); err != nil {
			return nil, err
		}
	}
}

// loadCached is load, served from the in-process row cache when the row
// was read less than rowCacheTTL ago (cache.go says what stays exact).
// cached reports whether it was.
func (m *Manager) loadCached(ctx context.Context, id string) (g *latch.GatewaySession, cached bool, err error) {
	if g, ok := m.rows.get(id); ok {
		if !g.Live(m.now()) {
			m.rows.drop(id)
			return nil, false, gateway.ErrNoSession
		}
		return g, true, nil
	}
	g, err = m.load(ctx, id)
	return g, false, err
}

// load reads a session from the store and checks it is live; a live row
// goes into the row cache.
func (m *Manager) load(ctx context.Context, id string) (*latch.GatewaySession, error) {
	sctx, cancel := m.storeCtx(ctx)
	defer cancel()
	g, err := m.store.GatewaySession(sctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		m.rows.drop(id)
		return nil, gateway.ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("bff: %w", err)
	}
	if !g.Live(m.now()) {
		m.rows.drop(id)
		return nil, gateway.ErrNoSession
	}
	m.rows.put(g)
	return g, nil
}

// refresh returns g with new tokens: refreshed by this request, or by
// another one (of this instance or another) whose refresh it waited for.
// Concurrent calls for one session in this instance share one flight.
func (m *Manager) refresh(ctx context.Context, g *latch.GatewaySession) (*latch.GatewaySession, error) {
	f, leader := m.flights.join(g.ID)
	if leader {
		f.g, f.err = m.refreshShared(context.WithoutCancel(ctx), g)
		m.flights.done(g.ID, f)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !leader && f.err == nil {
		m.metrics.refreshes.WithLabelValues(outcomeWaited).Inc()
	}
	return f.g, f.err
}

// refreshShared refreshes g under the store's lease, or waits for the
// instance holding it. The returned session is live, or the error is
// gateway.ErrNoSession.
func (m *Manager) refreshShared(ctx context.Context, g *latch.GatewaySession) (*latch.GatewaySession, error) {
	owner := m.newOwner()
	start := time.Now()
	wake := m.waiters.add(g.ID)
	defer m.waiters.remove(g.ID, wake)
	waited := false
	for {
		now := m.now()
		sctx, cancel := m.storeCtx(ctx)
		ok, err := m.store.AcquireGatewayRefresh(sctx, g.ID, owner, g.Version, now, now.Add(leaseTTL))
		cancel()
		if errors.Is(err, latch.ErrNotFound) {
			return nil, gateway.ErrNoSession
		}
		if err != nil {
			return m.fallback(g, fmt.Errorf("bff: refresh lease: %w", err))
		}
		if ok {
			if waited {
				m.metrics.waits.Observe(time.Since(start).Seconds())
			}
			return m.refreshHeld(ctx, g, owner)
		}
		cur, err := m.load(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		if cur.Version != g.Version {
			// Someone else refreshed it.
			m.metrics.waits.Observe(time.Since(start).Seconds())
			m.metrics.refreshes.WithLabelValues(outcomeWaited).Inc()
			return cur, nil
		}
		waited = true
		if time.Since(start) > waitTimeout {
			m.metrics.waits.Observe(time.Since(start).Seconds())
			m.metrics.refreshes.WithLabelValues(outcomeTimedOut).Inc()
			return m.fallback(cur, errors.New("bff: timed out waiting for another refresh of the session"))
		}
		// Wait for a poke (Redis, or this instance) or poll the store.
		t := time.NewTimer(25*time.Millisecond + rand.N(25*time.Millisecond))
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// fallback returns g if its access token is still valid by the stored
// expiry (a failed refresh is retried by a later request), else err.
func (m *Manager) fallback(g *latch.GatewaySession, err error) (*latch.GatewaySession, error) {
	if m.now().Before(g.AccessExpiresAt) {
		m.log.Warn("refresh postponed; the current access token is still valid", "session", short(g.ID), "err", err)
		return g, nil
	}
	return nil, err
}

// refreshHeld calls the token endpoint under owner's lease, renewing the
// lease meanwhile, and stores the result.
func (m *Manager) refreshHeld(ctx context.Context, g *latch.GatewaySession, owner string) (*latch.GatewaySession, error) {
	stop := make(chan struct{})
	var renewals sync.WaitGroup
	renewals.Add(1)
	go func() {
		defer renewals.Done()
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				now := m.now()
				sctx, cancel := m.storeCtx(ctx)
				ok, err := m.store.AcquireGatewayRefresh(sctx, g.ID, owner, g.Version, now, now.Add(leaseTTL))
				cancel()
				if err != nil || !ok {
					m.log.Warn("renewing a refresh lease failed", "session", short(g.ID), "err", err)
				}
			}
		}
	}()
	tok, err := m.callTokenEndpoint(ctx, g)
	close(stop)
	renewals.Wait()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			// The auth server will not refresh this session again: it
			// was revoked, or expired there.
			m.metrics.refreshes.WithLabelValues(outcomeInvalid).Inc()
			m.end(ctx, g.ID, latch.GatewayEndRefresh)
			return nil, gateway.ErrNoSession
		}
		m.metrics.refreshes.WithLabelValues(outcomeError).Inc()
		sctx, cancel := m.storeCtx(ctx)
		rerr := m.store.ReleaseGatewayRefresh(sctx, g.ID, owner)
		cancel()
		if rerr != nil {
			m.log.Warn("releasing a refresh lease failed", "session", short(g.ID), "err", rerr)
		}
		return m.fallback(g, fmt.Errorf("bff: refresh: %w", err))
	}
	now := m.now()
	exp := now.Add(m.before + time.Minute) // if neither expires_in nor exp tells
	if tok.ExpiresIn <= 0 {
		if c, err := m.verifier.VerifyContext(ctx, tok.AccessToken); err == nil && c.ExpiresAt != nil {
			exp = c.ExpiresAt.Time
		}
	}
	upd := latch.GatewayRefresh{
		AccessToken:     m.sealer.Seal([]byte(tok.AccessToken), tokenAAD("access", g.ID)),
		AccessExpiresAt: accessExpiry(tok, exp, now),
	}
	if tok.RefreshToken != "" {
		upd.RefreshToken = m.sealer.Seal([]byte(tok.RefreshToken), tokenAAD("refresh", g.ID))
	}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		upd.IDToken = m.sealer.Seal([]byte(id), tokenAAD("id", g.ID))
	}
	sctx, cancel := m.storeCtx(ctx)
	_, err = m.store.CompleteGatewayRefresh(sctx, g.ID, owner, upd)
	cancel()
	if err != nil {
		// The lease was taken over (this refresh outlived it) or the
		// session ended meanwhile: what is stored now wins.
		m.metrics.refreshes.WithLabelValues(outcomeLost).Inc()
		m.log.Warn("completing a refresh failed", "session", short(g.ID), "err", err)
		return m.load(ctx, g.ID)
	}
	m.metrics.refreshes.WithLabelValues(outcomeOK).Inc()
	m.fanout.Poke(ctx, refreshedTopic+g.ID)
	return m.load(ctx, g.ID)
}

// callTokenEndpoint exchanges the session's refresh token.
func (m *Manager) callTokenEndpoint(ctx context.Context, g *latch.GatewaySession) (*oauth2.Token, error) {
	rt, err := m.sealer.Open(g.RefreshToken, tokenAAD("refresh", g.ID))
	if err != nil {
		return nil, fmt.Errorf("refresh token does not open: %w", err)
	}
	if len(rt) == 0 {
		return nil, &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: "the session has no refresh token"}
	}
	_, oc, err := m.provider.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, m.hc)
	return oc.TokenSource(ctx, &oauth2.Token{RefreshToken: string(rt)}).Token()
}

// flight is one in-process refresh of a session that concurrent requests
// share.
type flight struct {
	done chan struct{}
	g    *latch.GatewaySession
	err  error
}

// flights are the refreshes under way in this instance, by session id.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// join returns the session's flight, and whether the caller leads it
// (and must run it and call done).
func (f *flights) join(id string) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.m[id]; ok {
		return fl, false
	}
	fl := &flight{done: make(chan struct{})}
	f.m[id] = fl
	return fl, true
}

// done ends the flight.
func (f *flights) done(id string, fl *flight) {
	f.mu.Lock()
	delete(f.m, id)
	f.mu.Unlock()
	close(fl.done)
}

// waiters are the channels of refreshes waiting for another instance's,
// by session id, woken by a fan-out poke.
type waiters struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

func (w *waiters) add(id string) chan struct{} {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[id] == nil {
		w.m[id] = map[chan struct{}]struct{}{}
	}
	w.m[id][c] = struct{}{}
	return c
}

func (w *waiters) remove(id string, c chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m[id], c)
	if len(w.m[id]) == 0 {
		delete(w.m, id)
	}
}

func (w *waiters) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.m[id] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
