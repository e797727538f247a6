package cmd

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/internal/human"
)

// exitLocked is the exit status of a run that another run of its workflow
// kept out (SPEC §5).
const exitLocked = 3

func newRunCmd(g *globals) *cobra.Command {
	var cfgPath, format string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "run [WORKFLOW…] --config FILE",
		Short: "Run workflows now and print a report",
		Long: `Run copies every table of the named workflows (all of them when none is named)
from their inputs into their feeds, redacting as configured. Each input is read
in one consistent snapshot; each table is swapped into the twin atomically, so a
failed or interrupted run leaves the previous copy in place.

A progress bar per table shows on a terminal (plain lines otherwise), and a
report follows: rows, bytes, seconds and rows/s per table. The exit status is 1
when any table failed, and 3 when a workflow did not run because another run
of it (an agent's, another nopii run) held its feeds' run lock for longer than
--wait (default: the workflow's lock_wait, itself 0: do not wait).`,
		Example: "  nopii run --config nopii.yaml\n  nopii run ml-experimentation --config nopii.yaml --format json",
		RunE: func(c *cobra.Command, args []string) error {
			cfg, wfs, log, err := g.setup(cfgPath, format, args)
			if err != nil {
				return err
			}
			tty := isTerminal(g.stderr)
			failed, otherFailure := false, false
			var locked []*nopii.LockedError
			var reports []*agent.Report
			for _, wf := range wfs {
				bars := newProgressBars(g.stderr, tty, log.With(agent.LogKeyWorkflow, wf.Name))
				runner := newRunner(log, bars)
				runner.LockWait = wait
				var held *nopii.LockedError
				runner.Locked = func(err *nopii.LockedError) { held = err }
				rep := runner.Run(c.Context(), cfg, wf)
				bars.Stop()
				reports = append(reports, rep)
				failed = failed || rep.Failed()
				if held != nil {
					locked = append(locked, held)
				} else {
					otherFailure = otherFailure || rep.Failed()
				}
				if format == "text" {
					printReport(g.stdout, rep)
				}
				if c.Context().Err() != nil {
					break
				}
			}
			err = finish(g, format, reports, failed, func(reports []*agent.Report) any {
				status := agent.StatusSuccess
				if failed {
					status = agent.StatusFailed
				}
				return struct {
					Status    agent.Status    `json:"status"`
					Workflows []*agent.Report `json:"workflows"`
				}{status, reports}
			})
			if len(locked) > 0 && !otherFailure && err != nil {
				for _, l := range locked {
					fmt.Fprintf(g.stderr, "Error: %v\n", l)
				}
				fmt.Fprintln(g.stderr, "Hint: wait for that run to end, or run with --wait 10m (or give the workflow a lock_wait) to wait for it")
				return exitError{exitLocked}
			}
			return err
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().StringVar(&format, "format", "text", "report format: text or json")
	c.Flags().DurationVar(&wait, "wait", 0, "how long to wait for another run of a workflow that holds its feeds (default: the workflow's lock_wait, 0 if unset)")
	return c
}

// printReport writes the human report of one run.
func printReport(w io.Writer, r *agent.Report) {
	rows, bytes := r.Totals()
	fmt.Fprintf(w, "\nworkflow %s: %s in %.1fs — %s, %s, %s\n", r.Workflow, r.Status, r.Seconds, human.Count(len(r.Tables), "table"), human.Count(int(rows), "row"), human.Bytes(bytes))
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	if len(r.Tables) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INPUT\tTABLE\tTARGET\tMODE\tROWS\tUPSERTED\tDELETED\tBYTES\tSECONDS\tROWS/S\tREDACTED\tSTATUS")
	for _, t := range r.Tables {
		status := "ok"
		if t.Error != "" {
			status = "FAILED"
		}
		up, del := "-", "-"
		if t.Mode == agent.ModeDelta || t.Mode == agent.ModeCDC {
			up, del = fmt.Sprint(t.Upserted), fmt.Sprint(t.Deleted)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.2f\t%.0f\t%s\t%s\n", t.Input, t.Table, t.Target, t.Mode, t.Rows, up, del,
			human.Bytes(t.Bytes), t.Seconds, t.RowsPerSec, strings.Join(t.Redacted, ","), status)
	}
	tw.Flush()
	for _, t := range r.Tables {
		switch {
		case t.Error == "" && t.Mode == agent.ModeCDC:
			// What the run did: a first copy (and why), the changes streamed.
			fmt.Fprintf(w, "%s %s: %s\n", t.Input, t.Table, strings.TrimPrefix(joinNonEmpty("; ", t.Reason, t.Note), "cdc: "))
		case t.Error == "" && (t.DriftForced || t.Mode == agent.ModeDelta):
			fmt.Fprintf(w, "%s %s: %s\n", t.Input, t.Table, t.Reason)
		}
		if t.Forgotten > 0 {
			// ROWS counts what the source gave; say why the feeds hold fewer.
			fmt.Fprintf(w, "%s %s: %d of the %s read left out of the feeds: their keys are on the suppression list (nopii subject forget)\n",
				t.Input, t.Table, t.Forgotten, human.Count(int(t.Rows), "row"))
		}
		for _, warn := range t.Warnings {
			fmt.Fprintf(w, "warning: %s %s: %s\n", t.Input, t.Table, warn)
		}
		for _, s := range t.Schema {
			// What the faithful twin left out of the source's schema, and why.
			fmt.Fprintf(w, "schema: %s %s: %s\n", t.Input, t.Table, s)
		}
		if t.Error != "" {
			// A table's problems, one per line (describe reports them all).
			fmt.Fprintf(w, "%s %s: %s\n", t.Input, t.Table, strings.ReplaceAll(t.Error, "\n", "\n  "))
		}
	}
}

// joinNonEmpty joins the parts that are not empty.
func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), sep)
}
