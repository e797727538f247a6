package twin_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestDeferredLoads: loads of deferred targets change nothing readers see
// until Publish, which makes a full copy and a delta visible together with
// their states; a forget between the loads and the publish deletes from
// what they hold too; a run that does not publish leaves nothing
// (Discard), and what a killed run left is dropped by the workflow's next
// run lock.
func TestDeferredLoads(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	ctx := testContext(t)
	f, err := twin.Open(ctx, dsn, twin.Options{Logger: quiet, IndexBuilds: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	full, delta := fullAndDelta(t, f, "d")

	run := func(pub bool) {
		t.Helper()
		full.Deferred, delta.Deferred = true, true
		mustLoad(t, f, full, noteRows(1, 5, "new"))
		mustDelta(t, f, delta, noteRows(2, 4, "new"))
		for _, name := range []nopii.TableName{full.Name, delta.Name} {
			if got := notes(t, db, name); !slices.Equal(got, noteLines(1, 3, "old")) {
				t.Fatalf("%s before the publish: %q", name, got)
			}
		}
		if !pub {
			return
		}
		// A subject forgotten now: its rows are in the shadow and the stage.
		forget := func(tg nopii.Target) nopii.ForgetTable {
			return nopii.ForgetTable{Key: nopii.StateKey{Workflow: "w", Input: "in", Table: tg.Table.Name}, Target: tg.Name, Keys: []string{"4"}, Forgotten: []string{"h4"}}
		}
		if _, err := f.Forget(ctx, nopii.Forget{Workflow: "w", RequestID: "5b0a3c9e-0000-4000-8000-000000000002", At: time.Now(),
			Tables: []nopii.ForgetTable{forget(full), forget(delta)}}); err != nil {
			t.Fatal(err)
		}
		out, err := f.Publish(ctx, nopii.Publication{Prefix: prefix, Tables: []nopii.PublishedTable{{Name: full.Table.Name}, {Name: delta.Table.Name}}})
		if err != nil {
			t.Fatal(err)
		}
		if r := out[delta.Table.Name]; !r.Applied || r.Upserted != 2 || r.Err != nil {
			t.Errorf("the delta at publish: %+v, want applied, 2 upserted (4 forgotten)", r)
		}
	}
	// Not published: the next run of the workflow finds nothing left.
	run(false)
	f.Discard(ctx)
	if n := queryInt(t, db, `SELECT count(*) FROM pg_class WHERE relname ~ '^_nopii_(new|stage|keys)_' AND relkind = 'r'`); n != 0 {
		t.Errorf("%d shadow or stage tables left by a discarded run", n)
	}
	// Killed before its publish: the workflow's next run lock drops them.
	run(false)
	if n := queryInt(t, db, "SELECT count(*) FROM nopii.pending WHERE workflow = 'w'"); n != 2 {
		t.Errorf("nopii.pending names %d relations of the unpublished run, want 2", n)
	}
	g, err := twin.Open(ctx, dsn, twin.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	unlock, err := g.Lock(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if n := queryInt(t, db, `SELECT count(*) FROM pg_class WHERE relname ~ '^_nopii_(new|stage|keys)_' AND relkind = 'r'`) +
		queryInt(t, db, "SELECT count(*) FROM nopii.pending"); n != 0 {
		t.Errorf("%d leftovers after the next run's lock", n)
	}
	f.Discard(ctx) // the killed run's feed: its relations are gone already

	full.State.Rows = 4
	run(true)
	if got, want := notes(t, db, full.Name), slices.Delete(noteLines(1, 5, "new"), 3, 4); !slices.Equal(got, want) {
		t.Errorf("full copy after the publish: %q, want %q", got, want)
	}
	want := append(noteLines(1, 1, "old"), noteLines(2, 3, "new")...)
	if got := notes(t, db, delta.Name); !slices.Equal(got, want) {
		t.Errorf("delta after the publish: %q, want %q", got, want)
	}
	if n := queryInt(t, db, "SELECT (state->>'rows')::int FROM nopii.table_state WHERE source_table = 'public.full_d'"); n != 4 {
		t.Errorf("the full copy's state says %d rows: the publish did not save it", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM nopii.pending"); n != 0 {
		t.Errorf("nopii.pending names %d relations after the publish", n)
	}
	assertNoLeftovers(t, db)
}

// TestPublishFailsOneTable: a deferred delta that breaks a constraint of
// the twin at publish is not applied (its error says why, its stage is
// dropped, its state stays), and the rest of the run is published.
func TestPublishFailsOneTable(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	ctx := testContext(t)
	f := mustOpen(t, dsn, 0)
	full, delta := fullAndDelta(t, f, "f")
	mustExec(t, db, `ALTER TABLE `+delta.Name.Quoted()+` ADD CONSTRAINT made_in_twin CHECK (body <> 'bad')`)
	full.Deferred, delta.Deferred = true, true
	full.State.Rows, delta.State.Rows = 5, 5
	mustLoad(t, f, full, noteRows(1, 5, "new"))
	mustDelta(t, f, delta, noteRows(4, 5, "bad"))
	out, err := f.Publish(ctx, nopii.Publication{Prefix: prefix, Tables: []nopii.PublishedTable{{Name: full.Table.Name}, {Name: delta.Table.Name}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := out[delta.Table.Name]; r.Err == nil || r.Applied {
		t.Errorf("the delta that breaks made_in_twin: %+v, want an error and not applied", r)
	} else if !strings.Contains(r.Err.Error(), "made_in_twin") {
		t.Errorf("the error does not name the constraint: %v", r.Err)
	}
	if got := notes(t, db, delta.Name); !slices.Equal(got, noteLines(1, 3, "old")) {
		t.Errorf("the failed delta's table: %q, want its previous version", got)
	}
	if got := notes(t, db, full.Name); !slices.Equal(got, noteLines(1, 5, "new")) {
		t.Errorf("the full copy beside it: %q, want it published", got)
	}
	for table, want := range map[string]int64{"public.full_f": 5, "public.delta_f": 3} {
		if n := queryInt(t, db, "SELECT (state->>'rows')::int FROM nopii.table_state WHERE source_table = $1", table); n != want {
			t.Errorf("%s: state says %d rows, want %d", table, n, want)
		}
	}
	if n := queryInt(t, db, "SELECT count(*) FROM nopii.pending"); n != 0 {
		t.Errorf("nopii.pending names %d relations after the publish", n)
	}
	assertNoLeftovers(t, db)
}

// mustDelta loads rows into the feed's copy of tg by a delta.
func mustDelta(t *testing.T, f *twin.Feed, tg nopii.Target, rows [][][]byte) {
	t.Helper()
	d, err := f.Delta(testContext(t), tg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	for _, r := range rows {
		if err := d.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

// fullAndDelta prepares two notes tables, full_<suffix> and
// delta_<suffix>, with states, and loads rows 1-3 of "old" into both.
func fullAndDelta(t *testing.T, f *twin.Feed, suffix string) (full, delta nopii.Target) {
	t.Helper()
	full, delta = target(notesTable("full_"+suffix)), target(notesTable("delta_"+suffix))
	for _, tg := range []*nopii.Target{&full, &delta} {
		tg.State = &nopii.TableState{Workflow: "w", Input: "in", Table: tg.Table.Name, Rows: 3}
	}
	mustPrepare(t, f, full, delta)
	mustLoad(t, f, full, noteRows(1, 3, "old"))
	mustLoad(t, f, delta, noteRows(1, 3, "old"))
	return full, delta
}
