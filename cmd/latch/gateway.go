package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/verifier"
)

// GatewaySessionDeps are what the browser sessions of a gateway are built
// from.
type GatewaySessionDeps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// KEK is the gateway's key-encryption key (tokens at rest).
	KEK keys.KEK
	// Verifier checks access tokens for the gateway's audience.
	Verifier *verifier.Verifier
}

// newGatewaySessions builds the gateway's browser sessions (package bff):
// the Sessions and the readiness checks of its store. nil means this
// build has none; routes with auth: session are then refused at start.
var newGatewaySessions = openGatewaySessions

func (e *cliEnv) gatewayCmd() *cobra.Command {
	var path string
	var check bool
	cmd := &cobra.Command{
		Use:   "gateway --config FILE [--check]",
		Short: "Run the gateway: a token-checking reverse proxy with browser sessions (BFF)",
		Long: `latch gateway is the single entry point in front of an application's upstreams.
It verifies bearer tokens locally (the issuer's JWKS and revocation feed), keeps
browsers' sessions on the server (one opaque cookie, never a token), strips
spoofable identity headers and proxies requests, WebSockets and event streams.

The configuration is a YAML file (docs/gateway.md); the client secret comes from
LATCH_GATEWAY_CLIENT_SECRET or client_secret_file. --check validates the file and
prints "ok" or every problem, by key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				path = envValue(e.environ, "LATCH_GATEWAY_CONFIG")
			}
			if path == "" {
				return fmt.Errorf("%w: --config FILE is required (or LATCH_GATEWAY_CONFIG)", errUsage)
			}
			cfg, err := gateway.Load(path, e.environ)
			if check {
				if err != nil {
					n := 0
					for l := range strings.SplitSeq(err.Error(), "\n") {
						fmt.Fprintln(e.stdout, l)
						n++
					}
					return fmt.Errorf("%s: %d problem(s)", path, n)
				}
				fmt.Fprintln(e.stdout, "ok")
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s:\n%w", path, err)
			}
			return e.runGateway(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration of the gateway (or LATCH_GATEWAY_CONFIG)")
	cmd.Flags().BoolVar(&check, "check", false, `validate the configuration: print "ok" or every problem, and exit (1 on problems)`)
	return cmd
}

func envValue(environ []string, name string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// runGateway builds the gateway from cfg and serves it until ctx ends.
func (e *cliEnv) runGateway(ctx context.Context, cfg gateway.Config) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	out := e.stdout
	// The port first: a busy one fails before anything else starts.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	if cfg.PublicURL == "http://"+cfg.Addr && ln.Addr().String() != cfg.Addr {
		cfg.PublicURL = "http://" + ln.Addr().String() // addr with port 0
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := gateway.Deps{Logger: log, Registry: reg, Verifiers: map[string]*verifier.Verifier{}}

	// One verifier per audience: the issuer's keys and revocation feed,
	// read with the gateway's client (it needs --can read-revocations).
	var auds []string
	for _, r := range cfg.Routes {
		if r.Auth != gateway.AuthNone && !slices.Contains(auds, r.Audience) {
			auds = append(auds, r.Audience)
		}
	}
	usesSessions := false
	usesAssertion := false
	for _, r := range cfg.Routes {
		usesSessions = usesSessions || r.Auth == gateway.AuthSession
		usesAssertion = usesAssertion || r.Identity.Assertion
	}
	if (usesSessions || newGatewaySessions != nil && len(auds) > 0) && !slices.Contains(auds, cfg.Audience) {
		auds = append(auds, cfg.Audience)
	}
	for _, aud := range auds {
		fmt.Fprintf(out, "loading the signing keys and revocation feed of %s (audience %s)...\n", cfg.Issuer, aud)
		v, err := verifier.NewRemote(ctx, verifier.RemoteConfig{
			Issuer:       cfg.Issuer,
			Audience:     aud,
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Logger:       log,
		})
		if err != nil {
			return fmt.Errorf("gateway: %w (the gateway's client needs a secret and --can read-revocations: latch client add --id %s --generate-secret --can read-revocations ...)", err, cfg.ClientID)
		}
		if aud == cfg.Audience {
			d.Verifier = v
		} else {
			d.Verifiers[aud] = v
		}
	}

	var kek keys.KEK
	if usesAssertion || newGatewaySessions != nil && len(auds) > 0 {
		kekFile := cfg.KEKFile
		if kekFile == "" && cfg.KEK == "" {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("gateway: data_dir: %w", err)
			}
			kekFile = filepath.Join(cfg.DataDir, "kek")
		}
		k, created, err := keys.LoadKEK(cfg.KEK, kekFile)
		if err != nil {
			return fmt.Errorf("gateway: key-encryption key: %w", err)
		}
		if created {
			fmt.Fprintf(out, "created a new key-encryption key in %s (give every gateway instance the same one: LATCH_GATEWAY_KEK or kek_file)\n", kekFile)
		}
		kek = k
		if usesAssertion {
			seed := kek.MAC("gateway identity assertion key", nil)
			if d.Signer, err = gateway.NewEd25519Signer(seed[:32]); err != nil {
				return err
			}
		}
	}

	if newGatewaySessions != nil && len(auds) > 0 {
		s, ready, err := newGatewaySessions(ctx, cfg, GatewaySessionDeps{Logger: log, Registry: reg, KEK: kek, Verifier: d.Verifier})
		if err != nil {
			return fmt.Errorf("gateway: browser sessions: %w", err)
		}
		d.Sessions = s
		d.Ready = append(d.Ready, ready...)
	} else if usesSessions {
		return errors.New("gateway: routes with auth: session need the browser sessions, which this build of latch does not include")
	}

	gw, err := gateway.New(cfg, d)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	printGateway(out, gw.Config(), ln.Addr().String(), d)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "latch gateway: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// printGateway prints where the gateway listens and its routes.
func printGateway(out io.Writer, cfg gateway.Config, addr string, d gateway.Deps) {
	fmt.Fprintf(out, "latch gateway listening on http://%s (public URL %s)\n", addr, cfg.PublicURL)
	if d.Verifier != nil || len(d.Verifiers) > 0 {
		fmt.Fprintf(out, "bearer tokens: verified locally against %s (JWKS and revocation feed, client %s)\n", cfg.Issuer, cfg.ClientID)
	}
	if d.Sessions != nil {
		fmt.Fprintf(out, "browser sessions: sign in at %s/auth/login (cookie %s)\n", cfg.PublicURL, cfg.Session.Cookie)
	}
	fmt.Fprintln(out, "routes:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PATH\tAUTH\tUPSTREAM\tSCOPES\tIDENTITY\tTIMEOUT")
	for _, r := range cfg.Routes {
		var id []string
		if r.Identity.Headers {
			id = append(id, "headers")
		}
		if r.Identity.Assertion {
			id = append(id, "assertion")
		}
		path := r.Path
		if r.StripPrefix {
			path += " (stripped)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%v\n", path, r.Auth, r.Upstream, dash(strings.Join(r.Scopes, " ")), dash(strings.Join(id, "+")), r.Timeout.D())
	}
	tw.Flush()
	fmt.Fprintf(out, "also: %[1]s/healthz %[1]s/readyz %[1]s/metrics %[1]s/.well-known/jwks.json\n", cfg.PublicURL)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
