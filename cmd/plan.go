package cmd

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii/agent"
)

func newPlanCmd(g *globals) *cobra.Command {
	var cfgPath, format string
	c := &cobra.Command{
		Use:   "plan [WORKFLOW…] --config FILE",
		Short: "Show what the next run would do, without writing anything",
		Long: `Plan is a dry run: per table the mode the next run would use and why (first
run, delta from cursor X, full copy because the schema changed and how), the
redacted columns, new columns that look like PII and have no rule, and
warnings (a delta cursor column without an index). It reads the source and
the feeds' state and writes nothing. Exit status 1 when a table would fail.`,
		Example: "  nopii plan --config nopii.yaml\n  nopii plan ml-experimentation --config nopii.yaml --format json",
		RunE: func(c *cobra.Command, args []string) error {
			cfg, wfs, log, err := g.setup(cfgPath, format, args)
			if err != nil {
				return err
			}
			type wfPlan struct {
				Workflow string            `json:"workflow"`
				Tables   []agent.TablePlan `json:"tables"`
			}
			var all []wfPlan
			failed := false
			for _, wf := range wfs {
				plans, err := newRunner(log, nil).Plan(c.Context(), cfg, wf)
				if err != nil {
					return fmt.Errorf("plan %s: %w", wf.Name, err)
				}
				for _, p := range plans {
					failed = failed || p.Error != ""
				}
				all = append(all, wfPlan{wf.Name, plans})
				if format == "text" {
					printPlan(g, wf.Name, plans)
				}
			}
			return finish(g, format, all, failed, func(all []wfPlan) any {
				return struct {
					Workflows []wfPlan `json:"workflows"`
				}{all}
			})
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return c
}

func printPlan(g *globals, wf string, plans []agent.TablePlan) {
	fmt.Fprintf(g.stdout, "workflow %s\n", wf)
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INPUT\tTABLE\tMODE\tWHY\tREDACTED")
	for _, p := range plans {
		mode, why := p.Mode, p.Reason
		if p.Error != "" {
			mode, why = "FAIL", "see below"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Input, p.Table, mode, why, strings.Join(p.Redacted, ","))
	}
	tw.Flush()
	for _, p := range plans {
		for _, u := range p.Unclassified {
			fmt.Fprintf(g.stdout, "unclassified PII in %s %s: %s\n", p.Input, p.Table, u)
		}
		if len(p.Unruled) > 0 {
			fmt.Fprintf(g.stdout, "columns without a rule in %s %s:\n", p.Input, p.Table)
			for _, u := range p.Unruled {
				fmt.Fprintf(g.stdout, "  %s (%s): %s\n", u.Column, u.Type, u.Guard)
			}
		}
		if s := p.Subset; s != nil {
			fmt.Fprintf(g.stdout, "subset of %s %s: %d of about %d rows, brought by:\n", p.Input, p.Table, s.Rows, max(s.TableRows, s.Rows))
			for _, v := range s.Via {
				fmt.Fprintf(g.stdout, "  %s\n", v)
			}
		}
		for _, w := range p.Warnings {
			fmt.Fprintf(g.stdout, "warning: %s %s: %s\n", p.Input, p.Table, w)
		}
		for _, s := range p.Schema {
			fmt.Fprintf(g.stdout, "schema: %s %s: %s\n", p.Input, p.Table, s)
		}
		if p.Error != "" {
			fmt.Fprintf(g.stdout, "error: %s %s: %s\n", p.Input, p.Table, p.Error)
		}
	}
}
