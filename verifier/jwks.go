package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// Defaults of JWKSOptions.
const (
	DefaultJWKSTimeout            = 10 * time.Second // bound on one fetch
	DefaultJWKSMinRefresh         = time.Minute      // floor of the refresh interval
	DefaultJWKSMaxRefresh         = 15 * time.Minute // ceiling, and interval without max-age
	DefaultJWKSUnknownKidInterval = 30 * time.Second // at most one unknown-kid refetch per interval
	DefaultJWKSMaxBytes           = 512 << 10        // largest document, in bytes
	DefaultJWKSMaxKeys            = 100              // most keys in a document
)

const (
	// maxUnknownKidWait bounds how long WaitKey waits for the refetch an
	// unknown kid triggered (or joined), whatever its context allows.
	maxUnknownKidWait = 2 * time.Second
	// maxRetryBase is the first retry delay after a failed fetch; later
	// retries double it up to MinRefresh.
	maxRetryBase = time.Second
	// maxRSABits is the largest RSA modulus accepted (go-jose's own limit).
	maxRSABits = 4096
)

// jwksAlgorithms is the one list of algorithms a key of a remote JWKS may
// be bound to (the algorithms Latch signs with), each with the check its
// public key must pass. Keys bound to any other algorithm are ignored.
var jwksAlgorithms = map[string]func(crypto.PublicKey) error{
	"EdDSA": func(pub crypto.PublicKey) error {
		if p, ok := pub.(ed25519.PublicKey); ok && len(p) == ed25519.PublicKeySize {
			return nil
		}
		return fmt.Errorf("an EdDSA key must be an Ed25519 key, not %s", keyKind(pub))
	},
	"ES256": func(pub crypto.PublicKey) error {
		if p, ok := pub.(*ecdsa.PublicKey); ok && p.Curve == elliptic.P256() {
			return nil
		}
		return fmt.Errorf("an ES256 key must be an ECDSA P-256 key, not %s", keyKind(pub))
	},
	"RS256": func(pub crypto.PublicKey) error {
		p, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("an RS256 key must be an RSA key, not %s", keyKind(pub))
		}
		if b := p.N.BitLen(); b < 2048 || b > maxRSABits {
			return fmt.Errorf("RSA key of %d bits (accepted: 2048 to %d)", b, maxRSABits)
		}
		return nil
	},
}

// acceptedJWKSAlgorithms lists the keys of jwksAlgorithms, for messages.
func acceptedJWKSAlgorithms() string {
	algs := make([]string, 0, len(jwksAlgorithms))
	for alg := range jwksAlgorithms {
		algs = append(algs, alg)
	}
	slices.Sort(algs)
	return strings.Join(algs, ", ")
}

// keyKind names the type of a parsed public key for error messages.
func keyKind(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return "an Ed25519 key"
	case *ecdsa.PublicKey:
		return "an ECDSA " + p.Curve.Params().Name + " key"
	case *rsa.PublicKey:
		return "an RSA key"
	}
	return fmt.Sprintf("a %T", pub)
}

// JWKSOptions configures a JWKS. The zero value gives the defaults.
type JWKSOptions struct {
	// HTTPClient fetches the set. nil means a client with Timeout that
	// follows at most 3 redirects and never from https to http. A client
	// given here is used as is, but each fetch is still bounded by Timeout.
	HTTPClient *http.Client
	// Timeout bounds each fetch, connection and body included. 0 means
	// DefaultJWKSTimeout (10 s).
	Timeout time.Duration
	// MinRefresh is the shortest interval between scheduled refreshes,
	// whatever Cache-Control says, and the longest delay between retries
	// after failures. 0 means DefaultJWKSMinRefresh (1 min).
	MinRefresh time.Duration
	// MaxRefresh is the longest interval between refreshes, and the
	// interval used when the response has no usable Cache-Control max-age.
	// 0 means DefaultJWKSMaxRefresh (15 min, the max-age Latch sends).
	MaxRefresh time.Duration
	// UnknownKidInterval is the shortest interval between two refetches
	// triggered by a lookup of an unknown kid, across all goroutines. 0
	// means DefaultJWKSUnknownKidInterval (30 s); a negative value
	// disables refetching on unknown kids.
	UnknownKidInterval time.Duration
	// MaxBytes is the largest response body accepted. 0 means
	// DefaultJWKSMaxBytes (512 KiB).
	MaxBytes int64
	// MaxKeys is the largest number of keys a document may hold. 0 means
	// DefaultJWKSMaxKeys (100).
	MaxKeys int
	// SkipInitialFetch makes NewJWKS return at once with an empty set
	// instead of fetching it first; the first fetch then runs in the
	// background (retried with backoff), and Key reports false until it
	// succeeds (WaitKey, and so VerifyContext and Middleware, wait for a
	// fetch in flight, up to 2 s). Use it when the resource server must
	// start while the auth server is unreachable, and watch LastRefresh
	// and Err for readiness.
	SkipInitialFetch bool
	// AllowInsecureHTTP permits an http:// URL whose host is not a
	// loopback address. Keys fetched over plain HTTP can be replaced by
	// anyone on the path, who can then forge tokens: use it only on a
	// network you trust (say, a service mesh with mTLS).
	AllowInsecureHTTP bool
	// Logger receives refresh failures, ignored keys and changes of the
	// set. nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time, for LastRefresh, NextRefresh and the
	// unknown-kid rate limit; nil means time.Now. Refresh timers always
	// run on the real clock.
	Now func() time.Time
}

// JWKS is a KeySet backed by a remote JSON Web Key Set (RFC 7517), such as
// a Latch server's /.well-known/jwks.json. It keeps the last good set in
// memory and refreshes it in the background as the response's
// Cache-Control max-age says (clamped to [MinRefresh, MaxRefresh]). When a
// refresh fails or the document is refused, the last good set stays in use
// for as long as that lasts (the refresh is retried with backoff: 1 s
// doubling up to MinRefresh, with jitter) and Err reports why. A key
// removed from the document stops verifying at the next good refresh.
//
// Key is a lock-free map lookup that never waits: a lookup of an unknown
// kid starts a refetch in the background (so that a newly published key
// is found soon), at most once per UnknownKidInterval across all
// goroutines, and reports false at once. WaitKey, which
// Verifier.VerifyContext and Verifier.Middleware use, waits for that
// refetch under the caller's context (at most 2 s, or Timeout if shorter),
// so that the first token signed by a new key verifies.
//
// Documents are validated strictly; see NewJWKS for the rules.
//
// A JWKS is safe for concurrent use. Close stops it.
type JWKS struct {
	url       string
	client    *http.Client
	opts      JWKSOptions
	log       *slog.Logger
	now       func() time.Time
	keyWait   time.Duration // bound on the wait of an unknown-kid lookup
	retryBase time.Duration

	set         atomic.Pointer[jwksSet]
	flight      atomic.Pointer[jwksFlight] // the fetch in flight, if any
	lastUnknown atomic.Int64               // Now of the last unknown-kid refetch, UnixNano; 0: none
	kick        chan struct{}              // wakes the refresher when the schedule changed
	ctx         context.Context            // lifetime: cancelled by Close
	cancel      context.CancelFunc
	wg          sync.WaitGroup // the refresher and fetches
	mu          sync.Mutex     // guards the fields below
	closed      bool
	lastErr     error
	lastRefresh time.Time // Now of the last good fetch
	nextRefresh time.Time // Now of the next scheduled fetch
	nextReal    time.Time // the same on the real clock, for the timer
	failures    int       // consecutive failed fetches
}

// jwksSet is an immutable key set.
type jwksSet struct {
	keys map[string]Key
}

// jwksFlight is a fetch in flight; done is closed when it has finished
// and its result has been applied.
type jwksFlight struct {
	done chan struct{}
	err  error // set before done is closed
}

// NewJWKS returns a JWKS for the key set at rawURL (https, or http on a
// loopback host unless opts.AllowInsecureHTTP is set). Unless
// opts.SkipInitialFetch is set, it fetches the set before returning and
// fails if that fetch fails or the document is refused, so that a
// misconfigured resource server fails at start. The background refresher
// runs until Close is called or ctx is cancelled: pass a context that
// lives as long as the JWKS, not one with a deadline for the start.
//
// A response is accepted only if its status is 200, its Content-Type is
// application/json or application/jwk-set+json, and its body has at most
// MaxBytes bytes of strict JSON (go-jose's decoder: no duplicate member
// names) with a "keys" array.
//
// The whole document is refused, and the last good set kept, when it
// holds more than MaxKeys keys, when two keys share a kid (ambiguity is
// refused, even if one of them would be ignored), or when no key is
// acceptable (a Latch server always publishes at least its active key). A single key is ignored (and
// logged), in line with RFC 7517 §5, when:
//   - it is not a JSON object with unique member names, or has a member
//     whose name is a case variant of a JWK parameter (such as "KID");
//   - it has private members (d, p, q, dp, dq, qi, oth, k, priv): such
//     a key is also logged as an error, as the server is leaking a secret;
//   - kid is missing or empty;
//   - alg is missing or not EdDSA, ES256 or RS256 (what Latch signs with);
//   - use is missing or not "sig", or key_ops is present without "verify";
//   - the key material does not parse, or its type does not fit alg:
//     EdDSA needs Ed25519, ES256 needs P-256, RS256 needs RSA of 2048 to
//     4096 bits.
//
// Example:
//
//	jwks, err := verifier.NewJWKS(ctx, "https://auth.example.com/.well-known/jwks.json", verifier.JWKSOptions{Logger: log})
//	if err != nil {
//		return err // the auth server is unreachable or serves no usable key
//	}
//	defer jwks.Close()
//	v, err := verifier.New(verifier.Config{
//		Issuer:   "https://auth.example.com",
//		Audience: "https://api.example.com",
//		Keys:     jwks,
//	})
func NewJWKS(ctx context.Context, rawURL string, opts JWKSOptions) (*JWKS, error) {
	if err := checkJWKSURL(rawURL, opts.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	j := &JWKS{
		url:     rawURL,
		client:  opts.HTTPClient,
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		keyWait: min(opts.Timeout, maxUnknownKidWait),
		kick:    make(chan struct{}, 1),
	}
	j.retryBase = min(maxRetryBase, opts.MinRefresh)
	if j.client == nil {
		j.client = &http.Client{Timeout: opts.Timeout, CheckRedirect: checkRedirect}
	}
	j.set.Store(&jwksSet{keys: map[string]Key{}})
	j.ctx, j.cancel = context.WithCancel(ctx)
	if opts.SkipInitialFetch {
		j.nextReal = time.Now()
		j.nextRefresh = j.now()
	} else {
		if err := j.fetchAndApply(); err != nil {
			j.cancel()
			return nil, err
		}
	}
	j.wg.Add(1)
	go j.refresher()
	return j, nil
}

// withDefaults applies the defaults and validates o.
func (o *JWKSOptions) withDefaults() error {
	switch {
	case o.Timeout < 0, o.MinRefresh < 0, o.MaxRefresh < 0, o.MaxBytes < 0, o.MaxKeys < 0:
		return errors.New("verifier: JWKSOptions: Timeout, MinRefresh, MaxRefresh, MaxBytes and MaxKeys must not be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultJWKSTimeout
	}
	if o.MinRefresh == 0 {
		o.MinRefresh = DefaultJWKSMinRefresh
	}
	if o.MaxRefresh == 0 {
		o.MaxRefresh = DefaultJWKSMaxRefresh
	}
	if o.MinRefresh > o.MaxRefresh {
		return fmt.Errorf("verifier: JWKSOptions: MinRefresh %v exceeds MaxRefresh %v", o.MinRefresh, o.MaxRefresh)
	}
	if o.UnknownKidInterval == 0 {
		o.UnknownKidInterval = DefaultJWKSUnknownKidInterval
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultJWKSMaxBytes
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultJWKSMaxKeys
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// checkJWKSURL accepts https URLs, and http ones on a loopback host or if
// insecure is set.
func checkJWKSURL(rawURL string, insecure bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("verifier: JWKS URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("verifier: JWKS URL %q must be absolute, without user info or fragment", rawURL)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("verifier: JWKS URL %q uses plain http on a non-loopback host (anyone on the path could replace the keys); use https or set AllowInsecureHTTP", rawURL)
	}
	return fmt.Errorf("verifier: JWKS URL %q: scheme must be https", rawURL)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRedirect is the redirect policy of the default client.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("stopped after 3 redirects")
	}
	if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
		return errors.New("refusing a redirect from https to http")
	}
	return nil
}

// Key returns the key named kid. It never blocks: a kid not in the set may
// start a refetch in the background, as described on JWKS, and is
// reported missing now. Lookups of known kids do not allocate.
func (j *JWKS) Key(kid string) (Key, bool) {
	if k, ok := j.set.Load().keys[kid]; ok {
		return k, true
	}
	j.refetch(kid)
	return Key{}, false
}

// WaitKey returns the key named kid. For a kid not in the set it starts
// or joins a refetch, as Key does, and waits for it until ctx is done, at
// most 2 s (or Timeout if shorter), then looks again. It implements
// KeyWaiter.
func (j *JWKS) WaitKey(ctx context.Context, kid string) (Key, bool) {
	if k, ok := j.set.Load().keys[kid]; ok {
		return k, true
	}
	f := j.refetch(kid)
	if f == nil {
		return Key{}, false
	}
	t := time.NewTimer(j.keyWait)
	select {
	case <-f.done:
	case <-t.C:
	case <-ctx.Done():
	case <-j.ctx.Done():
	}
	t.Stop()
	k, ok := j.set.Load().keys[kid]
	return k, ok
}

// refetch handles the lookup of a kid not in the set: it returns the fetch
// in flight, or starts one if the unknown-kid rate limit allows, and
// returns nil otherwise. It does not wait.
func (j *JWKS) refetch(kid string) *jwksFlight {
	if kid == "" || j.opts.UnknownKidInterval < 0 {
		return nil
	}
	if f := j.flight.Load(); f != nil {
		return f
	}
	// Lock-free rate check first: an attack with random kids must not
	// contend on the mutex.
	if last := j.lastUnknown.Load(); last != 0 && j.now().UnixNano()-last < int64(j.opts.UnknownKidInterval) {
		return nil
	}
	return j.startFetch(true)
}

// startFetch returns the fetch in flight or starts one. For an
// unknown-kid refetch (unknown set), it starts one only if none was
// started for that reason within UnknownKidInterval, and returns nil
// otherwise. It returns nil once the JWKS is closed.
func (j *JWKS) startFetch(unknown bool) *jwksFlight {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.ctx.Err() != nil {
		return nil
	}
	if f := j.flight.Load(); f != nil {
		return f
	}
	if unknown {
		now := j.now().UnixNano()
		if last := j.lastUnknown.Load(); last != 0 && now-last < int64(j.opts.UnknownKidInterval) {
			return nil
		}
		j.lastUnknown.Store(now)
	}
	f := &jwksFlight{done: make(chan struct{})}
	j.flight.Store(f)
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		f.err = j.fetchAndApply()
		j.flight.Store(nil)
		close(f.done)
	}()
	return f
}

// Refresh fetches the set now, or waits for the fetch in flight, and
// returns its error. It ignores the unknown-kid rate limit: call it on an
// operator's signal, not per request. On error the last good set stays in
// use.
func (j *JWKS) Refresh(ctx context.Context) error {
	f := j.startFetch(false)
	if f == nil {
		return errors.New("verifier: JWKS is closed")
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresher runs the scheduled refreshes until the JWKS is closed.
func (j *JWKS) refresher() {
	defer j.wg.Done()
	t := time.NewTimer(j.untilNext())
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			j.mu.Lock()
			j.closed = true // also when ctx was cancelled without Close
			j.mu.Unlock()
			return
		case <-j.kick:
		case <-t.C:
			if j.untilNext() <= 0 {
				f := j.startFetch(false)
				if f == nil {
					return
				}
				select {
				case <-f.done:
				case <-j.ctx.Done():
					continue
				}
			}
		}
		t.Reset(j.untilNext())
	}
}

func (j *JWKS) untilNext() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Until(j.nextReal)
}

// fetchAndApply fetches and parses the document, installs it if it is
// accepted and schedules the next refresh.
func (j *JWKS) fetchAndApply() error {
	set, ttl, err := j.fetch()
	if err != nil && j.ctx.Err() != nil {
		return err // closing: neither record nor schedule anything
	}
	now, wall := j.now(), time.Now()
	j.mu.Lock()
	var delay time.Duration
	if err == nil {
		old := j.set.Load()
		set = stabilize(old, set)
		j.set.Store(set)
		j.lastErr, j.lastRefresh = nil, now
		if j.failures > 0 {
			j.log.Info("verifier: JWKS refresh recovered", "url", j.url, "failed_attempts", j.failures)
		}
		j.failures = 0
		delay = ttl - rand.N(ttl/10+1) // jitter, so that a fleet does not refetch in step
		logChanges(j.log, j.url, old, set)
	} else {
		j.lastErr = err
		j.failures++
		backoff := j.retryBase << min(j.failures-1, 30)
		if backoff <= 0 || backoff > j.opts.MinRefresh {
			backoff = j.opts.MinRefresh
		}
		delay = backoff/2 + rand.N(backoff/2+1)
		attrs := []any{"url", j.url, "err", err, "consecutive_failures", j.failures, "retry_in", delay.Round(time.Millisecond)}
		if j.lastRefresh.IsZero() {
			j.log.Warn("verifier: JWKS fetch failed; no key set yet", attrs...)
		} else {
			attrs = append(attrs, "serving_keys_fetched_at", j.lastRefresh)
			j.log.Warn("verifier: JWKS refresh failed; keeping the last good key set", attrs...)
		}
	}
	j.nextRefresh, j.nextReal = now.Add(delay), wall.Add(delay)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return err
}

// stabilize returns set with the Key values of old kept for unchanged
// keys, so that the public key pointers stay the same across refreshes
// (the verifier's cache compares them first).
func stabilize(old, set *jwksSet) *jwksSet {
	for kid, k := range set.keys {
		if o, ok := old.keys[kid]; ok && o.Algorithm == k.Algorithm && publicEqual(o.Public, k.Public) {
			set.keys[kid] = o
		}
	}
	return set
}

func logChanges(log *slog.Logger, u string, old, set *jwksSet) {
	var added, removed []string
	for kid := range set.keys {
		if _, ok := old.keys[kid]; !ok {
			added = append(added, kid)
		}
	}
	for kid := range old.keys {
		if _, ok := set.keys[kid]; !ok {
			removed = append(removed, kid)
		}
	}
	if len(added)+len(removed) > 0 {
		slices.Sort(added)
		slices.Sort(removed)
		log.Info("verifier: JWKS key set changed", "url", u, "added", added, "removed", removed, "keys", len(set.keys))
	}
}

// fetch gets and parses the document; ttl is the refresh interval it asks
// for, clamped.
func (j *JWKS) fetch() (set *jwksSet, ttl time.Duration, err error) {
	ctx, cancel := context.WithTimeout(j.ctx, j.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("verifier: JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("verifier: JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
		return nil, 0, fmt.Errorf("verifier: JWKS fetch: status %s", resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && mt != "application/jwk-set+json") {
		return nil, 0, fmt.Errorf("verifier: JWKS fetch: Content-Type %q is not application/json or application/jwk-set+json", ct)
	}
	if resp.ContentLength > j.opts.MaxBytes {
		return nil, 0, fmt.Errorf("verifier: JWKS fetch: document of %d bytes exceeds the limit of %d", resp.ContentLength, j.opts.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.opts.MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("verifier: JWKS fetch: reading the body: %w", err)
	}
	if int64(len(body)) > j.opts.MaxBytes {
		return nil, 0, fmt.Errorf("verifier: JWKS fetch: document exceeds the limit of %d bytes", j.opts.MaxBytes)
	}
	keys, ignored, err := parseJWKS(body, j.opts.MaxKeys)
	for _, ig := range ignored {
		level := slog.LevelWarn
		if ig.private {
			level = slog.LevelError
		}
		j.log.Log(ctx, level, "verifier: JWKS key ignored", "url", j.url, "index", ig.index, "kid", ig.kid, "reason", ig.reason)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("verifier: JWKS document refused: %w", err)
	}
	ttl = j.opts.MaxRefresh
	if maxAge, ok := cacheMaxAge(resp.Header); ok {
		ttl = min(max(maxAge, j.opts.MinRefresh), j.opts.MaxRefresh)
	}
	return &jwksSet{keys: keys}, ttl, nil
}

// cacheMaxAge returns the freshness lifetime Cache-Control gives a
// response, less its Age: 0 for no-store or no-cache; ok is false when
// there is no usable max-age.
func cacheMaxAge(h http.Header) (d time.Duration, ok bool) {
	maxAge := int64(-1)
	for _, line := range h.Values("Cache-Control") {
		for dir := range strings.SplitSeq(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || n < 0 {
					return 0, false // a broken header: use the default
				}
				maxAge = n
			}
		}
	}
	if maxAge < 0 {
		return 0, false
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		maxAge = max(maxAge-age, 0)
	}
	const maxSeconds = int64(1<<63-1) / int64(time.Second)
	return time.Duration(min(maxAge, maxSeconds)) * time.Second, true
}

// ignoredKey says why a key of a document was ignored.
type ignoredKey struct {
	index   int
	kid     string
	reason  string
	private bool // the key has private members
}

// jwkParams are the JWK parameter names whose case variants are refused.
var jwkParams = []string{"kty", "use", "key_ops", "alg", "kid", "crv", "x", "y", "n", "e",
	"d", "p", "q", "dp", "dq", "qi", "oth", "k", "pub", "priv", "x5u", "x5c", "x5t", "x5t#S256"}

// jwkPrivate are the JWK members that carry private or secret key material.
var jwkPrivate = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// parseJWKS parses and validates a JWKS document; see NewJWKS for the rules.
func parseJWKS(body []byte, maxKeys int) (map[string]Key, []ignoredKey, error) {
	var doc struct {
		Keys *[]josejson.RawMessage `json:"keys"`
	}
	if err := josejson.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a strict JSON object: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`no "keys" array`)
	}
	raws := *doc.Keys
	if len(raws) > maxKeys {
		return nil, nil, fmt.Errorf("%d keys, more than the limit of %d", len(raws), maxKeys)
	}
	keys := make(map[string]Key, len(raws))
	seen := make(map[string]bool, len(raws))
	var ignored []ignoredKey
	for i, raw := range raws {
		kid, k, err := parseJWK(raw)
		if kid != "" {
			if seen[kid] {
				return nil, ignored, fmt.Errorf("kid %q appears more than once", kid)
			}
			seen[kid] = true
		}
		if err != nil {
			ignored = append(ignored, ignoredKey{index: i, kid: kid, reason: err.Error(), private: errors.Is(err, errPrivateJWK)})
			continue
		}
		keys[kid] = k
	}
	if len(keys) == 0 {
		if len(ignored) > 0 {
			return nil, ignored, fmt.Errorf("no acceptable key (%d ignored; first: %s)", len(ignored), ignored[0].reason)
		}
		return nil, nil, errors.New("the set has no keys")
	}
	return keys, ignored, nil
}

var errPrivateJWK = errors.New("the key has private members")

// parseJWK validates one JWK. It returns the kid whenever the key has a
// string kid, even if the key is refused.
func parseJWK(raw []byte) (kid string, k Key, err error) {
	var m map[string]josejson.RawMessage
	if err := josejson.Unmarshal(raw, &m); err != nil || m == nil {
		return "", Key{}, errors.New("not a JSON object with unique member names")
	}
	if r, ok := m["kid"]; ok {
		if josejson.Unmarshal(r, &kid) != nil {
			kid = ""
		}
	}
	for name := range m {
		for _, p := range jwkParams {
			if name != p && strings.EqualFold(name, p) {
				return kid, Key{}, fmt.Errorf("member %q is a case variant of %q", name, p)
			}
		}
	}
	for _, p := range jwkPrivate {
		if _, ok := m[p]; ok {
			return kid, Key{}, fmt.Errorf("%w (%q)", errPrivateJWK, p)
		}
	}
	if kid == "" {
		return "", Key{}, errors.New("no kid (or not a non-empty string)")
	}
	str := func(name string) (string, error) {
		r, ok := m[name]
		if !ok {
			return "", fmt.Errorf("no %s", name)
		}
		var s string
		if err := josejson.Unmarshal(r, &s); err != nil {
			return "", fmt.Errorf("%s is not a string", name)
		}
		return s, nil
	}
	alg, err := str("alg")
	if err != nil {
		return kid, Key{}, err
	}
	check, ok := jwksAlgorithms[alg]
	if !ok {
		return kid, Key{}, fmt.Errorf("alg %q is not accepted (accepted: %s)", alg, acceptedJWKSAlgorithms())
	}
	use, err := str("use")
	if err != nil {
		return kid, Key{}, err
	}
	if use != "sig" {
		return kid, Key{}, fmt.Errorf(`use is %q, not "sig"`, use)
	}
	if r, ok := m["key_ops"]; ok {
		var ops []string
		if err := josejson.Unmarshal(r, &ops); err != nil {
			return kid, Key{}, errors.New("key_ops is not an array of strings")
		}
		if !slices.Contains(ops, "verify") {
			return kid, Key{}, errors.New(`key_ops does not contain "verify"`)
		}
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return kid, Key{}, fmt.Errorf("key material: %w", err)
	}
	if !jwk.IsPublic() {
		return kid, Key{}, errPrivateJWK
	}
	if err := check(jwk.Key); err != nil {
		return kid, Key{}, err
	}
	return kid, Key{Algorithm: alg, Public: jwk.Key}, nil
}

// Close stops the background refresher and waits for a fetch in flight to
// end. The last good set stays usable, but is never refreshed again.
// Close is idempotent; cancelling the context given to NewJWKS has the
// same effect without the wait.
func (j *JWKS) Close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cancel()
	j.wg.Wait()
}

// LastRefresh returns when the set in use was fetched (per Options.Now);
// zero if no fetch has succeeded yet.
func (j *JWKS) LastRefresh() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lastRefresh
}

// NextRefresh returns when the next scheduled refresh is due (per
// Options.Now).
func (j *JWKS) NextRefresh() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextRefresh
}

// Err returns the error of the last fetch, or nil if it succeeded. A
// non-nil Err means the set in use is stale since LastRefresh.
func (j *JWKS) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lastErr
}

// KeyIDs returns the kids of the set in use, sorted.
func (j *JWKS) KeyIDs() []string {
	m := j.set.Load().keys
	ids := make([]string, 0, len(m))
	for kid := range m {
		ids = append(ids, kid)
	}
	slices.Sort(ids)
	return ids
}
