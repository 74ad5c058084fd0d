package revocation_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/verifier/revocation"
)

const (
	feedID     = "api:svc"
	feedSecret = "s3cr:t+/ é%-0123456789abcdefghijkl"
)

// wire is one feed entry as the server sends it.
type wire struct {
	Seq       int64      `json:"seq"`
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Cutoff    *time.Time `json:"cutoff,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// fakeFeed serves /v1/revocations and /v1/revocations/stream like a Latch
// server, with knobs to break it.
type fakeFeed struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	entries []wire
	news    chan struct{} // closed and replaced on every append
	auths   []string
	afters  []int64 // after of every stream request, in order
	lastIDs []string
	kill    chan struct{} // closed to drop every open stream

	pages      atomic.Int32
	streams    atomic.Int32
	streamFail atomic.Bool  // stream answers 500
	pageFail   atomic.Bool  // pages answer 503
	dropAfter  atomic.Int32 // >0: a stream closes after sending that many events
	heartbeat  time.Duration
	age        atomic.Int64 // age_ms of pages and heartbeats
	comments   atomic.Bool  // heartbeats are bare comments, vouching for nothing
	held       atomic.Bool  // heartbeats say stream_ms 0: written at the stream's start, held back since (a buffering proxy)
	beats      atomic.Int32 // heartbeats sent
	rawStream  string       // if set, written verbatim after the greeting, then the stream stays open
	rawPage    string       // if set, the page body
}

func newFakeFeed(t *testing.T, heartbeat time.Duration) *fakeFeed {
	f := &fakeFeed{t: t, news: make(chan struct{}), kill: make(chan struct{}), heartbeat: heartbeat}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/revocations", f.page)
	mux.HandleFunc("GET /v1/revocations/stream", f.stream)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.dropStreams()
		f.srv.Close()
	})
	return f
}

func (f *fakeFeed) add(ws ...wire) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range ws {
		if n := len(f.entries); n > 0 && w.Seq <= f.entries[n-1].Seq {
			f.t.Fatalf("fake feed: seq %d out of order", w.Seq)
		}
		f.entries = append(f.entries, w)
	}
	close(f.news)
	f.news = make(chan struct{})
}

// addN appends n sid entries after the last seq, valued "s<seq>".
func (f *fakeFeed) addN(n int, exp time.Time) {
	f.mu.Lock()
	next := int64(1)
	if len(f.entries) > 0 {
		next = f.entries[len(f.entries)-1].Seq + 1
	}
	f.mu.Unlock()
	ws := make([]wire, n)
	for i := range ws {
		s := next + int64(i)
		ws[i] = wire{Seq: s, Kind: "sid", Value: "s" + strconv.FormatInt(s, 10), ExpiresAt: exp}
	}
	f.add(ws...)
}

func (f *fakeFeed) dropStreams() {
	f.mu.Lock()
	close(f.kill)
	f.kill = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeFeed) after(list []wire, after int64, limit int) []wire {
	var out []wire
	for _, e := range list {
		if e.Seq > after {
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func (f *fakeFeed) authorized(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	f.mu.Unlock()
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != feedID || secret != feedSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"invalid_client","error_description":"nope"}`))
		return false
	}
	return true
}

func (f *fakeFeed) page(w http.ResponseWriter, r *http.Request) {
	f.pages.Add(1)
	if !f.authorized(w, r) {
		return
	}
	if f.pageFail.Load() {
		http.Error(w, "down", 503)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if f.rawPage != "" {
		w.Write([]byte(f.rawPage))
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit == 0 {
		limit = 1000
	}
	f.mu.Lock()
	list := f.after(f.entries, after, limit)
	f.mu.Unlock()
	cursor := after
	if len(list) > 0 {
		cursor = list[len(list)-1].Seq
	}
	if list == nil {
		list = []wire{}
	}
	json.NewEncoder(w).Encode(map[string]any{"revocations": list, "cursor": cursor, "more": len(list) == limit, "age_ms": f.age.Load()})
}

func (f *fakeFeed) stream(w http.ResponseWriter, r *http.Request) {
	f.streams.Add(1)
	if !f.authorized(w, r) {
		return
	}
	if f.streamFail.Load() {
		http.Error(w, "stream broken", 500)
		return
	}
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if err != nil {
		http.Error(w, "bad after", 400)
		return
	}
	f.mu.Lock()
	f.afters = append(f.afters, after)
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	kill := f.kill
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	begun := time.Now()
	fmt.Fprintf(w, "retry: 20\n: fake feed from %d\n\n", after)
	w.(http.Flusher).Flush()
	if f.rawStream != "" {
		w.Write([]byte(f.rawStream))
		w.(http.Flusher).Flush()
	}
	beat := time.NewTicker(f.heartbeat)
	defer beat.Stop()
	sent := int32(0)
	for {
		f.mu.Lock()
		list := f.after(f.entries, after, 1<<30)
		news := f.news
		f.mu.Unlock()
		if f.rawStream == "" {
			for _, e := range list {
				if d := f.dropAfter.Load(); d > 0 && sent >= d {
					return
				}
				b, _ := json.Marshal(e)
				fmt.Fprintf(w, "id: %d\nevent: revocation\ndata: %s\n\n", e.Seq, b)
				after = e.Seq
				sent++
			}
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-kill:
			return
		case <-news:
		case <-beat.C:
			if f.comments.Load() {
				w.Write([]byte(": ping\n\n"))
			} else {
				h := revocation.Heartbeat{Cursor: after, Age: time.Duration(f.age.Load()) * time.Millisecond, Elapsed: time.Since(begun)}
				if f.held.Load() {
					h.Elapsed = 0
				}
				w.Write(revocation.AppendHeartbeat(nil, h))
			}
			w.(http.Flusher).Flush()
			f.beats.Add(1)
		}
	}
}

// logBuffer collects the logs of a Remote.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type runOpts func(*revocation.RemoteOptions)

// run starts a Remote on a new set against f and waits until it is ready
// (unless noWait). It returns the set, the remote and its logs.
func run(t *testing.T, f *fakeFeed, noWait bool, mut ...runOpts) (*revocation.Set, *revocation.Remote, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts := revocation.RemoteOptions{
		ClientID: feedID, ClientSecret: feedSecret,
		PollInterval: 30 * time.Millisecond,
		KeepFresh:    time.Hour,
		MaxBackoff:   100 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mut {
		m(&opts)
	}
	set := revocation.NewSet()
	rem := revocation.NewRemote(f.srv.URL, opts)
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- rem.Run(ctx, set) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5 s of the cancellation")
		}
		for _, s := range []string{feedSecret, url.QueryEscape(feedSecret), base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(feedID) + ":" + url.QueryEscape(feedSecret)))} {
			if strings.Contains(logs.String(), s) {
				t.Errorf("the logs contain the client secret (%q)", s)
			}
		}
		if t.Failed() {
			t.Logf("remote logs:\n%s", logs.String())
		}
	})
	if !noWait {
		select {
		case <-rem.Ready():
		case <-time.After(5 * time.Second):
			t.Fatalf("not ready within 5 s: %v", rem.Err())
		}
	}
	return set, rem, logs
}

// eventually polls cond every 2 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hasAll fails unless every sid s1..sN is revoked in set.
func hasAll(t *testing.T, set *revocation.Set, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if !set.Revoked("", "s"+strconv.Itoa(i), "", time.Time{}) {
			t.Fatalf("s%d is missing from the set (cursor %d, len %d): a gap", i, set.Cursor(), set.Len())
		}
	}
}

func TestRemoteCatchUpThenStream(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	exp := time.Now().Add(time.Hour)
	f.addN(2500, exp) // three pages of 1000
	set, rem, _ := run(t, f, false)
	if set.Cursor() != 2500 || set.Len() != 2500 {
		t.Fatalf("after the catch-up: cursor %d len %d, want 2500", set.Cursor(), set.Len())
	}
	hasAll(t, set, 2500)
	if set.LastSync().IsZero() {
		t.Fatal("LastSync not set after the catch-up")
	}
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	pages := f.pages.Load()

	// New entries arrive by the stream, not by pages.
	start := time.Now()
	f.add(wire{Seq: 2501, Kind: "jti", Value: "j1", ExpiresAt: exp})
	eventually(t, time.Second, "jti entry by the stream", func() bool { return set.Revoked("j1", "", "", time.Time{}) })
	t.Logf("stream delivery: %v", time.Since(start))
	cut := time.Now().Truncate(time.Second)
	f.add(wire{Seq: 2502, Kind: "user", Value: "u1", Cutoff: &cut, ExpiresAt: exp})
	eventually(t, time.Second, "user entry by the stream", func() bool { return set.Revoked("", "", "u1", cut.Add(-time.Second)) })
	if set.Revoked("", "", "u1", cut) {
		t.Fatal("a token issued at the cutoff second is revoked")
	}
	if got := f.pages.Load(); got != pages {
		t.Fatalf("%d page requests while the stream was up, want none", got-pages)
	}
	f.mu.Lock()
	afters := f.afters
	f.mu.Unlock()
	if len(afters) == 0 || afters[0] != 2500 {
		t.Fatalf("stream opened with after %v, want 2500 (the cursor after the catch-up)", afters)
	}

	// Authorization: HTTP Basic with each part form-urlencoded.
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(feedID)+":"+url.QueryEscape(feedSecret)))
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.auths {
		if a != want {
			t.Fatalf("Authorization %q, want %q", a, want)
		}
	}
}

func TestRemoteStreamDropNoGap(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	exp := time.Now().Add(time.Hour)
	f.addN(5, exp)
	set, rem, _ := run(t, f, false)
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)

	// Each stream now ends after 3 events; 20 entries come in a burst, so
	// the stream drops in the middle and the remote must catch up by
	// paging and reopen the stream from its cursor.
	f.dropAfter.Store(3)
	for range 4 {
		f.addN(5, exp)
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, 3*time.Second, "every entry", func() bool { return set.Cursor() == 25 })
	hasAll(t, set, 25)

	// A dropped stream with no entries pending: reconnects from the cursor.
	f.dropAfter.Store(0)
	eventually(t, 3*time.Second, "stream reconnected", rem.Streaming)
	n := f.streams.Load()
	f.dropStreams()
	eventually(t, 3*time.Second, "stream reopened", func() bool { return f.streams.Load() > n && rem.Streaming() })
	f.addN(5, exp)
	eventually(t, 2*time.Second, "entries after the reconnect", func() bool { return set.Cursor() == 30 })
	hasAll(t, set, 30)

	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 1; i < len(f.afters); i++ {
		if f.afters[i] < f.afters[i-1] {
			t.Fatalf("stream cursors went back: %v", f.afters)
		}
		if f.lastIDs[i] != strconv.FormatInt(f.afters[i], 10) {
			t.Fatalf("Last-Event-ID %q with after=%d", f.lastIDs[i], f.afters[i])
		}
	}
	if f.afters[len(f.afters)-1] != 25 {
		t.Fatalf("last stream opened after %d, want 25; all: %v", f.afters[len(f.afters)-1], f.afters)
	}
}

func TestRemoteFallbackPolling(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	f.streamFail.Store(true)
	exp := time.Now().Add(time.Hour)
	f.addN(3, exp)
	set, rem, logs := run(t, f, false)
	hasAll(t, set, 3)

	first := set.LastSync()
	f.addN(2, exp)
	eventually(t, time.Second, "entries by polling", func() bool { return set.Cursor() == 5 })
	hasAll(t, set, 5)
	eventually(t, time.Second, "LastSync advances with polls", func() bool { return set.LastSync().After(first) })
	if rem.Streaming() {
		t.Fatal("streaming while the stream endpoint fails")
	}
	// Err tells of the last request, and polls succeed between stream
	// attempts; the log keeps the stream's failure.
	eventually(t, 2*time.Second, "the stream's 500 logged", func() bool {
		l := logs.String()
		return strings.Contains(l, "polling meanwhile") && strings.Contains(l, "500")
	})

	// The stream comes back: the remote goes back to it (backoff capped
	// at 100 ms here).
	f.streamFail.Store(false)
	eventually(t, 2*time.Second, "stream back", rem.Streaming)
	f.addN(1, exp)
	eventually(t, time.Second, "entry by the stream", func() bool { return set.Cursor() == 6 })
}

func TestRemoteHeartbeatFreshness(t *testing.T) {
	f := newFakeFeed(t, 20*time.Millisecond)
	set, rem, _ := run(t, f, false)
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	pages := f.pages.Load()
	a := set.LastSync()
	time.Sleep(100 * time.Millisecond)
	b := set.LastSync()
	if !b.After(a) {
		t.Fatalf("LastSync did not advance with heartbeats: %v then %v", a, b)
	}
	if got := f.pages.Load(); got != pages {
		t.Fatalf("%d page requests while heartbeats flow, want none", got-pages)
	}
	if set.Len() != 0 || set.Cursor() != 0 {
		t.Fatal("heartbeats added entries")
	}
}

// TestRemoteFreshnessIsVouched: the set is exactly as fresh as the feed
// says its source is (the age of pages and heartbeats), never more.
func TestRemoteFreshnessIsVouched(t *testing.T) {
	f := newFakeFeed(t, 20*time.Millisecond)
	f.age.Store(time.Hour.Milliseconds()) // the source has been unable to sync for an hour
	set, rem, _ := run(t, f, false)
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	n := f.beats.Load()
	eventually(t, 2*time.Second, "heartbeats", func() bool { return f.beats.Load() > n+3 })
	if age := time.Since(set.LastSync()); age < time.Hour {
		t.Fatalf("LastSync is %v old, fresher than the hour the source vouches for", age)
	}
	f.age.Store(0)
	eventually(t, 2*time.Second, "fresh once the source is", func() bool { return time.Since(set.LastSync()) < time.Second })
}

// TestRemoteHeldHeartbeatsProveNothing: heartbeats that reach the
// follower long after they were written (held by a buffering proxy, or
// trickled through by anyone on the path) vouch only for the moment they
// were written, however fresh their age_ms: the set does not get fresher
// than the stream's start while they keep arriving, so a fail-closed
// verifier goes stale instead of trusting a stream that lags behind.
func TestRemoteHeldHeartbeatsProveNothing(t *testing.T) {
	f := newFakeFeed(t, 20*time.Millisecond)
	f.held.Store(true)
	set, rem, _ := run(t, f, false, func(o *revocation.RemoteOptions) { o.KeepFresh = time.Hour })
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	n := f.beats.Load()
	eventually(t, 2*time.Second, "heartbeats", func() bool { return f.beats.Load() > n+2 })
	a := time.Now() // after the stream began
	n = f.beats.Load()
	eventually(t, 2*time.Second, "more heartbeats", func() bool { return f.beats.Load() > n+3 })
	if b := set.LastSync(); b.After(a) {
		t.Fatalf("held heartbeats moved LastSync to %v, past %v when they had all been written", b, a)
	}
	// Delivered as they are written, the same heartbeats keep it fresh.
	f.held.Store(false)
	eventually(t, 2*time.Second, "fresh again", func() bool { return set.LastSync().After(a) })
}

// TestRemoteCommentsProveNothing: keep-alive comments (what servers sent
// before heartbeats carried an age) keep the stream open but never make
// the set look fresh.
func TestRemoteCommentsProveNothing(t *testing.T) {
	f := newFakeFeed(t, 20*time.Millisecond)
	f.comments.Store(true)
	set, rem, _ := run(t, f, false)
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	a := set.LastSync()
	n := f.beats.Load()
	eventually(t, 2*time.Second, "comments", func() bool { return f.beats.Load() > n+3 })
	if b := set.LastSync(); !b.Equal(a) || !rem.Streaming() {
		t.Fatalf("comments moved LastSync from %v to %v (streaming %v)", a, b, rem.Streaming())
	}
}

func TestRemoteKeepFreshPollsQuietStream(t *testing.T) {
	f := newFakeFeed(t, time.Hour) // no heartbeats
	set, rem, _ := run(t, f, false, func(o *revocation.RemoteOptions) { o.KeepFresh = 60 * time.Millisecond })
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	pages := f.pages.Load()
	a := set.LastSync()
	eventually(t, time.Second, "a proving page", func() bool { return f.pages.Load() > pages && set.LastSync().After(a) })
	if age := time.Since(set.LastSync()); age > 200*time.Millisecond {
		t.Fatalf("LastSync is %v old with KeepFresh 60 ms", age)
	}
}

func TestRemoteStreamIdleTimeout(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	_, rem, logs := run(t, f, false, func(o *revocation.RemoteOptions) { o.StreamIdle = 80 * time.Millisecond })
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	n := f.streams.Load()
	eventually(t, 2*time.Second, "silent stream reopened", func() bool { return f.streams.Load() > n })
	if !strings.Contains(logs.String(), "nothing received for") {
		t.Fatalf("idle timeout not reported")
	}
}

func TestRemoteBadEntriesSkipped(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	f.rawStream = strings.Join([]string{
		`id: 1`, `event: revocation`, `data: {"seq":1,"kind":"sid","value":"s1","expires_at":"` + exp + `"}`, ``,
		`id: 2`, `event: revocation`, `data: {"seq":2,"kind":"sid","value":`, ``, // truncated JSON
		`event: something-new`, `data: {"seq":3,"kind":"sid","value":"evil","expires_at":"` + exp + `"}`, ``, // unknown type: ignored
		`id: 3`, `event: revocation`, `data: {"seq":3,"kind":"sid","value":"s3","expires_at":12}`, ``, // wrong type
		`id: 4`, `event: revocation`, `data: {"seq":4,"kind":"teapot","value":"x","expires_at":"` + exp + `"}`, ``, // unknown kind
		`id: 5`, `event: revocation`, `data: {"seq":5,"kind":"user","value":"u5","expires_at":"` + exp + `"}`, ``, // user without cutoff
		`data: no event name`, ``,
		`: comment`,
		`id: 6`, `event: revocation`, `data: {"seq":6,"kind":"sid","value":"s6","expires_at":"` + exp + `"}`, ``,
		`id: 7`, `event: revocation`, `data: {"seq":5,"kind":"sid","value":"old","expires_at":"` + exp + `"}`, ``, // goes back: ignored
		``,
	}, "\n")
	set, rem, logs := run(t, f, false)
	eventually(t, 2*time.Second, "stream connected", rem.Streaming)
	eventually(t, time.Second, "last good event", func() bool { return set.Revoked("", "s6", "", time.Time{}) })
	if !set.Revoked("", "s1", "", time.Time{}) {
		t.Fatal("s1 missing")
	}
	for _, v := range []string{"evil", "s3", "old"} {
		if set.Revoked("", v, "", time.Time{}) {
			t.Fatalf("%s applied", v)
		}
	}
	if set.Cursor() != 6 || set.Len() != 2 {
		t.Fatalf("cursor %d len %d, want 6 and 2", set.Cursor(), set.Len())
	}
	if c := strings.Count(logs.String(), "skipping a bad event"); c != 4 {
		t.Fatalf("%d bad events logged, want 4:\n%s", c, logs.String())
	}
	if !rem.Streaming() {
		t.Fatal("bad events broke the stream")
	}
}

func TestRemoteBadPageEntries(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	f.streamFail.Store(true)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	f.rawPage = `{"revocations":[{"seq":1,"kind":"jti","value":"j1","expires_at":"` + exp + `"},` +
		`{"seq":2,"kind":"jti"},{"seq":"x"},{"seq":3,"kind":"jti","value":"j3","expires_at":"` + exp + `","extra":true}],"cursor":3,"more":false}`
	set, _, logs := run(t, f, false)
	if !set.Revoked("j1", "", "", time.Time{}) || !set.Revoked("j3", "", "", time.Time{}) || set.Len() != 2 || set.Cursor() != 3 {
		t.Fatalf("len %d cursor %d", set.Len(), set.Cursor())
	}
	if !strings.Contains(logs.String(), "skipping a bad entry") {
		t.Fatal("bad entries not logged")
	}
}

func TestRemoteLongLineBreaksStreamNotProcess(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	f.rawStream = "data: " + strings.Repeat("x", 70<<10) + "\n\n"
	_, _, logs := run(t, f, false)
	eventually(t, 2*time.Second, "long line refused", func() bool { return strings.Contains(logs.String(), "exceeds") })
}

func TestRemotePrunesExpired(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	f.add(wire{Seq: 1, Kind: "sid", Value: "soon", ExpiresAt: time.Now().Add(150 * time.Millisecond)},
		wire{Seq: 2, Kind: "sid", Value: "later", ExpiresAt: time.Now().Add(time.Hour)})
	set, _, _ := run(t, f, false, func(o *revocation.RemoteOptions) { o.PruneEvery = 20 * time.Millisecond })
	if set.Len() != 2 {
		t.Fatalf("len %d, want 2", set.Len())
	}
	eventually(t, 2*time.Second, "expired entry pruned", func() bool { return set.Len() == 1 })
	if !set.Revoked("", "later", "", time.Time{}) || set.Cursor() != 2 {
		t.Fatal("pruning removed a live entry or moved the cursor")
	}
}

func TestRemoteWrongSecret(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	_, rem, logs := run(t, f, true, func(o *revocation.RemoteOptions) { o.ClientSecret = "wrong-secret-wrong-secret" })
	var se *revocation.StatusError
	eventually(t, 2*time.Second, "401 reported", func() bool { return errors.As(rem.Err(), &se) && se.Code == 401 && se.OAuthError == "invalid_client" })
	select {
	case <-rem.Ready():
		t.Fatal("ready without a successful catch-up")
	default:
	}
	if strings.Contains(logs.String(), "wrong-secret") {
		t.Fatal("secret logged")
	}
}

func TestRemotePageOutageThenRecovery(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	f.pageFail.Store(true)
	f.addN(2, time.Now().Add(time.Hour))
	set, rem, _ := run(t, f, true)
	time.Sleep(100 * time.Millisecond)
	if !set.LastSync().IsZero() || set.Len() != 0 {
		t.Fatal("synced while the feed was down")
	}
	f.pageFail.Store(false)
	select {
	case <-rem.Ready():
	case <-time.After(2 * time.Second):
		t.Fatal("not ready after the feed recovered")
	}
	hasAll(t, set, 2)
}

func TestRemoteRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://auth.example.com", "https://id:secret@auth.example.com", "ftp://x", "https://x/?a=b", "not a url"} {
		ctx, cancel := contextWithCancel(t)
		err := revocation.NewRemote(u, revocation.RemoteOptions{}).Run(ctx, revocation.NewSet())
		cancel()
		if err == nil {
			t.Errorf("%s: Run accepted it", u)
		} else if strings.Contains(err.Error(), "secret") && strings.Contains(u, "secret") && strings.Contains(err.Error(), "id:secret") {
			t.Errorf("%s: error echoes the credentials: %v", u, err)
		}
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// TestRemoteHeartbeatAheadProvesNothing: a heartbeat vouching for entries
// the follower has not received does not make its set fresh.
func TestRemoteHeartbeatAheadProvesNothing(t *testing.T) {
	f := newFakeFeed(t, time.Hour)
	f.rawStream = "event: sync\ndata: {\"cursor\":99,\"age_ms\":0,\"stream_ms\":0}\n\n"
	set, rem, logs := run(t, f, false)
	a := set.LastSync()
	eventually(t, 2*time.Second, "heartbeat read", func() bool { return strings.Contains(logs.String(), "heartbeat ahead") })
	if b := set.LastSync(); !b.Equal(a) || !rem.Streaming() {
		t.Fatalf("a heartbeat ahead of the entries moved LastSync from %v to %v", a, b)
	}
}
