package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

// Revocation feed for remote verifiers: GET /v1/revocations pages through
// the live entries after a cursor; GET /v1/revocations/stream pushes new
// ones as Server-Sent Events. Both need a confidential client with the
// read-revocations permission; one client holds a bounded number of
// streams at once.

const (
	feedPageDefault = 1000
	feedPageMax     = 5000
	// streamHeartbeat is how often a stream sends a sync heartbeat: it
	// keeps idle connections (and proxies) alive, and tells a remote
	// verifier how fresh this server's own revocation data is.
	streamHeartbeat = 5 * time.Second
	// streamWriteTimeout bounds each round of writes to a stream: a
	// reader that stops reading is dropped after it.
	streamWriteTimeout = 30 * time.Second
	// streamMaxAge ends every stream after an hour; the reader reconnects
	// from its cursor without a gap.
	streamMaxAge = time.Hour
)

// DefaultMaxStreamsPerClient is Config.MaxStreamsPerClient when unset: a
// verifier holds one stream, so a few leave room for restarts and a
// rolling deploy, and no client can pin the server's connections.
const DefaultMaxStreamsPerClient = 4

// feedClient authenticates a revocation-feed reader and checks its
// permission: a confidential client holding
// latch.PermissionReadRevocations, by HTTP Basic or by an access token it
// obtained for itself with the client_credentials grant. until is when
// that token expires (zero for Basic): a stream must not outlive it.
func (s *Server) feedClient(w http.ResponseWriter, r *http.Request) (*latch.Client, time.Time, bool) {
	var (
		c     *latch.Client
		until time.Time
	)
	_, _, basic := r.BasicAuth()
	if basic {
		var ok bool
		if c, ok = s.authenticateClient(w, r, nil); !ok {
			return nil, time.Time{}, false
		}
		if c.Public() {
			s.invalidClient(w, true)
			return nil, time.Time{}, false
		}
	} else if tok, ok := verifier.BearerToken(r); ok && s.clientToken(r, tok, &c, &until) {
		// A client's own token, for the server's audience or for the
		// one the client is registered with (a resource server's
		// client_credentials tokens carry its audience).
	} else {
		claims, ok := s.authenticate(w, r)
		if !ok {
			return nil, time.Time{}, false
		}
		if claims.SessionID != "" || claims.Subject != claims.ClientID {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="a client's own token is required"`)
			writeError(w, http.StatusForbidden, "insufficient_scope", "the revocation feed is for confidential clients; use a client_credentials token")
			return nil, time.Time{}, false
		}
		if claims.ExpiresAt != nil {
			until = claims.ExpiresAt.Time
		}
		var err error
		c, err = s.auth.Client(r.Context(), claims.ClientID)
		if err != nil || c.Public() {
			writeError(w, http.StatusForbidden, "insufficient_scope", "the revocation feed is for confidential clients")
			return nil, time.Time{}, false
		}
	}
	if !c.Can(latch.PermissionReadRevocations) {
		if !basic {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="the client lacks the read-revocations permission"`)
		}
		writeError(w, http.StatusForbidden, "insufficient_scope",
			"this client may not read the revocation feed: register it with `latch client add --can read-revocations`")
		return nil, time.Time{}, false
	}
	return c, until, true
}

// clientToken reports whether tok is an access token a confidential
// client obtained for itself, whatever its audience, and sets *c and
// *until (the token's expiry) if so.
func (s *Server) clientToken(r *http.Request, tok string, c **latch.Client, until *time.Time) bool {
	cl, claims, err := s.auth.ClientToken(r.Context(), tok)
	if err != nil {
		return false
	}
	*c = cl
	if claims.ExpiresAt != nil {
		*until = claims.ExpiresAt.Time
	}
	return true
}

// streamCounter counts the open revocation streams of each client, and
// keeps what each has sent for FeedFollowers. Its zero value is ready to
// use.
type streamCounter struct {
	mu   sync.Mutex
	n    map[string]int
	open map[*feedStream]struct{}
}

// feedStream is an open stream's state as FeedFollowers reports it.
type feedStream struct {
	clientID string
	since    time.Time
	cursor   int64     // guarded by streamCounter.mu
	synced   time.Time // guarded by streamCounter.mu
}

// FeedFollower is an open revocation stream: who follows the feed, and
// how far it has been brought.
type FeedFollower struct {
	ClientID string
	// Since is when the stream opened.
	Since time.Time
	// Cursor is the seq of the last entry the stream vouched for (its
	// last heartbeat's cursor); the feed's head minus Cursor is how many
	// entries the follower lacks.
	Cursor int64
	// SyncedAt is when the entries up to Cursor were last known to be
	// all there were; zero if never.
	SyncedAt time.Time
}

// acquire takes one of limit stream slots of client id, and returns the
// stream, or nil if there is none left; release gives it back.
func (c *streamCounter) acquire(id string, limit int, now time.Time) *feedStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[id] >= limit {
		return nil
	}
	if c.n == nil {
		c.n, c.open = map[string]int{}, map[*feedStream]struct{}{}
	}
	c.n[id]++
	st := &feedStream{clientID: id, since: now}
	c.open[st] = struct{}{}
	return st
}

func (c *streamCounter) release(st *feedStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.open, st)
	if c.n[st.clientID]--; c.n[st.clientID] <= 0 {
		delete(c.n, st.clientID)
	}
}

// vouch records that st vouched for the entries up to cursor, known
// complete at synced.
func (c *streamCounter) vouch(st *feedStream, cursor int64, synced time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.cursor, st.synced = cursor, synced
}

// FeedFollowers returns the open revocation streams of this server, by
// client and then by opening time.
func (s *Server) FeedFollowers() []FeedFollower {
	c := &s.feedStreams
	c.mu.Lock()
	list := make([]FeedFollower, 0, len(c.open))
	for st := range c.open {
		list = append(list, FeedFollower{ClientID: st.clientID, Since: st.since, Cursor: st.cursor, SyncedAt: st.synced})
	}
	c.mu.Unlock()
	slices.SortFunc(list, func(a, b FeedFollower) int {
		if a.ClientID != b.ClientID {
			return strings.Compare(a.ClientID, b.ClientID)
		}
		return a.Since.Compare(b.Since)
	})
	return list
}

// cursor reads the after parameter (or the SSE Last-Event-ID header).
func cursor(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		v = r.Header.Get("Last-Event-ID")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("after must be a non-negative integer cursor")
	}
	return n, nil
}

// cursorAhead answers 409 cursor_ahead, and reports true, when after is
// beyond every seq this feed ever assigned: the reader followed another
// deployment, or this store was restored from a backup, and entries it
// has not seen may hide under its cursor. Answering as if it were up to
// date would vouch for a set that silently misses them.
func (s *Server) cursorAhead(w http.ResponseWriter, r *http.Request, after int64) bool {
	head, err := s.store.RevocationHead(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return true
	}
	if after <= head {
		return false
	}
	s.log.Warn("revocation feed: a reader's cursor is beyond this feed (restored from a backup, or another deployment?)",
		"after", after, "head", head)
	writeError(w, http.StatusConflict, "cursor_ahead",
		fmt.Sprintf("cursor %d is beyond this feed (its last entry is %d): the feed was restored or replaced; start again from 0 with an empty set", after, head))
	return true
}

// revocations answers one page of the feed.
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.feedClient(w, r); !ok {
		return
	}
	after, err := cursor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	limit := feedPageDefault
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > feedPageMax {
			writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be between 1 and %d", feedPageMax))
			return
		}
		limit = n
	}
	start := s.now()
	list, err := s.store.RevocationsAfter(r.Context(), after, start, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	next := after
	if len(list) > 0 {
		next = list[len(list)-1].Seq
	} else if after > 0 && s.cursorAhead(w, r, after) {
		return
	}
	// The page is read from the store now: its age is the time the read
	// took. The cursor never moves back, and an empty page keeps it where
	// the reader is; more means another page is waiting.
	b, err := revocation.MarshalPage(list, next, len(list) == limit, s.now().Sub(start))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// revocationStream pushes feed entries as Server-Sent Events: first every
// live entry after the cursor, then new ones as they come, each with its
// seq as the event id so a reconnecting client resumes with Last-Event-ID.
func (s *Server) revocationStream(w http.ResponseWriter, r *http.Request) {
	c, until, ok := s.feedClient(w, r)
	if !ok {
		return
	}
	after, err := cursor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if after > 0 && s.cursorAhead(w, r, after) {
		return
	}
	limit := s.cfg.MaxStreamsPerClient
	if limit <= 0 {
		limit = DefaultMaxStreamsPerClient
	}
	st := s.feedStreams.acquire(c.ID, limit, s.now())
	if st == nil {
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusTooManyRequests, "too_many_streams",
			fmt.Sprintf("this client already holds %d revocation streams (revocation.max_streams_per_client); page GET /v1/revocations meanwhile", limit))
		return
	}
	defer s.feedStreams.release(st)
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout, but not a reader that
	// stops reading: every round of writes gets its own deadline, so a
	// stuck reader frees its slot and goroutine.
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	begun := time.Now() // heartbeats say how long after this they were written
	fmt.Fprintf(w, "retry: 1000\n: latch revocation feed from %d\n\n", after)
	if err := rc.Flush(); err != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	// Authenticated by a token, the stream ends when the token does, and
	// the reader reconnects with a fresh one (its permission checked
	// again). Every stream ends after streamMaxAge, so that a reader's
	// clock drifting from ours cannot stretch the freshness its
	// heartbeats vouch for, and permissions are checked again.
	if maxEnd := s.now().Add(streamMaxAge); until.IsZero() || maxEnd.Before(until) {
		until = maxEnd
	}
	endTimer := time.AfterFunc(until.Sub(s.now()), cancel)
	defer endTimer.Stop()

	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	var (
		seen    = int64(-1) // the set's cursor at the last complete read; -1 forces one
		vouched time.Time   // when this stream last read the store completely; zero: never
		pending = true      // a heartbeat is due
		buf     []byte
	)
	for {
		if !s.now().Before(until) {
			return // the token it was opened with has expired, or the stream is old
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		// The set wakes the stream when its cursor moves: entries revoked
		// here, and those the follower or a Redis poke pulled in.
		changed := s.revs.Changed()
		if c := s.revs.Cursor(); c != seen {
			start := s.now()
			ok := true
			for {
				list, err := s.store.RevocationsAfter(ctx, after, start, feedPageDefault)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					// Keep the stream: its heartbeats now say how long
					// this server has been behind, so followers go stale
					// (and look for a fresher source) instead of trusting it.
					s.log.Warn("revocation stream: reading the feed failed", "err", err)
					ok = false
					break
				}
				buf = buf[:0]
				for _, e := range list {
					buf, _ = revocation.AppendEvent(buf, e)
					after = e.Seq
				}
				if len(list) > 0 {
					if _, err := w.Write(buf); err != nil || rc.Flush() != nil {
						return
					}
					pending = true
				}
				if len(list) < feedPageDefault {
					break
				}
			}
			if ok {
				seen, vouched = c, start
			}
		}
		if pending {
			if !s.heartbeat(w, rc, begun, after, seen, vouched) {
				return
			}
			s.feedStreams.vouch(st, after, s.freshness(seen, vouched))
			pending = false
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-beat.C:
			pending = true
			if s.now().Sub(s.freshness(seen, vouched)) > streamHeartbeat {
				seen = -1 // stale: read the store ourselves before vouching
			}
		}
	}
}

// freshness is when the data this stream has sent was last known
// complete: its own last complete read of the store, or the set's last
// sync if the set holds nothing the stream has not sent (the set's cursor
// is still the one the stream read up to). Zero if never.
func (s *Server) freshness(seen int64, vouched time.Time) time.Time {
	last := s.revs.LastSync() // before the cursor: a sync stores its time after its entries
	if seen >= 0 && s.revs.Cursor() == seen && last.After(vouched) {
		return last
	}
	return vouched
}

// heartbeat sends a sync heartbeat vouching for the entries up to after,
// with the age of this server's data and the time since the stream began
// (on the monotonic clock); a comment when it never had any.
func (s *Server) heartbeat(w http.ResponseWriter, rc *http.ResponseController, begun time.Time, after, seen int64, vouched time.Time) bool {
	var b []byte
	if at := s.freshness(seen, vouched); at.IsZero() {
		b = []byte(": ping\n\n") // alive, but vouching for nothing
	} else {
		b = revocation.AppendHeartbeat(nil, revocation.Heartbeat{Cursor: after, Age: s.now().Sub(at), Elapsed: time.Since(begun)})
	}
	_, err := w.Write(b)
	return err == nil && rc.Flush() == nil
}
