package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchauth/latch"
)

// SearchUsers returns a page of users matching q, by ascending Email; see
// latch.ConsoleStore. An email prefix is a range of the UNIQUE index on
// email (the least and the first string above every string with that
// prefix), not a LIKE pattern: % _ and \ in the search are plain
// characters, and the range is read in order, a page at a time. A search
// that is not valid UTF-8 or holds NUL matches nothing stored.
func (s *Store) SearchUsers(ctx context.Context, q latch.UserQuery) ([]latch.User, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	search := strings.TrimSpace(q.Search)
	if !searchable(search) || !searchable(q.After) {
		return nil, nil
	}
	query, args := userSearch(search, q.After, q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search users: %w", err)
	}
	defer rows.Close()
	var list []latch.User
	for rows.Next() {
		var u latch.User
		if err := rows.Scan(userFields(&u)...); err != nil {
			return nil, fmt.Errorf("sqlite: search users: %w", err)
		}
		list = append(list, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search users: %w", err)
	}
	if search == "" {
		return list, nil
	}
	u, err := s.user(ctx, "id", search)
	if errors.Is(err, latch.ErrNotFound) {
		return list, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: search users: by id: %w", err)
	}
	return withUser(list, *u, q.After, q.Limit), nil
}

// userSearch returns SearchUsers' statement and its arguments: a range of
// emails, from the prefix (the search lower-cased) or the cursor after,
// whichever is higher, to the end of the prefix.
func userSearch(search, after string, limit int) (string, []any) {
	prefix := strings.ToLower(search)
	where, args := "email > ?", []any{after}
	if prefix > after {
		where, args = "email >= ?", []any{prefix}
	}
	if end, ok := prefixEnd(prefix); ok {
		where += " AND email < ?"
		args = append(args, end)
	}
	return "SELECT " + userColumns + " FROM users WHERE " + where + " ORDER BY email LIMIT ?", append(args, limit)
}

// withUser adds u, found by its ID, to the page list of at most limit
// users after the cursor, unless it is there already or falls outside.
func withUser(list []latch.User, u latch.User, after string, limit int) []latch.User {
	if u.Email <= after || slices.ContainsFunc(list, func(v latch.User) bool { return v.ID == u.ID }) {
		return list
	}
	list = append(list, u)
	slices.SortFunc(list, func(a, b latch.User) int { return strings.Compare(a.Email, b.Email) })
	return list[:min(len(list), limit)]
}

// searchable reports whether s can equal or start a stored value: valid
// UTF-8 without NUL.
func searchable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// prefixEnd returns the least string above every string that starts with
// p, in byte order (which is code point order in UTF-8): p with its last
// code point that can be incremented incremented, and what follows
// removed. It returns false if there is none (p is empty or all U+10FFFF).
func prefixEnd(p string) (string, bool) {
	rs := []rune(p)
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i] + 1
		if r == 0xD800 { // surrogates are no code points of UTF-8
			r = 0xE000
		}
		if r <= unicode.MaxRune {
			rs[i] = r
			return string(rs[:i+1]), true
		}
	}
	return "", false
}

// CountUsers returns how many users exist.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count users: %w", err)
	}
	return n, nil
}

// FilterEvents returns a page of events matching f, newest (highest ID)
// first; see latch.ConsoleStore. Each type is read as a range of the index
// (type, id) in id order (a type filter alone) and the pages merged, so
// that no sort of all the matching events is ever needed; a user or an
// address likewise reads (user_id, id) or (ip, id).
func (s *Store) FilterEvents(ctx context.Context, f latch.EventFilter) ([]latch.Event, error) {
	stmts := eventFilter(f)
	var list []latch.Event
	for _, st := range stmts {
		page, err := s.events(ctx, st.query, st.args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: filter events: %w", err)
		}
		list = append(list, page...)
	}
	if len(stmts) > 1 {
		slices.SortFunc(list, func(a, b latch.Event) int { return -cmpInt(a.ID, b.ID) })
		list = list[:min(len(list), f.Limit)]
	}
	return list, nil
}

// stmt is a statement and its arguments.
type stmt struct {
	query string
	args  []any
}

// eventFilter returns FilterEvents' statements for f: one per type (or
// one for every type), each a page of at most f.Limit events. None if the
// limit or a filter leaves no events.
func eventFilter(f latch.EventFilter) []stmt {
	if f.Limit <= 0 || !searchable(f.UserID) || !searchable(f.IP) {
		return nil
	}
	before := f.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	where, args := []string{"id < ?"}, []any{before}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.IP != "" {
		where, args = append(where, "ip = ?"), append(args, f.IP)
	}
	if !f.From.IsZero() {
		where, args = append(where, "at >= ?"), append(args, micros(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "at < ?"), append(args, micros(f.To))
	}
	// With a start and neither user nor address, the window of (at, type)
	// bounds what is read (and sorted): in id order, the events before the
	// window would be read to the very first before a short page ends.
	from := "events"
	if !f.From.IsZero() && f.UserID == "" && f.IP == "" {
		from = "events INDEXED BY events_at_type"
	}
	if len(f.Types) == 0 {
		return []stmt{{eventFilterQuery(from, where), append(args, f.Limit)}}
	}
	var stmts []stmt
	for _, typ := range distinct(f.Types) {
		if searchable(typ) {
			w, a := append(slices.Clip(where), "type = ?"), append(slices.Clip(args), typ, f.Limit)
			stmts = append(stmts, stmt{eventFilterQuery(from, w), a})
		}
	}
	return stmts
}

// eventFilterQuery is FilterEvents' statement for one type (or none)
// from the table (with its index) with the conditions where, the limit its
// last parameter.
func eventFilterQuery(from string, where []string) string {
	return "SELECT " + eventColumns + " FROM " + from + " WHERE " + strings.Join(where, " AND ") + " ORDER BY id DESC LIMIT ?"
}

// events runs query, which selects eventColumns.
func (s *Store) events(ctx context.Context, query string, args ...any) ([]latch.Event, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []latch.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, e)
	}
	return list, rows.Err()
}

// distinct returns the strings of list without repeats, in their order.
func distinct(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// zeroMicros is the zero time.Time in microseconds before the Unix epoch:
// buckets are counted from it, as time.Time.Truncate does.
const zeroMicros = 62135596800 * 1000000

// CountEvents counts the events of the types (every type if types is
// empty) at or after since, per type and per bucket, by bucket then type;
// see latch.ConsoleStore. It reads the index (at, type) alone, from
// since on (INDEXED BY: SQLite, without statistics, would rather read all
// the events of the type). The bucket
// must be at least a microsecond.
func (s *Store) CountEvents(ctx context.Context, types []string, since time.Time, bucket time.Duration) ([]latch.Count, error) {
	b := bucket.Microseconds()
	if b <= 0 {
		return nil, fmt.Errorf("sqlite: count events: bucket %v is not a positive number of microseconds", bucket)
	}
	query, args := countEventsQuery(len(types)), []any{b, b, micros(since)}
	for _, t := range types {
		args = append(args, t)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count events: %w", err)
	}
	defer rows.Close()
	var list []latch.Count
	for rows.Next() {
		var c latch.Count
		var at int64
		if err := rows.Scan(&c.Type, &at, &c.N); err != nil {
			return nil, fmt.Errorf("sqlite: count events: %w", err)
		}
		c.Bucket = time.UnixMicro(at).UTC()
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: count events: %w", err)
	}
	return list, nil
}

// countEventsQuery is CountEvents' statement for n types (0: every type);
// its parameters are the bucket twice, since, and the types.
func countEventsQuery(n int) string {
	where := "at >= ?"
	if n > 0 {
		where += " AND type IN (?" + strings.Repeat(", ?", n-1) + ")"
	}
	return `SELECT type, (at + ` + fmt.Sprint(zeroMicros) + `) / ? * ? - ` + fmt.Sprint(zeroMicros) + ` AS bucket, count(*)
		FROM events INDEXED BY events_at_type WHERE ` + where + ` GROUP BY bucket, type ORDER BY bucket, type`
}

// countLiveSessions counts the sessions not revoked and not expired at
// its parameter, from the partial index sessions_live alone.
const countLiveSessions = "SELECT count(*) FROM sessions WHERE revoked_at = 0 AND expires_at > ?"

// CountLiveSessions returns how many sessions are neither revoked nor
// expired at now.
func (s *Store) CountLiveSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, countLiveSessions, micros(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count live sessions: %w", err)
	}
	return n, nil
}
