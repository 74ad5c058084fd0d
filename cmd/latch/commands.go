package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/redis"
)

// configFlags are the flags every command that touches the data directory
// takes; each maps to a configuration key.
type configFlags struct {
	path    string
	dataDir string
	addr    string
	issuer  string
	// demoTTL shortens access tokens for --demo, as a flag would.
	demoTTL bool
}

func (f *configFlags) register(fs *pflag.FlagSet, server bool) {
	fs.StringVar(&f.path, "config", "", "YAML configuration file (or LATCH_CONFIG)")
	fs.StringVar(&f.dataDir, "data-dir", "./latch-data", "data directory: SQLite database and key-encryption key (or LATCH_DATA_DIR)")
	if server {
		fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (or LATCH_ADDR)")
		fs.StringVar(&f.issuer, "issuer", "", "issuer URL of every token (default http://ADDR; or LATCH_ISSUER)")
	}
}

// load reads the configuration: flags the user set > environment > file >
// defaults. Errors about a flag's value name the flag.
func (f *configFlags) load(cmd *cobra.Command, environ []string) (config.Config, error) {
	over := map[string]config.Flag{}
	fs := cmd.Flags()
	for flag, key := range map[string]string{"data-dir": "data_dir", "addr": "addr", "issuer": "issuer"} {
		if fs.Lookup(flag) != nil && fs.Changed(flag) {
			v, _ := fs.GetString(flag)
			over[key] = config.Flag{Name: "--" + flag, Value: v}
		}
	}
	if f.demoTTL {
		over["tokens.access_ttl"] = config.Flag{Name: "--demo", Value: "30s"}
	}
	path := f.path
	if path == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "LATCH_CONFIG="); ok {
				path = v
			}
		}
	}
	return config.Load(path, environ, over)
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (e *cliEnv) serveCmd() *cobra.Command {
	var f configFlags
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the auth server",
		Long: `Run the Latch auth server. With no configuration it listens on 127.0.0.1:8080
and keeps its state in ./latch-data (SQLite), creating it on first start.

With --demo it runs on a throw-away data directory of its own (a new
temporary directory, removed at exit; the configured data directory and
store are never touched), seeds a demo user there (a random password,
shown on the demo page, never logged) and a cookie-mode browser client,
issues 30-second access tokens so that refreshes are visible, and serves a
demo app at /demo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if demo {
				f.demoTTL = true
			}
			cfg, err := f.load(cmd, e.environ)
			if err != nil {
				return err
			}
			return e.serve(cmd.Context(), cfg, demo)
		},
	}
	f.register(cmd.Flags(), true)
	cmd.Flags().BoolVar(&demo, "demo", false, "serve the demo app at /demo with a demo user, on throw-away data removed at exit")
	return cmd
}

func (e *cliEnv) serve(ctx context.Context, cfg config.Config, demo bool) error {
	log := newLogger(e.stderr, cfg)
	// The port first: a busy one fails before anything is created.
	ln, err := instance.Listen(cfg)
	if err != nil {
		return err
	}
	in, err := instance.Open(ctx, cfg, instance.Options{Log: log, Demo: demo})
	if err != nil {
		ln.Close()
		return err
	}
	defer in.Close()
	bg, stop := context.WithCancel(ctx)
	in.Start(bg)
	defer func() { stop(); in.Wait() }()
	return in.Serve(ctx, ln, func(addr net.Addr) {
		attrs := []any{"addr", addr.String(), "issuer", cfg.Issuer}
		attrs = append(attrs, instance.StoreAttrs(in.Config)...)
		attrs = append(attrs, "jwks", strings.TrimSuffix(cfg.Issuer, "/")+"/.well-known/jwks.json", "version", versionString())
		log.Info("latch is listening", attrs...)
		e.logSetupLink(ctx, log, in, cfg)
		if in.Demo != nil {
			base := strings.TrimSuffix(cfg.Issuer, "/")
			log.Info("demo: all data is in a throw-away directory, removed at exit; the configured data directory and store are not touched", "demo_dir", in.Config.DataDir)
			log.Info("demo: open the demo app; it shows the demo user's credentials (a new password each start)", "url", base+"/demo", "email", in.Demo.Email)
			log.Info("demo: the account page shows and revokes sessions", "url", base+"/account")
			return
		}
		cmd := "latch user add --email you@example.com --password-stdin"
		if !cfg.Postgres() {
			cmd = fmt.Sprintf("latch user add --data-dir %s --email you@example.com --password-stdin", cfg.DataDir)
		}
		log.Info("next step: create a user", "command", cmd)
	})
}

// logSetupLink logs the one-time link that creates the first
// administrator, while none exists: a new token each start (valid one
// hour, single-use; only its hash is stored). The link is the one secret
// Latch ever logs, on purpose: it is how the operator who started the
// server gets in, and it is void once used, after an hour, or as soon as
// any administrator exists.
func (e *cliEnv) logSetupLink(ctx context.Context, log *slog.Logger, in *instance.Instance, cfg config.Config) {
	tok, err := in.AdminSetup.Issue(ctx)
	if err != nil {
		log.Error("cannot issue the admin setup link; create the administrator with latch admin create", "err", err)
		return
	}
	if tok == "" {
		return
	}
	link := strings.TrimSuffix(cfg.Issuer, "/") + admin.SetupPath + "?token=" + tok
	log.Warn("no administrator yet: open this one-time link (valid 1 hour) to create one, or run latch admin create --email you@example.com --password-stdin", "setup_url", link)
}

func (e *cliEnv) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users", Args: cobra.NoArgs}
	var f configFlags
	var email string
	var fromStdin bool
	add := &cobra.Command{
		Use:   "add --email EMAIL --password-stdin",
		Short: "Create a user (works while serve runs on the same data directory)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if email == "" {
				return fmt.Errorf("%w: --email is required", errUsage)
			}
			if !fromStdin {
				return fmt.Errorf("%w: --password-stdin is required (passwords are never taken as arguments, which other users can see)", errUsage)
			}
			pw, err := readSecret(e.stdin)
			if err != nil {
				return fmt.Errorf("read password from standard input: %w", err)
			}
			in, err := e.openInstance(cmd, &f)
			if err != nil {
				return err
			}
			defer in.Close()
			u, err := in.Auth.CreateUser(cmd.Context(), email, pw, auth.Device{UserAgent: "latch-cli"})
			var policy *password.PolicyError
			switch {
			case errors.As(err, &policy):
				return fmt.Errorf("password rejected: %s", policy.Error())
			case errors.Is(err, auth.ErrEmailTaken):
				return fmt.Errorf("a user with email %s already exists", auth.NormalizeEmail(email))
			case errors.Is(err, auth.ErrInvalidEmail):
				// %+q shows invisible characters as escapes.
				return fmt.Errorf("%+q: %w", email, err)
			case err != nil:
				return err
			}
			fmt.Fprintf(e.stdout, "created user %s (%s)\n", u.ID, u.Email)
			return nil
		},
	}
	f.register(add.Flags(), false)
	add.Flags().StringVar(&email, "email", "", "email address of the new user")
	add.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	cmd.AddCommand(add)
	cmd.AddCommand(e.userLifecycleCmds()...)
	return cmd
}

// readSecret reads one secret from r: everything up to the first newline
// (or the end), without the newline.
func readSecret(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("standard input is empty")
	}
	return line, nil
}

func (e *cliEnv) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients (services and first-party apps)", Args: cobra.NoArgs}

	var af configFlags
	var id, name, scopes, audience, delivery, backchannel, idTokenAlg string
	var fromStdin, generate, public, firstParty bool
	var can, redirects, postLogout []string
	add := &cobra.Command{
		Use: "add --id ID (--secret-stdin | --generate-secret | --public) [--scopes \"a b\"] [--audience AUD] [--can read-revocations]\n" +
			"      [--redirect-uri URI]... [--post-logout-redirect-uri URI]... [--backchannel-logout-uri URI] [--first-party] [--id-token-signed-response-alg ALG]",
		Short: "Register a client",
		Long: `Register a client. A confidential client (a server) authenticates with a secret
of at least 32 characters and 128 bits of estimated entropy (patterns such as
aaaa… or abc123… are refused): pass one on standard input with --secret-stdin, or
let Latch generate and print one with --generate-secret (shown once; only its
hash is stored). A public client (a first-party app that cannot keep a
secret) has none: --public. A browser app is a public client with
--delivery cookie (tokens only in HttpOnly cookies) or --delivery memory
(access token for JavaScript memory, refresh token in an HttpOnly cookie).

--can grants a confidential client a permission beyond the OAuth grants:
--can read-revocations lets it read the revocation feed, as the client of a
remote verifier (verifier.NewRemote) must. The feed lists every revoked
session and user, so grant it only to the services that verify tokens.

An OpenID Connect relying party (an app signing users in through
/oauth2/authorize) registers each --redirect-uri it uses, matched exactly:
https; http only on a loopback host (127.0.0.1, [::1], localhost,
*.localhost), for development; or, for a --public native app, a private-use
scheme with a period (com.example.app:/cb). No fragments, userinfo or
wildcards. A client with redirect URIs and no --scopes may be granted
"openid profile email offline_access". A public client must use PKCE.
--post-logout-redirect-uri lists where logout may return to,
--backchannel-logout-uri receives logout tokens when a user's session ends,
--first-party skips the consent page (for your own apps), and
--id-token-signed-response-alg picks the id_token algorithm (default RS256).
These are for clients receiving bearer tokens, not --delivery cookie or
memory. Example:
  latch client add --id dash --generate-secret --redirect-uri https://dash.example.com/callback
  latch client add --id spa --public --redirect-uri http://app.localhost:5173/cb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, b := range []bool{fromStdin, generate, public} {
				if b {
					n++
				}
			}
			if id == "" || n != 1 {
				return fmt.Errorf("%w: --id and exactly one of --secret-stdin, --generate-secret, --public are required", errUsage)
			}
			nc := auth.NewClient{ID: id, Name: name, Public: public, Scopes: strings.Fields(scopes), Audience: audience, Delivery: delivery, Permissions: can,
				RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout, BackchannelLogoutURI: backchannel,
				FirstParty: firstParty, IDTokenSignedResponseAlg: idTokenAlg}
			switch {
			case fromStdin:
				secret, err := readSecret(e.stdin)
				if err != nil {
					return fmt.Errorf("read secret from standard input: %w", err)
				}
				nc.Secret = secret
			case generate:
				nc.Secret = auth.GenerateClientSecret()
			}
			in, err := e.openInstance(cmd, &af)
			if err != nil {
				return err
			}
			defer in.Close()
			c, err := in.Auth.CreateClient(cmd.Context(), nc)
			if errors.Is(err, auth.ErrClientExists) {
				return fmt.Errorf("a client with id %s already exists", id)
			}
			if err != nil {
				return clientFlagError(err)
			}
			kind := "confidential"
			if c.Public() {
				kind = "public"
			}
			fmt.Fprintf(e.stdout, "created %s client %s\n", kind, c.ID)
			if generate {
				fmt.Fprintf(e.stdout, "client secret (shown once, store it now): %s\n", nc.Secret)
			}
			if len(c.RedirectURIs) > 0 {
				fmt.Fprintf(e.stdout, "scopes it may be granted: %s\n", strings.Join(c.Scopes, " "))
				printOIDCClient(e.stdout, c)
			}
			return nil
		},
	}
	af.register(add.Flags(), false)
	add.Flags().StringVar(&id, "id", "", "client id: letters, digits, '.', '_', '-', ':'")
	add.Flags().BoolVar(&fromStdin, "secret-stdin", false, "read the client secret from standard input")
	add.Flags().BoolVar(&generate, "generate-secret", false, "generate a secret and print it once")
	add.Flags().BoolVar(&public, "public", false, "a public client, without a secret")
	add.Flags().StringVar(&scopes, "scopes", "", "space-separated scopes the client may be granted")
	add.Flags().StringVar(&audience, "audience", "", "aud of the client's access tokens (default: the server's audience)")
	add.Flags().StringSliceVar(&can, "can", nil, "grant a permission (repeatable or comma-separated): read-revocations (read the revocation feed, for a remote verifier)")
	add.Flags().StringVar(&delivery, "delivery", "bearer", "how a public client's sessions receive tokens: bearer (apps), cookie or memory (browsers)")
	add.Flags().StringArrayVar(&redirects, "redirect-uri", nil, "an OpenID Connect redirect URI, matched exactly (repeatable)")
	add.Flags().StringArrayVar(&postLogout, "post-logout-redirect-uri", nil, "where RP-initiated logout may return to (repeatable)")
	add.Flags().StringVar(&backchannel, "backchannel-logout-uri", "", "URI that receives back-channel logout tokens")
	add.Flags().BoolVar(&firstParty, "first-party", false, "an app of your own: no consent page")
	add.Flags().StringVar(&name, "name", "", "the name people are shown (consent and account pages); default the id")
	add.Flags().StringVar(&idTokenAlg, "id-token-signed-response-alg", "", "JWS algorithm of the client's id_tokens (default RS256)")

	var lf configFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the registered clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := lf.load(cmd, e.environ)
			if err != nil {
				return err
			}
			st, err := instance.OpenExisting(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			clients, err := st.Clients(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tDELIVERY\tSCOPES\tAUDIENCE\tCREATED")
			for _, c := range clients {
				kind := "confidential"
				if c.Public() {
					kind = "public"
				}
				aud := c.Audience
				if aud == "" {
					aud = "-"
				}
				sc := strings.Join(c.Scopes, " ")
				if sc == "" {
					sc = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, kind, c.Delivery, sc, aud, c.CreatedAt.Local().Format("2006-01-02 15:04:05"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, c := range clients {
				if len(c.RedirectURIs) > 0 {
					fmt.Fprintf(e.stdout, "\nclient %s (OpenID Connect):\n", c.ID)
					printOIDCClient(e.stdout, c)
				}
			}
			return nil
		},
	}
	lf.register(list.Flags(), false)
	cmd.AddCommand(add, list)
	return cmd
}

// clientFlags names the flags of latch client add after the client
// metadata fields of auth.ClientMetadataError.
var clientFlags = map[string]string{
	"redirect_uris":                "--redirect-uri",
	"post_logout_redirect_uris":    "--post-logout-redirect-uri",
	"backchannel_logout_uri":       "--backchannel-logout-uri",
	"first_party":                  "--first-party",
	"id_token_signed_response_alg": "--id-token-signed-response-alg",
	"client_name":                  "--name",
}

// clientFlagError restates a refused client setting with the flag the
// user passed it with.
func clientFlagError(err error) error {
	var me *auth.ClientMetadataError
	if !errors.As(err, &me) {
		return err
	}
	flag, ok := clientFlags[me.Field]
	if !ok {
		return err
	}
	if me.Value == "" {
		return fmt.Errorf("%s: %s", flag, me.Reason)
	}
	return fmt.Errorf("%s %q: %s", flag, me.Value, me.Reason)
}

// printOIDCClient prints a client's OpenID Connect registration, indented,
// one URI a line.
func printOIDCClient(w io.Writer, c *latch.Client) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	list := func(name string, uris []string) {
		if len(uris) == 0 {
			fmt.Fprintf(tw, "  %s\t-\n", name)
		}
		for i, u := range uris {
			if i > 0 {
				name = ""
			}
			fmt.Fprintf(tw, "  %s\t%s\n", name, u)
		}
	}
	if c.Name != "" {
		fmt.Fprintf(tw, "  name\t%s\n", c.Name)
	}
	list("redirect URIs", c.RedirectURIs)
	list("post-logout redirect URIs", c.PostLogoutRedirectURIs)
	bc := c.BackchannelLogoutURI
	if bc == "" {
		bc = "-"
	}
	fmt.Fprintf(tw, "  back-channel logout URI\t%s\n", bc)
	fp := "no (asks for consent)"
	if c.FirstParty {
		fp = "yes (no consent page)"
	}
	fmt.Fprintf(tw, "  first-party\t%s\n", fp)
	alg := c.IDTokenSignedResponseAlg
	if alg == "" {
		alg = "RS256 (default)"
	}
	fmt.Fprintf(tw, "  id_token algorithm\t%s\n", alg)
	tw.Flush()
}

func (e *cliEnv) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Inspect, rotate and revoke the signing-key ring", Args: cobra.NoArgs}

	var lf configFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "Show the key ring: kid, family, algorithm, state and dates",
		Long: `Show every stored signing key, grouped by family: "access" keys sign access
tokens (tokens.algorithm), "id" keys sign id_tokens and logout tokens
(RS256). States are per family: pending (published, signs later), active
(signs), retired (published until its tokens expire), removed, revoked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ring, st, err := e.openRing(cmd, &lf, keys.LoadRing)
			if err != nil {
				return err
			}
			defer st.Close()
			e.printKeys(ring.List())
			return nil
		},
	}
	lf.register(list.Flags(), false)

	var rf configFlags
	var now bool
	var family string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Start a key rotation now: publish a new key that signs once every cache has it",
		Long: `Start a key rotation now, of every key family (access tokens; id_tokens and
logout tokens) or, with --family, of one. Each new key is published in the
JWKS at once and starts signing after keys.jwks_max_age + 10 minutes, so that
every verifier's cache holds it first; the previous key of its family stays
published until every token it signed has expired. With --now the new keys
sign immediately, even while a scheduled rotation is pending (the pending key
is then revoked unused), and running instances switch to them within a
second or two (verifiers fetch unknown kids on demand). If one family cannot
rotate (a key already pending, without --now), the others still do and the
command fails naming it. After a suspected key compromise use
latch keys revoke KID instead: it also stops trusting the old key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ring, st, err := e.openRing(cmd, &rf, keys.NewRing)
			if err != nil {
				return err
			}
			defer st.Close()
			fams := keys.Families()
			if family != "" {
				fams = []string{family}
			}
			var errs []error
			rotated := false
			for _, fam := range fams {
				k, err := ring.RotateFamily(cmd.Context(), fam, now)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				rotated = true
				ev := &latch.Event{Type: latch.EventKeysRotated, At: time.Now().UTC(), UserAgent: "latch-cli",
					Detail: map[string]string{"kid": k.ID, "family": k.Family, "algorithm": k.Algorithm, "immediate": fmt.Sprint(now)}}
				if err := st.AddEvent(cmd.Context(), ev); err != nil {
					fmt.Fprintf(e.stderr, "warning: recording the rotation in the security log failed: %v\n", err)
				}
				fmt.Fprintf(e.stdout, "new %s %s key %s signs from %s\n", k.Algorithm, k.Family, k.ID, k.NotBefore.Local().Format(time.RFC3339))
			}
			if rotated {
				e.announce(cmd, &rf, redis.TopicKeys)
				e.printKeys(ring.List())
			}
			return errors.Join(errs...)
		},
	}
	rf.register(rotate.Flags(), false)
	rotate.Flags().BoolVar(&now, "now", false, "make the new keys sign immediately")
	rotate.Flags().StringVar(&family, "family", "", `rotate only this key family: "access" or "id" (default: every family)`)

	var vf configFlags
	revoke := &cobra.Command{
		Use:   "revoke [flags] [--] KID",
		Short: "Revoke a signing key after a suspected compromise: stop signing with, publishing and trusting it",
		Long: `Revoke the signing key KID (see latch keys list), for example after its
private key or the key-encryption key may have leaked. From then on no
instance signs with it, publishes it in the JWKS or accepts a token it
signed, and remote verifiers following the revocation feed refuse such
tokens too: running instances apply it within a second or two, at once
with Redis. If KID is the active key of its family, a new key of that
family (only) replaces it immediately, so signing goes on; users keep their
sessions and get tokens of the new key at their next refresh. Revoking a
key twice announces it again. A KID that begins with '-' goes after '--'
(latch keys revoke --data-dir DIR -- -ZdD1…).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ring, st, err := e.openRing(cmd, &vf, keys.NewRing)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := ring.Revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			e.announce(cmd, &vf, redis.TopicKeys, redis.TopicRevocations)
			detail := map[string]string{"kid": res.Key.ID, "family": res.Key.Family, "algorithm": res.Key.Algorithm}
			if res.Rotated.ID != "" {
				detail["replaced_by"] = res.Rotated.ID
			}
			ev := &latch.Event{Type: latch.EventKeyRevoked, At: time.Now().UTC(), UserAgent: "latch-cli", Detail: detail}
			if err := st.AddEvent(cmd.Context(), ev); err != nil {
				fmt.Fprintf(e.stderr, "warning: recording the revocation in the security log failed: %v\n", err)
			}
			if res.Already {
				fmt.Fprintf(e.stdout, "key %s was revoked already (at %s); announced again\n", res.Key.ID, res.Key.RevokedAt.Local().Format(time.RFC3339))
			} else {
				fmt.Fprintf(e.stdout, "revoked %s %s key %s: no token it signed is accepted any more\n", res.Key.Algorithm, res.Key.Family, res.Key.ID)
			}
			if res.Rotated.ID != "" {
				fmt.Fprintf(e.stdout, "new %s %s key %s signs from now\n", res.Rotated.Algorithm, res.Rotated.Family, res.Rotated.ID)
			}
			fmt.Fprintf(e.stdout, "remote verifiers refuse its tokens through the revocation feed until %s\n", res.Expiry.Local().Format(time.RFC3339))
			e.printKeys(ring.List())
			return nil
		},
	}
	vf.register(revoke.Flags(), false)
	// A kid is a base64url thumbprint: one in 64 begins with '-', which
	// reads as a flag. Say how to pass it.
	revoke.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (a key id that begins with '-' goes after '--': latch keys revoke [flags] -- KID)", errUsage, err)
	})
	cmd.AddCommand(list, rotate, revoke)
	return cmd
}

// announce pokes the running instances through Redis, when one is
// configured, so that they apply a change of the key ring or the feed at
// once instead of at their next check (about a second later). A failure
// only warns: the instances find the change in the store anyway.
func (e *cliEnv) announce(cmd *cobra.Command, f *configFlags, topics ...string) {
	cfg, err := f.load(cmd, e.environ)
	if err != nil || cfg.Redis == "" {
		return
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	fan, err := redis.Open(ctx, cfg.Redis, redis.Options{Prefix: cfg.RedisPrefix, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintf(e.stderr, "warning: could not tell the instances through Redis (%v); they apply the change within a second or two anyway\n", err)
		return
	}
	defer fan.Close()
	for _, topic := range topics {
		if err := fan.Publish(ctx, topic); err != nil {
			fmt.Fprintf(e.stderr, "warning: %v; the instances apply the change within a second or two anyway\n", err)
		}
	}
}

// openRing opens the store and the key ring of an existing deployment
// with open (keys.NewRing, or keys.LoadRing for a command that only reads
// and must create nothing); the caller closes the store.
func (e *cliEnv) openRing(cmd *cobra.Command, f *configFlags, open func(context.Context, latch.KeyStore, keys.KEK, keys.Config, func() time.Time) (*keys.Ring, error)) (*keys.Ring, latch.Store, error) {
	cfg, err := f.load(cmd, e.environ)
	if err != nil {
		return nil, nil, err
	}
	st, err := instance.OpenExisting(cmd.Context(), cfg)
	if err != nil {
		return nil, nil, err
	}
	kek, _, err := instance.LoadKEK(cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	ring, err := open(cmd.Context(), st, kek, instance.RingConfig(cfg), time.Now)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	return ring, st, nil
}

// printKeys prints the key ring as a table, grouped by family (access
// first), oldest key first within each.
func (e *cliEnv) printKeys(list []keys.Info) {
	rank := func(family string) int {
		if i := slices.Index(keys.Families(), family); i >= 0 {
			return i
		}
		return len(keys.Families()) // a family of a newer version: last
	}
	slices.SortStableFunc(list, func(a, b keys.Info) int {
		return cmp.Or(cmp.Compare(rank(a.Family), rank(b.Family)), strings.Compare(a.Family, b.Family))
	})
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tFAMILY\tALG\tSTATE\tCREATED\tSIGNS FROM\tPUBLISHED UNTIL")
	date := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Family, k.Algorithm, k.State, date(k.CreatedAt), date(k.NotBefore), date(k.NotAfter))
	}
	tw.Flush()
}

func (e *cliEnv) migrateCmd() *cobra.Command {
	var f configFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations and exit",
		Long: `Apply the schema migrations of the configured store (store: or
LATCH_DATABASE_URL for PostgreSQL, otherwise SQLite in the data directory)
and exit. latch serve applies them at start as well; run this first when
deploying a new version to many instances, so they start on a ready schema.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.load(cmd, e.environ)
			if err != nil {
				return err
			}
			if !cfg.Postgres() {
				st, err := instance.OpenStore(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				st.Close()
				fmt.Fprintf(e.stdout, "SQLite store in %s is up to date\n", cfg.DataDir)
				return nil
			}
			applied, err := postgres.Migrate(cmd.Context(), cfg.Store)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(e.stdout, "PostgreSQL schema is up to date; nothing to apply")
			}
			for _, m := range applied {
				fmt.Fprintf(e.stdout, "applied %s\n", m)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

func (e *cliEnv) kekCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "kek", Short: "Key-encryption key tools", Args: cobra.NoArgs}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Print a new random key-encryption key for LATCH_KEK",
		Long: `Print a new random 256-bit key-encryption key, base64-encoded, for LATCH_KEK.
Every instance of one deployment needs the same KEK; keep it in your secret
store. Changing it later makes the stored signing keys unreadable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var b [32]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(b[:]))
			return nil
		},
	})
	return cmd
}

func (e *cliEnv) configCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "List every setting: YAML key, environment variable, default, meaning",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := config.Defaults()
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tENVIRONMENT\tDEFAULT\tMEANING")
			config.Walk(&c, func(key string, v reflect.Value, f reflect.StructField) {
				def := fmt.Sprint(v.Interface())
				if v.Kind() == reflect.Slice {
					def = strings.Trim(def, "[]")
				}
				if def == "" {
					def = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", key, config.EnvName(key), def, f.Tag.Get("doc"))
			})
			return tw.Flush()
		},
	}
}
