package cmd

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/scanner"
	"github.com/nopii/nopii/source/postgres"
)

func newScanCmd(g *globals) *cobra.Command {
	var dsn, cfgPath, format string
	var schemas []string
	var sample int
	c := &cobra.Command{
		Use:   "scan --dsn DSN [--schema S] [--sample N] [--format table|json|yaml]",
		Short: "Find columns that look like personal data",
		Long: `Scan classifies every column of the tables of a database from its name and a
sample of its values (a bounded read per column, never a whole table): emails,
phone numbers, names, SSNs, card numbers (Luhn), IP addresses, addresses, dates
of birth, passwords. Findings carry a kind, a confidence, the evidence (never
the values) and the rule to add.

With --config, columns the workflow file already has a rule for are left out,
so what remains is what the configuration misses. --format yaml prints the
rules to paste into the file.`,
		Example: "  nopii scan --dsn \"$PROD_DATABASE_URL\" --schema public --format yaml\n  nopii scan --dsn \"$PROD_DATABASE_URL\" --config nopii.yaml",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dsn == "" {
				return usageError{errors.New("--dsn is required"), "pass the database to scan, e.g. --dsn \"$PROD_DATABASE_URL\""}
			}
			switch format {
			case "table", "json", "yaml":
			default:
				return usageError{fmt.Errorf("--format %q", format), "use table, json or yaml"}
			}
			opts := scanner.Options{Schemas: schemas, Sample: sample}
			entries := map[string]bool{} // tables the file names explicitly
			if cfgPath != "" {
				cfg, err := loadConfig(cfgPath)
				if err != nil {
					return err
				}
				ruled := map[string]bool{}
				for _, wf := range cfg.Workflows {
					for _, in := range wf.Inputs {
						for _, t := range in.Tables {
							if !t.Pattern {
								entries[t.Schema+"."+t.Table] = true
							}
							for _, r := range t.Columns {
								ruled[t.Schema+"."+t.Table+"."+r.Column] = true
							}
						}
					}
				}
				opts.Covered = func(t nopii.TableName, column string) bool { return ruled[t.String()+"."+column] }
			}
			log, err := g.logger(true)
			if err != nil {
				return err
			}
			src, err := postgres.Open(c.Context(), dsn, postgres.Options{Name: "scan", Logger: log})
			if err != nil {
				return err
			}
			defer src.Close()
			findings, err := scanner.Scan(c.Context(), src, opts)
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if findings == nil {
					findings = []scanner.ColumnFinding{}
				}
				return writeJSON(g.stdout, findings)
			case "yaml":
				printScanYAML(g.stdout, findings, entries)
			default:
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SCHEMA\tTABLE\tCOLUMN\tKIND\tCONFIDENCE\tEVIDENCE\tRULE")
				for _, f := range findings {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", f.Schema, f.Table, f.Column, f.Kind, f.Confidence, f.Evidence, f.RuleYAML)
				}
				tw.Flush()
				fmt.Fprintf(g.stdout, "%d columns look like personal data\n", len(findings))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dsn, "dsn", "", "database to scan (a read-only role is enough)")
	c.Flags().StringArrayVar(&schemas, "schema", nil, "schema to scan (repeatable, globs allowed; default all)")
	c.Flags().IntVar(&sample, "sample", 1000, "values read per column")
	c.Flags().StringVar(&format, "format", "table", "table, json or yaml")
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file: leave out columns it already has rules for")
	return c
}

// printScanYAML prints the findings as table entries to paste under an
// input's tables; for a table the file already names, the column lines to
// add to that entry's columns, commented so the block still pastes.
func printScanYAML(w io.Writer, findings []scanner.ColumnFinding, entries map[string]bool) {
	fmt.Fprintln(w, "# nopii scan: rules to add under the input's tables")
	last := ""
	for _, f := range findings {
		t := f.Schema + "." + f.Table
		line := fmt.Sprintf("              %s: %s    # %s, %s", f.Column, f.RuleYAML, f.Kind, f.Evidence)
		if entries[t] {
			if t != last {
				fmt.Fprintf(w, "          # %s has an entry already: add to its columns:\n", t)
			}
			fmt.Fprintf(w, "          #%s\n", line[11:])
		} else {
			if t != last {
				fmt.Fprintf(w, "          - name: %s\n            columns:\n", t)
			}
			fmt.Fprintln(w, line)
		}
		last = t
	}
}
