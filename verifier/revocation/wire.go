package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The wire format of the revocation feed, defined here once: the Latch
// server encodes with these functions and [Remote] decodes with them.
//
// A page (GET /v1/revocations) is a JSON object:
//
//	{"revocations": [entry...], "cursor": 42, "more": false, "age_ms": 0}
//
// The stream (GET /v1/revocations/stream) is Server-Sent Events: each
// entry is an event named [EventRevocation] with the entry's seq as its
// id and the entry as its data; a [Heartbeat] is an event named
// [EventSync]; comments only keep the connection alive and prove nothing.
//
// An entry is a JSON object:
//
//	{"seq": 7, "kind": "sid", "value": "...", "expires_at": "RFC 3339", "cutoff": "RFC 3339"}
//
// with cutoff present for kind "user" only.
//
// Freshness travels as an age, not a timestamp: age_ms says how many
// milliseconds before the response (or the heartbeat) was written the
// source last knew its set to be complete. The follower subtracts it from
// its own clock, so clocks that disagree between machines do not matter;
// a heartbeat also says when, after the stream began, it was written
// (stream_ms), so that its transit time counts against it too (see
// [Heartbeat]).

// Paths of the feed, relative to the server's base URL.
const (
	PagePath   = "/v1/revocations"
	StreamPath = "/v1/revocations/stream"
)

// Event names of the stream.
const (
	// EventRevocation carries one entry.
	EventRevocation = "revocation"
	// EventSync carries a [Heartbeat]: how fresh the source is.
	EventSync = "sync"
)

// maxAge is the largest age the wire carries (about 31 years); a source
// that never synced sends no heartbeat at all.
const maxAge = 1 << 50 * time.Nanosecond

// wireEntry is one entry as the feed sends it.
type wireEntry struct {
	Seq       int64      `json:"seq"`
	Kind      Kind       `json:"kind"`
	Value     string     `json:"value"`
	Cutoff    *time.Time `json:"cutoff,omitempty"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// MarshalEntry encodes e as the feed sends it (times in UTC).
func MarshalEntry(e Entry) ([]byte, error) {
	exp := e.ExpiresAt.UTC()
	w := wireEntry{Seq: e.Seq, Kind: e.Kind, Value: e.Value, ExpiresAt: &exp}
	if e.Kind == User {
		c := e.Cutoff.UTC()
		w.Cutoff = &c
	}
	return json.Marshal(w)
}

// ParseEntry decodes one feed entry. On error the returned entry carries
// the Seq if it could be read (0 otherwise) and nothing else, so that a
// follower can still move its cursor past an entry it cannot use. An
// entry of a kind this version does not know is such an error.
func ParseEntry(data []byte) (Entry, error) {
	var w wireEntry
	if err := json.Unmarshal(data, &w); err != nil {
		var s struct{ Seq int64 }
		_ = json.Unmarshal(data, &s)
		return Entry{Seq: max(s.Seq, 0)}, fmt.Errorf("entry is not valid JSON: %w", err)
	}
	if w.Seq <= 0 {
		return Entry{}, errors.New("entry has no positive seq")
	}
	e := Entry{Seq: w.Seq, Kind: w.Kind, Value: w.Value}
	switch {
	case w.ExpiresAt == nil:
		return Entry{Seq: e.Seq}, errors.New("entry has no expires_at")
	case w.Value == "":
		return Entry{Seq: e.Seq}, errors.New("entry has no value")
	}
	e.ExpiresAt = *w.ExpiresAt
	switch e.Kind {
	case Token, Session, Key:
	case User:
		if w.Cutoff == nil || w.Cutoff.IsZero() {
			return Entry{Seq: e.Seq}, errors.New("user entry has no cutoff")
		}
		e.Cutoff = *w.Cutoff
	default:
		// A kind this version does not know: its seq still counts.
		return Entry{Seq: e.Seq}, fmt.Errorf("entry of unknown kind %.20q", string(w.Kind))
	}
	return e, nil
}

// Page is one page of the feed.
type Page struct {
	// Entries are the entries in the order received. One that could not
	// be read has only its Seq (0 if unreadable); its error is in Errs at
	// the same index.
	Entries []Entry
	Errs    []error
	// Cursor is where the next page starts (the seq of the last entry,
	// or the request's cursor for an empty page).
	Cursor int64
	// More says another page is waiting.
	More bool
	// Age says how long before the page was written its source last
	// knew its data complete. A server that reads its store for each
	// page sends 0 (as do servers before age_ms existed).
	Age time.Duration
}

// pageJSON is a page as the feed sends it.
type pageJSON struct {
	Revocations []json.RawMessage `json:"revocations"`
	Cursor      *int64            `json:"cursor"`
	More        bool              `json:"more"`
	AgeMS       int64             `json:"age_ms"`
}

// MarshalPage encodes a page of entries; cursor is where the next page
// starts and age how old the source's knowledge is (rounded up to the
// millisecond, so that it never looks fresher than it is).
func MarshalPage(entries []Entry, cursor int64, more bool, age time.Duration) ([]byte, error) {
	p := pageJSON{Revocations: make([]json.RawMessage, 0, len(entries)), Cursor: &cursor, More: more, AgeMS: ageMS(age)}
	for _, e := range entries {
		b, err := MarshalEntry(e)
		if err != nil {
			return nil, fmt.Errorf("revocation: encoding entry %d: %w", e.Seq, err)
		}
		p.Revocations = append(p.Revocations, b)
	}
	return json.Marshal(p)
}

// ParsePage decodes a page. Entries that cannot be read are reported in
// Page.Errs and do not fail the page.
func ParsePage(data []byte) (*Page, error) {
	var doc pageJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("page is not valid JSON: %w", err)
	}
	if doc.Cursor == nil || doc.Revocations == nil {
		return nil, errors.New("page lacks revocations or cursor")
	}
	age, err := parseAge(doc.AgeMS)
	if err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	p := &Page{Cursor: *doc.Cursor, More: doc.More, Age: age,
		Entries: make([]Entry, len(doc.Revocations)), Errs: make([]error, len(doc.Revocations))}
	for i, raw := range doc.Revocations {
		p.Entries[i], p.Errs[i] = ParseEntry(raw)
	}
	return p, nil
}

// Heartbeat is the data of an [EventSync] event: every entry up to Cursor
// has been sent on this stream, and the source knew its data complete
// Age before the heartbeat was written, which was Elapsed after the
// stream's response began.
//
// Elapsed (stream_ms on the wire) is what makes a heartbeat's freshness
// independent of its transit: the follower counts the heartbeat as
// written no later than the moment it sent the request plus Elapsed, so a
// proxy that buffers the stream, or a network that delays it, makes the
// follower staler, never fresher. It needs no shared clock, only clocks
// that run at the same rate.
type Heartbeat struct {
	Cursor  int64
	Age     time.Duration
	Elapsed time.Duration
}

type heartbeatJSON struct {
	Cursor   *int64 `json:"cursor"`
	AgeMS    *int64 `json:"age_ms"`
	StreamMS *int64 `json:"stream_ms"`
}

// AppendHeartbeat appends h to b as an [EventSync] event. Age is rounded
// up and Elapsed down to the millisecond, so that the heartbeat never
// looks fresher than it is.
func AppendHeartbeat(b []byte, h Heartbeat) []byte {
	b = append(b, "event: "+EventSync+"\ndata: {\"cursor\":"...)
	b = strconv.AppendInt(b, h.Cursor, 10)
	b = append(b, `,"age_ms":`...)
	b = strconv.AppendInt(b, ageMS(h.Age), 10)
	b = append(b, `,"stream_ms":`...)
	b = strconv.AppendInt(b, int64(min(max(h.Elapsed, 0), maxAge)/time.Millisecond), 10)
	return append(b, "}\n\n"...)
}

// ParseHeartbeat decodes the data of an [EventSync] event.
func ParseHeartbeat(data []byte) (Heartbeat, error) {
	var w heartbeatJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat is not valid JSON: %w", err)
	}
	if w.Cursor == nil || w.AgeMS == nil || w.StreamMS == nil || *w.Cursor < 0 {
		return Heartbeat{}, errors.New("heartbeat lacks cursor, age_ms or stream_ms")
	}
	age, err := parseAge(*w.AgeMS)
	if err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	elapsed, err := parseAge(*w.StreamMS)
	if err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: stream_ms: %w", err)
	}
	return Heartbeat{Cursor: *w.Cursor, Age: age, Elapsed: elapsed}, nil
}

// AppendEvent appends e to b as an [EventRevocation] event whose id is
// its seq.
func AppendEvent(b []byte, e Entry) ([]byte, error) {
	data, err := MarshalEntry(e)
	if err != nil {
		return b, fmt.Errorf("revocation: encoding entry %d: %w", e.Seq, err)
	}
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\nevent: "+EventRevocation+"\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...), nil
}

// ageMS rounds age up to whole milliseconds, clamped to [0, maxAge].
func ageMS(age time.Duration) int64 {
	age = min(max(age, 0), maxAge)
	return int64((age + time.Millisecond - 1) / time.Millisecond)
}

func parseAge(ms int64) (time.Duration, error) {
	if ms < 0 || ms > int64(maxAge/time.Millisecond) {
		return 0, fmt.Errorf("age_ms %d out of range", ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
