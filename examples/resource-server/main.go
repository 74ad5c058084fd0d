// Command resource-server is the smallest API protected by Latch: it checks
// access tokens locally (keys from the JWKS, revocations from the feed,
// pushed within milliseconds of a logout) and never calls Latch on the
// request path. See README.md beside it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/latchauth/latch/verifier"
)

func main() {
	addr := flag.String("addr", ":9090", "address to listen on")
	flag.Parse()
	issuer := env("LATCH_ISSUER", "http://127.0.0.1:8080")

	// Stops on Ctrl-C; cancelling ctx also stops the background sync.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v, err := verifier.NewRemote(ctx, verifier.RemoteConfig{
		Issuer:       issuer,
		Audience:     env("LATCH_AUDIENCE", issuer),
		ClientID:     os.Getenv("LATCH_CLIENT_ID"),
		ClientSecret: os.Getenv("LATCH_CLIENT_SECRET"),
		// Fail closed (the default): if the revocation feed is unreachable
		// for more than 10 s, every token is refused until it is back.
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /hello", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "hello %s\n", c.Subject)
	})))
	mux.Handle("GET /admin", v.Middleware(verifier.RequireScope("admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "welcome, admin")
	}))))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	log.Printf("listening on %s (issuer %s)", ln.Addr(), issuer)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
