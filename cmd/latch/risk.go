package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/risk"
)

// decisionEvents are the event types that record a risk decision.
var decisionEvents = []string{latch.EventRiskDenied, latch.EventRiskRevoked, latch.EventRiskNotified, latch.EventRiskChallenged,
	latch.EventNewDeviceSignIn, latch.EventLoginSucceeded}

// riskCmd is latch risk export and replay.
func (e *cliEnv) riskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "risk", Short: "Export recorded risk decisions and replay them with other weights", Args: cobra.NoArgs}
	var (
		exportF, replayF configFlags
		since, out       string
		types            []string
		events, format   string
	)
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the recorded risk decisions (sign-ins allowed, alerted, challenged or denied; refreshes flagged) as JSON lines",
		Long: `Write the security events that record risk decisions, with the signals they
were made from, as one JSON object a line: the input of "latch risk replay".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := config.ParseDuration(since)
			if err != nil || d <= 0 {
				return fmt.Errorf("%w: --since %q must be a duration such as 24h or 30d", errUsage, since)
			}
			if out == "" {
				return fmt.Errorf("%w: --out FILE is required (- for standard output)", errUsage)
			}
			st, err := e.openExisting(cmd, &exportF)
			if err != nil {
				return err
			}
			defer st.Close()
			w := e.stdout
			var f *os.File
			if out != "-" {
				if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriter(w)
			enc := json.NewEncoder(bw)
			q := latch.EventQuery{Types: types, Since: time.Now().Add(-d.D()), Limit: 1000}
			n := 0
			for {
				page, err := st.Events(cmd.Context(), q)
				if err != nil {
					return err
				}
				for _, ev := range page {
					if err := enc.Encode(ev); err != nil {
						return fmt.Errorf("--out: %w", err)
					}
				}
				n += len(page)
				if len(page) < q.Limit {
					break
				}
				q.AfterID = page[len(page)-1].ID
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			if f != nil {
				if err := f.Close(); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				fmt.Fprintf(e.stderr, "exported %d events since %s to %s\n", n, q.Since.UTC().Format(time.RFC3339), out)
			}
			return nil
		},
	}
	exportF.register(export.Flags(), false)
	export.Flags().StringVar(&since, "since", "720h", "export the events of this long ago until now (24h, 30d)")
	export.Flags().StringVar(&out, "out", "", "file to write (- for standard output)")
	export.Flags().StringSliceVar(&types, "types", decisionEvents, "event types to export")

	replay := &cobra.Command{
		Use:   "replay",
		Short: "Score a recorded event log again with the configured weights and levels",
		Long: `Read an event log (latch risk export), score the signals each event recorded
with the risk.* settings of the configuration (--config), and show what would
change: per action the count before and after, and every event whose action
changed, with its new reasons.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if events == "" {
				return fmt.Errorf("%w: --events FILE is required", errUsage)
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("%w: --format %q must be table or json", errUsage, format)
			}
			cfg, err := replayF.load(cmd, e.environ)
			if err != nil {
				return err
			}
			engine, err := risk.New(cfg.Risk)
			if err != nil {
				return err
			}
			var in io.Reader = e.stdin
			if events != "-" {
				f, err := os.Open(events)
				if err != nil {
					return fmt.Errorf("--events: %w", err)
				}
				defer f.Close()
				in = f
			}
			rep, err := replayLog(in, engine)
			if err != nil {
				return fmt.Errorf("--events %s: %w", events, err)
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.table(e.stdout)
		},
	}
	// Replay reads no data directory: only the configuration's risk.*.
	replay.Flags().StringVar(&replayF.path, "config", "", "YAML configuration file whose risk.* settings score the log (or LATCH_CONFIG; default: the defaults)")
	replay.Flags().StringVar(&events, "events", "", "event log to replay, JSON lines as latch risk export writes them (- for standard input)")
	replay.Flags().StringVar(&format, "format", "table", "table or json")
	cmd.AddCommand(export, replay)
	return cmd
}

// replayReport is what a replay found.
type replayReport struct {
	// Events counts the events scored again; Skipped those that record
	// no signals.
	Events  int `json:"events"`
	Skipped int `json:"skipped"`
	// Before and After count the events per action.
	Before  map[risk.Action]int `json:"before"`
	After   map[risk.Action]int `json:"after"`
	Changed []replayChange      `json:"changed"`
}

// replayChange is an event whose action changed.
type replayChange struct {
	ID          int64         `json:"id"`
	At          time.Time     `json:"at"`
	Type        string        `json:"type"`
	UserID      string        `json:"user_id,omitempty"`
	Kind        string        `json:"kind"`
	Before      risk.Action   `json:"before"`
	After       risk.Action   `json:"after"`
	ScoreBefore int           `json:"score_before"`
	ScoreAfter  int           `json:"score_after"`
	Reasons     []risk.Reason `json:"reasons"`
}

// replayLog scores every event of the JSON lines in r with engine.
func replayLog(r io.Reader, engine *risk.Engine) (*replayReport, error) {
	rep := &replayReport{Before: map[risk.Action]int{}, After: map[risk.Action]int{}, Changed: []replayChange{}}
	dec := json.NewDecoder(bufio.NewReader(r))
	for n := 1; ; n++ {
		var ev latch.Event
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("event %d: %w", n, err)
		}
		s, before, err := risk.ParseEventDetail(ev.Detail)
		if errors.Is(err, risk.ErrNoSignals) {
			rep.Skipped++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("event %d (id %d): %w", n, ev.ID, err)
		}
		after := engine.Evaluate(s)
		rep.Events++
		rep.Before[before.Action]++
		rep.After[after.Action]++
		if after.Action != before.Action {
			reasons := after.Reasons
			if reasons == nil {
				reasons = []risk.Reason{}
			}
			rep.Changed = append(rep.Changed, replayChange{ID: ev.ID, At: ev.At, Type: ev.Type, UserID: ev.UserID, Kind: s.Kind,
				Before: before.Action, After: after.Action, ScoreBefore: before.Score, ScoreAfter: after.Score, Reasons: reasons})
		}
	}
	return rep, nil
}

// table prints the report for people.
func (rep *replayReport) table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%d events scored again, %d without signals skipped\n\n", rep.Events, rep.Skipped)
	fmt.Fprintln(tw, "ACTION\tBEFORE\tAFTER")
	actions := []risk.Action{risk.Allow, risk.Notify, risk.Challenge, risk.Deny, risk.Revoke}
	for a := range rep.Before {
		if !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	for _, a := range actions {
		if rep.Before[a] != 0 || rep.After[a] != 0 {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", a, rep.Before[a], rep.After[a])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d changed\n", len(rep.Changed))
	if len(rep.Changed) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tTYPE\tUSER\tKIND\tBEFORE → AFTER\tSCORE\tREASONS")
	for _, c := range rep.Changed {
		var reasons []string
		for _, r := range c.Reasons {
			s := fmt.Sprintf("%s(%d)", r.Code, r.Weight)
			if r.Detail != "" {
				s += " " + r.Detail
			}
			reasons = append(reasons, s)
		}
		rs := strings.Join(reasons, ", ")
		if rs == "" {
			rs = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s → %s\t%d → %d\t%s\n", c.ID, c.At.UTC().Format(time.RFC3339), c.Type, c.UserID, c.Kind,
			c.Before, c.After, c.ScoreBefore, c.ScoreAfter, rs)
	}
	return tw.Flush()
}
