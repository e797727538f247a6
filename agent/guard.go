package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/scanner"
)

// The guard (SPEC §3) keeps the first promise: no unreviewed PII leaves the
// source by default. Every column of a copied table that has no rule is
// judged by the scanner whenever a feed has not yet held the table with
// that column of that type: a table's first copy, a table that a pattern
// newly matches, a new column, a retyped column. What it finds follows the
// workflow's on_unclassified:
//
//   - fail (the default): a column that looks like PII fails the table
//     before any row moves; the feeds keep their previous version, and the
//     error gives the rules to add, paste-ready.
//   - warn: the table is copied and the report warns, naming the rule.
//   - strict: every column of the table needs a rule (`keep` included),
//     whatever it holds and whether or not the feeds held it before.
//
// A stored generated column that every feed computes itself (a faithful
// twin) is not sent by the source and needs no rule. A column the feeds
// already held (same name and type, in every feed) is not judged again: it was reviewed, or copied, before. Judging reads at
// most guardSample rows per table (source Sample: TABLESAMPLE, then LIMIT).

// unruledColumn is a column without a rule, as the guard judged it.
type unruledColumn struct {
	column  nopii.Column
	held    bool                   // every feed already held the table with this column and type
	finding *scanner.ColumnFinding // it looks like PII; nil: it does not, or it was not judged (held)
}

// guardSample is how many rows the guard samples to judge a table's
// columns.
const guardSample = 200

// judgeUnruled fills d.unruled: the table's columns without a rule, each
// judged unless every feed's state (states, one per feed, nil where the feed
// has none) already holds it with the same type. Under strict every such
// column is judged, for the rule to suggest. One bounded sample per table.
func judgeUnruled(ctx context.Context, src nopii.Source, wf *config.Workflow, j *job, states []*nopii.TableState, d *decision) error {
	ruled := map[string]bool{}
	if j.entry != nil {
		for _, r := range j.entry.Columns {
			ruled[r.Column] = true
		}
	}
	held := heldColumns(states)
	strict := wf.OnUnclassified == config.OnUnclassifiedStrict
	judged := map[string]bool{}
	for _, c := range j.table.Columns {
		if ruled[c.Name] || (c.Generated != "" && j.table.OmitGenerated) {
			continue // a rule decides it, or every feed computes it from what the rules gave
		}
		u := unruledColumn{column: c, held: held[c.Name] == c.TypeSQL}
		d.unruled = append(d.unruled, u)
		judged[c.Name] = !u.held || strict
	}
	if len(d.unruled) == 0 {
		return nil
	}
	found, err := scanner.JudgeTable(ctx, src, j.table, guardSample, func(c nopii.Column) bool { return judged[c.Name] })
	if err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	for i := range found {
		for k := range d.unruled {
			if d.unruled[k].column.Name == found[i].Column {
				d.unruled[k].finding = &found[i]
			}
		}
	}
	return nil
}

// heldColumns returns the columns (name → type) that every state holds;
// none when a feed has no state for the table.
func heldColumns(states []*nopii.TableState) map[string]string {
	if len(states) == 0 {
		return nil
	}
	var held map[string]string
	for _, st := range states {
		if st == nil {
			return nil
		}
		cols := make(map[string]string, len(st.Columns))
		for _, c := range st.Columns {
			if held == nil || held[c.Name] == c.Type {
				cols[c.Name] = c.Type
			}
		}
		held = cols
	}
	return held
}

// flagged returns the unruled columns that stop or warn: those that look
// like PII and that some feed has not held (fail, warn), or, under strict,
// every unruled column.
func (d *decision) flagged(strict bool) []unruledColumn {
	var out []unruledColumn
	for _, u := range d.unruled {
		if strict || (!u.held && u.finding != nil) {
			out = append(out, u)
		}
	}
	return out
}

// findings returns the columns judged PII that some feed has not held, as
// scanner findings.
func (d *decision) findings(t *nopii.Table) []scanner.ColumnFinding {
	var out []scanner.ColumnFinding
	for _, u := range d.unruled {
		if u.finding != nil && !u.held {
			out = append(out, *u.finding)
		}
	}
	return out
}

// verdict says, for plan, what the guard does with an unruled column.
func (u unruledColumn) verdict(mode string) string {
	switch {
	case mode == config.OnUnclassifiedStrict:
		return "fails the table (on_unclassified: strict): add " + u.suggestion()
	case u.held:
		return "copied as it is: the feeds held it before"
	case u.finding == nil:
		return "copied as it is: judged not personal data"
	case mode == config.OnUnclassifiedWarn:
		return fmt.Sprintf("copied with a warning (on_unclassified: warn): looks like %s; add %s", u.finding.Kind, u.suggestion())
	default:
		return fmt.Sprintf("fails the table (on_unclassified: fail): looks like %s; add %s", u.finding.Kind, u.suggestion())
	}
}

// suggestion is the rule to add for the column: the scanner's, or keep.
func (u unruledColumn) suggestion() string {
	if u.finding != nil {
		return u.finding.RuleYAML
	}
	return "{ rule: keep }"
}

// guardError is the guard's refusal to copy a table.
type guardError struct{ msg string }

func (e *guardError) Error() string { return e.msg }

// guardFailure returns the error that stops a table, or nil: under fail,
// the columns that look like PII and that some feed has not held; under
// strict, every column without a rule. The message lists the rules to add,
// paste-ready: the columns (with the table entry when a pattern chose the
// table).
func (d *decision) guardFailure(j *job, mode string) error {
	if mode == config.OnUnclassifiedWarn {
		return nil
	}
	strict := mode == config.OnUnclassifiedStrict
	cols := d.flagged(strict)
	if len(cols) == 0 {
		return nil
	}
	t := j.table.Name
	var b strings.Builder
	if strict {
		fmt.Fprintf(&b, "%d column(s) of %s have no rule, so nothing was written for it (on_unclassified: strict: every column needs a rule, keep included); add", len(cols), t)
	} else {
		fmt.Fprintf(&b, "column(s) of %s that look like PII have no rule, so nothing was written for it (on_unclassified: fail); add", t)
	}
	indent := "    "
	if j.entry == nil {
		fmt.Fprintf(&b, " to the input's tables:\n  - name: %s\n    columns:", t)
		indent = "      "
	} else {
		b.WriteString(" to the table's columns:")
	}
	for _, u := range cols {
		fmt.Fprintf(&b, "\n%s%s: %s", indent, yamlKey(u.column.Name), u.suggestion())
		if u.finding != nil {
			fmt.Fprintf(&b, "    # %s, %s", u.finding.Kind, u.finding.Evidence)
		}
	}
	if !strict {
		b.WriteString("\n  or `rule: keep` for a column that holds no personal data")
	}
	return &guardError{b.String()}
}

// yamlKey quotes a column name that YAML would not read back as itself.
func yamlKey(name string) string {
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "'" + strings.ReplaceAll(name, "'", "''") + "'"
		}
	}
	return name
}
