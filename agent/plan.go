package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// DefaultOverlap is how far behind its cursor a delta reads again: rows
// stamped by a transaction that began before the last run's snapshot but
// committed after it carry a time before the cursor. The oldest writing
// transaction seen at snapshot time already holds the cursor back (when the
// role may see it); the overlap covers the rest and clock skew between
// writers. Rows read twice are upserted twice: harmless.
const DefaultOverlap = 2 * time.Minute

// decision is what a run does with a table, and why.
type decision struct {
	mode     Mode // full | delta (| cdc, for plan)
	reason   string
	drift    bool
	since    []nopii.Cursor
	window   time.Time
	windowBy []string
	deletes  bool              // stream keys for the anti-join (detect_deletes, window or subset)
	prev     *nopii.TableState // the oldest feed state, nil on a first run
	subset   *nopii.Subset     // the input's subset, when it reaches the table
	// unruled are the table's columns without a rule, as the guard judged
	// them (guard.go).
	unruled []unruledColumn
}

// decide reads the feeds' state and chooses full or delta for a job.
func decide(ctx context.Context, src nopii.Source, feeds []nopii.Feed, wf *config.Workflow, j *job, now time.Time) (*decision, error) {
	d := &decision{}
	e := j.entry
	mode := config.ModeFull
	if e != nil {
		mode = e.EffectiveMode()
	}
	if j.subsetTable() == nil {
		// In a subset, the window is the subset's: it limits the table's
		// root and child rows, not the rows that others reference.
		d.window, d.windowBy = windowOf(e, now)
	}
	var prev *nopii.TableState
	var states []*nopii.TableState // one per feed; nil where a feed has none
	missing := ""
	for _, f := range feeds {
		st, err := f.State(ctx, nopii.StateKey{Workflow: wf.Name, Input: j.input, Table: j.rel.Name})
		if err != nil {
			return nil, err
		}
		states = append(states, st)
		if st == nil {
			missing = f.Kind()
			continue
		}
		if prev == nil || st.LastRun.Before(prev.LastRun) {
			prev = st // the oldest state among feeds: safe for cursors
		}
	}
	fp := j.table.Fingerprint()
	switch {
	case missing != "" || prev == nil:
		d.mode, d.reason = ModeFull, "first run"
		if prev != nil {
			d.reason = "first run for the " + missing + " feed"
		}
	case prev.Fingerprint != fp:
		d.mode, d.drift = ModeFull, true
		d.reason = "full copy: schema changed (" + describeDrift(prev, j.table) + ")"
	case faithful(feeds) && prev.SchemaDigest != nil && !maps.Equal(prev.SchemaDigest, j.table.Schema.Digest()):
		// A faithful twin rebuilds the table with the source's new indexes
		// and constraints.
		d.mode, d.drift = ModeFull, true
		d.reason = "full copy: indexes or constraints changed in the source (" + describeObjectDrift(prev.SchemaDigest, j.table.Schema.Digest()) + ")"
	case mode == config.ModeDelta:
		d.mode = ModeDelta
		var from []string
		for _, col := range []string{e.UpdatedAt, e.CreatedAt} {
			if col == "" {
				continue
			}
			after, ok := prev.Cursors[col]
			if !ok || after == "" {
				// No cursor for this column yet (it was all NULL): read everything.
				d.since = nil
				from = []string{"no cursor yet: all rows"}
				break
			}
			d.since = append(d.since, nopii.Cursor{Column: col, After: after, Overlap: DefaultOverlap})
			from = append(from, col+" > "+after)
		}
		d.reason = "delta from cursor " + strings.Join(from, " or ")
	default:
		d.mode, d.reason = ModeFull, fullReason(e, j.table)
		if mode == config.ModeCDC {
			d.mode, d.reason = ModeCDC, "cdc: stream changes from the replication slot"
		}
	}
	if e != nil && d.mode == ModeDelta {
		d.deletes = e.DetectDeletes || e.Window > 0
	}
	d.prev, d.subset = prev, j.subset
	if d.mode == ModeDelta && j.subsetTable() != nil {
		// Rows leave a subset without being deleted (a predicate no longer
		// matched, a parent no longer referenced): remove them, as
		// detect_deletes does.
		d.deletes = true
		d.reason += "; rows that left the subset are removed"
	}
	if err := judgeUnruled(ctx, src, wf, j, states, d); err != nil {
		return nil, err
	}
	return d, nil
}

// fullReason says why a table that has been copied before is copied in
// full again, and how to make it a delta.
func fullReason(e *config.Table, t *nopii.Table) string {
	if e != nil && e.Mode == config.ModeFull {
		return "mode full (set in the file): every run is a full copy"
	}
	var stamps []string
	var updated, created string // by their names, the likely cursors
	for _, c := range t.Columns {
		switch c.Type.Underlying().Name {
		case "date", "timestamp", "timestamptz":
			stamps = append(stamps, c.Name)
			name := strings.ToLower(c.Name)
			switch {
			case updated == "" && containsAny(name, "updated", "modified", "changed", "mtime"):
				updated = c.Name
			case created == "" && containsAny(name, "created", "inserted", "ctime"):
				created = c.Name
			}
		}
	}
	var how string
	switch {
	case len(stamps) == 0:
		how = "the table has no date or timestamp column to set them to"
	case updated != "" && created != "":
		how = fmt.Sprintf("for a delta, set updated_at: %s and created_at: %s", updated, created)
	case updated != "":
		how = fmt.Sprintf("for a delta, set updated_at: %s", updated)
	case created != "":
		how = fmt.Sprintf("for a delta of new rows, set created_at: %s (rows changed later need an updated_at column that every write sets)", created)
	default:
		how = "for a delta, set updated_at to a column that every write of a row sets (and created_at to one set on insert), if one of " +
			strings.Join(stamps, ", ") + " is"
	}
	if e == nil && len(stamps) > 0 {
		how += ", in an entry naming the table"
	}
	return "full copy every run: no updated_at or created_at is set; " + how
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// describeObjectDrift names the schema objects added, dropped or changed
// between two digests (nopii.Schema.Digest).
func describeObjectDrift(before, now map[string]string) string {
	var parts []string
	for _, what := range slices.Sorted(maps.Keys(now)) {
		switch old, ok := before[what]; {
		case !ok:
			parts = append(parts, what+" added")
		case old != now[what]:
			parts = append(parts, what+" changed")
		}
	}
	for _, what := range slices.Sorted(maps.Keys(before)) {
		if _, ok := now[what]; !ok {
			parts = append(parts, what+" dropped")
		}
	}
	return strings.Join(parts, ", ")
}

// describeDrift says what changed between the saved and the current shape.
func describeDrift(prev *nopii.TableState, t *nopii.Table) string {
	before := map[string]nopii.ColumnShape{}
	for _, c := range prev.Columns {
		before[c.Name] = c
	}
	now := map[string]bool{}
	var parts []string
	for _, c := range t.Shape() {
		now[c.Name] = true
		o, ok := before[c.Name]
		switch {
		case !ok:
			parts = append(parts, "added column "+c.Name)
		case o.Type != c.Type:
			parts = append(parts, fmt.Sprintf("type of %s %s → %s", c.Name, o.Type, c.Type))
		case o.NotNull != c.NotNull:
			if c.NotNull {
				parts = append(parts, c.Name+" became NOT NULL")
			} else {
				parts = append(parts, c.Name+" became nullable")
			}
		}
	}
	for _, c := range prev.Columns {
		if !now[c.Name] {
			parts = append(parts, "dropped column "+c.Name)
		}
	}
	if strings.Join(prev.PrimaryKey, ",") != strings.Join(t.PrimaryKey, ",") {
		parts = append(parts, fmt.Sprintf("key (%s) → (%s)", strings.Join(prev.PrimaryKey, ", "), strings.Join(t.PrimaryKey, ", ")))
	}
	if len(parts) == 0 {
		parts = append(parts, "column order")
	}
	return strings.Join(parts, ", ")
}

// newCursors computes the cursors to save: the largest value of each cursor
// column in the snapshot, held back to the start of the oldest transaction
// that was writing when the snapshot was taken.
func newCursors(ctx context.Context, src nopii.Source, j *job) (map[string]string, error) {
	if j.entry == nil {
		return nil, nil
	}
	out := map[string]string{}
	for _, col := range []string{j.entry.UpdatedAt, j.entry.CreatedAt} {
		if col == "" {
			continue
		}
		hwm, err := src.Max(ctx, j.table, col, nil)
		if err != nil {
			return nil, err
		}
		out[col] = holdBack(hwm, src.InFlightSince())
	}
	return out, nil
}

// holdBack returns the earlier of a cursor (the source's text for a date,
// timestamp or timestamptz in UTC) and an in-flight start time, in the
// cursor's own format.
func holdBack(cursor string, inFlight time.Time) string {
	if cursor == "" || inFlight.IsZero() {
		return cursor
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999", "2006-01-02"} {
		t, err := time.Parse(layout, cursor)
		if err != nil {
			continue
		}
		if inFlight.Before(t) {
			return inFlight.UTC().Format(layout)
		}
		return cursor
	}
	return cursor
}
