package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/nopii/nopii"
)

// A referential subset in mode cdc (docs/subsets.md, "Mode cdc"): the
// stream does not apply a subset table's changes as they come, since
// whether a row belongs to the subset depends on other rows. At each
// flush it takes the keys the batch changed and asks the source, in one
// snapshot of its current state, which of them and of the rows their
// changes reach are in the subset now:
//
//   - the rows that reference a changed row through a reference the
//     subset follows down (the orders of a customer who now matches the
//     predicate, or no longer does), transitively down;
//   - the rows that a row in the subset references (the parent a new
//     order needs), transitively up;
//   - the rows that a changed or departing row referenced before the
//     batch, which the twin knows (a parent its last child left), up.
//
// Rows in the subset are upserted with their current values; the others
// are deleted. Values read now may be newer than the batch's changes; the
// stream brings the changes that made them next, and the feeds converge,
// as after a refetch.

// subsetReader is a replication that reads a subset's rows in the source's
// current state (source/postgres).
type subsetReader interface {
	SubsetRead(ctx context.Context, sub *nopii.Subset) (nopii.SubsetRead, error)
}

// referencedKeyer is a feed that says which of its rows its rows reference
// (feeds/twin).
type referencedKeyer interface {
	ReferencedKeys(ctx context.Context, child, parent nopii.TableName, cols, toCols, keys []string) ([]string, error)
	ReferencingKeys(ctx context.Context, child, parent nopii.TableName, cols, toCols, keys []string) ([]string, error)
}

// keySet is the keys of a table, in the order they were added.
type keySet struct {
	has  map[string]bool
	list []string
}

func (k *keySet) add(key string) bool {
	if k.has == nil {
		k.has = map[string]bool{}
	}
	if k.has[key] {
		return false
	}
	k.has[key] = true
	k.list = append(k.list, key)
	return true
}

// subsetWalk is one flush's walk of a subset: the keys seen per table,
// those still to check, and what the check found.
type subsetWalk struct {
	s       *stream
	sub     *nopii.Subset
	read    nopii.SubsetRead
	seen    map[nopii.TableName]*keySet
	pending map[nopii.TableName][]string            // to check
	members map[nopii.TableName]map[string][][]byte // checked, in the subset: source row
	gone    map[nopii.TableName][]string            // checked, not in the subset
}

// see queues the keys of table not seen yet for checking, and returns
// them.
func (w *subsetWalk) see(table nopii.TableName, keys []string) []string {
	ks := w.seen[table]
	if ks == nil {
		ks = &keySet{}
		w.seen[table] = ks
	}
	var fresh []string
	for _, k := range keys {
		if ks.add(k) {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) > 0 {
		w.pending[table] = append(w.pending[table], fresh...)
	}
	return fresh
}

// subsetBatch replaces the batch's changes of the subset's tables with
// the rows the subset holds now (see above).
func (s *stream) subsetBatch(ctx context.Context) error {
	if s.subset == nil {
		return nil
	}
	w := &subsetWalk{s: s, sub: s.subset, seen: map[nopii.TableName]*keySet{}, pending: map[nopii.TableName][]string{},
		members: map[nopii.TableName]map[string][][]byte{}, gone: map[nopii.TableName][]string{}}
	down := map[nopii.TableName][]string{}
	for name, t := range s.tables {
		if t.j.subset == nil || len(t.ops) == 0 {
			continue
		}
		keys := make([]string, len(t.ops))
		for i, c := range t.ops {
			keys[i] = c.key
		}
		down[name] = w.see(name, keys)
	}
	if len(w.pending) == 0 {
		return nil
	}
	sr, ok := s.rp.(subsetReader)
	if !ok {
		return errors.New("mode cdc: this source cannot read a subset's rows")
	}
	read, err := sr.SubsetRead(ctx, s.subset)
	if err != nil {
		return err
	}
	defer read.Close()
	w.read = read
	// Down, from the changed rows: the rows that reference them and may
	// have entered or left with them, transitively.
	for len(down) > 0 {
		next := map[nopii.TableName][]string{}
		for name, keys := range down {
			for _, r := range s.subset.Down {
				if r.To != name {
					continue
				}
				kids, err := read.Children(ctx, r, keys)
				if err != nil {
					return err
				}
				if fresh := w.see(r.From, kids); len(fresh) > 0 {
					next[r.From] = append(next[r.From], fresh...)
				}
			}
		}
		down = next
	}
	// What the changed rows referenced before the batch.
	if err := w.oldParents(ctx, keysOf(w.pending)); err != nil {
		return err
	}
	// Check, then up from the members (their parents) and from the rows
	// that left (what they referenced), until nothing new is reached.
	for len(w.pending) > 0 {
		batch := w.pending
		w.pending = map[nopii.TableName][]string{}
		for name, keys := range batch {
			rows, err := read.Members(ctx, name, keys)
			if err != nil {
				return err
			}
			in := w.members[name]
			if in == nil {
				in = map[string][][]byte{}
				w.members[name] = in
			}
			var found []string
			for _, row := range rows {
				k := string(row[len(row)-1])
				in[k] = row
				found = append(found, k)
			}
			var left []string
			for _, k := range keys {
				if _, ok := in[k]; !ok {
					left = append(left, k)
				}
			}
			w.gone[name] = append(w.gone[name], left...)
			for _, r := range s.subset.Up {
				if r.From != name {
					continue
				}
				parents, err := read.Parents(ctx, r, found)
				if err != nil {
					return err
				}
				w.see(r.To, parents)
			}
			if err := w.oldParents(ctx, map[nopii.TableName][]string{name: left}); err != nil {
				return err
			}
			if err := w.twinChildren(ctx, name, left); err != nil {
				return err
			}
		}
	}
	return w.replace(ctx)
}

// oldParents queues the rows that the twin's rows of keys reference
// through the subset's up references.
func (w *subsetWalk) oldParents(ctx context.Context, keys map[nopii.TableName][]string) error {
	for name, ks := range keys {
		if err := w.twinLinked(ctx, name, ks, w.sub.Up, true); err != nil {
			return err
		}
	}
	return nil
}

// twinChildren queues the rows of the twin that reference the rows of
// table (keys) the walk deletes: the source may have moved or deleted
// them since the batch (their changes come later in the stream), and the
// twin's foreign keys would refuse the delete while they stay. Checked,
// each is upserted with its current values or deleted too.
func (w *subsetWalk) twinChildren(ctx context.Context, table nopii.TableName, keys []string) error {
	if err := w.twinLinked(ctx, table, keys, w.sub.Up, false); err != nil {
		return err
	}
	return w.twinLinked(ctx, table, keys, w.sub.Down, false)
}

// twinLinked queues the twin's rows linked through refs to table's rows of
// keys: the rows they reference (up), or those referencing them.
func (w *subsetWalk) twinLinked(ctx context.Context, table nopii.TableName, keys []string, refs []nopii.Reference, up bool) error {
	if len(keys) == 0 {
		return nil
	}
	for _, r := range refs {
		near, far := r.From, r.To // up: table is the child
		if !up {
			near, far = r.To, r.From
		}
		child, parent := w.s.tables[r.From], w.s.tables[r.To]
		if near != table || child == nil || parent == nil {
			continue
		}
		for _, f := range w.s.feeds {
			rk, ok := f.(referencedKeyer)
			if !ok {
				continue
			}
			linked := rk.ReferencingKeys
			if up {
				linked = rk.ReferencedKeys
			}
			found, err := linked(ctx, child.j.target.Name, parent.j.target.Name, r.Columns, r.ToColumns, keys)
			if err != nil {
				return err
			}
			w.see(far, found)
		}
	}
	return nil
}

// replace puts the walk's findings in the batch: per table, an upsert of
// each member's current row (redacted; a forgotten subject's row stays
// out), a delete of each key that is not in the subset.
func (w *subsetWalk) replace(ctx context.Context) error {
	s := w.s
	for name, ks := range w.seen {
		t := s.tables[name]
		if t == nil {
			return fmt.Errorf("table %s: reached by the subset but not streamed", name)
		}
		t.ops, t.partial = t.ops[:0], false
		clear(t.index)
		n := len(t.j.table.Columns)
		if cap(s.out) < n+1 {
			s.out = make([][]byte, n+1)
		}
		for _, k := range ks.list {
			raw, ok := w.members[name][k]
			if !ok || t.ids.forgotten(raw) {
				t.put(change{key: k})
				continue
			}
			out := s.out[:n+1]
			if err := t.c.redactRow(t.j.table, raw, out, &s.scratch); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
			if keep, err := s.unlink(ctx, t, raw, out); err != nil || !keep {
				if err != nil {
					return fmt.Errorf("table %s: %w", name, err)
				}
				t.put(change{key: k})
				continue
			}
			t.put(change{key: k, row: pack(out)})
		}
		s.log.Debug("subset rows checked", LogKeyTable, name.String(), "rows", len(ks.list), "in_subset", len(w.members[name]))
	}
	return nil
}

func keysOf(m map[nopii.TableName][]string) map[nopii.TableName][]string {
	out := make(map[nopii.TableName][]string, len(m))
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out
}
