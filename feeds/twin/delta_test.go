package twin_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgtest"
)

// delta runs one delta load of rows (no delete detection) and returns what
// it applied.
func delta(t *testing.T, f *twin.Feed, tg nopii.Target, rows [][][]byte) (upserted int64) {
	t.Helper()
	ctx := testContext(t)
	l, err := f.Delta(ctx, tg, false)
	if err != nil {
		t.Fatalf("delta: %v", err)
	}
	defer l.Abort()
	for _, r := range rows {
		if err := l.WriteRow(r); err != nil {
			t.Fatalf("write row: %v", err)
		}
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatalf("commit delta: %v", err)
	}
	up, _ := l.(interface{ Applied() (int64, int64) }).Applied()
	return up
}

// loadedNotes opens a feed on a new database and fully copies rows 1–3
// (body "x") of a notes table into it.
func loadedNotes(t *testing.T, name string) (*twin.Feed, *pgx.Conn, nopii.Target) {
	t.Helper()
	dsn := pgtest.MustDatabase(t)
	f, db := mustOpen(t, dsn, 0), mustConnect(t, dsn)
	tg := target(notesTable(name))
	mustPrepare(t, f, tg)
	mustLoad(t, f, tg, noteRows(1, 3, "x"))
	return f, db, tg
}

// TestDeltaApply: a delta updates the rows that changed, inserts the new
// ones, and leaves alone (and does not count) rows read again unchanged,
// as the cursor overlap does on every run; with MERGE (PostgreSQL 15+) and
// with the UPDATE + INSERT that older twins get.
func TestDeltaApply(t *testing.T) {
	for _, merge := range []bool{true, false} {
		name := "merge"
		if !merge {
			name = "update_insert"
		}
		t.Run(name, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			f, db := mustOpen(t, dsn, 0), mustConnect(t, dsn)
			if !merge {
				twin.ApplyWithoutMerge(f)
			}
			tg := target(notesTable("notes"))
			mustPrepare(t, f, tg)
			mustLoad(t, f, tg, noteRows(1, 5, "old"))
			// Rows 4 and 5 as they are (the overlap), 2 and 3 changed, 6 new.
			rows := slices.Concat(noteRows(4, 5, "old"), noteRows(2, 3, "new"), noteRows(6, 6, "new"))
			if up := delta(t, f, tg, rows); up != 3 {
				t.Errorf("upserted %d, want 3 (2 updated, 1 inserted; the 2 unchanged rows not rewritten)", up)
			}
			want := slices.Concat(noteLines(1, 1, "old"), noteLines(2, 3, "new"), noteLines(4, 5, "old"), noteLines(6, 6, "new"))
			if got := notes(t, db, tg.Name); !slices.Equal(got, want) {
				t.Errorf("twin after the delta:\n got %q\nwant %q", got, want)
			}
			// The unchanged rows kept their row versions: nothing rewrote them.
			if n := queryInt(t, db, "SELECT count(*) FROM "+tg.Name.Quoted()+" WHERE xmin = (SELECT xmin FROM "+tg.Name.Quoted()+" WHERE id = 1)"); n != 3 {
				t.Errorf("%d rows still in the full copy's row versions, want 3 (1, 4 and 5)", n)
			}
			// A NULL that becomes a value, and back, is a change too.
			if up := delta(t, f, tg, [][][]byte{{int8Value(1), nil, keyValue(1)}}); up != 1 {
				t.Errorf("NULLing a value: upserted %d, want 1", up)
			}
			if up := delta(t, f, tg, [][][]byte{{int8Value(1), nil, keyValue(1)}}); up != 0 {
				t.Errorf("the same NULL again: upserted %d, want 0", up)
			}
			if got := notes(t, db, tg.Name)[0]; got != "1 NULL 1" {
				t.Errorf("row 1 = %q, want 1 NULL 1", got)
			}
			assertNoLeftovers(t, db)
		})
	}
}

// TestDeltaWithoutRows: a delta that reads no row creates no stage and
// costs one transaction, which still saves the state.
func TestDeltaWithoutRows(t *testing.T) {
	f, db, tg := loadedNotes(t, "quiet")
	tbl := tg.Table
	tg.State = &nopii.TableState{Workflow: "w", Input: "in", Table: tbl.Name, Mode: "delta", Fingerprint: tbl.Fingerprint(),
		Cursors: map[string]string{"updated_at": "2026-01-02 03:04:05+00"}}
	if up := delta(t, f, tg, nil); up != 0 {
		t.Errorf("upserted %d, want 0", up)
	}
	st, err := f.State(testContext(t), nopii.StateKey{Workflow: "w", Input: "in", Table: tbl.Name})
	if err != nil || st == nil || st.Cursors["updated_at"] != "2026-01-02 03:04:05+00" || st.Mode != "delta" {
		t.Fatalf("state after a delta of no rows = %+v, %v; want the new cursor saved", st, err)
	}
	if got := notes(t, db, tg.Name); !slices.Equal(got, noteLines(1, 3, "x")) {
		t.Errorf("twin = %q, want it unchanged", got)
	}
}

// TestFeedReusesConnections: state lookups, Prepare and loads share the
// feed's idle connections instead of opening one each; a load that failed
// closes its connection rather than hand it on.
func TestFeedReusesConnections(t *testing.T) {
	f, db, tg := loadedNotes(t, "reuse")
	tbl := tg.Table
	for range 3 {
		if _, err := f.State(testContext(t), nopii.StateKey{Workflow: "w", Input: "in", Table: tbl.Name}); err != nil {
			t.Fatal(err)
		}
		delta(t, f, tg, noteRows(2, 2, "y"))
	}
	sessions := `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nopii' AND datname = current_database()`
	if n := queryInt(t, db, sessions); n != 1 {
		t.Errorf("%d feed sessions after sequential loads, want 1 (reused)", n)
	}
	pids := `SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE application_name = 'nopii' AND datname = current_database()`
	before := queryStrings(t, db, pids)

	// A load that fails mid-way: its connection goes, the next load gets a
	// fresh one and works.
	l, err := f.Delta(testContext(t), tg, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteRow([][]byte{int8Value(9), []byte("z")}); err != nil { // no key column
		t.Logf("write: %v", err)
	}
	if err := l.Commit(testContext(t)); err == nil {
		t.Fatal("commit of a row without its key succeeded")
	}
	assertNoLeftovers(t, db)
	eventually(t, "the failed load's session to end", func() bool { return !slices.Equal(queryStrings(t, db, pids), before) })
	delta(t, f, tg, noteRows(3, 3, "after failure"))
	if got := notes(t, db, tg.Name); !slices.Equal(got, slices.Concat(noteLines(1, 1, "x"), noteLines(2, 2, "y"), noteLines(3, 3, "after failure"))) {
		t.Errorf("twin = %q", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Close to end the idle sessions", func() bool { return queryInt(t, db, sessions) == 0 })
}

// eventually waits up to 10s for cond: a closed connection's server
// process ends a moment after the client hangs up.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
