// Package instance assembles one running Latch auth server from its
// configuration: the store, the key ring, the revocation set, the verifier,
// the auth service and the HTTP server, plus the background work that keeps
// them current. The latch command and end-to-end tests both use it.
package instance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/redis"
	sdkjs "github.com/latchauth/latch/sdk/js"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
	"github.com/latchauth/latch/web"
)

// Intervals of the background work.
const (
	revocationPoll = 500 * time.Millisecond
	keyTick        = time.Minute
	pruneEvery     = time.Hour
	// successorSweep is how often the sealed successors of sessions whose
	// grace window has passed are erased; a successor outlives its window
	// by at most this much.
	successorSweep = 10 * time.Second
	keepEvents     = 90 * 24 * time.Hour
)

// Instance is a wired auth server.
type Instance struct {
	Config      config.Config
	Store       latch.Store
	Ring        *keys.Ring
	Revocations *revocation.Set
	Verifier    *verifier.Verifier
	Auth        *auth.Service
	Server      *server.Server
	Registry    *prometheus.Registry
	// Fanout is the Redis fan-out between instances; nil without Redis.
	Fanout *redis.Fanout
	// Demo holds the demo credentials when Options.Demo was set.
	Demo *Demo
	// KEKCreated is true when this start generated the key-encryption key.
	KEKCreated bool

	log *slog.Logger
	now func() time.Time
	wg  sync.WaitGroup
}

// Options are the optional collaborators of an instance.
type Options struct {
	// Log receives the server's logs; nil means slog.Default().
	Log *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it forward.
	Now func() time.Time
	// Demo seeds a demo user and the demo browser client and serves the
	// demo page (latch serve --demo).
	Demo bool
	// Store, if not nil, is used instead of opening the store cfg names;
	// Close closes it. Tests wrap a store to break it.
	Store latch.Store
}

// Demo is what --demo seeded.
type Demo struct {
	Email, Password string
}

// DemoClientID is the cookie-mode browser client the demo page uses.
const DemoClientID = "demo"

// seedDemo creates the demo client if missing and gives the demo user a
// fresh random password on every start, so that a data directory once run
// with --demo never keeps a password anyone could know.
func seedDemo(ctx context.Context, svc *auth.Service, st latch.Store, now time.Time) (Demo, error) {
	if _, err := svc.Client(ctx, DemoClientID); errors.Is(err, auth.ErrNotFound) {
		if _, err := svc.CreateClient(ctx, auth.NewClient{ID: DemoClientID, Public: true, Delivery: latch.DeliveryCookie}); err != nil {
			return Demo{}, fmt.Errorf("demo client: %w", err)
		}
	} else if err != nil {
		return Demo{}, err
	}
	d := Demo{Email: "demo@latch.test", Password: "demo-" + strings.ToLower(rand.Text()[:16])}
	u, err := st.UserByEmail(ctx, d.Email)
	if errors.Is(err, latch.ErrNotFound) {
		_, err = svc.CreateUser(ctx, d.Email, d.Password, auth.Client{UserAgent: "latch-demo"})
		return d, err
	}
	if err != nil {
		return Demo{}, err
	}
	hash, err := svc.HashPassword(ctx, d.Password)
	if err != nil {
		return Demo{}, err
	}
	return d, st.SetPasswordHash(ctx, u.ID, hash, now)
}

// OpenStore opens the configured store: PostgreSQL when cfg.Store is a
// postgres:// URL (migrating its schema), otherwise SQLite in the data
// directory, created (mode 0700) if needed. The command line's offline
// commands use it directly.
func OpenStore(ctx context.Context, cfg config.Config) (latch.Store, error) {
	if cfg.Postgres() {
		st, err := postgres.Open(ctx, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}

	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "latch.db"))
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	return st, nil
}

// LoadKEK reads the key-encryption key from the configuration or its file,
// creating the file on first use.
//
// With a shared store (PostgreSQL) every instance must hold the same KEK,
// so none is generated: it must come from LATCH_KEK or an existing file.
func LoadKEK(cfg config.Config) (keys.KEK, bool, error) {
	if cfg.Postgres() && cfg.KEK == "" {
		if _, err := os.Stat(cfg.KEKFile); err != nil {
			return keys.KEK{}, false, fmt.Errorf("key-encryption key: with a shared store every instance needs the same KEK: set LATCH_KEK (make one with `latch kek generate`) or kek_file; %s: %w", cfg.KEKFile, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.KEKFile), 0o700); err != nil {
		return keys.KEK{}, false, fmt.Errorf("create directory for the KEK file: %w", err)
	}
	kek, created, err := keys.LoadKEK(cfg.KEK, cfg.KEKFile)
	if err != nil {
		return keys.KEK{}, false, fmt.Errorf("key-encryption key: %w", err)
	}
	return kek, created, nil
}

// RingConfig is the key-ring part of cfg.
func RingConfig(cfg config.Config) keys.Config {
	return keys.Config{
		Algorithm:      cfg.Tokens.Algorithm,
		RotationPeriod: cfg.Keys.RotationPeriod.D(),
		JWKSMaxAge:     cfg.Keys.JWKSMaxAge.D(),
		TokenLifetime:  cfg.Tokens.AccessTTL.D() + cfg.Tokens.Leeway.D(),
	}
}

// Open wires an instance. Close releases it.
func Open(ctx context.Context, cfg config.Config, opt Options) (*Instance, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	st := opt.Store
	if st == nil {
		var err error
		if st, err = OpenStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if info, err := os.Stat(cfg.DataDir); err == nil && info.Mode().Perm()&0o077 != 0 {
		opt.Log.Warn("the data directory is accessible to other users; run chmod 700 on it",
			"data_dir", cfg.DataDir, "mode", info.Mode().Perm().String())
	}
	in, err := wire(ctx, cfg, st, opt)
	if err != nil {
		st.Close()
		return nil, err
	}
	return in, nil
}

func wire(ctx context.Context, cfg config.Config, st latch.Store, opt Options) (*Instance, error) {
	log, now := opt.Log, opt.Now
	kek, created, err := LoadKEK(cfg)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("generated a new key-encryption key; in production supply it with LATCH_KEK or kek_file from your secret store, and back it up: without it the signing keys cannot be read",
			"kek_file", cfg.KEKFile)
	}
	ring, err := keys.NewRing(ctx, st, kek, RingConfig(cfg), now)
	if err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	revs := revocation.NewSet()
	if _, err := revs.Sync(ctx, st, now()); err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	var fan *redis.Fanout
	if cfg.Redis != "" {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fan, err = redis.Open(rctx, cfg.Redis, redis.Options{Log: log})
		cancel()
		if err != nil {
			// Redis only accelerates: start without it and say so.
			log.Warn("redis unreachable at start; revocations reach other instances by polling the store until it is back", "err", err)
			fan, err = redis.Lazy(cfg.Redis, redis.Options{Log: log})
			if err != nil {
				return nil, err
			}
		}
	}
	leeway := cfg.Tokens.Leeway.D()
	if leeway == 0 {
		leeway = time.Nanosecond // the verifier reads 0 as "default"; 0 here means none
	}
	reg := prometheus.NewRegistry()
	staleAccepted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "latch_stale_accepted_total",
		Help: "Tokens accepted although the revocation data was older than revocation.max_stale (fail_open).",
	})
	cookies := server.NewCookies(cfg.Issuer, cfg.Cookies.Domain)
	vcfg := verifier.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Keys: RingKeys{ring}, Revocations: revs,
		Leeway: leeway, Now: now,
		Cookie: cookies.Access, CSRFCookie: cookies.CSRF, AllowedOrigins: cfg.CORS.AllowedOrigins,
	}
	if cfg.Revocation.MaxStale > 0 {
		// The fail-safe policy: the set is only as fresh as the last
		// successful read of the store.
		vcfg.Freshness, vcfg.MaxStale = revs, cfg.Revocation.MaxStale.D()
		vcfg.FailOpen, vcfg.OnStale = cfg.Revocation.FailOpen, staleAccepted.Inc
	}
	v, err := verifier.New(vcfg)
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	hasher, err := password.NewHasher(password.DefaultParams, cfg.Password.MaxConcurrent, cfg.Password.MaxWait.D())
	if err != nil {
		return nil, fmt.Errorf("password hasher: %w", err)
	}
	reg.MustRegister(staleAccepted, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := auth.New(auth.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, ClientID: cfg.ClientID,
		AccessTokenTTL: cfg.Tokens.AccessTTL.D(), AccessTokenJitter: cfg.Tokens.AccessJitter.D(),
		RefreshIdleTimeout: cfg.Tokens.RefreshIdleTimeout.D(), RefreshAbsoluteTTL: cfg.Tokens.RefreshAbsoluteTTL.D(),
		RefreshGrace: cfg.Tokens.RefreshGrace.D(), Leeway: cfg.Tokens.Leeway.D(), Registration: cfg.Registration,
		Throttle: auth.ThrottleConfig{
			PerIPPerMinute: cfg.Login.RatePerIP, MaxFailures: cfg.Login.MaxFailures, Lockout: cfg.Login.Lockout.D(),
		},
	}, auth.Deps{
		Store: st, Signer: ring, Sealer: kek.Derive("latch refresh-token successor v1"), Hasher: hasher,
		Revocations: revs, Verifier: v, Metrics: auth.NewMetrics(reg), Log: log, Now: now,
		OnRevoke: func(ctx context.Context) { fan.Poke(ctx, redis.TopicRevocations) },
	})
	if err != nil {
		return nil, err
	}
	var demo *Demo
	if opt.Demo {
		d, err := seedDemo(ctx, svc, st, now())
		if err != nil {
			return nil, fmt.Errorf("seed the demo: %w", err)
		}
		demo = &d
	}
	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, netip.MustParsePrefix(p)) // validated by config
	}
	srv := server.New(server.Config{
		Issuer: cfg.Issuer, Algorithm: cfg.Tokens.Algorithm,
		TrustedProxies: proxies, JWKSMaxAge: cfg.Keys.JWKSMaxAge.D(),
		Cookies: cookies, AllowedOrigins: cfg.CORS.AllowedOrigins,
		MaxStreamsPerClient: cfg.Revocation.MaxStreamsPerClient,
	}, server.Deps{
		Auth: svc, Verifier: v, JWKS: ring.JWKS, Registry: reg, Log: log,
		Checks: checks(st, fan),
		Store:  st, Revocations: revs, Now: now,
		Pages: pages(cfg, demo),
	})
	return &Instance{
		Config: cfg, Store: st, Ring: ring, Revocations: revs, Verifier: v, Auth: svc, Server: srv,
		Registry: reg, Fanout: fan, Demo: demo, KEKCreated: created, log: log, now: now,
	}, nil
}

// pages serves Latch's own web pages with the browser SDK.
func pages(cfg config.Config, demo *Demo) http.Handler {
	wc := web.Config{Registration: cfg.Registration, Issuer: cfg.Issuer}
	if demo != nil {
		wc.Demo, wc.DemoEmail, wc.DemoPassword = true, demo.Email, demo.Password
	}
	return web.Handler(wc, sdkjs.FS)
}

// checks are the readiness checks: the store is required; Redis, when
// configured, only degrades the instance (it keeps serving and polls).
func checks(st latch.Store, fan *redis.Fanout) []server.Check {
	c := []server.Check{{Name: "store", Required: true, Check: st.Ping}}
	if fan != nil {
		c = append(c, server.Check{Name: "redis", Check: fan.Ping})
	}
	return c
}

// RingKeys adapts a key ring to the verifier's KeySet.
type RingKeys struct{ Ring *keys.Ring }

// Key implements verifier.KeySet.
func (k RingKeys) Key(kid string) (verifier.Key, bool) {
	alg, pub, ok := k.Ring.PublicKey(kid)
	if !ok {
		return verifier.Key{}, false
	}
	return verifier.Key{Algorithm: alg, Public: pub}, true
}

// Start runs the background work until ctx ends: following the durable
// revocation feed (revocations made by other processes, such as the
// command line), key rotation, erasing refresh-token successors whose
// grace window has passed, and pruning.
func (in *Instance) Start(ctx context.Context) {
	if in.Fanout != nil {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			in.follow(ctx)
		}()
	}
	in.wg.Add(4)
	go func() {
		defer in.wg.Done()
		in.Revocations.Follow(ctx, in.Store, revocationPoll, in.now, func(err error) {
			in.log.Warn("revocation sync failed", "err", err)
		})
	}()
	go func() {
		defer in.wg.Done()
		every(ctx, keyTick, in.tickKeys)
	}()
	go func() {
		defer in.wg.Done()
		every(ctx, pruneEvery, func(ctx context.Context) {
			if err := in.Store.Prune(ctx, in.now(), keepEvents); err != nil {
				in.log.Warn("pruning the store failed", "err", err)
			}
		})
	}()
	go func() {
		defer in.wg.Done()
		every(ctx, successorSweep, func(ctx context.Context) {
			if _, err := in.Store.ClearSuccessors(ctx, in.now().Add(-in.Config.Tokens.RefreshGrace.D())); err != nil {
				in.log.Warn("forgetting expired refresh-token successors failed", "err", err)
			}
		})
	}()
}

// follow applies pokes from other instances: a moved revocation feed is
// pulled from the store at once, a changed key ring reloaded. Pokes are
// coalesced, so a burst costs one catch-up and Redis is never blocked.
func (in *Instance) follow(ctx context.Context) {
	revs, ring := make(chan struct{}, 1), make(chan struct{}, 1)
	poke := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	go in.Fanout.Subscribe(ctx, func(topic string) {
		switch topic {
		case redis.TopicRevocations:
			poke(revs)
		case redis.TopicKeys:
			poke(ring)
		}
	})
	for {
		select {
		case <-ctx.Done():
			return
		case <-revs:
			if _, err := in.Revocations.Sync(ctx, in.Store, in.now()); err != nil {
				in.log.Warn("revocation sync after a poke failed; polling continues", "err", err)
			}
		case <-ring:
			if err := in.Ring.Reload(ctx); err != nil {
				in.log.Warn("key ring reload after a poke failed", "err", err)
			}
		}
	}
}

func (in *Instance) tickKeys(ctx context.Context) {
	rotated, err := in.Ring.Tick(ctx)
	if err != nil {
		in.log.Warn("key ring tick failed", "err", err)
		return
	}
	if rotated {
		in.Fanout.Poke(ctx, redis.TopicKeys)
		in.log.Info("scheduled key rotation: a new signing key is published")
		if err := in.Store.AddEvent(ctx, &latch.Event{Type: latch.EventKeysRotated, At: in.now().UTC()}); err != nil {
			in.log.Warn("recording key rotation failed", "err", err)
		}
	}
}

func every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	fn(ctx)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// Wait blocks until the background work started by Start has stopped.
func (in *Instance) Wait() { in.wg.Wait() }

// Close ends open revocation streams and releases the store. Stop the
// background work (cancel Start's context and Wait) first.
func (in *Instance) Close() error {
	in.Server.CloseStreams()
	if in.Fanout != nil {
		in.Fanout.Close()
	}
	return in.Store.Close()
}

// ListenAndServe serves HTTP on cfg.Addr until ctx ends, then shuts down
// gracefully. ready, if not nil, is called with the bound address once the
// listener is open.
func (in *Instance) ListenAndServe(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", in.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", in.Config.Addr, err)
	}
	hs := &http.Server{
		Handler:           in.Server,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(in.Server.CloseStreams)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
