package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

// References to forgotten rows (SPEC §7). A subject request deletes the
// subject's rows from the feeds, and sets to NULL the references that other
// rows hold to them (another customer naming the subject's address as its
// default). The source still has those references: every later copy of the
// referencing rows would bring them back, and the twin's foreign keys would
// refuse them (a delta's publish fails, a full copy's key stays NOT VALID).
// So a copy asks the source for the key text that each of the table's
// foreign keys names (Selection.References), for the keys whose table has
// forgotten rows, and the row path treats a row naming a forgotten row as
// forget did: its reference becomes NULL where its columns allow it, and
// where they are NOT NULL the row is the subject's (a new order of the
// forgotten customer) and stays out.

// forgottenRefs are a table's foreign keys to tables with forgotten rows.
type forgottenRefs struct {
	refs    []forgottenRef
	scratch []byte
}

// forgottenRef is one of them.
type forgottenRef struct {
	names    []string // the referencing columns
	cols     []int    // their indexes in the row
	nullable bool     // every one of them may be NULL
	set      *forgottenSet
	keyFn    redact.Func // the referenced table's key hash, where its key is redacted; nil
}

// forgottenRefs returns the table's foreign keys to copied tables with
// forgotten rows, nil when none. Only catalog foreign keys on the
// referenced table's primary key are followed: a virtual one holds no
// constraint in the feeds, and the suppression list holds primary keys.
func (tc *tableCopy) forgottenRefs(ctx context.Context) (*forgottenRefs, error) {
	return loadForgottenRefs(ctx, tc.feeds, tc.wf.Name, tc.j, tc.key)
}

// loadForgottenRefs is forgottenRefs for a job of workflow wf.
func loadForgottenRefs(ctx context.Context, feeds []nopii.Feed, wf string, j *job, key []byte) (*forgottenRefs, error) {
	var out []forgottenRef
	for _, r := range j.refs {
		p := j.peers[r.To]
		if r.From != j.table.Name || r.Virtual || p == nil || p.table == nil || !slices.Equal(r.ToColumns, p.table.PrimaryKey) {
			continue
		}
		set, err := loadForgotten(ctx, feeds, nopii.StateKey{Workflow: wf, Input: p.input, Table: p.table.Name}, key)
		if err != nil || set == nil {
			if err != nil {
				return nil, fmt.Errorf("references to %s: %w", p.table.Name, err)
			}
			continue
		}
		f, err := keyHash(p, key)
		if err != nil {
			return nil, err
		}
		ref := forgottenRef{names: r.Columns, nullable: true, set: set, keyFn: f}
		for _, c := range r.Columns {
			i := slices.IndexFunc(j.table.Columns, func(col nopii.Column) bool { return col.Name == c })
			if i < 0 {
				return nil, fmt.Errorf("references to %s: column %q: %w in table %s", p.table.Name, c, nopii.ErrNotFound, j.table.Name)
			}
			ref.cols = append(ref.cols, i)
			ref.nullable = ref.nullable && !j.table.Columns[i].NotNull
		}
		out = append(out, ref)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &forgottenRefs{refs: out}, nil
}

// columns are the referencing columns of each reference, for
// Selection.References.
func (fr *forgottenRefs) columns() [][]string {
	if fr == nil {
		return nil
	}
	out := make([][]string, len(fr.refs))
	for i, r := range fr.refs {
		out[i] = r.names
	}
	return out
}

// apply looks up the key texts the row names (vals, one per reference, as
// the source sent them) in the referenced tables' suppression lists: a
// row naming a forgotten row through nullable columns has them set to NULL
// in out (unlinked); through NOT NULL columns it is not kept.
func (fr *forgottenRefs) apply(vals, out [][]byte) (keep, unlinked bool, err error) {
	fr.scratch = fr.scratch[:0]
	for i := range fr.refs {
		r := &fr.refs[i]
		k := vals[i]
		if k == nil {
			continue
		}
		if r.keyFn != nil {
			if k, err = apply(r.keyFn, &fr.scratch, k); err != nil {
				return false, false, fmt.Errorf("reference %v: %w", r.names, err)
			}
		}
		if !r.set.has(k) {
			continue
		}
		if !r.nullable {
			return false, false, nil
		}
		for _, c := range r.cols {
			out[c] = nil
		}
		unlinked = true
	}
	return true, unlinked, nil
}
