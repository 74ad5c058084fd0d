package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/latchauth/latch"
)

// Revocation feed for remote verifiers: GET /v1/revocations pages through
// the live entries after a cursor; GET /v1/revocations/stream pushes new
// ones as Server-Sent Events. Both need a confidential client.

const (
	feedPageDefault = 1000
	feedPageMax     = 5000
	// streamHeartbeat keeps idle connections (and proxies) alive, and
	// tells a remote verifier that its data is still current.
	streamHeartbeat = 5 * time.Second
)

// RevocationJSON is one entry of the feed as remote verifiers see it.
type RevocationJSON struct {
	Seq       int64      `json:"seq"`
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Cutoff    *time.Time `json:"cutoff,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
}

func revocationJSON(r latch.Revocation) RevocationJSON {
	out := RevocationJSON{Seq: r.Seq, Kind: string(r.Kind), Value: r.Value, ExpiresAt: r.ExpiresAt.UTC()}
	if r.Kind == latch.RevokeUser {
		c := r.Cutoff.UTC()
		out.Cutoff = &c
	}
	return out
}

// feedClient authenticates a revocation-feed reader: a confidential client
// by HTTP Basic, or by an access token it obtained for itself with the
// client_credentials grant.
func (s *Server) feedClient(w http.ResponseWriter, r *http.Request) bool {
	if _, _, ok := r.BasicAuth(); ok {
		c, ok := s.authenticateClient(w, r, nil)
		if ok && c.Public() {
			s.invalidClient(w, true)
			return false
		}
		return ok
	}
	claims, ok := s.authenticate(w, r)
	if !ok {
		return false
	}
	if claims.SessionID != "" || claims.Subject != claims.ClientID {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="a client's own token is required"`)
		writeError(w, http.StatusForbidden, "insufficient_scope", "the revocation feed is for confidential clients; use a client_credentials token")
		return false
	}
	c, err := s.auth.Client(r.Context(), claims.ClientID)
	if err != nil || c.Public() {
		writeError(w, http.StatusForbidden, "insufficient_scope", "the revocation feed is for confidential clients")
		return false
	}
	return true
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

// revocations answers one page of the feed.
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) {
	if !s.feedClient(w, r) {
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
	list, err := s.store.RevocationsAfter(r.Context(), after, s.now(), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]RevocationJSON, 0, len(list))
	next := after
	for _, e := range list {
		out = append(out, revocationJSON(e))
		next = e.Seq
	}
	// The cursor never moves back, and an empty page keeps it where the
	// reader is; more means another page is waiting.
	writeJSON(w, http.StatusOK, map[string]any{"revocations": out, "cursor": next, "more": len(list) == limit})
}

// revocationStream pushes feed entries as Server-Sent Events: first every
// live entry after the cursor, then new ones as they come, each with its
// seq as the event id so a reconnecting client resumes with Last-Event-ID.
func (s *Server) revocationStream(w http.ResponseWriter, r *http.Request) {
	if !s.feedClient(w, r) {
		return
	}
	after, err := cursor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n: latch revocation feed from %d\n\n", after)
	if err := rc.Flush(); err != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()

	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	seen := int64(-1) // the set's cursor at the last look; -1 forces a first query
	for {
		// The set wakes the stream when its cursor moves: entries revoked
		// here, and those the follower or a Redis poke pulled in.
		changed := s.revs.Changed()
		if c := s.revs.Cursor(); c != seen {
			seen = c
			for {
				list, err := s.store.RevocationsAfter(ctx, after, s.now(), feedPageDefault)
				if err != nil {
					if ctx.Err() == nil {
						s.log.Warn("revocation stream: reading the feed failed", "err", err)
					}
					return // the client reconnects with Last-Event-ID
				}
				for _, e := range list {
					b, _ := json.Marshal(revocationJSON(e))
					fmt.Fprintf(w, "id: %d\nevent: revocation\ndata: %s\n\n", e.Seq, b)
					after = e.Seq
				}
				if len(list) > 0 {
					if err := rc.Flush(); err != nil {
						return
					}
				}
				if len(list) < feedPageDefault {
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-beat.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
