package twin_test

import (
	"slices"
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
	full, delta := target(notesTable("full_d")), target(notesTable("delta_d"))
	for _, tg := range []*nopii.Target{&full, &delta} {
		tg.State = &nopii.TableState{Workflow: "w", Input: "in", Table: tg.Table.Name, Rows: 1}
	}
	mustPrepare(t, f, full, delta)
	mustLoad(t, f, full, noteRows(1, 3, "old"))
	mustLoad(t, f, delta, noteRows(1, 3, "old"))

	run := func(pub bool) {
		t.Helper()
		full.Deferred, delta.Deferred = true, true
		mustLoad(t, f, full, noteRows(1, 5, "new"))
		d, err := f.Delta(ctx, delta, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range noteRows(2, 4, "new") {
			if err := d.WriteRow(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
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
