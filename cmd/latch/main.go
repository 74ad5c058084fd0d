// Command latch is the Latch authentication server and its administration
// tool.
//
//	latch serve                  run the auth server (embedded SQLite in ./latch-data)
//	latch user add               create a user
//	latch user list|show         list users, or show one with its sessions
//	latch user lock|unlock       lock (revoking every session) or unlock a user
//	latch user delete            delete a user (--yes)
//	latch user reset-link        print a password-reset link for support staff
//	latch admin create           create an administrator (or --promote a user)
//	latch client add|list        register or list OAuth clients
//	latch keys list|rotate       inspect or rotate the signing-key ring
//	latch migrate                apply the store's schema migrations
//	latch kek generate           print a new key-encryption key for LATCH_KEK
//	latch config                 list every setting with its environment variable
//	latch risk export|replay     export recorded risk decisions; score them again with other weights
//	latch gateway --config FILE  run the gateway (reverse proxy, browser sessions)
//	latch version                print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdin, os.Stdout, os.Stderr, os.Environ()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "latch:", err)
		os.Exit(1)
	}
}

// newRoot builds the command tree around the given streams and
// environment, so tests can run commands in-process.
func newRoot(stdin io.Reader, stdout, stderr io.Writer, environ []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "latch",
		Short: "Latch: token-based authentication and sessions",
		Long: `Latch issues short-lived signed JWT access tokens and rotating refresh tokens,
verifies and revokes them, and publishes its signing keys as a JWKS.

Start it with "latch serve": no configuration needed, state in ./latch-data.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	env := &cliEnv{stdin: stdin, stdout: stdout, stderr: stderr, environ: environ}
	root.AddCommand(env.serveCmd(), env.userCmd(), env.adminCmd(), env.clientCmd(), env.keysCmd(), env.migrateCmd(), env.kekCmd(), env.configCmd(), env.gatewayCmd(), env.riskCmd(), versionCmd(stdout))
	return root
}

// cliEnv carries what every command reads and writes.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

func versionCmd(out io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of latch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(out, "latch", versionString())
			return nil
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "(devel)"
}

// errUsage marks a mistake in the command line itself.
var errUsage = errors.New("usage")
