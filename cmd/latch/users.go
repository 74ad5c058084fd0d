package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/redis"
)

// cliDevice is what the security log records for a change made from the
// command line.
var cliDevice = auth.Device{UserAgent: "latch-cli"}

// userLifecycleCmds are latch user list, show, lock, unlock, delete and
// reset-link.
func (e *cliEnv) userLifecycleCmds() []*cobra.Command {
	var (
		listF, showF, lockF, unlockF, deleteF, linkF configFlags
		limit                                        int
		reason                                       string
		yes                                          bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List users: id, email, verified, locked, created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("%w: --limit must not be negative", errUsage)
			}
			st, err := e.openExisting(cmd, &listF)
			if err != nil {
				return err
			}
			defer st.Close()
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tVERIFIED\tLOCKED\tCREATED")
			after, n := "", 0
			for limit == 0 || n < limit {
				page, err := st.Users(cmd.Context(), after, 500)
				if err != nil {
					return err
				}
				for _, u := range page {
					if limit != 0 && n >= limit {
						break
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, yesNo(u.EmailVerified()), lockState(u), date(u.CreatedAt))
					n++
				}
				if len(page) < 500 {
					break
				}
				after = page[len(page)-1].ID
			}
			return tw.Flush()
		},
	}
	listF.register(list.Flags(), false)
	list.Flags().IntVar(&limit, "limit", 0, "list at most this many users (0: all)")

	show := &cobra.Command{
		Use:   "show ID|EMAIL",
		Short: "Show a user with its live sessions and last sign-in",
		Args:  userArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.openExisting(cmd, &showF)
			if err != nil {
				return err
			}
			defer st.Close()
			u, err := lookupUser(cmd.Context(), st, args[0])
			if err != nil {
				return err
			}
			sessions, err := st.SessionsByUser(cmd.Context(), u.ID, time.Now())
			if err != nil {
				return err
			}
			last := "never"
			events, err := st.EventsByUser(cmd.Context(), u.ID, 200)
			if err != nil {
				return err
			}
			for _, ev := range events {
				if ev.Type == latch.EventLoginSucceeded {
					last = date(ev.At)
					if ev.IP != "" {
						last += " from " + ev.IP
					}
					break
				}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "id:\t%s\n", u.ID)
			fmt.Fprintf(tw, "email:\t%s\n", u.Email)
			verified := "no"
			if u.EmailVerified() {
				verified = "yes, " + date(u.EmailVerifiedAt)
			}
			fmt.Fprintf(tw, "verified:\t%s\n", verified)
			locked := "no"
			if u.Locked() {
				locked = fmt.Sprintf("yes, since %s (reason: %s)", date(u.LockedAt), u.LockReason)
			}
			fmt.Fprintf(tw, "locked:\t%s\n", locked)
			fmt.Fprintf(tw, "created:\t%s\n", date(u.CreatedAt))
			fmt.Fprintf(tw, "updated:\t%s\n", date(u.UpdatedAt))
			fmt.Fprintf(tw, "live sessions:\t%d\n", len(sessions))
			fmt.Fprintf(tw, "last sign-in:\t%s\n", last)
			return tw.Flush()
		},
	}
	showF.register(show.Flags(), false)

	lock := &cobra.Command{
		Use:   "lock ID|EMAIL [--reason admin|reset_required]",
		Short: "Lock a user: no sign-in, every session revoked",
		Long: `Lock a user: sign-in is refused with 403 account_locked and every session
and access token of the user is revoked at once.

--reason admin (the default) keeps the account locked until "latch user unlock";
--reason reset_required lets the user unlock it by resetting the password.`,
		Args: userArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason != latch.LockReasonAdmin && reason != latch.LockReasonResetRequired {
				return fmt.Errorf("%w: --reason must be %s or %s, not %q", errUsage, latch.LockReasonAdmin, latch.LockReasonResetRequired, reason)
			}
			return e.withAccounts(cmd, &lockF, args[0], func(ctx context.Context, in *instance.Instance, u *latch.User) error {
				if err := in.Account.Lock(ctx, u.ID, reason, cliDevice); err != nil {
					return err
				}
				e.announce(cmd, &lockF, redis.TopicRevocations)
				fmt.Fprintf(e.stdout, "locked user %s (%s), reason %s; every session revoked\n", u.ID, u.Email, reason)
				return nil
			})
		},
	}
	lockF.register(lock.Flags(), false)
	lock.Flags().StringVar(&reason, "reason", latch.LockReasonAdmin, "why: admin (until unlocked) or reset_required (until the user resets the password)")

	unlock := &cobra.Command{
		Use:   "unlock ID|EMAIL",
		Short: "Unlock a locked user",
		Args:  userArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withAccounts(cmd, &unlockF, args[0], func(ctx context.Context, in *instance.Instance, u *latch.User) error {
				if err := in.Account.Unlock(ctx, u.ID, cliDevice); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "unlocked user %s (%s)\n", u.ID, u.Email)
				return nil
			})
		},
	}
	unlockF.register(unlock.Flags(), false)

	del := &cobra.Command{
		Use:   "delete ID|EMAIL --yes",
		Short: "Delete a user with its sessions (revoked first); the security log stays",
		Args:  userArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return fmt.Errorf("%w: deleting user %q cannot be undone; pass --yes to confirm", errUsage, args[0])
			}
			return e.withAccounts(cmd, &deleteF, args[0], func(ctx context.Context, in *instance.Instance, u *latch.User) error {
				if err := in.Account.Delete(ctx, u.ID, cliDevice); err != nil {
					return err
				}
				e.announce(cmd, &deleteF, redis.TopicRevocations)
				fmt.Fprintf(e.stdout, "deleted user %s (%s); every session revoked\n", u.ID, u.Email)
				return nil
			})
		},
	}
	deleteF.register(del.Flags(), false)
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")

	link := &cobra.Command{
		Use:   "reset-link ID|EMAIL",
		Short: "Print a single-use password-reset link for support staff to hand over",
		Args:  userArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withAccounts(cmd, &linkF, args[0], func(ctx context.Context, in *instance.Instance, u *latch.User) error {
				l, ttl, err := in.Account.ResetLink(ctx, u.ID)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "reset link for %s (%s), single use, valid for %s; give it only to the account's owner:\n", u.ID, u.Email, ttl)
				fmt.Fprintln(e.stdout, l)
				return nil
			})
		},
	}
	linkF.register(link.Flags(), false)
	return []*cobra.Command{list, show, lock, unlock, del, link}
}

// userArg requires the one ID|EMAIL argument.
func userArg(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("%w: the argument ID|EMAIL (the user's id or email) is required", errUsage)
	case len(args) > 1:
		return fmt.Errorf("%w: one argument ID|EMAIL expected, got %d: %q", errUsage, len(args), args)
	case strings.TrimSpace(args[0]) == "":
		return fmt.Errorf("%w: the argument ID|EMAIL is empty", errUsage)
	}
	return nil
}

// openExisting opens the store of an existing deployment, creating
// nothing.
func (e *cliEnv) openExisting(cmd *cobra.Command, f *configFlags) (latch.Store, error) {
	cfg, err := f.load(cmd, e.environ)
	if err != nil {
		return nil, err
	}
	return instance.OpenExisting(cmd.Context(), cfg)
}

// openInstance loads the configuration of f and opens the instance (not
// serving: a command beside a running server); close it when done.
func (e *cliEnv) openInstance(cmd *cobra.Command, f *configFlags) (*instance.Instance, error) {
	cfg, err := f.load(cmd, e.environ)
	if err != nil {
		return nil, err
	}
	return instance.Open(cmd.Context(), cfg, instance.Options{Log: newLogger(e.stderr, cfg)})
}

// withAccounts opens an existing deployment's instance (not serving),
// looks up the user ref names and runs fn.
func (e *cliEnv) withAccounts(cmd *cobra.Command, f *configFlags, ref string, fn func(context.Context, *instance.Instance, *latch.User) error) error {
	cfg, err := f.load(cmd, e.environ)
	if err != nil {
		return err
	}
	if err := instance.CheckExisting(cfg); err != nil {
		return err
	}
	in, err := instance.Open(cmd.Context(), cfg, instance.Options{Log: newLogger(e.stderr, cfg)})
	if err != nil {
		return err
	}
	defer in.Close()
	u, err := lookupUser(cmd.Context(), in.Store, ref)
	if err != nil {
		return err
	}
	if err := fn(cmd.Context(), in, u); errors.Is(err, account.ErrNotFound) {
		return fmt.Errorf("ID|EMAIL %q: no such user", ref)
	} else if err != nil {
		return err
	}
	return nil
}

// lookupUser finds the user ref names: an email if it contains "@"
// (canonicalised as at sign-in), an id otherwise.
func lookupUser(ctx context.Context, st latch.UserStore, ref string) (*latch.User, error) {
	var (
		u   *latch.User
		err error
	)
	if strings.Contains(ref, "@") {
		u, err = st.UserByEmail(ctx, auth.NormalizeEmail(ref))
	} else {
		u, err = st.UserByID(ctx, ref)
	}
	if errors.Is(err, latch.ErrNotFound) {
		return nil, fmt.Errorf("ID|EMAIL %q: no such user", ref)
	}
	return u, err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func lockState(u *latch.User) string {
	if !u.Locked() {
		return "no"
	}
	return "yes (" + u.LockReason + ")"
}

func date(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
