package revocation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of RemoteOptions.
const (
	DefaultRemotePollInterval = time.Second      // polling while the stream is down
	DefaultRemoteKeepFresh    = 5 * time.Second  // oldest vouched freshness before a proving poll
	DefaultRemoteMaxBackoff   = 30 * time.Second // ceiling of the delay between stream attempts
	DefaultRemotePruneEvery   = 30 * time.Second // how often expired entries are dropped
	DefaultRemoteTimeout      = 10 * time.Second // bound on one page request and on opening the stream
	DefaultRemoteStreamIdle   = 15 * time.Second // silence after which a stream is presumed dead (3 heartbeats)
	DefaultRemotePageSize     = 1000

	// maxLine bounds one line of the event stream; a longer line breaks
	// the stream (and the entries are then read by paging).
	maxLine = 64 << 10
	// maxPageBytes bounds one page response.
	maxPageBytes = 32 << 20
	// maxBatch is the most stream events applied to the set at once.
	maxBatch = 1000
)

// RemoteOptions configures a Remote. The zero value gives the defaults, but
// the feed needs a confidential client: set ClientID and ClientSecret.
type RemoteOptions struct {
	// ClientID and ClientSecret authenticate to the feed with HTTP Basic
	// (each form-urlencoded, RFC 6749 §2.3.1). The secret is never logged.
	ClientID     string
	ClientSecret string
	// HTTPClient sends the requests. nil means a client without an overall
	// timeout (the stream is long-lived); page requests and the opening of
	// the stream are bounded by Timeout either way. A client with a
	// Timeout cuts the stream every Timeout, which works but wastes
	// reconnections.
	HTTPClient *http.Client
	// PollInterval is the interval between page requests while the stream
	// is down. 0 means DefaultRemotePollInterval (1 s).
	PollInterval time.Duration
	// KeepFresh is how old the freshness vouched for by the stream (its
	// heartbeats come every 5 s, each with the age of the server's own
	// data) may get before Remote asks for a page to prove the set is
	// current: when the heartbeats stop, or say the server itself is
	// behind. Keep it below half the verifier's MaxStale. 0 means
	// DefaultRemoteKeepFresh (5 s).
	KeepFresh time.Duration
	// MaxBackoff caps the delay between attempts to open the stream after
	// failures (1 s, doubling, with jitter). 0 means
	// DefaultRemoteMaxBackoff (30 s).
	MaxBackoff time.Duration
	// PruneEvery is how often entries past their expiry are removed from
	// the set. 0 means DefaultRemotePruneEvery (30 s).
	PruneEvery time.Duration
	// Timeout bounds one page request, and the wait for the stream's
	// response headers. 0 means DefaultRemoteTimeout (10 s).
	Timeout time.Duration
	// StreamIdle is how long the stream may send nothing at all (not even
	// a heartbeat) before it is presumed dead and reopened. 0 means
	// DefaultRemoteStreamIdle (15 s, three heartbeats).
	StreamIdle time.Duration
	// PageSize is the limit asked of each page (1 to 5000). 0 means
	// DefaultRemotePageSize (1000).
	PageSize int
	// AllowInsecureHTTP permits an http:// base URL whose host is not a
	// loopback address. Over plain HTTP the client secret travels in the
	// clear and anyone on the path can hide revocations: use it only on a
	// network you trust.
	AllowInsecureHTTP bool
	// Logger receives failures and state changes. nil means
	// slog.Default().
	Logger *slog.Logger
	// Now returns the current time, recorded as the set's LastSync and
	// passed to Prune; nil means time.Now. Timers run on the real clock.
	Now func() time.Time
	// OnKeyRevoked, if not nil, is called with the kids of the entries of
	// kind Key just added to the set, once per batch that has any. The
	// server rotates away from a revoked active key in the same
	// transaction, so this is the moment to refetch its JWKS (NewRemote
	// does). It runs on the goroutine that applies entries: keep it short.
	OnKeyRevoked func(kids []string)
}

// Remote keeps a [Set] in sync with the revocation feed of a Latch server
// (GET /v1/revocations and GET /v1/revocations/stream). See [Remote.Run].
type Remote struct {
	base  *url.URL
	berr  error // why baseURL is unusable, reported by Run
	opts  RemoteOptions
	hc    *http.Client
	log   *slog.Logger
	now   func() time.Time
	auth  string // the Authorization header value; never logged
	ready chan struct{}

	running   atomic.Bool
	set       *Set
	applyMu   sync.Mutex // makes "seq > cursor, then Add" atomic across the stream and pages
	catchMu   sync.Mutex // one catch-up at a time
	readyOnce sync.Once
	streaming atomic.Bool
	lastFresh atomic.Int64 // the freshness last vouched for on the real clock, as sinceBase

	mu           sync.Mutex
	lastErr      error
	failingSince time.Time // real clock; zero while healthy
	lastWarn     time.Time
}

// NewRemote returns a Remote for the Latch server at baseURL (the feed is
// baseURL + "/v1/revocations"). It does nothing until Run is called. An
// unusable baseURL is reported by Run.
func NewRemote(baseURL string, opts RemoteOptions) *Remote {
	r := &Remote{opts: opts, ready: make(chan struct{})}
	r.lastFresh.Store(neverSynced)
	r.base, r.berr = checkBaseURL(baseURL, opts.AllowInsecureHTTP)
	o := &r.opts
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultRemotePollInterval
	}
	if o.KeepFresh <= 0 {
		o.KeepFresh = DefaultRemoteKeepFresh
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultRemoteMaxBackoff
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = DefaultRemotePruneEvery
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRemoteTimeout
	}
	if o.StreamIdle <= 0 {
		o.StreamIdle = DefaultRemoteStreamIdle
	}
	if o.PageSize <= 0 || o.PageSize > 5000 {
		o.PageSize = DefaultRemotePageSize
	}
	r.hc = o.HTTPClient
	if r.hc == nil {
		r.hc = &http.Client{}
	}
	r.log = o.Logger
	if r.log == nil {
		r.log = slog.Default()
	}
	r.now = o.Now
	if r.now == nil {
		r.now = time.Now
	}
	if o.ClientID != "" || o.ClientSecret != "" {
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
		r.auth = req.Header.Get("Authorization")
	}
	r.opts.ClientSecret = "" // kept only inside auth
	return r
}

func checkBaseURL(raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("revocation: feed URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, errors.New("revocation: the feed URL must be an absolute http(s) URL")
	case u.User != nil:
		return nil, errors.New("revocation: the feed URL must not carry credentials; use ClientID and ClientSecret")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("revocation: the feed URL must not have a query or fragment")
	case u.Scheme == "http" && !insecure && !loopback(u.Hostname()):
		return nil, errors.New("revocation: the feed URL must be https (http only on a loopback host, or with AllowInsecureHTTP)")
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Ready is closed once the first complete catch-up has been applied: from
// then on the set holds every entry the server had at that moment.
func (r *Remote) Ready() <-chan struct{} { return r.ready }

// Err returns the error of the last failed request, or nil if the last
// page or stream event arrived fine.
func (r *Remote) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Streaming reports whether the event stream is connected.
func (r *Remote) Streaming() bool { return r.streaming.Load() }

// StatusError is a feed response with an unexpected HTTP status.
type StatusError struct {
	Code       int    // HTTP status
	OAuthError string // the error code of the JSON body ("invalid_client"...), if any
}

func (e *StatusError) Error() string {
	if e.OAuthError == "cursor_ahead" {
		return fmt.Sprintf("revocation feed: HTTP %d (cursor_ahead): the set is ahead of the feed, which was restored from a backup or is another deployment's; restart with an empty Set", e.Code)
	}
	if e.OAuthError != "" {
		return fmt.Sprintf("revocation feed: HTTP %d (%s)", e.Code, e.OAuthError)
	}
	return fmt.Sprintf("revocation feed: HTTP %d", e.Code)
}

// Run keeps set in sync with the feed until ctx is done, then returns nil;
// it returns an error at once only if the base URL is unusable or Run is
// already running. Run it in its own goroutine, with one Set per Remote.
//
// It first pages through GET /v1/revocations from set.Cursor() until the
// server says there is no more (a full catch-up; Ready is closed after
// the first one), then opens GET /v1/revocations/stream from the cursor
// and applies each event as it comes. Entries are applied only when their
// seq is above the set's cursor, and every source (a page, the stream)
// starts from the cursor, so the set never skips an entry.
//
// When the stream fails or ends, Remote pages again from the cursor at
// once, then polls a page every PollInterval while it retries the stream
// with backoff (1 s doubling up to MaxBackoff, with jitter; the server's
// retry field sets the first delay). While the stream is connected but
// quiet, it asks for a page every KeepFresh.
//
// Freshness is end to end: the set's LastSync becomes what the server
// vouches for, never more. The last page of a catch-up and every sync
// heartbeat of the stream (every 5 s, and after each burst of entries)
// carry the age of the server's own data (see [Heartbeat]); LastSync
// becomes Now minus that age (for a page, Now when the request was sent),
// and never moves back. A server that cannot read its own store sends
// growing ages (or fails the page), so a fail-closed verifier comparing
// LastSync with its clock refuses tokens once the age passes its
// MaxStale, even while the stream stays open. Stream comments and
// entries only prove the connection is alive. A heartbeat counts as
// written no later than the stream request was sent plus the heartbeat's
// stream_ms, so time it spends in a buffering proxy or a congested
// network makes the set staler, never fresher; StreamIdle bounds how long
// a silent connection is trusted.
// Expired entries are pruned every PruneEvery.
func (r *Remote) Run(ctx context.Context, set *Set) error {
	if r.berr != nil {
		return r.berr
	}
	if set == nil {
		return errors.New("revocation: Run needs a Set")
	}
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("revocation: Remote is already running")
	}
	defer r.running.Store(false)
	r.set = set

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); r.pruneLoop(ctx) }()
	go func() { defer wg.Done(); r.keepFreshLoop(ctx) }()

	failures := 0            // consecutive failed stream attempts
	retry := time.Second     // the server's advice, from the retry field
	var nextStream time.Time // real clock: when to try the stream again
	for ctx.Err() == nil {
		if err := r.catchUp(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			r.failed("revocation feed: catch-up failed; polling", "err", err, "cursor", set.Cursor())
			sleep(ctx, r.opts.PollInterval)
			continue
		}
		if time.Now().Before(nextStream) {
			sleep(ctx, min(r.opts.PollInterval, time.Until(nextStream)))
			continue
		}
		connected, adv, err := r.stream(ctx)
		if ctx.Err() != nil {
			break
		}
		if adv > 0 {
			retry = adv
		}
		if connected {
			failures = 0
		}
		failures++
		d := backoff(retry, failures, r.opts.MaxBackoff)
		nextStream = time.Now().Add(d)
		if connected {
			r.log.Info("revocation feed: stream ended; catching up and reconnecting", "err", err, "retry_in", d.Round(time.Millisecond))
		} else {
			r.failed("revocation feed: stream unavailable; polling meanwhile", "err", err, "retry_in", d.Round(time.Millisecond))
		}
	}
	return nil
}

// backoff is the delay before stream attempt n (1-based): base doubled
// n-1 times, capped, with up to 20 % jitter either way.
func backoff(base time.Duration, n int, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	j := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if rand.IntN(2) == 0 {
		return d - j
	}
	return min(d+j, maxDelay)
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (r *Remote) pruneLoop(ctx context.Context) {
	t := time.NewTicker(r.opts.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := r.set.Prune(r.now()); n > 0 {
				r.log.Debug("revocation feed: pruned expired entries", "count", n)
			}
		}
	}
}

// keepFreshLoop proves freshness with a page request when what the
// stream vouched for is older than KeepFresh (checked every KeepFresh/4,
// so the proof is at most about 1.25 KeepFresh old). While the stream is
// down, Run polls.
func (r *Remote) keepFreshLoop(ctx context.Context) {
	t := time.NewTicker(r.opts.KeepFresh / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.streaming.Load() || time.Since(fromBase(r.lastFresh.Load())) < r.opts.KeepFresh {
			continue
		}
		if err := r.catchUp(ctx); err != nil && ctx.Err() == nil {
			r.failed("revocation feed: freshness poll failed", "err", err)
		}
	}
}

// markFresh records that the set was known to be current age before
// real (on the real clock) and now (on the Now clock): the source's
// freshness, never more.
func (r *Remote) markFresh(real, now time.Time, age time.Duration) {
	ns := sinceBase(real.Add(-age))
	for {
		old := r.lastFresh.Load()
		if old >= ns || r.lastFresh.CompareAndSwap(old, ns) {
			break
		}
	}
	r.set.MarkSynced(now.Add(-age))
	r.readyOnce.Do(func() { close(r.ready) })
}

func (r *Remote) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	since := r.failingSince
	if err == nil {
		r.failingSince = time.Time{}
	}
	r.mu.Unlock()
	if err == nil && !since.IsZero() {
		r.log.Info("revocation feed: reachable again", "was_failing_for", time.Since(since).Round(time.Millisecond))
	}
}

// failed logs a failure: at Warn for the first one after a success and
// then at most every 30 s, at Debug otherwise, so an outage does not
// flood the log.
func (r *Remote) failed(msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	if r.failingSince.IsZero() {
		r.failingSince = now
	}
	loud := now.Sub(r.lastWarn) >= 30*time.Second || r.failingSince == now
	if loud {
		r.lastWarn = now
	}
	since := r.failingSince
	r.mu.Unlock()
	level := slog.LevelDebug
	if loud {
		level = slog.LevelWarn
	}
	r.log.Log(context.Background(), level, msg, append(args, "failing_for", now.Sub(since).Round(time.Millisecond))...)
}

// apply adds the entries whose seq is above the cursor, in order.
func (r *Remote) apply(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	cur := r.set.Cursor()
	keep := entries[:0:0]
	for _, e := range entries {
		if e.Seq > cur {
			keep = append(keep, e)
			cur = e.Seq
		}
	}
	r.set.Add(keep...)
	if r.opts.OnKeyRevoked == nil {
		return
	}
	var kids []string
	for _, e := range keep {
		if e.Kind == Key {
			kids = append(kids, e.Value)
		}
	}
	if len(kids) > 0 {
		r.opts.OnKeyRevoked(kids)
	}
}

// catchUp pages from the set's cursor until the server has no more, then
// marks the set fresh.
func (r *Remote) catchUp(ctx context.Context) error {
	r.catchMu.Lock()
	defer r.catchMu.Unlock()
	after := r.set.Cursor()
	for {
		real, now := time.Now(), r.now() // before the request: never fresher than the server's answer
		page, err := r.page(ctx, after)
		if err != nil {
			r.setErr(err)
			return err
		}
		r.apply(page.entries)
		next := max(after, page.cursor, r.set.Cursor())
		if !page.more {
			r.setErr(nil)
			r.markFresh(real, now, page.age)
			return nil
		}
		if next <= after {
			err := fmt.Errorf("revocation feed: page after %d says more but does not move the cursor", after)
			r.setErr(err)
			return err
		}
		after = next
	}
}

type page struct {
	entries []Entry
	cursor  int64
	more    bool
	age     time.Duration
}

func (r *Remote) newRequest(ctx context.Context, path string, after int64, extra url.Values) (*http.Request, error) {
	u := *r.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	req.Header.Set("User-Agent", "latch-revocation-follower")
	return req, nil
}

// page fetches one page of the feed after the cursor.
func (r *Remote) page(ctx context.Context, after int64) (*page, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := r.newRequest(ctx, PagePath, after, url.Values{"limit": {strconv.Itoa(r.opts.PageSize)}})
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	// A cache on the way must not answer with an old page: its age_ms
	// would vouch for data the server no longer stands behind.
	req.Header.Set("Cache-Control", "no-cache")
	res, err := r.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("revocation feed: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, statusError(res)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("revocation feed: page has Content-Type %q, want application/json", res.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("revocation feed: reading a page: %w", err)
	}
	if len(body) > maxPageBytes {
		return nil, fmt.Errorf("revocation feed: page larger than %d bytes", maxPageBytes)
	}
	doc, err := ParsePage(body)
	if err != nil {
		return nil, fmt.Errorf("revocation feed: %w", err)
	}
	p := &page{cursor: doc.Cursor, more: doc.More, age: doc.Age, entries: make([]Entry, 0, len(doc.Entries))}
	last := after
	for i, e := range doc.Entries {
		if err := doc.Errs[i]; err != nil {
			r.log.Warn("revocation feed: skipping a bad entry", "err", err, "after", last)
			if e.Seq > last {
				last = e.Seq
				p.entries = append(p.entries, Entry{Seq: e.Seq}) // moves the cursor past it
			}
			continue
		}
		if e.Seq <= last {
			r.log.Warn("revocation feed: skipping an entry out of order", "seq", e.Seq, "after", last)
			continue
		}
		last = e.Seq
		p.entries = append(p.entries, e)
	}
	return p, nil
}

func statusError(res *http.Response) error {
	e := &StatusError{Code: res.StatusCode}
	var body struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if json.Unmarshal(b, &body) == nil && len(body.Error) <= 64 && isToken(body.Error) {
		e.OAuthError = body.Error
	}
	return e
}

// isToken reports whether s is printable ASCII without spaces or quotes,
// safe to log as is.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// stream reads the event stream from the cursor until it fails or ctx is
// done. connected reports whether the server accepted it; retry is the
// server's retry advice, 0 if none.
func (r *Remote) stream(ctx context.Context) (connected bool, retry time.Duration, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	after := r.set.Cursor()
	req, err := r.newRequest(ctx, StreamPath, after, nil)
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))

	// The idle timer cancels the request: first if the headers do not
	// come within Timeout, then if nothing comes for StreamIdle.
	var timedOut atomic.Bool
	idle := time.AfterFunc(r.opts.Timeout, func() { timedOut.Store(true); cancel() })
	defer idle.Stop()
	// Every heartbeat was written at most its Elapsed after this instant:
	// the server began the stream after the request was sent.
	sent := time.Now()
	res, err := r.hc.Do(req)
	if err != nil {
		if timedOut.Load() {
			err = fmt.Errorf("revocation stream: no response within %v: %w", r.opts.Timeout, err)
		} else {
			err = fmt.Errorf("revocation stream: %w", err)
		}
		r.setErr(err)
		return false, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		err := statusError(res)
		r.setErr(err)
		return false, 0, err
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		err := fmt.Errorf("revocation stream: Content-Type %q, want text/event-stream", res.Header.Get("Content-Type"))
		r.setErr(err)
		return false, 0, err
	}
	idle.Reset(r.opts.StreamIdle)
	r.streaming.Store(true)
	defer r.streaming.Store(false)
	r.log.Debug("revocation feed: stream connected", "after", after)

	br := bufio.NewReaderSize(res.Body, maxLine)
	var (
		event string
		data  []byte
		id    string
		batch []Entry
		last  = after
	)
	flush := func() {
		r.apply(batch)
		batch = batch[:0]
		r.setErr(nil)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if len(batch) > 0 {
				flush()
			}
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				err = fmt.Errorf("revocation stream: a line exceeds %d bytes", maxLine)
			case errors.Is(err, io.EOF):
				err = errors.New("revocation stream: closed by the server")
			case timedOut.Load():
				err = fmt.Errorf("revocation stream: nothing received for %v: %w", r.opts.StreamIdle, err)
			default:
				err = fmt.Errorf("revocation stream: %w", err)
			}
			r.setErr(err)
			return true, retry, err
		}
		idle.Reset(r.opts.StreamIdle)
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
		if len(line) == 0 { // dispatch
			if event == EventSync && data != nil {
				flush()
				switch h, herr := ParseHeartbeat(data); {
				case herr != nil:
					r.log.Warn("revocation stream: skipping a bad heartbeat", "err", herr)
				case r.set.Cursor() < h.Cursor:
					// The server vouches for entries we do not hold: prove
					// nothing, and let a page catch up.
					r.log.Warn("revocation stream: heartbeat ahead of the entries received", "cursor", r.set.Cursor(), "heartbeat_cursor", h.Cursor)
				default:
					// Written no later than sent+Elapsed, however long it
					// spent in buffers on the way: count it from there.
					now := r.now()
					recv := time.Now() // after now: now is never the later of the two

					if at := sent.Add(h.Elapsed); at.Before(recv) {
						now = now.Add(-recv.Sub(at))
						recv = at
					}
					r.markFresh(recv, now, h.Age)
				}
			}
			if event == EventRevocation && data != nil {
				e, perr := ParseEntry(data)
				switch {
				case perr != nil:
					r.log.Warn("revocation stream: skipping a bad event", "err", perr, "id", truncate(id))
					if e.Seq > last {
						last = e.Seq
						batch = append(batch, Entry{Seq: e.Seq})
					}
				case id != "" && id != strconv.FormatInt(e.Seq, 10):
					r.log.Warn("revocation stream: event id differs from its seq; using seq", "id", truncate(id), "seq", e.Seq)
					fallthrough
				default:
					if e.Seq > last {
						last = e.Seq
						batch = append(batch, e)
					}
				}
			}
			event, data, id = "", nil, ""
			if len(batch) >= maxBatch || (len(batch) > 0 && br.Buffered() == 0) {
				flush()
			}
			continue
		}
		if line[0] == ':' { // comment: the greeting or a keep-alive; proves the connection only
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
			if len(data) > maxLine {
				err := fmt.Errorf("revocation stream: an event exceeds %d bytes", maxLine)
				r.setErr(err)
				return true, retry, err
			}
		case "id":
			id = string(value)
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms > 0 {
				retry = min(max(time.Duration(ms)*time.Millisecond, 100*time.Millisecond), r.opts.MaxBackoff)
			}
		}
	}
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
