package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/password"
)

func (e *cliEnv) adminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Manage the administrators of the admin console (/admin)", Args: cobra.NoArgs}
	var f configFlags
	var email string
	var fromStdin, promote bool
	create := &cobra.Command{
		Use:   "create --email EMAIL (--password-stdin | --promote)",
		Short: "Create an administrator (works while serve runs on the same data directory)",
		Long: `Create an administrator of the admin console: a new account with the email
and the password read from standard input, or, with --promote, make the
existing user with that email one. Whoever can run this owns the data
directory (or the database URL), so it works whether or not administrators
exist; the setup link that latch serve logs creates the first one only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if email == "" {
				return fmt.Errorf("%w: --email is required", errUsage)
			}
			if fromStdin == promote {
				return fmt.Errorf("%w: exactly one of --password-stdin (a new account) and --promote (an existing user) is required", errUsage)
			}
			pw := ""
			if fromStdin {
				var err error
				if pw, err = readSecret(e.stdin); err != nil {
					return fmt.Errorf("read password from standard input: %w", err)
				}
			}
			in, err := e.openInstance(cmd, &f)
			if err != nil {
				return err
			}
			defer in.Close()
			ctx := cmd.Context()
			if promote {
				u, err := lookupUser(ctx, in.Store, email)
				if err != nil {
					return err
				}
				if err := admin.Promote(ctx, in.Store, u.ID, "cli", time.Now()); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s (%s) is an administrator\n", u.Email, u.ID)
				return nil
			}
			u, err := in.Auth.CreateUser(ctx, email, pw, auth.Device{UserAgent: "latch-cli"})
			var policy *password.PolicyError
			switch {
			case errors.As(err, &policy):
				return fmt.Errorf("password rejected: %s", policy.Error())
			case errors.Is(err, auth.ErrEmailTaken):
				return fmt.Errorf("a user with email %s already exists (make it an administrator with --promote)", auth.NormalizeEmail(email))
			case errors.Is(err, auth.ErrInvalidEmail):
				return fmt.Errorf("%+q: %w", email, err)
			case err != nil:
				return err
			}
			if err := admin.Promote(ctx, in.Store, u.ID, "cli", time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created administrator %s (%s): sign in at %s/admin\n", u.ID, u.Email, in.Config.Issuer)
			return nil
		},
	}
	f.register(create.Flags(), false)
	create.Flags().StringVar(&email, "email", "", "email address of the administrator")
	create.Flags().BoolVar(&fromStdin, "password-stdin", false, "create a new account, reading its password from standard input")
	create.Flags().BoolVar(&promote, "promote", false, "make the existing user with this email an administrator")
	cmd.AddCommand(create)
	return cmd
}
