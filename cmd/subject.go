package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
)

// subjectFlags are what find, export and forget share.
type subjectFlags struct {
	cfgPath, format, requests string
	matches                   []string
}

func (f *subjectFlags) add(c *cobra.Command) {
	c.Flags().StringVarP(&f.cfgPath, "config", "c", "", "workflow file (YAML)")
	c.Flags().StringArrayVar(&f.matches, "match", nil, "column=value on a column the config declares in identifies: (repeatable: identifiers of the same person)")
	c.Flags().StringVar(&f.requests, "requests", "", "file with one request per line (column=value), run in one pass; # starts a comment")
	c.Flags().StringVar(&f.format, "format", "text", "text or json")
}

// setup loads the config, picks the one workflow, and parses the requests.
func (f *subjectFlags) setup(g *globals, args []string) (*config.Config, *config.Workflow, []agent.SubjectRequest, *agent.Runner, error) {
	cfg, wfs, log, err := g.setup(f.cfgPath, f.format, args)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if len(wfs) != 1 {
		var names []string
		for _, w := range wfs {
			names = append(names, w.Name)
		}
		return nil, nil, nil, nil, usageError{errors.New("the file has several workflows"), "name one: " + strings.Join(names, ", ")}
	}
	reqs, err := f.parseRequests()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return cfg, wfs[0], reqs, newRunner(log, nil), nil
}

func (f *subjectFlags) parseRequests() ([]agent.SubjectRequest, error) {
	var reqs []agent.SubjectRequest
	if len(f.matches) > 0 {
		var r agent.SubjectRequest
		for _, s := range f.matches {
			m, err := nopii.ParseSubjectMatch(s)
			if err != nil {
				return nil, usageError{fmt.Errorf("--match: %w", err), "e.g. --match email=a@b.com"}
			}
			r.Matches = append(r.Matches, m)
		}
		reqs = append(reqs, r)
	}
	if f.requests != "" {
		fr, err := readRequests(f.requests)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, fr...)
	}
	if len(reqs) == 0 {
		return nil, usageError{errors.New("no request"), "give --match column=value, or --requests FILE with one column=value per line"}
	}
	return reqs, nil
}

// readRequests reads one request per line; errors name the line, never
// its value.
func readRequests(path string) ([]agent.SubjectRequest, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read requests: %w", err)
	}
	defer file.Close()
	var reqs []agent.SubjectRequest
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m, err := nopii.ParseSubjectMatch(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		reqs = append(reqs, agent.SubjectRequest{Matches: []nopii.SubjectMatch{m}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read requests %s: %w", path, err)
	}
	return reqs, nil
}

func newSubjectCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "subject",
		Short: "Data-subject requests: find, export or forget one person's rows",
		Long: `Data-subject requests (GDPR articles 15, 17 and 20). A request names a person by
column=value on a column that the workflow's config declares identifying
(identifies: [email] under a table). Their rows are the rows of those tables
holding the value, and every row that references one of them by a foreign key
in the source catalog, transitively (customer → rental → payment).

  find     the rows per input, source table and feed
  export   a zip of the source rows, one JSON file per table, for the person
  forget   delete the rows from every feed (and with --include-sources from the
           sources), keep them out of later runs, and audit the request`,
	}
	c.AddCommand(newSubjectFindCmd(g), newSubjectExportCmd(g), newSubjectForgetCmd(g))
	return c
}

func newSubjectFindCmd(g *globals) *cobra.Command {
	var f subjectFlags
	c := &cobra.Command{
		Use:   "find [WORKFLOW] --config FILE --match column=value …",
		Short: "List a data subject's rows per input, source table and feed",
		Long: `Find counts a data subject's rows in each source table (matched by identifying
columns, then by foreign keys) and in each feed: the twin's rows and the rows
of the current S3/files snapshot and deltas, found by their source_primary_key.
Nothing is written anywhere.`,
		Example: "  nopii subject find --config nopii.yaml --match email=alice@example.com",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, wf, reqs, run, err := f.setup(g, args)
			if err != nil {
				return err
			}
			rep, err := run.FindSubject(c.Context(), cfg, wf, reqs)
			if err != nil {
				return fmt.Errorf("subject find: %w", err)
			}
			return printSubjectReport(g.stdout, f.format, rep)
		},
	}
	f.add(c)
	return c
}

func newSubjectExportCmd(g *globals) *cobra.Command {
	var f subjectFlags
	var out string
	c := &cobra.Command{
		Use:   "export [WORKFLOW] --config FILE --match column=value … --out FILE.zip",
		Short: "Write a data subject's source rows to a zip, one JSON file per table",
		Long: `Export writes the data subject's rows as the sources hold them (not redacted:
it is their data) to a zip: <input>/<schema>.<table>.json per table (an array
of row_to_json objects), manifest.json, and README.txt for the person. The file
is written next to --out under a temporary name, readable by its owner only
(0600), and renamed into place when complete.`,
		Example: "  nopii subject export --config nopii.yaml --match email=alice@example.com --out alice.zip",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out is required"), "e.g. --out subject.zip"}
			}
			cfg, wf, reqs, run, err := f.setup(g, args)
			if err != nil {
				return err
			}
			var rep *agent.SubjectReport
			err = writeAtomic(out, func(w io.Writer) error {
				var err error
				rep, err = run.ExportSubject(c.Context(), cfg, wf, reqs, w, time.Now())
				return err
			})
			if err != nil {
				return fmt.Errorf("subject export: %w", err)
			}
			if err := printSubjectReport(g.stdout, f.format, rep); err != nil {
				return err
			}
			if f.format != "json" {
				fmt.Fprintf(g.stdout, "wrote %s\n", out)
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVarP(&out, "out", "o", "", "the zip file to write")
	return c
}

// writeAtomic writes a file whole or not at all: a temporary file in the
// same directory (mode 0600), synced, then renamed over path.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	bw := bufio.NewWriterSize(tmp, 256<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newSubjectForgetCmd(g *globals) *cobra.Command {
	var f subjectFlags
	var o agent.ForgetOptions
	c := &cobra.Command{
		Use:   "forget [WORKFLOW] --config FILE --match column=value … [--dry-run] [--include-sources]",
		Short: "Delete a data subject's rows from the feeds (and sources) and keep them out",
		Long: `Forget deletes the data subject's rows, found by their source_primary_key,
from every feed of the workflow: the twin in one transaction; S3 and files
feeds by rewriting the objects that hold them (new objects, then a new
manifest, then the old objects deleted). The keys go on a suppression list in
each feed (keyed hashes), which every later run (full, delta, CDC) applies, so
the rows do not come back while the source still has them. With
--include-sources the rows are deleted from the source databases too, in one
transaction per source, tables that reference others first.

Before anything is deleted anywhere, each table's matched share is checked:
over --max-matching-proportion of any table, the whole request fails and
nothing is deleted. --dry-run prints the counts and deletes nothing. Each
target's outcome is audited per subject in nopii.subject_requests (twin) and
_nopii/subject_requests/ (S3/files), with a keyed hash of the subject, never
the identifier itself. The exit status is 1 when any target failed.`,
		Example: `  nopii subject forget --config nopii.yaml --match email=alice@example.com --dry-run
  nopii subject forget --config nopii.yaml --requests erasures.txt --include-sources`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if o.MaxProportion <= 0 || o.MaxProportion > 1 {
				return usageError{fmt.Errorf("--max-matching-proportion %g", o.MaxProportion), "give a share of a table's rows, above 0 and at most 1 (default 0.01)"}
			}
			cfg, wf, reqs, run, err := f.setup(g, args)
			if err != nil {
				return err
			}
			rep, err := run.ForgetSubject(c.Context(), cfg, wf, reqs, o)
			if rep == nil {
				return fmt.Errorf("subject forget: %w", err)
			}
			if perr := printSubjectReport(g.stdout, f.format, rep); perr != nil {
				return perr
			}
			if err != nil {
				if f.format == "json" {
					return exitError{1}
				}
				return fmt.Errorf("subject forget: %w", err)
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().Float64Var(&o.MaxProportion, "max-matching-proportion", agent.DefaultMaxMatchingProportion, "refuse the request when it matches more than this share of any table")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "print the counts; delete nothing")
	c.Flags().BoolVar(&o.IncludeSources, "include-sources", false, "delete from the source databases too")
	return c
}

func printSubjectReport(w io.Writer, format string, rep *agent.SubjectReport) error {
	if format == "json" {
		return writeJSON(w, rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var feeds []string
	for _, t := range rep.Tables {
		if len(t.Feeds) > 0 {
			for _, f := range t.Feeds {
				feeds = append(feeds, f.Feed)
			}
			break
		}
	}
	forget := rep.Action == "forget" && !rep.DryRun
	head := "INPUT\tTABLE\tSOURCE ROWS\tSHARE"
	if forget {
		head += "\tSOURCE DELETED"
	}
	for _, f := range feeds {
		if forget {
			head += "\t" + strings.ToUpper(f) + " DELETED"
		} else if rep.Action != "export" {
			head += "\t" + strings.ToUpper(f)
		}
	}
	fmt.Fprintln(tw, head+"\tVIA")
	for _, t := range rep.Tables {
		line := fmt.Sprintf("%s\t%s\t%d\t%.4f", t.Input, t.Table, t.SourceRows, t.Proportion)
		if forget {
			line += fmt.Sprintf("\t%d", t.SourceDeleted)
		}
		for i := range feeds {
			cell := "-" // the workflow does not copy the table
			if i < len(t.Feeds) {
				n := t.Feeds[i].Rows
				if forget {
					n = t.Feeds[i].Deleted
				}
				cell = fmt.Sprint(n)
			}
			if forget || rep.Action != "export" {
				line += "\t" + cell
			}
		}
		fmt.Fprintln(tw, line+"\t"+strings.Join(t.Via, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, u := range rep.Unfollowed {
		fmt.Fprintf(w, "not followed: %s %s.%s (%s) looks like a reference to %s but has no foreign key; to follow it, add under table %s:\n",
			u.Input, u.Table, u.Column, u.Type, u.References, u.Table)
		for _, l := range strings.Split(u.Add, "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	switch {
	case rep.Error != "":
		fmt.Fprintf(w, "failed: %s\n", rep.Error)
	case rep.DryRun:
		fmt.Fprintln(w, "dry run: nothing was deleted")
	case rep.RequestID != "":
		fmt.Fprintf(w, "request %s: %s\n", rep.RequestID, rep.Status)
	}
	return nil
}
