package risk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Keys of a decision event's Detail (EventDetail). The JSON under
// DetailSignals is what a replay scores again.
const (
	DetailKind     = "kind"
	DetailAction   = "action"
	DetailScore    = "score"
	DetailReasons  = "reasons"  // the reason codes, comma-separated, for people
	DetailDecision = "decision" // the Decision as JSON
	DetailSignals  = "signals"  // the Signals as JSON
)

// EventDetail is the Detail of the security event that records d, made
// from s: one wire format for the sign-in and refresh guards that write
// it and the replay that reads it.
func EventDetail(s Signals, d Decision) map[string]string {
	sig, _ := json.Marshal(s) // plain fields: cannot fail
	dec, _ := json.Marshal(d)
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	return map[string]string{
		DetailKind:     s.Kind,
		DetailAction:   string(d.Action),
		DetailScore:    strconv.Itoa(d.Score),
		DetailReasons:  strings.Join(codes, ","),
		DetailDecision: string(dec),
		DetailSignals:  string(sig),
	}
}

// ErrNoSignals: an event's Detail carries no signals (it does not record
// a risk decision).
var ErrNoSignals = errors.New("risk: the event records no signals")

// ParseEventDetail reads back what EventDetail wrote: the signals, and
// the decision made then (its Action only, when the decision JSON is
// missing).
func ParseEventDetail(detail map[string]string) (Signals, Decision, error) {
	var s Signals
	var d Decision
	raw, ok := detail[DetailSignals]
	if !ok || raw == "" {
		return s, d, ErrNoSignals
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return s, d, fmt.Errorf("risk: signals of the event: %w", err)
	}
	if raw := detail[DetailDecision]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return s, d, fmt.Errorf("risk: decision of the event: %w", err)
		}
	} else {
		d.Action = Action(detail[DetailAction])
		d.Score, _ = strconv.Atoi(detail[DetailScore])
	}
	if s.Kind != KindSignIn && s.Kind != KindRefresh {
		return s, d, fmt.Errorf("risk: signals of kind %q, want %s or %s", s.Kind, KindSignIn, KindRefresh)
	}
	return s, d, nil
}
