package cmd

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/human"
	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/scanner"
	"github.com/nopii/nopii/source/postgres"
)

func newScanCmd(g *globals) *cobra.Command {
	var dsn, cfgPath, format string
	var schemas []string
	var sample int
	c := &cobra.Command{
		Use:   "scan --dsn DSN [--schema S] [--sample N] [--config FILE] [--format table|json|yaml]",
		Short: "Find columns that look like personal data",
		Long: `Scan classifies every column of the tables of a database from its type, its
name and comment (snake_case, camelCase, kebab-case, abbreviations; English,
German, French, Spanish, Italian, Dutch, Portuguese) and a bounded sample of
its rows (TABLESAMPLE SYSTEM for big tables, LIMIT for small ones; one read
per table, four tables at once; never a whole table). Values go through
validators: email syntax, E.164 and national phone formats, Luhn with card
prefixes, IBAN mod-97, US SSN ranges, national IDs, IP addresses, plausible
dates of birth, first- and family-name lists, street addresses, and the paths
inside json/jsonb documents. Findings carry a kind, a confidence, the evidence
(never a value) and a rule that compiles for the column's type.

With --config, columns the workflow file already covers (a rule, keep
included, or an excluded table) are left out, so what remains is what the
configuration misses; with a dashboard in that file, the findings are also
posted to its scanner page. --format yaml prints the rules to paste.`,
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
			if sample <= 0 {
				return usageError{fmt.Errorf("--sample %d", sample), "sample at least one row per table, e.g. --sample 1000"}
			}
			opts := scanner.Options{Schemas: schemas, Sample: sample, Workers: scanWorkers}
			entries := map[string]bool{} // tables the file names explicitly
			var cfg *config.Config
			if cfgPath != "" {
				var err error
				if cfg, err = loadConfig(cfgPath); err != nil {
					return err
				}
				ruled, excluded := map[string]bool{}, map[string]bool{}
				for _, wf := range cfg.Workflows {
					for _, in := range wf.Inputs {
						for _, t := range in.Tables {
							if !t.Pattern {
								entries[t.Schema+"."+t.Table] = true
								excluded[t.Schema+"."+t.Table] = t.Exclude
							}
							for _, r := range t.Columns {
								ruled[t.Schema+"."+t.Table+"."+r.Column] = true
							}
						}
					}
				}
				opts.Covered = func(t nopii.TableName, column string) bool {
					return excluded[t.String()] || ruled[t.String()+"."+column]
				}
			}
			log, err := g.logger(true)
			if err != nil {
				return err
			}
			src, err := postgres.Open(c.Context(), dsn, postgres.Options{Name: "scan", Readers: scanWorkers, Logger: log})
			if err != nil {
				return err
			}
			defer src.Close()
			findings, err := scanner.Scan(c.Context(), src, opts)
			if err != nil {
				return err
			}
			if cfg != nil && cfg.Dashboard != nil {
				r := agent.NewReporter(cfg.Dashboard.URL, cfg.Dashboard.Token.Reveal(), log, nil)
				err := r.PostScan(c.Context(), agent.ScanReport{Agent: cfg.Agent.Name, Findings: findings,
					Source: wire.ScanByScan, Schemas: schemas})
				r.Close(c.Context())
				if err != nil {
					return err
				}
				log.Info("scan posted to the dashboard", "findings", len(findings))
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
				verb := "look"
				if len(findings) == 1 {
					verb = "looks"
				}
				fmt.Fprintf(g.stdout, "%s %s like personal data\n", human.Count(len(findings), "column"), verb)
			}
			return nil
		},
	}
	c.Flags().StringVar(&dsn, "dsn", "", "database to scan (a read-only role is enough)")
	c.Flags().StringArrayVar(&schemas, "schema", nil, "schema to scan (repeatable, globs allowed; default all)")
	c.Flags().IntVar(&sample, "sample", 1000, "rows sampled per table")
	c.Flags().StringVar(&format, "format", "table", "table, json or yaml")
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file: leave out columns it covers; post to its dashboard")
	return c
}

// scanWorkers is how many tables a scan samples at once, each on its own
// reader connection of the snapshot.
const scanWorkers = 4

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
