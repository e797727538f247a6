package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// TablePlan is what the next run would do with one table.
type TablePlan struct {
	Input        string   `json:"input"`
	Table        string   `json:"table"`
	Target       string   `json:"target,omitempty"`
	Mode         Mode     `json:"mode,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	Drift        bool     `json:"drift,omitempty"`
	Redacted     []string `json:"redacted_columns,omitempty"`
	Unclassified []string `json:"unclassified_pii,omitempty"` // "column: kind → add { rule: … }"
	// Unruled are the columns without a rule and what the guard does
	// with each.
	Unruled  []UnruledPlan `json:"unruled_columns,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	// Subset is the table's share of the input's referential subset.
	Subset *SubsetPlan `json:"subset,omitempty"`
	// Schema says, for a faithful twin, what it does with each constraint
	// and index of the table that a rule could break: kept, tried on the
	// copied rows, or left out, and why.
	Schema []string `json:"schema,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// SubsetPlan is a table's place in a referential subset: how many of its
// rows the subset holds in the source now, and how the subset reaches it
// (the root's selection, the foreign keys that bring its rows).
type SubsetPlan struct {
	Rows      int64    `json:"rows"`
	TableRows int64    `json:"table_rows_estimate"`
	Via       []string `json:"via"`
}

// UnruledPlan is a column without a rule in a plan.
type UnruledPlan struct {
	Column string `json:"column"`
	Type   string `json:"type"`
	Guard  string `json:"guard"` // what the guard does with it, and the rule to add
}

// Plan is the dry run of a workflow: per table the mode, why, the redacted
// columns and unclassified PII. It writes nothing.
func (r *Runner) Plan(ctx context.Context, cfg *config.Config, wf *config.Workflow) ([]TablePlan, error) {
	rn := r.newRun(cfg, wf)
	if err := rn.open(ctx); err != nil {
		return nil, err
	}
	defer rn.close()
	var out []TablePlan
	for i := range wf.Inputs {
		plans, err := rn.input(&wf.Inputs[i]).plan(ctx)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", wf.Inputs[i].Name, err)
		}
		out = append(out, plans...)
	}
	return out, nil
}

// plan resolves the input's tables and decides what a run would do with
// each, as a run's tableCopy plans and guards, writing nothing.
func (ir *inputRun) plan(ctx context.Context) ([]TablePlan, error) {
	src, err := ir.r.OpenSource(ctx, ir.in, 1)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	jobs, unmatched, err := resolveAll(ctx, src, ir.in, ir.key, computesGenerated(ir.feeds))
	if err != nil {
		return nil, err
	}
	ir.warnUnmatched(unmatched)
	feeds, wf := ir.feeds, ir.wf
	var out []TablePlan
	for _, j := range jobs {
		p := TablePlan{Input: j.input, Table: j.rel.Name.String(), Redacted: j.redacted}
		if j.err != nil {
			p.Error = j.err.Error()
			out = append(out, p)
			continue
		}
		p.Target = j.target.Name.String()
		if faithful(feeds) {
			p.Schema = schemaLines(j.decisions, false)
		}
		d, err := decide(ctx, src, feeds, wf, j, time.Now())
		if err != nil {
			p.Error = err.Error()
			out = append(out, p)
			continue
		}
		p.Mode, p.Reason, p.Drift = d.mode, d.reason, d.drift
		if st := j.subsetTable(); st != nil {
			p.Subset = &SubsetPlan{Rows: -1, TableRows: j.table.EstRows, Via: st.Via}
			if sc, ok := src.(subsetCounter); ok {
				if p.Subset.Rows, err = sc.SubsetRows(ctx, j.table, j.subset); err != nil {
					p.Error = err.Error()
				}
			}
		}
		for _, u := range d.flagged(false) {
			p.Unclassified = append(p.Unclassified, fmt.Sprintf("%s: %s → add %s", u.column.Name, u.finding.Kind, u.suggestion()))
		}
		for _, u := range d.unruled {
			p.Unruled = append(p.Unruled, UnruledPlan{Column: u.column.Name, Type: u.column.TypeSQL, Guard: u.verdict(wf.OnUnclassified)})
		}
		if err := d.guardFailure(j, wf.OnUnclassified); err != nil {
			p.Error = err.Error()
		}
		if j.entry != nil && j.entry.EffectiveMode() == config.ModeDelta {
			for _, col := range []string{j.entry.UpdatedAt, j.entry.CreatedAt} {
				if col == "" {
					continue
				}
				ok, err := src.Indexed(ctx, j.table, col)
				if err != nil {
					return nil, err
				}
				if !ok {
					p.Warnings = append(p.Warnings, fmt.Sprintf("no index on %s.%s: every delta run scans the whole table; CREATE INDEX ON %s (%s)",
						j.table.Name, col, j.table.Name.Quoted(), nopii.QuoteIdent(col)))
				}
			}
		}
		if j.entry != nil && j.entry.EffectiveMode() == config.ModeDelta && !j.entry.DetectDeletes && j.entry.Window == 0 {
			if cl, ok := src.(cascadeLister); ok {
				parents, err := cl.CascadeParents(ctx, j.table)
				if err != nil {
					return nil, err
				}
				for _, parent := range parents {
					p.Warnings = append(p.Warnings, fmt.Sprintf("rows that ON DELETE CASCADE removes when a %s row is deleted change no timestamp a delta sees: without detect_deletes they stay in the feeds; set detect_deletes: true under table %s",
						parent, j.table.Name))
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// cascadeLister is a source that can name the tables whose deletes cascade
// into a table (source/postgres can), for plan's warning about orphans.
type cascadeLister interface {
	CascadeParents(ctx context.Context, t *nopii.Table) ([]nopii.TableName, error)
}
