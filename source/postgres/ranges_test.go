package postgres_test

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/source/postgres"
)

func mustOpenRanges(t *testing.T, dsn string, readers int, rangePages uint32) *postgres.Source {
	t.Helper()
	src, err := postgres.Open(testContext(t), dsn, postgres.Options{Name: "test", Readers: readers, Logger: quiet, RangePages: rangePages})
	if err != nil {
		t.Fatalf("open source: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// copyPages reads every range at once and returns the rows rendered, sorted.
func copyPages(t *testing.T, src *postgres.Source, tbl *nopii.Table, ranges []nopii.PageRange, during func()) []string {
	t.Helper()
	ctx := testContext(t)
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	var started atomic.Int32
	errs := make([]error, len(ranges))
	for i, r := range ranges {
		wg.Go(func() {
			first := true
			_, errs[i] = src.CopyPages(ctx, tbl, r, func(values [][]byte) error {
				if first {
					first = false
					if started.Add(1) == int32(len(ranges)) && during != nil {
						during() // every range is streaming: change the table under them
					}
				}
				s, err := render(tbl, values)
				if err != nil {
					return err
				}
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("copy range %v: %v", ranges[i], err)
		}
	}
	slices.Sort(out)
	return out
}

// TestPageRanges checks that a table read as several page ranges at once
// gives exactly the rows one stream gives, as of the snapshot, while a
// writer inserts, updates and deletes rows (which moves them to new pages).
func TestPageRanges(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	mustExec(t, db,
		`CREATE TABLE big (id int8 PRIMARY KEY, name text NOT NULL, note text)`,
		`INSERT INTO big SELECT i, 'name ' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE repeat('x', i % 50) END FROM generate_series(1, 20000) i`,
		`CREATE TABLE small (id int8 PRIMARY KEY)`,
		`INSERT INTO small SELECT generate_series(1, 10)`,
		`CREATE VIEW big_view AS SELECT * FROM big`)
	pages := queryInt(t, db, `SELECT pg_relation_size('big') / 8192`)
	if pages < 64 {
		t.Fatalf("big has %d pages: too few to split in 4 ranges of 16", pages)
	}

	src := mustOpenRanges(t, dsn, 4, 16)
	ctx := testContext(t)
	big := mustDescribe(t, src, "public", "big")
	want := renderAll(t, big, mustCopy(t, src, big))
	if len(want) != 20000 {
		t.Fatalf("one stream read %d rows, want 20000", len(want))
	}

	ranges, err := src.PageRanges(ctx, big, 4)
	if err != nil {
		t.Fatalf("page ranges: %v", err)
	}
	if len(ranges) != 4 || ranges[0].From != 0 || ranges[3].To != 0 {
		t.Fatalf("ranges = %v, want 4 from page 0, the last open-ended", ranges)
	}
	for i := 1; i < len(ranges); i++ {
		if ranges[i].From != ranges[i-1].To || ranges[i].From == 0 {
			t.Fatalf("ranges = %v: not contiguous", ranges)
		}
	}

	// Each range reads its own pages only (a TID Range Scan), not the table.
	var plan string
	q := strings.TrimSuffix(strings.TrimPrefix(postgres.CopyPagesSQL(big, ranges[1]), "COPY ("), ") TO STDOUT (FORMAT binary)")
	if err := db.QueryRow(ctx, "EXPLAIN (FORMAT text) "+q).Scan(&plan); err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	if !strings.Contains(plan, "Tid Range Scan") {
		t.Errorf("plan of a range: %s, want a Tid Range Scan", plan)
	}

	var writes atomic.Int64
	got := copyPages(t, src, big, ranges, func() {
		mustExec(t, mustConnect(t, dsn),
			`INSERT INTO big SELECT i, 'late ' || i, NULL FROM generate_series(20001, 22000) i`,
			`UPDATE big SET name = 'moved ' || id WHERE id % 10 = 0`,
			`DELETE FROM big WHERE id % 10 = 1`)
		writes.Add(1)
	})
	if writes.Load() != 1 {
		t.Fatal("the writer never ran while every range streamed: the test proves nothing")
	}
	if n := queryInt(t, db, `SELECT count(*) FROM big WHERE name LIKE 'moved %' OR id > 20000`); n != 3800 {
		t.Fatalf("the writer's changes are not visible outside the snapshot (%d of 3800 rows)", n)
	}
	if len(got) != len(want) {
		t.Fatalf("the ranges read %d rows, one stream %d", len(got), len(want))
	}
	if !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("first difference at sorted row %d: ranges %q, one stream %q", i, got[i], want[i])
			}
		}
	}

	// One stream: too few ranges asked for, too small a table, a view.
	for _, c := range []struct {
		name string
		tbl  *nopii.Table
		n    int
	}{
		{"one range asked for", big, 1},
		{"small table", mustDescribe(t, src, "public", "small"), 4},
		{"view", mustDescribe(t, src, "public", "big_view", "id"), 4},
	} {
		r, err := src.PageRanges(ctx, c.tbl, c.n)
		if err != nil || r != nil {
			t.Errorf("%s: ranges %v, error %v; want none (one stream)", c.name, r, err)
		}
	}
	// The default threshold keeps a 20,000-row table one stream.
	def := mustOpen(t, dsn, 4)
	if r, err := def.PageRanges(ctx, mustDescribe(t, def, "public", "big"), 4); err != nil || r != nil {
		t.Errorf("default threshold: ranges %v, error %v; want none for a %d-page table", r, err, pages)
	}
}

func TestCopyPagesSQL(t *testing.T) {
	tbl := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "t"}, Columns: []nopii.Column{{Name: "id"}}, PrimaryKey: []string{"id"}}
	for _, c := range []struct {
		r    nopii.PageRange
		want string
	}{
		{nopii.PageRange{From: 0, To: 100}, `WHERE ctid >= '(0,0)' AND ctid < '(100,0)')`},
		{nopii.PageRange{From: 100}, `WHERE ctid >= '(100,0)')`},
	} {
		if got := postgres.CopyPagesSQL(tbl, c.r); !strings.Contains(got, c.want) || !strings.HasPrefix(got, `COPY (SELECT "id", "id"::text FROM ONLY "public"."t"`) {
			t.Errorf("CopyPagesSQL(%v) = %s, want … %s", c.r, got, c.want)
		}
	}
}
