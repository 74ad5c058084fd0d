package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/latchauth/latch/verifier/revocation"
)

// DefaultRemoteStartTimeout bounds how long NewRemote waits for the first
// complete revocation catch-up.
const DefaultRemoteStartTimeout = 10 * time.Second

// RemoteConfig configures NewRemote: a verifier for a resource server that
// runs beside (not inside) a Latch server.
type RemoteConfig struct {
	// Issuer is the exact iss of the tokens (the Latch server's issuer,
	// e.g. https://auth.example.com). Required.
	Issuer string
	// Audience must be one of the token's aud values. Required (a Latch
	// server's default audience is its issuer).
	Audience string
	// JWKSURL is where the signing keys are published. Empty means Issuer
	// + "/.well-known/jwks.json".
	JWKSURL string
	// RevocationsURL is the base URL of the revocation feed (the feed is
	// RevocationsURL + "/v1/revocations"). Empty means Issuer.
	RevocationsURL string
	// ClientID and ClientSecret are a confidential client of the Latch
	// server allowed to read the revocation feed (`latch client add --id
	// api --generate-secret --can read-revocations`). Required.
	ClientID     string
	ClientSecret string
	// Leeway is Config.Leeway.
	Leeway time.Duration
	// MaxStale and FailOpen are the fail-safe policy (see Config): by
	// default a token is refused with ErrStale once the revocation feed
	// has been unreachable for more than MaxStale (0 means
	// DefaultMaxStale, 10 s); with FailOpen it is accepted and counted
	// (Verifier.StaleAccepted, OnStale) instead.
	MaxStale time.Duration
	FailOpen bool
	OnStale  func()
	// PollInterval is how often the feed is polled while its event
	// stream is down. 0 means min(1 s, MaxStale/4).
	PollInterval time.Duration
	// StartTimeout bounds the wait for the first complete catch-up of the
	// revocation feed. 0 means DefaultRemoteStartTimeout (10 s).
	StartTimeout time.Duration
	// HTTPClient is used for the JWKS and the feed; nil means a default
	// client for each (see JWKSOptions.HTTPClient and
	// revocation.RemoteOptions.HTTPClient). A client with an overall
	// Timeout makes the event stream reconnect every Timeout.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits http:// URLs on hosts that are not
	// loopback addresses, for the JWKS and the feed. Anyone on the path
	// can then forge tokens and hide revocations; use it only on a
	// network you trust.
	AllowInsecureHTTP bool
	// Logger receives the JWKS and feed logs (never secrets); nil means
	// slog.Default().
	Logger *slog.Logger
	// CacheSize is Config.CacheSize.
	CacheSize int
}

// NewRemote returns a Verifier that checks tokens of the Latch server at
// cfg.Issuer locally: keys from its JWKS (NewJWKS, refreshed in the
// background) and revocations from its revocation feed, kept in memory by
// a revocation.Remote (event stream, polling fallback, catch-up without a
// gap after a disconnect, expired entries pruned). Verify never makes a
// network call.
//
// It fetches the keys and waits for the first complete catch-up of the
// revocation feed (at most StartTimeout) before returning, so the verifier
// never starts with an empty revocation set; it fails if either is
// impossible (wrong URL, wrong client credentials, server down).
//
// The background work lives as long as ctx: cancel ctx to stop it (the
// Verifier then keeps its last keys and revocations, and, with the
// default fail-closed policy, refuses every token MaxStale later). Pass a
// context that lives as long as the resource server, not one with a
// deadline for the start.
//
// Fail-safe policy: the revocation set's LastSync is what the server
// vouches for: each page and each stream heartbeat (every 5 s) carries
// the age of the server's own revocation data, and LastSync becomes the
// local time minus that age (a page is requested when the stream has not
// vouched for a few seconds). When the data is older than MaxStale
// (default 10 s), because the feed is unreachable or its server cannot
// read its own store, tokens are refused with ErrStale (401 invalid_token
// through Middleware), or with FailOpen accepted and counted.
func NewRemote(ctx context.Context, cfg RemoteConfig) (*Verifier, error) {
	switch {
	case strings.TrimSpace(cfg.Issuer) == "":
		return nil, errors.New("verifier: RemoteConfig.Issuer is required")
	case strings.TrimSpace(cfg.Audience) == "":
		return nil, errors.New("verifier: RemoteConfig.Audience is required")
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("verifier: RemoteConfig.ClientID and ClientSecret are required (a confidential client of the Latch server reads the revocation feed)")
	case cfg.MaxStale < 0:
		return nil, fmt.Errorf("verifier: RemoteConfig.MaxStale %v is negative", cfg.MaxStale)
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("verifier: RemoteConfig.Leeway %v is not between 0 and %v", cfg.Leeway, MaxLeeway)
	}
	base := strings.TrimSuffix(cfg.Issuer, "/")
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		jwksURL = base + "/.well-known/jwks.json"
	}
	revURL := cfg.RevocationsURL
	if revURL == "" {
		revURL = base
	}
	maxStale := cfg.MaxStale
	if maxStale == 0 {
		maxStale = DefaultMaxStale
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = min(revocation.DefaultRemotePollInterval, maxStale/4)
	}
	startTimeout := cfg.StartTimeout
	if startTimeout <= 0 {
		startTimeout = DefaultRemoteStartTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	ctx, cancel := context.WithCancel(ctx)
	ok := false
	defer func() {
		if !ok {
			cancel()
		}
	}()

	keys, err := NewJWKS(ctx, jwksURL, JWKSOptions{
		HTTPClient:        cfg.HTTPClient,
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Logger:            log,
	})
	if err != nil {
		return nil, err
	}

	set := revocation.NewSet()
	rem := revocation.NewRemote(revURL, revocation.RemoteOptions{
		ClientID:          cfg.ClientID,
		ClientSecret:      cfg.ClientSecret,
		HTTPClient:        cfg.HTTPClient,
		PollInterval:      poll,
		KeepFresh:         min(revocation.DefaultRemoteKeepFresh, maxStale/2),
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Logger:            log,
		// A revoked active key is replaced at once by a key the JWKS
		// may not hold yet, and the unknown-kid refetch that would find
		// it is rate-limited: anyone can spend that budget with a random
		// kid just before, and every token of the new key would be
		// refused for up to UnknownKidInterval. The feed's kid entry
		// refetches outside that budget instead. The second Refresh
		// starts after the first ends, so one fetch surely began after
		// the entry arrived.
		OnKeyRevoked: func([]string) {
			go func() {
				keys.Refresh(ctx)
				keys.Refresh(ctx)
			}()
		},
	})
	done := make(chan error, 1)
	go func() { done <- rem.Run(ctx, set) }()

	// Wait for the first catch-up; give up early on answers that will not
	// change by retrying (bad credentials, no such endpoint).
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-rem.Ready():
			break wait
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("verifier: revocation feed: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			err := rem.Err()
			if err == nil {
				err = errors.New("no answer")
			}
			return nil, fmt.Errorf("verifier: the revocation feed at %s did not catch up within %v: %w", revURL, startTimeout, err)
		case <-tick.C:
			var se *revocation.StatusError
			if errors.As(rem.Err(), &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden || se.Code == http.StatusNotFound || se.Code == http.StatusBadRequest) {
				return nil, fmt.Errorf("verifier: the revocation feed at %s refused us: %w (check ClientID and ClientSecret: a confidential client with the read-revocations permission is required)", revURL, se)
			}
		}
	}

	v, err := New(Config{
		Issuer:      cfg.Issuer,
		Audience:    cfg.Audience,
		Keys:        keys,
		Revocations: set,
		Leeway:      cfg.Leeway,
		CacheSize:   cfg.CacheSize,
		Freshness:   set,
		MaxStale:    maxStale,
		FailOpen:    cfg.FailOpen,
		OnStale:     cfg.OnStale,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return v, nil
}
