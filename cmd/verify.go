package cmd

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var cfgPath, format string
	c := &cobra.Command{
		Use:   "verify [WORKFLOW…] --config FILE",
		Short: "Prove that no source value of a redacted column reached a feed",
		Long: `Verify is the leak check. For every redacted column of the workflows it streams
the source's values into a set of keyed hashes (under a key made for this check
alone) and streams every feed's values through it — twin tables, and the
Parquet, CSV or JSONL objects of S3 and files feeds (the latest snapshot and
the deltas after it); for a json rule, the scalars at each redacted path:

  redact_email, hash, mask, random_string: no source value of the column may
  appear anywhere in the feed's column;
  fake, shift_date, noise (outputs within the value's own domain, where another
  row's real value may come up): no row may keep its own value.

Columns copied without a rule are judged by the scanner on the values each
feed holds (check "unruled"): one that looks like personal data is a leak, and
the line names the rule to add.
It reports counts and the source_primary_key of the first offending rows,
never a value. The exit status is 1 on any leak. What cannot be read back
(array columns of Parquet parts, a table not loaded yet) says "skipped".`,
		Example: "  nopii verify --config nopii.yaml",
		RunE: func(c *cobra.Command, args []string) error {
			cfg, wfs, log, err := g.setup(cfgPath, format, args)
			if err != nil {
				return err
			}
			var all []agent.VerifyResult
			leaks := int64(0)
			for _, wf := range wfs {
				res, err := newRunner(log, nil).Verify(c.Context(), cfg, wf)
				if err != nil {
					return fmt.Errorf("verify %s: %w", wf.Name, err)
				}
				for _, r := range res {
					leaks += r.Leaks
				}
				all = append(all, res...)
			}
			if format == "json" {
				if all == nil {
					all = []agent.VerifyResult{}
				}
				if err := writeJSON(g.stdout, all); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "INPUT\tTABLE\tCOLUMN\tRULE\tFEED\tCHECK\tSOURCE\tFEED VALUES\tLEAKS\tFIRST KEYS")
				for _, r := range all {
					check := r.Check
					if r.Skipped != "" {
						check = "skipped: " + r.Skipped
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.Input, r.Table, r.Column+r.Path, r.Rule, r.Feed, check,
						r.Source, r.Checked, r.Leaks, strings.Join(r.LeakKeys, " "))
				}
				tw.Flush()
				for _, r := range all {
					if r.Feed != config.FeedTwin && r.Check != "unruled" && r.Checked > r.Source {
						fmt.Fprintln(g.stdout, "FEED VALUES of an s3 or files feed count every version of a row the lake holds, all checked: its snapshot's and each delta's since, and a delta holds the rows that changed and those its cursor's overlap read again")
						break
					}
				}
				unruled := int64(0)
				for _, r := range all {
					if r.Check == "unruled" {
						unruled++
						fmt.Fprintf(g.stdout, "LEAK: %s %s.%s was copied without a rule into the %s feed and looks like %s: add %s: %s\n",
							r.Input, r.Table, r.Column, r.Feed, r.Kind, r.Column, r.AddRule)
					}
				}
				if n := leaks - unruled; n > 0 {
					fmt.Fprintf(g.stdout, "LEAK: %d feed values are source values of their redacted column\n", n)
				}
				if leaks == 0 {
					fmt.Fprintln(g.stdout, "no leak: no source value of a redacted column was found in the feeds checked")
				}
			}
			if leaks > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().StringVar(&format, "format", "text", "text or json")
	return c
}
