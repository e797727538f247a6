package cmd

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/human"
	"github.com/nopii/nopii/source/postgres"
)

func newValidateCmd(g *globals) *cobra.Command {
	var cfgPath string
	var connect bool
	c := &cobra.Command{
		Use:   "validate --config FILE [--connect]",
		Short: "Check a workflow file (and, with --connect, its databases, tables and columns)",
		Long: `Validate parses the workflow file strictly: unknown keys, wrong types, bad cron
schedules, unknown rules and bad rule parameters are errors with file:line:column.
With --connect it also connects to every input and feed, checks that every named
table and column exists, and that every rule fits its column's type.`,
		Example: "  nopii validate --config nopii.yaml --connect",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if !connect {
				fmt.Fprintf(g.stdout, "%s: ok (%s)\n", cfg.File, human.Count(len(cfg.Workflows), "workflow"))
				return nil
			}
			log, err := g.logger(true)
			if err != nil {
				return err
			}
			ctx := c.Context()
			problems := 0
			report := func(format string, a ...any) {
				problems++
				fmt.Fprintf(g.stdout, "  ✗ "+format+"\n", a...)
			}
			key := []byte(cfg.HMACKey.Reveal())
			for _, wf := range cfg.Workflows {
				fmt.Fprintf(g.stdout, "workflow %s\n", wf.Name)
				// The feeds stay open for the checks of the inputs (a
				// faithful twin computes generated columns and builds the
				// schema); nil when one could not be opened.
				feeds := []nopii.Feed{}
				for i := range wf.Feeds {
					f, err := openFeed(ctx, &wf, &wf.Feeds[i], log)
					if err != nil {
						report("feed %s: %v", wf.Feeds[i].Type, err)
						feeds = nil
						continue
					}
					defer f.Close()
					if feeds != nil {
						feeds = append(feeds, f)
					}
					fmt.Fprintf(g.stdout, "  ✓ feed %s reachable\n", wf.Feeds[i].Type)
				}
				for i := range wf.Inputs {
					in := &wf.Inputs[i]
					src, err := postgres.Open(ctx, in.DSN.Reveal(), postgres.Options{Name: in.Name, Logger: log})
					if err != nil {
						report("input %s: %v", in.Name, err)
						continue
					}
					// Mode cdc: the replication connection, wal_level and
					// each table's replica identity, as a run would find them.
					var tc agent.TableChecker
					var rp *postgres.Replication
					if hasCDC(in) {
						if rp, err = postgres.OpenReplication(ctx, in.DSN.Reveal(), postgres.ReplicationOptions{Name: in.Name, Logger: log}); err != nil {
							report("input %s: %v", in.Name, err)
						} else {
							tc = rp
						}
					}
					tables, warnings, err := agent.Check(ctx, src, in, key, agent.CheckWith{Feeds: feeds, Stream: tc})
					src.Close()
					if rp != nil {
						rp.Close()
					}
					if err != nil {
						report("input %s: %v", in.Name, err)
						continue
					}
					// The tables that pass, then the warnings and problems in
					// the order of the file, as a compiler lists them.
					var found []finding
					for _, w := range warnings {
						found = append(found, newFinding("!", w, cfg.File, "input "+in.Name))
					}
					for _, t := range tables {
						if t.Error == "" {
							fmt.Fprintf(g.stdout, "  ✓ input %s: %s (%s)\n", in.Name, t.Table, human.Count(len(t.Redacted), "rule"))
							for _, s := range t.Schema {
								fmt.Fprintf(g.stdout, "      schema: %s\n", s)
							}
							continue
						}
						// One line per problem: describe reports them all.
						for _, p := range strings.Split(t.Error, "\n") {
							found = append(found, newFinding("✗", p, cfg.File, fmt.Sprintf("input %s: %s", in.Name, t.Table)))
						}
					}
					slices.SortStableFunc(found, func(a, b finding) int {
						return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
					})
					for _, f := range found {
						if f.mark == "✗" {
							report("%s", f.text)
						} else {
							fmt.Fprintf(g.stdout, "  %s %s\n", f.mark, f.text)
						}
					}
				}
			}
			if problems > 0 {
				fmt.Fprintln(g.stdout, human.Count(problems, "problem"))
				return exitError{1}
			}
			fmt.Fprintf(g.stdout, "%s: ok\n", cfg.File)
			return nil
		},
	}
	c.Flags().StringVarP(&cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().BoolVar(&connect, "connect", false, "also connect and check tables, columns and rule types")
	return c
}

// finding is one line of validate --connect about a table or a pattern, at
// its place in the file when it has one (line 0: none).
type finding struct {
	mark, text string
	line, col  int
}

// newFinding places a message that starts with file:line:col; one without a
// place says what it is about (context).
func newFinding(mark, msg, file, context string) finding {
	if rest, ok := strings.CutPrefix(msg, file+":"); ok {
		var line, col int
		if n, _ := fmt.Sscanf(rest, "%d:%d:", &line, &col); n == 2 {
			return finding{mark: mark, text: msg, line: line, col: col}
		}
	}
	return finding{mark: mark, text: context + ": " + msg}
}

// hasCDC reports whether an input has a table in mode cdc.
func hasCDC(in *config.Input) bool {
	return slices.ContainsFunc(in.Tables, func(t config.Table) bool { return !t.Exclude && t.EffectiveMode() == config.ModeCDC })
}
