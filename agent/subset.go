package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/keydigest"
)

// Referential subsets (docs/subsets.md): the agent resolves each input's
// roots and virtual foreign keys against the described tables, computes
// which tables the subset reaches (nopii.NewSubset), and hands the subset
// to the source in every Selection of those tables; the source computes
// the rows in its snapshot.

// subsetLabel derives the seed of a root's keyed share from hmac_key.
const subsetLabel = "nopii subset share v1"

// referenceLister is a source that lists its catalog's foreign keys
// (source/postgres).
type referenceLister interface {
	References(ctx context.Context) ([]nopii.Reference, error)
}

// subsetCounter is a source that counts a table's rows in a subset, for
// plan (source/postgres).
type subsetCounter interface {
	SubsetRows(ctx context.Context, t *nopii.Table, s *nopii.Subset) (int64, error)
}

// SubsetSeed is the seed of a root table's share: keyed by hmac_key, so
// that the share is the same every run and cannot be told from the keys
// without the key. A row is in a share of p percent when
// ((h % 1000000 + 1000000) % 1000000) < p × 10000, where h is
// hashint8extended(key, seed) for a key of one integer column, else
// hashtextextended(key text, seed) (docs/subsets.md).
func SubsetSeed(key []byte, t nopii.TableName) int64 {
	d := derivedKey(derivedKey(key, subsetLabel), t.String())
	return int64(binary.BigEndian.Uint64(d[:8]))
}

// windowOf is a table entry's window at now: the earliest time and the
// columns judged; zero without a window.
func windowOf(e *config.Table, now time.Time) (time.Time, []string) {
	if e == nil || e.Window <= 0 {
		return time.Time{}, nil
	}
	switch e.WindowBy {
	case config.WindowByUpdatedAt:
		return now.Add(-e.Window), []string{e.UpdatedAt}
	case config.WindowByBoth:
		return now.Add(-e.Window), []string{e.CreatedAt, e.UpdatedAt}
	default:
		return now.Add(-e.Window), []string{e.CreatedAt}
	}
}

// virtualReferences resolves the virtual foreign keys of the input's entries
// against the described jobs; a reference that names a missing table or
// column fails the table that declares it.
func virtualReferences(jobs []*job, rels []nopii.Relation) []nopii.Reference {
	byName := map[nopii.TableName]*job{}
	for _, j := range jobs {
		if j.table != nil {
			byName[j.table.Name] = j
		}
	}
	var out []nopii.Reference
	for _, j := range jobs {
		if j.entry == nil || j.table == nil || len(j.entry.References) == 0 {
			continue
		}
		var problems []error
		for _, r := range j.entry.References {
			ref, err := resolveReference(j, r, byName, rels)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", r.Pos, err))
				continue
			}
			out = append(out, ref)
		}
		if len(problems) > 0 {
			j.err = errors.Join(append([]error{j.err}, problems...)...)
		}
	}
	return out
}

func resolveReference(j *job, r config.Reference, byName map[nopii.TableName]*job, rels []nopii.Relation) (nopii.Reference, error) {
	to := nopii.TableName{Schema: r.Schema, Name: r.Name}
	for _, c := range r.Columns {
		if _, ok := j.table.Column(c); !ok {
			return nopii.Reference{}, fmt.Errorf("reference from %s: column %q: %w in table %s%s", j.table.Name, c, nopii.ErrNotFound, j.table.Name, columnHint(j.table, c))
		}
	}
	pj := byName[to]
	if pj == nil {
		if slices.ContainsFunc(rels, func(rel nopii.Relation) bool { return rel.Name == to }) {
			return nopii.Reference{}, fmt.Errorf("reference from %s to %s: the input does not copy %s (add it to the input's tables)", j.table.Name, to, to)
		}
		return nopii.Reference{}, fmt.Errorf("reference from %s: table %s: %w in the source%s", j.table.Name, to, nopii.ErrNotFound, didYouMean(to, rels))
	}
	toCols := r.To
	if len(toCols) == 0 {
		toCols = pj.table.PrimaryKey
	}
	if len(toCols) != len(r.Columns) {
		return nopii.Reference{}, fmt.Errorf("reference from %s(%s) to %s: its key (%s) has %d column(s): name them with to:", j.table.Name,
			strings.Join(r.Columns, ", "), to, strings.Join(toCols, ", "), len(toCols))
	}
	for _, c := range toCols {
		if _, ok := pj.table.Column(c); !ok {
			return nopii.Reference{}, fmt.Errorf("reference from %s to %s: column %q: %w in table %s%s", j.table.Name, to, c, nopii.ErrNotFound, to, columnHint(pj.table, c))
		}
	}
	return nopii.Reference{From: j.table.Name, Columns: r.Columns, To: to, ToColumns: toCols, Virtual: true}, nil
}

// linkSubset computes the input's subset, if it has roots, and gives it to
// every job it reaches. The input's references (catalog and virtual) are
// kept in every job for subject requests.
func linkSubset(ctx context.Context, src nopii.Source, jobs []*job, rels []nopii.Relation, key []byte, now time.Time) ([]nopii.Reference, error) {
	refs := virtualReferences(jobs, rels)
	roots := false
	for _, j := range jobs {
		if j.entry == nil || j.entry.Subset == nil {
			continue
		}
		if j.err == nil && j.entry.Subset.Percent > 0 && len(key) == 0 {
			j.err = fmt.Errorf("%s: subset percent of %s needs hmac_key: the share is chosen by a keyed hash of each row's key", j.entry.Subset.Pos, j.rel.Name)
		}
		if j.err != nil {
			// Without its root, the subset's other tables would be copied
			// whole: more than the file's author meant. Copy nothing.
			for _, o := range jobs {
				if o != j && o.err == nil {
					o.err = fmt.Errorf("not copied: the subset's root %s cannot be copied, and without it this table could be copied whole; fix %s first", j.rel.Name, j.rel.Name)
				}
			}
			return refs, nil
		}
		roots = true
	}
	rl, ok := src.(referenceLister)
	if !ok {
		for _, j := range jobs {
			j.refs = refs
		}
		if roots {
			return refs, errors.New("the source cannot compute referential subsets")
		}
		return refs, nil
	}
	catalog, err := rl.References(ctx)
	if err != nil {
		return nil, err
	}
	refs = append(catalog, refs...)
	for _, j := range jobs {
		j.refs = refs
	}
	if !roots {
		return refs, nil
	}
	var cands []*nopii.SubsetTable
	byName := map[nopii.TableName]*job{}
	for _, j := range jobs {
		if j.err != nil || j.table == nil {
			continue
		}
		st := &nopii.SubsetTable{Table: j.table}
		st.WindowSince, st.WindowBy = windowOf(j.entry, now)
		if e := j.entry; e != nil && e.Subset != nil {
			st.Root = &nopii.SubsetRoot{Where: e.Subset.Where, Percent: e.Subset.Percent, WithChildren: e.Subset.WithChildren}
			if e.Subset.Percent > 0 {
				st.Root.Seed = SubsetSeed(key, j.table.Name)
			}
		}
		cands = append(cands, st)
		byName[j.table.Name] = j
	}
	sub := nopii.NewSubset(cands, refs)
	if sub == nil {
		return refs, nil
	}
	streamed := cdcSubsetProblems(sub, byName)
	for _, st := range sub.Tables {
		j := byName[st.Table.Name]
		if err := streamed[st.Table.Name]; err != nil {
			j.err = err
			continue
		}
		j.subset = sub
	}
	return refs, nil
}

// cdcSubsetProblems checks a subset whose tables are in mode cdc, which
// the stream keeps current (docs/subsets.md, "Mode cdc"): every table the
// subset reaches must be in mode cdc (a row's membership depends on other
// tables' rows, whose changes only a stream sees), without a window (rows
// leave a window without a change), and with a key that no rule changes
// (the stream finds rows of the source by the twin's keys). It returns
// the error of each table refused: the tables in mode cdc when others are
// not, every table of the subset when a window or a key rule breaks it.
func cdcSubsetProblems(sub *nopii.Subset, byName map[nopii.TableName]*job) map[nopii.TableName]error {
	var cdc, other []string
	var why []string
	for _, st := range sub.Tables {
		j := byName[st.Table.Name]
		e := j.entry
		if e == nil || e.EffectiveMode() != config.ModeCDC {
			other = append(other, st.Table.Name.String())
			continue
		}
		cdc = append(cdc, st.Table.Name.String())
		if e.Window > 0 {
			why = append(why, fmt.Sprintf("%s: %s has a window: rows leave a window without a change, which a stream does not see (leave the window out)", e.Pos, st.Table.Name))
		}
		for _, r := range e.Columns {
			if slices.Contains(st.Table.PrimaryKey, r.Column) && r.Rule != "" && r.Rule != "keep" {
				why = append(why, fmt.Sprintf("%s: %s's key column %s has rule %s: the stream finds the subset's rows in the source by the twin's keys (keep the key, or use mode delta)", r.Pos, st.Table.Name, r.Column, r.Rule))
			}
		}
	}
	if len(cdc) == 0 {
		return nil
	}
	if len(other) > 0 {
		// The others copy as before; the stream would miss their changes.
		err := fmt.Errorf("the subset reaches %s in mode cdc and %s in other modes: whether a row belongs to a subset depends on the rows of its other tables, so a stream keeps it current only when it streams them all (set mode: cdc on %s, or a mode other than cdc on %s)",
			strings.Join(cdc, ", "), strings.Join(other, ", "), strings.Join(other, ", "), strings.Join(cdc, ", "))
		out := map[nopii.TableName]error{}
		for _, st := range sub.Tables {
			if e := byName[st.Table.Name].entry; e != nil && e.EffectiveMode() == config.ModeCDC {
				out[st.Table.Name] = err
			}
		}
		return out
	}
	if len(why) == 0 {
		return nil
	}
	err := errors.New(strings.Join(why, "; "))
	out := map[nopii.TableName]error{}
	for _, st := range sub.Tables {
		out[st.Table.Name] = err
	}
	return out
}

// subsetTable is the job's table in its subset, or nil.
func (j *job) subsetTable() *nopii.SubsetTable {
	return j.subset.Table(j.rel.Name)
}

// resync finds the buckets of a subset table's keys that changed since
// the state was saved (rows that entered or left the subset, including
// rows that did not change themselves: the parent a new row needs, the
// orders of a customer who now matches the predicate). It returns the new
// digests to save, and the buckets to read again; all is true when there
// is nothing to compare with (every row of the subset is read).
func resync(ctx context.Context, src nopii.Source, j *job, prev *nopii.TableState) (bits int, digests map[uint32]nopii.KeyDigest, buckets []uint32, all bool, err error) {
	kd, ok := src.(keyDigester)
	if !ok {
		return 0, nil, nil, true, nil
	}
	bits = bucketBits(j.table.EstRows)
	if prev != nil && prev.SubsetBits > 0 {
		bits = prev.SubsetBits
	}
	g, err := kd.KeyDigests(ctx, j.table, nopii.Selection{KeysOnly: true, Subset: j.subset}, bits)
	if err != nil {
		return 0, nil, nil, false, err
	}
	if prev == nil || prev.SubsetBits != bits || prev.SubsetDigests == nil {
		return bits, g.Buckets, nil, true, nil
	}
	buckets = keydigest.Differ(g, nopii.KeyDigests{Hasher: g.Hasher, Buckets: prev.SubsetDigests})
	return bits, g.Buckets, buckets, false, nil
}

// selectSubset narrows a table copy to the job's subset. A delta of a
// subset table also reads again the buckets whose subset keys changed
// since the last run, and saves this run's digests in the state; a full
// copy of a delta table saves them for the next delta.
func (tc *tableCopy) selectSubset(ctx context.Context, sel *nopii.Selection) error {
	j, d := tc.j, tc.d
	if j.subsetTable() == nil {
		return nil
	}
	sel.Subset, sel.WindowSince, sel.WindowBy = j.subset, time.Time{}, nil
	if j.entry == nil || j.entry.EffectiveMode() != config.ModeDelta {
		return nil
	}
	prev := d.prev
	if d.mode != ModeDelta {
		prev = nil
	}
	bits, digests, buckets, all, err := resync(ctx, tc.src, j, prev)
	if err != nil {
		return err
	}
	tc.target.State.SubsetBits, tc.target.State.SubsetDigests = bits, digests
	if d.mode != ModeDelta {
		return nil
	}
	if all {
		sel.Since = nil
		tc.tr.Note = joinNote(tc.tr.Note, "subset: every row read again (no digests to compare)")
		return nil
	}
	sel.BucketBits, sel.Resync = bits, buckets
	if len(buckets) > 0 {
		tc.tr.Note = joinNote(tc.tr.Note, fmt.Sprintf("subset: %d of %d key buckets changed and were read again", len(buckets), 1<<bits))
	}
	return nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
