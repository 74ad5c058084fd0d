// Package instance assembles one running Latch auth server from its
// configuration: the store, the key ring, the revocation set, the verifier,
// the auth service and the HTTP server, plus the background work that keeps
// them current. The latch command and end-to-end tests both use it.
package instance

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/backchannel"
	"github.com/latchauth/latch/challenge"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/device"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/mail"
	"github.com/latchauth/latch/oidc"
	"github.com/latchauth/latch/outbox"
	"github.com/latchauth/latch/overview"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/protect"
	"github.com/latchauth/latch/redis"
	sdkjs "github.com/latchauth/latch/sdk/js"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/stats"
	"github.com/latchauth/latch/throttle"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
	"github.com/latchauth/latch/web"
	"github.com/latchauth/latch/webhook"
)

// Intervals of the background work.
const (
	revocationPoll = 500 * time.Millisecond
	keyTick        = time.Minute
	// keyCheck is how often the store's key-ring version is compared with
	// the loaded one (one cheap read), so that a rotation or a key
	// revocation by another process applies within about a second even
	// without Redis.
	keyCheck   = time.Second
	pruneEvery = time.Hour
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
	// Account is the account lifecycle (verification, reset, lock).
	Account *account.Service
	// Challenges are the step-up challenges (codes sent by email) that the
	// sign-in guard may ask for.
	Challenges *challenge.Service
	// OIDC is the OpenID Provider.
	OIDC     *oidc.Provider
	Server   *server.Server
	Registry *prometheus.Registry
	// Fanout is the Redis fan-out between instances; nil without Redis.
	Fanout *redis.Fanout
	// Throttle is the sign-in throttle (shared in Redis when configured);
	// its RecentFailures is the failed-attempt signal of risk scoring.
	Throttle *throttle.Policy
	// Demo holds the demo credentials when Options.Demo was set.
	Demo *Demo
	// KEKCreated is true when this start generated the key-encryption key.
	KEKCreated bool
	// Outbox delivers the durable outbox (back-channel logout tokens,
	// emails); Start runs it. Call Notify after enqueueing (ending an SSO
	// session, an email) so that the message goes out at once rather than
	// at the next poll.
	Outbox *outbox.Worker
	// Webhooks publishes the security log to the outbox, one message per
	// configured webhook and event; Start runs it.
	Webhooks *webhook.Relay
	// Devices recognises users' devices (the device cookie); Alerts
	// answers sign-in alerts ("yes, it was me", "this wasn't me").
	Devices *device.Registry
	Alerts  *protect.Alerts
	// AdminSetup creates the first administrator: serve logs its setup
	// link while no administrator exists.
	AdminSetup *admin.Setup
	// Stats records this instance's counters per minute for the admin
	// console's Overview; Start samples them.
	Stats *stats.Recorder
	// signIn is the sign-in guard; Close waits for its device touches.
	signIn *protect.SignIn
	// guards are the guards installed on Auth (kept for the sign-in
	// benchmark, which takes them off and puts them back).
	guards auth.Guards

	log *slog.Logger
	now func() time.Time
	wg  sync.WaitGroup
	// scratch is the demo's throw-away data directory, removed by Close.
	scratch string

	mu          sync.Mutex
	metricsAddr net.Addr

	// keysChanged asks watchKeys to reload the ring now (a Redis poke, a
	// key revocation on the feed).
	keysChanged chan struct{}

	// protection holds the geo-IP databases and the risk engine.
	protection *protection
}

// Options are the optional collaborators of an instance.
type Options struct {
	// Log receives the server's logs; nil means slog.Default().
	Log *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it forward.
	Now func() time.Time
	// Demo runs the instance on a throw-away data directory of its own,
	// seeds a demo user and the demo browser client there and serves the
	// demo page (latch serve --demo). The configured data directory and
	// store are never opened.
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

// demoEmail is the demo user's address.
const demoEmail = "demo@latch.test"

// seedDemo creates the demo client and the demo user with a fresh random
// password, shown on the demo page.
func seedDemo(ctx context.Context, svc *auth.Service) (Demo, error) {
	if _, err := svc.CreateClient(ctx, auth.NewClient{ID: DemoClientID, Public: true, Delivery: latch.DeliveryCookie}); err != nil {
		return Demo{}, fmt.Errorf("demo client: %w", err)
	}
	d := Demo{Email: demoEmail, Password: "demo-" + strings.ToLower(rand.Text()[:16])}
	if _, err := svc.CreateUser(ctx, d.Email, d.Password, auth.Device{UserAgent: "latch-demo"}); err != nil {
		return Demo{}, fmt.Errorf("demo user: %w", err)
	}
	return d, nil
}

// demoConfig is cfg moved onto the throw-away data directory dir: SQLite
// there with a KEK of its own, no shared store, no Redis. A crash leaves
// the demo's credentials in dir, never in the configured data.
func demoConfig(cfg config.Config, dir string) config.Config {
	cfg.DataDir = dir
	cfg.KEKFile = filepath.Join(dir, "kek")
	cfg.KEK, cfg.Store, cfg.Redis = "", "", ""
	return cfg
}

// retireDemo disarms what `latch serve --demo` of earlier versions left in
// a real data directory: the demo user, whose password was shown on a web
// page, gets a random password nobody knows and loses its sessions.
func retireDemo(ctx context.Context, svc *auth.Service, st latch.Store, log *slog.Logger, now time.Time) error {
	if _, err := st.Client(ctx, DemoClientID); errors.Is(err, latch.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	u, err := st.UserByEmail(ctx, demoEmail)
	if errors.Is(err, latch.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	// Done once: every later start would otherwise hash a password and
	// append a user cutoff to the revocation feed again.
	events, err := st.EventsByUser(ctx, u.ID, 1000)
	if err != nil {
		return err
	}
	for _, e := range events {
		if e.Type == latch.EventDemoRetired {
			return nil
		}
	}
	hash, err := svc.HashPassword(ctx, "retired-"+rand.Text()+rand.Text())
	if err != nil {
		return err
	}
	if err := st.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return err
	}
	if err := svc.LogoutAll(ctx, u.ID, auth.Device{UserAgent: "latch"}); err != nil {
		return err
	}
	if err := st.AddEvent(ctx, &latch.Event{Type: latch.EventDemoRetired, At: now, UserID: u.ID, UserAgent: "latch"}); err != nil {
		return err
	}
	log.Warn("an earlier `latch serve --demo` left its demo user in this data directory; it can no longer sign in (--demo now keeps its data in a throw-away directory)",
		"email", demoEmail, "user_id", u.ID)
	return nil
}

// CheckExisting reports an error unless cfg names an existing deployment:
// for SQLite a data directory holding the database and, without
// LATCH_KEK, the KEK file. Commands that only read or adjust a deployment
// check it first, so that a mistyped --data-dir fails instead of creating
// a new deployment.
func CheckExisting(cfg config.Config) error {
	if cfg.Postgres() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "latch.db")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no Latch data directory at %s (run latch serve first, or check --data-dir)", cfg.DataDir)
		}
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	if cfg.KEK == "" {
		if _, err := os.Stat(cfg.KEKFile); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no key-encryption key at %s (set LATCH_KEK or kek_file to the deployment's key)", cfg.KEKFile)
		}
	}
	return nil
}

// StoreAttrs describe the configured store for a log line, without any
// password: store=sqlite with data_dir, or store=postgres with host and
// database.
func StoreAttrs(cfg config.Config) []any {
	if !cfg.Postgres() {
		return []any{"store", "sqlite", "data_dir", cfg.DataDir}
	}
	u, err := url.Parse(cfg.Store)
	if err != nil {
		return []any{"store", "postgres"}
	}
	attrs := []any{"store", "postgres", "host", u.Host, "db", strings.TrimPrefix(u.Path, "/")}
	if u.User != nil {
		attrs = append(attrs, "user", u.User.Username())
	}
	return attrs
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

// OpenExisting opens the store of an existing deployment for a command
// that reads or adjusts it: CheckExisting first, then, on PostgreSQL, a
// schema that must already be exactly this program's (it is neither
// created nor migrated: a mistyped database or search_path fails instead
// of becoming a new deployment, and an upgraded command line does not
// migrate a live one). SQLite opens as OpenStore does.
func OpenExisting(ctx context.Context, cfg config.Config) (latch.Store, error) {
	if err := CheckExisting(cfg); err != nil {
		return nil, err
	}
	if !cfg.Postgres() {
		return OpenStore(ctx, cfg)
	}
	st, err := postgres.OpenWith(ctx, cfg.Store, postgres.Options{Migrate: false})
	if err != nil {
		return nil, fmt.Errorf("open store (no Latch deployment here? run latch migrate or latch serve first, or check the database URL): %w", err)
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
	if cfg.KEK == "" {
		// The file is used only without LATCH_KEK; with it nothing is
		// created (on PostgreSQL, no stray ./latch-data).
		if err := os.MkdirAll(filepath.Dir(cfg.KEKFile), 0o700); err != nil {
			return keys.KEK{}, false, fmt.Errorf("create directory for the KEK file: %w", err)
		}
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
//
// With opt.Demo the instance runs on a new temporary data directory that
// Close removes, whatever cfg names: the demo user, whose password is shown
// on a web page, never enters the configured data directory or store.
func Open(ctx context.Context, cfg config.Config, opt Options) (*Instance, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var scratch string
	if opt.Demo {
		dir, err := os.MkdirTemp("", "latch-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo data directory: %w", err)
		}
		scratch, cfg = dir, demoConfig(cfg, dir)
	}
	in, err := open(ctx, cfg, opt)
	if err != nil {
		if scratch != "" {
			os.RemoveAll(scratch)
		}
		return nil, err
	}
	in.scratch = scratch
	return in, nil
}

func open(ctx context.Context, cfg config.Config, opt Options) (*Instance, error) {
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
	// Emails stored before the identifier rules become canonical before
	// anyone signs in (see auth.CanonicalizeEmails).
	if _, err := auth.CanonicalizeEmails(ctx, st, log, now().UTC().Truncate(time.Microsecond)); err != nil {
		return nil, err
	}
	warnCleartext(log, cfg.Issuer, cfg.Addr)
	kek, created, err := LoadKEK(cfg)
	if err != nil {
		return nil, err
	}
	if created && !opt.Demo {
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
		fan, err = redis.Open(rctx, cfg.Redis, redis.Options{Log: log, Prefix: cfg.RedisPrefix})
		cancel()
		if err != nil {
			// Redis only accelerates: start without it and say so.
			log.Warn("redis unreachable at start; revocations reach other instances by polling the store until it is back", "err", err)
			fan, err = redis.Lazy(cfg.Redis, redis.Options{Log: log, Prefix: cfg.RedisPrefix})
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
	// The outbox worker delivers what ending an SSO session enqueues
	// (back-channel logouts); auth wakes it when it enqueued something.
	worker, err := newOutbox(cfg, st, ring, reg, log, now)
	if err != nil {
		return nil, err
	}
	th := newThrottle(cfg, fan, log, now)
	svc, err := auth.New(auth.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, ClientID: cfg.ClientID,
		AccessTokenTTL: cfg.Tokens.AccessTTL.D(), AccessTokenJitter: cfg.Tokens.AccessJitter.D(),
		RefreshIdleTimeout: cfg.Tokens.RefreshIdleTimeout.D(), RefreshAbsoluteTTL: cfg.Tokens.RefreshAbsoluteTTL.D(),
		RefreshGrace: cfg.Tokens.RefreshGrace.D(), RefreshGraceReplays: cfg.Tokens.GraceReplays,
		Leeway: cfg.Tokens.Leeway.D(), Registration: cfg.Registration, IDTokenAlgorithms: ring.IDTokenAlgorithms(),
		RequireVerifiedEmail: cfg.Accounts.RequireVerifiedEmail,
		Throttle: auth.ThrottleConfig{
			PerIPPerMinute: cfg.Login.RatePerIP, MaxFailures: cfg.Login.MaxFailures, Lockout: cfg.Login.Lockout.D(),
		},
	}, auth.Deps{
		Store: st, Signer: ring, Sealer: kek.Derive("latch refresh-token successor v1"), Hasher: hasher,
		Revocations: revs, Verifier: v, Metrics: auth.NewMetrics(reg), Log: log, Now: now,
		// Tokens of a client registered with its own audience are checked
		// as v checks the server's, for that audience.
		VerifierFor: func(aud string) (*verifier.Verifier, error) {
			c := vcfg
			c.Audience = aud
			return verifier.New(c)
		},
		OnRevoke: func(ctx context.Context) { fan.Poke(ctx, redis.TopicRevocations) },
		OnOutbox: worker.Notify,
		Throttle: th,
	})
	if err != nil {
		return nil, err
	}
	prot, err := openProtection(cfg, log)
	if err != nil {
		return nil, err
	}
	wired := false
	defer func() {
		if !wired {
			prot.close()
		}
	}()
	var demo *Demo
	if opt.Demo {
		d, err := seedDemo(ctx, svc)
		if err != nil {
			return nil, fmt.Errorf("seed the demo: %w", err)
		}
		demo = &d
		if !loopbackAddr(cfg.Addr) {
			log.Warn("demo: listening beyond the loopback: anyone who can reach this address can read the demo user's password on /demo and sign in as it",
				"addr", cfg.Addr)
		}
	} else if err := retireDemo(ctx, svc, st, log, now()); err != nil {
		return nil, fmt.Errorf("retire an earlier demo user: %w", err)
	}
	accounts, err := account.New(account.Config{Issuer: cfg.Issuer}, account.Deps{
		Store: st, Auth: svc, Throttle: th, OnOutbox: worker.Notify, Log: log, Now: now,
	})
	if err != nil {
		return nil, err
	}
	th.SetOnAccountLocked(accounts.OnSignInLocked)
	worker.Handle(account.OutboxRequest, accounts)
	// ---- Sign-in alerts and devices (device, protect.SignIn, protect.Alerts).
	// The sign-in guard decides with the risk engine (risk.*) over the
	// geo-IP databases; it, the refresh guard and the challenger go into
	// one auth.Guards (protection.guards).
	devices := device.New(st, kek.Derive("latch device cookie v1").MAC, cookies.Secure)
	signInGuard, err := protect.NewSignIn(protect.SignInConfig{CanChallenge: true}, protect.SignInDeps{
		Store: st, Risk: prot.engine, Locator: prot.locator(), Failures: th.RecentFailures, Log: log, Now: now,
	})
	if err != nil {
		return nil, err
	}
	alerts, err := protect.NewAlerts(protect.AlertsDeps{
		Store: st, Auth: svc, Account: accounts, Log: log, Now: now,
	})
	if err != nil {
		return nil, err
	}
	// ---- end of sign-in alerts and devices.
	// --- step-up challenge (package challenge) ---
	// The Challenger of the sign-in guards: when the guard decides
	// Challenge, the sign-in waits for a code sent by email. The other
	// guards (sign-in, refresh, known devices) join this Guards.
	challenges, err := challenge.New(challenge.Config{}, challenge.Deps{
		Store: st, MAC: kek.Derive("latch step-up challenge v1").MAC, OnOutbox: worker.Notify, Log: log, Now: now,
		Locator: prot.locator(),
	})
	if err != nil {
		return nil, err
	}
	// --- end step-up challenge ---
	guards := prot.guards(svc, st, challenges, signInGuard, devices, log, now)
	svc.SetGuards(guards)
	relay, err := newWebhooks(cfg, st, worker, reg, log, now)
	if err != nil {
		return nil, err
	}
	adm, err := admin.New(admin.Deps{Auth: svc, Events: st, Now: now, Log: log})
	if err != nil {
		return nil, err
	}
	// ---- admin console (package admin; server/console.go; web/admin.go).
	keysChanged := make(chan struct{}, 1)
	setup := admin.NewSetup(st, svc, now)
	console := &server.Console{
		Setup:   setup,
		Gate:    admin.NewGate(st, svc, kek.Derive("latch admin console v1").MAC, cfg.Admin.SessionTTL.D(), now),
		Users:   admin.NewUsers(st, svc, accounts, now, log),
		Events:  admin.NewEvents(st),
		Clients: admin.NewClients(svc, st, now, log),
		Keys: admin.NewKeys(ring, st, func(ctx context.Context, revoked bool) {
			poke(keysChanged)
			fan.Poke(ctx, redis.TopicKeys)
			if revoked {
				fan.Poke(ctx, redis.TopicRevocations)
			}
		}, now, log),
	}
	// The Overview: this instance's counters per minute (Start samples
	// them), and the collector of its figures. srv is set below, before
	// any request can ask for the feed's followers.
	recorder := stats.New(reg, now)
	var srv *server.Server
	ovSrc := overview.Source{Store: st, Ring: ring, Stats: recorder, Now: now,
		Followers: func() []overview.Follower {
			var list []overview.Follower
			for _, f := range srv.FeedFollowers() {
				list = append(list, overview.Follower(f))
			}
			return list
		}}
	if fan != nil { // a nil *redis.Fanout in the interface would not be nil
		ovSrc.Redis = fan
	}
	console.Overview = overview.New(ovSrc)
	// ---- end admin console.
	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, netip.MustParsePrefix(p)) // validated by config
	}
	provider, err := oidc.New(oidc.Config{
		Issuer: cfg.Issuer, CodeTTL: cfg.Codes.TTL.D(), IDTokenTTL: cfg.Tokens.IDTokenTTL.D(),
		SSOIdle: cfg.Tokens.RefreshIdleTimeout.D(), SSOAbsolute: cfg.Tokens.RefreshAbsoluteTTL.D(),
		CookieName: cookies.SSO,
	}, oidc.Deps{
		Store: st, Auth: svc, Log: log, Now: now,
		IDTokens: func(alg string) (oidc.Signer, error) {
			s, err := ring.IDTokens(alg)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		IDKey: func(kid string) (string, crypto.PublicKey, bool) { return ring.FamilyKey(keys.FamilyID, kid) },
		MAC:   kek.Derive("latch openid provider v1").MAC,
	})
	if err != nil {
		return nil, err
	}
	webPages := pages(cfg, demo)
	console.Pages = webPages
	srv = server.New(server.Config{
		Issuer: cfg.Issuer, Algorithm: cfg.Tokens.Algorithm, IDTokenAlgorithms: ring.IDTokenAlgorithms(),
		TrustedProxies: proxies, JWKSMaxAge: cfg.Keys.JWKSMaxAge.D(),
		Cookies: cookies, AllowedOrigins: cfg.CORS.AllowedOrigins,
		MetricsElsewhere: cfg.Metrics.Addr != "", MetricsToken: cfg.Metrics.Token,
		MaxStreamsPerClient: cfg.Revocation.MaxStreamsPerClient,
	}, server.Deps{
		Auth: svc, Account: accounts, Challenges: challenges, Verifier: v, JWKS: ring.JWKS, Registry: reg, Log: log,
		Checks: checks(st, fan),
		Store:  st, Revocations: revs, Now: now,
		Pages: webPages, OIDC: provider, Admin: adm, Console: console,
		Devices: devices, Alerts: alerts,
	})
	wired = true
	return &Instance{
		Config: cfg, Store: st, Ring: ring, Revocations: revs, Verifier: v, Auth: svc, Account: accounts, Challenges: challenges, OIDC: provider, Server: srv,
		Devices: devices, Alerts: alerts, signIn: signInGuard, guards: guards, Registry: reg, Fanout: fan, Throttle: th, Demo: demo, KEKCreated: created, Outbox: worker, Webhooks: relay, log: log, now: now,
		keysChanged: keysChanged, protection: prot, AdminSetup: setup, Stats: recorder,
	}, nil
}

// newThrottle returns the sign-in throttle of login.*: its counters in
// Redis when redis is configured (so that instances throttle as one),
// with this instance's memory behind it for when Redis does not answer;
// in memory otherwise.
func newThrottle(cfg config.Config, fan *redis.Fanout, log *slog.Logger, now func() time.Time) *throttle.Policy {
	local := throttle.NewMemory(now)
	var st throttle.State = local
	if fan != nil {
		st = &throttle.Fallback{Shared: fan.ThrottleState(), Local: local, Log: log}
	}
	return throttle.New(throttle.Config{
		PerIPPerMinute: cfg.Login.RatePerIP, MaxFailures: cfg.Login.MaxFailures, Lockout: cfg.Login.Lockout.D(),
		AccountMaxFailures: cfg.Login.AccountMaxFailures, AccountWindow: cfg.Login.AccountWindow.D(),
	}, st, throttle.Options{Log: log})
}

// newOutbox returns the outbox worker of an instance: back-channel logout
// tokens signed by the ring's logout-token signer, metrics on reg.
func newOutbox(cfg config.Config, st latch.Store, ring *keys.Ring, reg prometheus.Registerer,
	log *slog.Logger, now func() time.Time) (*outbox.Worker, error) {
	bcl, err := backchannel.New(backchannel.Config{
		Issuer: cfg.Issuer, Clients: st, Now: now,
		LogoutTokens: func(alg string) (backchannel.Signer, error) {
			s, err := ring.LogoutTokens(alg)
			if errors.Is(err, keys.ErrUnsupportedAlgorithm) {
				// Retrying cannot make the ring sign with it.
				return nil, outbox.Permanent(err)
			}
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("back-channel logout: %w", err)
	}
	mailer, err := newMailer(cfg, log)
	if err != nil {
		return nil, err
	}
	w, err := outbox.New(outbox.Config{
		Store:    st,
		Handlers: map[string]outbox.Handler{latch.OutboxBackchannelLogout: bcl, latch.OutboxEmail: mailer},
		Now:      now, Log: log, Registry: reg,
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// newWebhooks registers the deliverer of webhook messages with the outbox
// worker and returns the relay that publishes the security log to it.
// The deliverer is registered even without webhooks, so that a message
// for a hook this instance does not know waits for one that does.
func newWebhooks(cfg config.Config, st latch.Store, worker *outbox.Worker, reg prometheus.Registerer,
	log *slog.Logger, now func() time.Time) (*webhook.Relay, error) {
	hooks := cfg.Hooks()
	h, err := webhook.NewHandler(webhook.HandlerConfig{Hooks: hooks, Now: now, Registry: reg})
	if err != nil {
		return nil, err
	}
	worker.Handle(latch.OutboxWebhook, h)
	for _, hook := range hooks {
		log.Info("webhook: security events are sent", "hook", hook.ID, "events", strings.Join(hook.Events, ","))
	}
	return webhook.NewRelay(webhook.RelayConfig{Store: st, Hooks: hooks, Notify: worker.Notify, Now: now, Log: log})
}

// newMailer returns the deliverer of outbox emails: through the SMTP
// server of mail.smtp_url, or, without one, into the development outbox
// DATA_DIR/outbox (one .eml file per message). It says which at start,
// never with the URL's password.
func newMailer(cfg config.Config, log *slog.Logger) (*mail.Handler, error) {
	var sender mail.Sender
	if cfg.Mail.SMTPURL != "" {
		sc, err := mail.ParseSMTPURL(cfg.Mail.SMTPURL)
		if err != nil {
			return nil, fmt.Errorf("mail.smtp_url: %w", err)
		}
		sender = mail.NewSMTP(sc, mail.SMTPOptions{})
		log.Info("mail: sending through SMTP", "server", sc.Addr(), "security", sc.Security(), "from", cfg.Mail.From)
	} else {
		dir := filepath.Join(cfg.DataDir, "outbox")
		sender = mail.NewDir(dir, log)
		if cfg.Postgres() {
			// A shared deployment without SMTP: say so loudly, and name no
			// data directory it does not otherwise use (the outbox
			// directory is made at the first email, by whichever instance
			// sends it).
			log.Warn("mail: no mail.smtp_url; emails are not sent but written as .eml files under data_dir/outbox by the instance that delivers them: set mail.smtp_url")
		} else {
			log.Info("mail: no mail.smtp_url; emails are written as .eml files into the development outbox, not sent", "dir", dir)
		}
	}
	h, err := mail.NewHandler(mail.HandlerConfig{Sender: sender, Issuer: cfg.Issuer, From: cfg.Mail.From})
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return h, nil
}

// warnCleartext warns when the issuer is http and either names a host
// other than the loopback or the listener is reachable from beyond it
// (addr 0.0.0.0:8080 derives the issuer http://localhost:8080): access
// tokens, refresh tokens, passwords and cookies would cross the network
// in cleartext (and browsers refuse __Host- cookies).
func warnCleartext(log *slog.Logger, issuer, addr string) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" {
		return
	}
	if loopbackHost(u.Hostname()) && loopbackAddr(addr) {
		return
	}
	log.Warn("the issuer is http on a host that is not the loopback: passwords, tokens and cookies travel in cleartext; serve Latch behind TLS and set an https issuer",
		"issuer", issuer, "addr", addr)
}

// pages serves Latch's own web pages with the browser SDK.
func pages(cfg config.Config, demo *Demo) *web.Pages {
	wc := web.Config{Registration: cfg.Registration, Issuer: cfg.Issuer}
	if demo != nil {
		wc.Demo, wc.DemoEmail, wc.DemoPassword = true, demo.Email, demo.Password
	}
	return web.New(wc, sdkjs.FS)
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

// RingKeys adapts a key ring to the verifier's KeySet of access tokens: it
// holds only the keys of keys.FamilyAccess, so that a token signed with an
// id_token key never verifies as an access token, whatever its header says.
type RingKeys struct{ Ring *keys.Ring }

// Key implements verifier.KeySet.
func (k RingKeys) Key(kid string) (verifier.Key, bool) {
	alg, pub, ok := k.Ring.FamilyKey(keys.FamilyAccess, kid)
	if !ok {
		return verifier.Key{}, false
	}
	return verifier.Key{Algorithm: alg, Public: pub}, true
}

// Start runs the background work until ctx ends: following the durable
// revocation feed (revocations made by other processes, such as the
// command line), key rotation, reloading the key ring when another process
// rotated or revoked a key, erasing refresh-token successors whose grace
// window has passed, pruning, delivering the outbox, and sampling the
// counters for the admin console's Overview.
func (in *Instance) Start(ctx context.Context) {
	if in.Fanout != nil {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			in.follow(ctx)
		}()
	}
	in.wg.Add(8)
	go func() {
		defer in.wg.Done()
		in.Outbox.Run(ctx)
	}()
	go func() {
		defer in.wg.Done()
		in.Webhooks.Run(ctx)
	}()
	go func() {
		defer in.wg.Done()
		in.Revocations.Follow(ctx, in.feed(), revocationPoll, in.now, func(err error) {
			in.log.Warn("revocation sync failed", "err", err)
		})
	}()
	go func() {
		defer in.wg.Done()
		every(ctx, keyTick, in.tickKeys)
	}()
	go func() {
		defer in.wg.Done()
		in.watchKeys(ctx)
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
	go func() {
		defer in.wg.Done()
		// Sample rather than Run: a failed sample is logged and the next
		// minute counts what it missed, where Run would stop.
		every(ctx, time.Minute, func(context.Context) {
			if err := in.Stats.Sample(); err != nil {
				in.log.Warn("sampling the counters for the console's overview failed", "err", err)
			}
		})
	}()
}

// follow applies pokes from other instances: a moved revocation feed is
// pulled from the store at once, a changed key ring reloaded. Pokes are
// coalesced, so a burst costs one catch-up and Redis is never blocked.
func (in *Instance) follow(ctx context.Context) {
	revs := make(chan struct{}, 1)
	go in.Fanout.Subscribe(ctx, func(topic string) {
		switch topic {
		case redis.TopicRevocations:
			poke(revs)
		case redis.TopicKeys:
			poke(in.keysChanged)
		}
	})
	for {
		select {
		case <-ctx.Done():
			return
		case <-revs:
			if _, err := in.Revocations.Sync(ctx, in.feed(), in.now()); err != nil {
				in.log.Warn("revocation sync after a poke failed; polling continues", "err", err)
			}
		}
	}
}

// poke signals c without blocking; signals coalesce.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// feed is the store's revocation feed as the instance follows it: a page
// holding a key revocation (latch.RevokeKey) also reloads the key ring, so
// that the revoked key stops being published and trusted at once.
func (in *Instance) feed() revocation.Feed {
	return keyFeed{RevocationStore: in.Store, changed: in.keysChanged}
}

// keyFeed passes a revocation feed through and signals changed when a page
// holds a key revocation.
type keyFeed struct {
	latch.RevocationStore
	changed chan struct{}
}

// RevocationsAfter implements revocation.Feed.
func (f keyFeed) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]latch.Revocation, error) {
	page, err := f.RevocationStore.RevocationsAfter(ctx, after, now, limit)
	for _, r := range page {
		if r.Kind == latch.RevokeKey {
			poke(f.changed)
			break
		}
	}
	return page, err
}

// watchKeys reloads the key ring when asked to (keysChanged) and whenever
// the store's key-ring version moves, which it checks every keyCheck: a
// rotation or revocation made by the command line or another instance
// applies here within about a second, Redis or not.
func (in *Instance) watchKeys(ctx context.Context) {
	// The version of the ring as loaded; -1: unknown. It starts unknown:
	// a change committed between NewRing's load and a first read of the
	// version here would otherwise pass for loaded, so the first check
	// reloads once.
	loaded := int64(-1)
	t := time.NewTicker(keyCheck)
	defer t.Stop()
	for {
		periodic := false
		select {
		case <-ctx.Done():
			return
		case <-in.keysChanged:
		case <-t.C:
			periodic = true
		}
		// Read the version before reloading: a change committed in
		// between moves it again and is picked up at the next check.
		v, err := in.Store.KeyRingVersion(ctx)
		switch {
		case err != nil && periodic:
			in.log.Debug("reading the key-ring version failed", "err", err)
			continue
		case err != nil:
			v = -1 // reload anyway; the next check reloads once more
		case v == loaded && periodic:
			continue
		}
		if err := in.Ring.Reload(ctx); err != nil {
			in.log.Warn("key ring reload failed; retrying at the next check", "err", err)
			loaded = -1
			continue
		}
		if v != loaded {
			in.log.Info("key ring reloaded", "version", v)
		}
		loaded = v
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
	in.signIn.Wait() // device touches written after their sign-in's answer
	err := in.Store.Close()
	if in.protection != nil {
		in.protection.close()
	}
	if in.scratch != "" {
		if rerr := os.RemoveAll(in.scratch); rerr != nil && err == nil {
			err = fmt.Errorf("remove the demo data directory: %w", rerr)
		}
	}
	return err
}

// MetricsAddr is the address of the metrics listener (metrics.addr) once
// ListenAndServe has opened it, or nil.
func (in *Instance) MetricsAddr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.metricsAddr
}

// listenMetrics serves /metrics on metrics.addr, when set, and returns
// the function that stops it.
func (in *Instance) listenMetrics() (stop func(), err error) {
	addr := in.Config.Metrics.Addr
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (metrics.addr): %w", addr, err)
	}
	in.mu.Lock()
	in.metricsAddr = ln.Addr()
	in.mu.Unlock()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", in.Server.Metrics())
	hs := in.httpServer(mux)
	go hs.Serve(ln)
	in.log.Info("metrics are served on their own listener", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}, nil
}

// ListenAndServe serves HTTP on cfg.Addr (and /metrics on metrics.addr,
// when set) until ctx ends, then shuts down gracefully. ready, if not nil,
// is called with the bound address once the listener is open.
func (in *Instance) ListenAndServe(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := Listen(in.Config)
	if err != nil {
		return err
	}
	return in.Serve(ctx, ln, ready)
}

// Listen opens the listener of cfg.Addr. latch serve opens it before
// anything else, so that a busy port fails before a data directory, a KEK
// or a signing key is created.
func Listen(cfg config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return ln, nil
}

// httpServer is the HTTP server of every listener (the API's and the
// metrics'): a client can hold a connection, idle or sending slowly, and
// send headers only within these bounds.
func (in *Instance) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelWarn),
	}
}

// Serve serves HTTP on ln until ctx ends, then shuts down gracefully; it
// closes ln. ready, if not nil, is called with the bound address first.
func (in *Instance) Serve(ctx context.Context, ln net.Listener, ready func(addr net.Addr)) error {
	hs := in.httpServer(in.Server)
	hs.RegisterOnShutdown(in.Server.CloseStreams)
	stopMetrics, err := in.listenMetrics()
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()
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

// loopbackHost reports whether host names the loopback: localhost, a
// .localhost name, or a loopback address.
func loopbackHost(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || (err == nil && ip.IsLoopback())
}

// loopbackAddr reports whether the listen address HOST:PORT accepts only
// loopback connections (an empty host, 0.0.0.0 or :: accept any).
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}
