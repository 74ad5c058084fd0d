package bff

import (
	"sync"
	"time"

	"github.com/latchauth/latch"
)

// Session rows are cached in process for a short time, so that a browser
// making many requests does not cost a store read for each: Lookup reads
// the store at most once per rowCacheTTL per session and instance.
//
// What this does not weaken:
//   - Revocation at the auth server (the feed) is checked on every request
//     by verifying the session's access token, cached row or not.
//   - A session ended by this instance (logout, back-channel logout,
//     revocation, a refused refresh, idle) is dropped from its cache at
//     once, and from the other instances' caches at once through the
//     fan-out when there is one (Redis); without a fan-out another
//     instance may serve it for at most rowCacheTTL.
//   - Liveness (absolute expiry) is checked on the cached row at every
//     use; the idle timeout is re-checked against the store before a
//     cached row ends a session.
//   - Refresh compares versions in the store, never in the cache.
const (
	rowCacheTTL = 500 * time.Millisecond
	// rowCacheMax bounds the cache; when full, arbitrary entries go.
	rowCacheMax = 65536
)

// endedTopic prefixes the fan-out topic that says a session ended
// (followed by the session id, never the cookie value).
const endedTopic = "gw-ended:"

// rowCache maps session ids to recently read rows. Its clock is the real
// one (not Deps.Now), so that a test's frozen clock cannot keep a row in
// it forever.
type rowCache struct {
	mu  sync.Mutex
	m   map[string]cachedRow
	ttl time.Duration // rowCacheTTL; tests may lengthen it
}

type cachedRow struct {
	g  *latch.GatewaySession
	at time.Time
}

// get returns a copy of id's row if it was read less than rowCacheTTL ago.
func (c *rowCache) get(id string) (*latch.GatewaySession, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || time.Since(e.at) >= c.ttl {
		return nil, false
	}
	g := *e.g
	return &g, true
}

// put remembers a copy of g, read from the store just now.
func (c *rowCache) put(g *latch.GatewaySession) {
	cp := *g
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= rowCacheMax {
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= rowCacheMax/8 {
				break
			}
		}
	}
	c.m[g.ID] = cachedRow{g: &cp, at: time.Now()}
}

// drop forgets id's row.
func (c *rowCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
