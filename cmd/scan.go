package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
		Use:   "scan (--config FILE | --dsn DSN) [--schema S] [--sample N] [--format table|json|yaml]",
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

With --config, every input of the workflow file is scanned (its DSN from the
file, so from the environment and not the command line), and the columns the
file already covers for that input (a rule, keep included, or an excluded
table) are left out, so what remains is what the configuration misses; with
--dsn too, that one database is scanned against all of the file's rules.
With a dashboard in the file, the findings are also posted to its scanner
page. --format yaml prints the rules to paste.`,
		Example: "  nopii scan --config nopii.yaml --format yaml\n  nopii scan --dsn \"$PROD_DATABASE_URL\" --schema public",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dsn == "" && cfgPath == "" {
				return usageError{errors.New("--dsn or --config is required"), "scan the inputs of a workflow file (--config nopii.yaml), or one database: --dsn \"$PROD_DATABASE_URL\""}
			}
			switch format {
			case "table", "json", "yaml":
			default:
				return usageError{fmt.Errorf("--format %q", format), "use table, json or yaml"}
			}
			if sample <= 0 {
				return usageError{fmt.Errorf("--sample %d", sample), "sample at least one row per table, e.g. --sample 1000"}
			}
			var cfg *config.Config
			if cfgPath != "" {
				var err error
				if cfg, err = loadConfig(cfgPath); err != nil {
					return err
				}
			}
			log, err := g.logger(true)
			if err != nil {
				return err
			}
			var all []scanner.ColumnFinding
			targets := scanTargets(dsn, cfg)
			for i, tg := range targets {
				opts := scanner.Options{Schemas: schemas, Sample: sample, Workers: scanWorkers, Covered: tg.covered}
				findings, err := scanOne(c.Context(), tg, opts, log)
				if err != nil {
					return err
				}
				all = append(all, findings...)
				if len(targets) > 1 && format != "json" {
					if i > 0 {
						fmt.Fprintln(g.stdout)
					}
					fmt.Fprintf(g.stdout, "# workflow %s, input %s\n", tg.workflow, tg.name)
				}
				switch format {
				case "yaml":
					printScanYAML(g.stdout, findings, tg.entries)
				case "table":
					printScanTable(g.stdout, findings)
				}
			}
			if cfg != nil && cfg.Dashboard != nil {
				r := agent.NewReporter(cfg.Dashboard.URL, cfg.Dashboard.Token.Reveal(), log, nil)
				err := r.PostScan(c.Context(), agent.ScanReport{Agent: cfg.Agent.Name, Findings: all,
					Source: wire.ScanByScan, Schemas: schemas})
				r.Close(c.Context())
				if err != nil {
					return err
				}
				log.Info("scan posted to the dashboard", "findings", len(all))
			}
			if format == "json" {
				if all == nil {
					all = []scanner.ColumnFinding{}
				}
				return writeJSON(g.stdout, all)
			}
			return nil
		},
	}
	c.Flags().StringVar(&dsn, "dsn", "", "database to scan (a read-only role is enough); default: every input of --config")
	c.Flags().StringArrayVar(&schemas, "schema", nil, "schema to scan (repeatable, globs allowed; default all)")
	c.Flags().IntVar(&sample, "sample", 1000, "rows sampled per table")
	c.Flags().StringVar(&format, "format", "table", "table, json or yaml")
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file: scan its inputs, leave out columns it covers; post to its dashboard")
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

// scanTarget is one database to scan, with what the workflow file covers.
type scanTarget struct {
	workflow, name, dsn string
	entries             map[string]bool // tables the file names explicitly
	covered             func(nopii.TableName, string) bool
}

// scanTargets is the database of --dsn, judged against every rule of the
// file, or else each database the file's inputs read, against the rules of
// those inputs.
func scanTargets(dsn string, cfg *config.Config) []scanTarget {
	if cfg == nil {
		return []scanTarget{{name: "scan", dsn: dsn}}
	}
	var out []scanTarget
	var groups [][]*config.Input // by DSN, in file order
	index := map[string]int{}
	for wi := range cfg.Workflows {
		wf := &cfg.Workflows[wi]
		for ii := range wf.Inputs {
			in := &wf.Inputs[ii]
			key := in.DSN.Reveal()
			if dsn != "" {
				key = dsn
			}
			k, ok := index[key]
			if !ok {
				k, index[key] = len(out), len(out)
				out = append(out, scanTarget{workflow: wf.Name, name: in.Name, dsn: key})
				groups = append(groups, nil)
			}
			groups[k] = append(groups[k], in)
		}
	}
	for k := range out {
		out[k].entries, out[k].covered = coverage(groups[k])
	}
	if dsn != "" && len(out) == 1 {
		out[0].name = "scan"
	}
	return out
}

// coverage returns the tables that inputs name explicitly and whether they
// cover a column: a rule (keep included), or an excluded table.
func coverage(inputs []*config.Input) (map[string]bool, func(nopii.TableName, string) bool) {
	entries, ruled, excluded := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, in := range inputs {
		for _, t := range in.Tables {
			if !t.Pattern {
				entries[t.Schema+"."+t.Table] = true
				excluded[t.Schema+"."+t.Table] = excluded[t.Schema+"."+t.Table] || t.Exclude
			}
			for _, r := range t.Columns {
				ruled[t.Schema+"."+t.Table+"."+r.Column] = true
			}
		}
	}
	return entries, func(t nopii.TableName, column string) bool {
		return excluded[t.String()] || ruled[t.String()+"."+column]
	}
}

// scanOne scans one database.
func scanOne(ctx context.Context, tg scanTarget, opts scanner.Options, log *slog.Logger) ([]scanner.ColumnFinding, error) {
	src, err := postgres.Open(ctx, tg.dsn, postgres.Options{Name: tg.name, Readers: scanWorkers, Logger: log})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return scanner.Scan(ctx, src, opts)
}

// printScanTable prints findings as a table, and how many there are.
func printScanTable(w io.Writer, findings []scanner.ColumnFinding) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEMA\tTABLE\tCOLUMN\tKIND\tCONFIDENCE\tEVIDENCE\tRULE")
	for _, f := range findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", f.Schema, f.Table, f.Column, f.Kind, f.Confidence, f.Evidence, f.RuleYAML)
	}
	tw.Flush()
	verb := "look"
	if len(findings) == 1 {
		verb = "looks"
	}
	fmt.Fprintf(w, "%s %s like personal data\n", human.Count(len(findings), "column"), verb)
}
