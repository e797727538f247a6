package twin_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
)

// writersLoad is the agent's seam for parallel writers (agent/ranges.go).
type writersLoad interface {
	Writers(ctx context.Context, n int) ([]nopii.RowWriter, error)
}

// parallelLoad starts a full copy through n writers, each writing its
// share of rows at once, and returns the load, uncommitted.
func parallelLoad(t *testing.T, f interface {
	FullCopy(context.Context, nopii.Target) (nopii.Load, error)
}, tg nopii.Target, n int, rows [][][]byte) nopii.Load {
	t.Helper()
	ctx := testContext(t)
	l, err := f.FullCopy(ctx, tg)
	if err != nil {
		t.Fatalf("full copy: %v", err)
	}
	wl, ok := l.(writersLoad)
	if !ok {
		t.Fatalf("the twin's full load %T takes no parallel writers", l)
	}
	ws, err := wl.Writers(ctx, n)
	if err != nil || len(ws) != n {
		t.Fatalf("writers: %d, %v", len(ws), err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, w := range ws {
		wg.Go(func() {
			for k := i; k < len(rows); k += n {
				if errs[i] = w.WriteRow(rows[k]); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	return l
}

// TestParallelWriters loads a table through several connections at once:
// the result is the whole table with its unique key; an aborted load and a
// load whose process died (its connections cut) leave the previous copy
// intact, and the next load drops the shadow the dead one left.
func TestParallelWriters(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	f := mustOpen(t, dsn, 0)
	tg := target(notesTable("par"))
	mustPrepare(t, f, tg)
	mustLoad(t, f, tg, noteRows(1, 100, "old"))

	l := parallelLoad(t, f, tg, 3, noteRows(1, 3000, "new"))
	if err := l.Commit(testContext(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := notes(t, db, tg.Name); !slices.Equal(got, noteLines(1, 3000, "new")) {
		t.Fatalf("after a parallel load the twin has %d rows, want the 3000 new ones", len(got))
	}
	if n := queryInt(t, db, `SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'u'`, tg.Name.Quoted()); n != 1 {
		t.Errorf("the loaded table has %d unique constraints, want 1 (on source_primary_key)", n)
	}
	assertNoLeftovers(t, db)

	l = parallelLoad(t, f, tg, 2, noteRows(1, 500, "aborted"))
	l.Abort()
	if got := notes(t, db, tg.Name); !slices.Equal(got, noteLines(1, 3000, "new")) {
		t.Fatalf("after an aborted parallel load the twin has %d rows, want the previous 3000", len(got))
	}
	assertNoLeftovers(t, db)

	// The process dies mid-copy: every connection of the feed is cut.
	dead := mustOpen(t, dsn, 0)
	mustPrepare(t, dead, tg)
	l = parallelLoad(t, dead, tg, 2, noteRows(1, 500, "dead"))
	mustExec(t, db, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nopii' AND datname = current_database() AND pid <> pg_backend_pid()`)
	if got := notes(t, db, tg.Name); !slices.Equal(got, noteLines(1, 3000, "new")) {
		t.Fatalf("after a killed parallel load the twin has %d rows, want the previous 3000", len(got))
	}
	if n := queryInt(t, db, `SELECT count(*) FROM pg_class WHERE relname = '_nopii_new_par'`); n != 1 {
		t.Fatalf("the killed load left %d shadow tables, want its committed one (else this proves nothing)", n)
	}
	next := mustOpen(t, dsn, 0)
	mustPrepare(t, next, tg)
	mustLoad(t, next, tg, noteRows(1, 10, "next"))
	if got := notes(t, db, tg.Name); !slices.Equal(got, noteLines(1, 10, "next")) {
		t.Fatalf("the load after the killed one left %d rows, want 10", len(got))
	}
	assertNoLeftovers(t, db)
	l.Abort() // on dead connections: nothing left to do
}
