package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/email"
)

// EmailReport is what CanonicalizeEmails did.
type EmailReport struct {
	// Rewritten are the ids of users whose email now has its canonical
	// form.
	Rewritten []string
	// Collisions are groups of user ids whose emails are one identifier:
	// each group was left exactly as it was.
	Collisions [][]string
	// Invalid are the ids of users whose stored email the rules refuse;
	// they were left as they were and cannot sign in until changed.
	Invalid []string
}

// emailPage is how many users CanonicalizeEmails reads at a time; tests
// make it small to cross pages.
var emailPage = 500

// CanonicalizeEmails brings the emails stored before package email's rules
// to their canonical form, so that every spelling of an address signs in
// to the account it names. A user whose email is not canonical is
// rewritten only when no other user's email is the same identifier; when
// two or more are, all of them are left untouched and reported, for the
// operator to resolve, as are emails the rules refuse. Nothing is deleted,
// and each rewrite is a compare-and-set, so instances starting together
// and users signing up meanwhile are safe. Warnings name user ids, never
// addresses. It reads every user once; only users to rewrite stay in
// memory.
func CanonicalizeEmails(ctx context.Context, users latch.UserStore, log *slog.Logger, now time.Time) (EmailReport, error) {
	var rep EmailReport
	pending := map[string][]*latch.User{} // canonical email → users not in that form
	for after := ""; ; {
		page, err := users.Users(ctx, after, emailPage)
		if err != nil {
			return rep, fmt.Errorf("canonical emails: %w", err)
		}
		for _, u := range page {
			c, err := email.Normalize(u.Email)
			var bad *email.Error
			switch {
			case errors.As(err, &bad):
				rep.Invalid = append(rep.Invalid, u.ID)
				log.Warn("stored email is refused by the identifier rules; the user cannot sign in until it is changed",
					"user_id", u.ID, "reason", bad.Kind.Error())
			case err != nil:
				return rep, fmt.Errorf("canonical emails: user %s: %w", u.ID, err)
			case c != u.Email:
				pending[c] = append(pending[c], u)
			}
		}
		if len(page) < emailPage {
			break
		}
		after = page[len(page)-1].ID
	}
	for _, c := range slices.Sorted(maps.Keys(pending)) {
		group := pending[c]
		if len(group) == 1 {
			// The store refuses an email another user has; the
			// compare-and-set skips a row changed since it was read
			// (by another instance, say): a later start looks again.
			u := group[0]
			err := users.SetEmail(ctx, u.ID, u.Email, c, now)
			switch {
			case err == nil:
				rep.Rewritten = append(rep.Rewritten, u.ID)
				log.Info("stored email rewritten to its canonical form", "user_id", u.ID)
				continue
			case errors.Is(err, latch.ErrNotFound):
				continue
			case !errors.Is(err, latch.ErrConflict):
				return rep, fmt.Errorf("canonical emails: %w", err)
			}
			if owner, err := users.UserByEmail(ctx, c); err == nil {
				group = append(group, owner)
			}
		}
		ids := make([]string, len(group))
		for i, u := range group {
			ids[i] = u.ID
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		rep.Collisions = append(rep.Collisions, ids)
		log.Warn("several accounts have one email under the identifier rules; left as they are, for an operator to resolve",
			"user_ids", ids)
	}
	return rep, nil
}
