package cmd

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/internal/human"
)

func newRunCmd(g *globals) *cobra.Command {
	var cfgPath, format string
	c := &cobra.Command{
		Use:   "run [WORKFLOW…] --config FILE",
		Short: "Run workflows now and print a report",
		Long: `Run copies every table of the named workflows (all of them when none is named)
from their inputs into their feeds, redacting as configured. Each input is read
in one consistent snapshot; each table is swapped into the twin atomically, so a
failed or interrupted run leaves the previous copy in place.

A progress bar per table shows on a terminal (plain lines otherwise), and a
report follows: rows, bytes, seconds and rows/s per table. The exit status is 1
when any table failed.`,
		Example: "  nopii run --config nopii.yaml\n  nopii run ml-experimentation --config nopii.yaml --format json",
		RunE: func(c *cobra.Command, args []string) error {
			cfg, wfs, log, err := g.setup(cfgPath, format, args)
			if err != nil {
				return err
			}
			tty := isTerminal(g.stderr)
			failed := false
			var reports []*agent.Report
			for _, wf := range wfs {
				bars := newProgressBars(g.stderr, tty, log)
				rep := newRunner(log, bars).Run(c.Context(), cfg, wf)
				bars.Stop()
				reports = append(reports, rep)
				failed = failed || rep.Failed()
				if format == "text" {
					printReport(g.stdout, rep)
				}
				if c.Context().Err() != nil {
					break
				}
			}
			return finish(g, format, reports, failed, func(reports []*agent.Report) any {
				status := agent.StatusSuccess
				if failed {
					status = agent.StatusFailed
				}
				return struct {
					Status    agent.Status    `json:"status"`
					Workflows []*agent.Report `json:"workflows"`
				}{status, reports}
			})
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().StringVar(&format, "format", "text", "report format: text or json")
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
		if t.Mode == agent.ModeDelta {
			up, del = fmt.Sprint(t.Upserted), fmt.Sprint(t.Deleted)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.2f\t%.0f\t%s\t%s\n", t.Input, t.Table, t.Target, t.Mode, t.Rows, up, del,
			human.Bytes(t.Bytes), t.Seconds, t.RowsPerSec, strings.Join(t.Redacted, ","), status)
	}
	tw.Flush()
	for _, t := range r.Tables {
		if t.Error == "" && (t.DriftForced || t.Mode == agent.ModeDelta) {
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
		if t.Error != "" {
			// A table's problems, one per line (describe reports them all).
			fmt.Fprintf(w, "%s %s: %s\n", t.Input, t.Table, strings.ReplaceAll(t.Error, "\n", "\n  "))
		}
	}
}
