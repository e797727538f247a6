package postgres_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/internal/subsetref"
	"github.com/nopii/nopii/source/postgres"
)

var subsetTables = []string{"region", "customer", "address", "staff", "orders", "product", "order_item", "events"}

// subsetSchema loads testdata/subset/prod.sql into a new database and
// opens a snapshot of it with every table described.
func subsetSchema(t *testing.T) (string, *postgres.Source, map[string]*nopii.Table, []subsetref.Table) {
	t.Helper()
	dsn := pgtest.MustDatabase(t)
	schema, err := os.ReadFile("../../testdata/subset/prod.sql")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, mustConnect(t, dsn), string(schema))
	src := mustOpen(t, dsn, 2)
	tables := map[string]*nopii.Table{}
	var ref []subsetref.Table
	for _, n := range subsetTables {
		tb := mustDescribe(t, src, "public", n)
		tables[n] = tb
		ref = append(ref, subsetref.Table{Name: tb.Name.String(), Key: tb.PrimaryKey})
	}
	return dsn, src, tables, ref
}

func refsOf(rs []nopii.Reference) []subsetref.Ref {
	out := make([]subsetref.Ref, len(rs))
	for i, r := range rs {
		out[i] = subsetref.Ref{From: r.From.String(), Cols: r.Columns, To: r.To.String(), ToCols: r.ToColumns}
	}
	return out
}

// The subset that CopySelect streams is, table by table, the closure that
// subsetref computes in Go from every row: FK chains, a composite key, a
// self-reference, a cycle, nullable references, a virtual reference.
func TestSubsetCopyIsTheClosure(t *testing.T) {
	dsn, src, tables, refTables := subsetSchema(t)
	ctx := testContext(t)
	catalog, err := src.References(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(catalog) != 8 {
		t.Fatalf("References = %d foreign keys, want 8: %v", len(catalog), catalog)
	}
	referrer := nopii.Reference{From: tables["customer"].Name, Columns: []string{"referrer_id"}, To: tables["customer"].Name, ToColumns: []string{"id"}, Virtual: true}
	tests := []struct {
		name     string
		root     string
		sroot    nopii.SubsetRoot
		virtual  bool
		children bool
	}{
		{name: "where with children", root: "customer", sroot: nopii.SubsetRoot{Where: "id % 10 = 0", WithChildren: true}},
		{name: "percent with children and a virtual reference", root: "customer", sroot: nopii.SubsetRoot{Percent: 10, Seed: 42, WithChildren: true}, virtual: true},
		{name: "percent without children", root: "customer", sroot: nopii.SubsetRoot{Percent: 10, Seed: 7}},
		{name: "self-reference root", root: "staff", sroot: nopii.SubsetRoot{Where: "id IN (2, 9)", WithChildren: true}},
		{name: "composite root", root: "order_item", sroot: nopii.SubsetRoot{Where: "quantity = 2 AND order_id < 50", WithChildren: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs := slices.Clone(catalog)
			if tt.virtual {
				refs = append(refs, referrer)
			}
			var cands []*nopii.SubsetTable
			rt := slices.Clone(refTables)
			for i, n := range subsetTables {
				st := &nopii.SubsetTable{Table: tables[n]}
				if n == tt.root {
					r := tt.sroot
					st.Root = &r
					rt[i].Root, rt[i].WithChildren = tt.sroot.Where, tt.sroot.WithChildren
					if tt.sroot.Percent > 0 {
						// The share is the SQL's own: subsetref checks the closure.
						rt[i].Root = shareSQL(tables[n], tt.sroot)
					}
				}
				cands = append(cands, st)
			}
			sub := nopii.NewSubset(cands, refs)
			want, err := subsetref.Closure(ctx, mustConnect(t, dsn), rt, refsOf(refs))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range subsetTables {
				tb := tables[n]
				var got []string
				t0 := time.Now()
				if sub.Table(tb.Name) != nil {
					if _, err := src.CopySelect(ctx, tb, nopii.Selection{Subset: sub, KeysOnly: true}, func(v [][]byte) error {
						got = append(got, string(v[0]))
						return nil
					}); err != nil {
						t.Fatalf("copy %s: %v\n%s", n, err, postgres.CopySQL(tb, nopii.Selection{Subset: sub}))
					}
				}
				slices.Sort(got)
				t.Logf("%s: %d rows in %s", n, len(got), time.Since(t0).Round(time.Millisecond))
				if w := want[tb.Name.String()]; !slices.Equal(got, w) {
					t.Errorf("%s: %d rows %s\nwant %d rows %s", n, len(got), abbrev(got), len(w), abbrev(w))
				}
			}
			if len(want["public.events"]) > 0 {
				t.Errorf("events, which nothing links to the subset, has rows in it")
			}
		})
	}
}

// shareSQL is the root condition of a percent, as the source renders it.
func shareSQL(t *nopii.Table, r nopii.SubsetRoot) string {
	sub := nopii.NewSubset([]*nopii.SubsetTable{{Table: t, Root: &r}}, nil)
	return postgres.SubsetCond(sub, t, nopii.QuoteIdent(t.Name.Name))
}

func nullText(v []byte) string {
	if v == nil {
		return "NULL"
	}
	return string(v)
}

func abbrev(keys []string) string {
	if len(keys) > 12 {
		return strings.Join(keys[:12], " ") + " …"
	}
	return strings.Join(keys, " ")
}

// A child of a root chosen by share alone is selected by the share of its
// reference's key text (no scan of the root) only where a validated
// foreign key of the same types promises that the referenced row exists;
// a NOT VALID key (orphans) or one of another type is followed by a
// semi-join. Either way the copy is the closure subsetref computes,
// composite keys with a NULL column (which reference nothing) included.
func TestSubsetShareByReference(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, dsn), `
		CREATE TABLE member (id bigint PRIMARY KEY);
		CREATE TABLE post (id int PRIMARY KEY, member_id bigint REFERENCES member);
		CREATE TABLE vote (id int PRIMARY KEY, member_id bigint);
		CREATE TABLE tip (id int PRIMARY KEY, member_id int REFERENCES member);
		CREATE TABLE account (region text, id int, PRIMARY KEY (region, id));
		CREATE TABLE invoice (id int PRIMARY KEY, region text, account_id int, FOREIGN KEY (region, account_id) REFERENCES account);
		INSERT INTO member SELECT generate_series(1, 200);
		INSERT INTO post SELECT i, CASE WHEN i % 9 <> 0 THEN (i * 7) % 200 + 1 END FROM generate_series(1, 600) i;
		INSERT INTO vote SELECT i, CASE WHEN i % 3 = 0 THEN 1000 + i ELSE i % 200 + 1 END FROM generate_series(1, 600) i;
		ALTER TABLE vote ADD FOREIGN KEY (member_id) REFERENCES member NOT VALID;
		INSERT INTO tip SELECT i, (i * 3) % 200 + 1 FROM generate_series(1, 300) i;
		INSERT INTO account SELECT r, i FROM unnest(ARRAY['eu', 'us']) r, generate_series(1, 100) i;
		INSERT INTO invoice SELECT i, CASE WHEN i % 7 = 0 THEN NULL WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END,
		                    CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 13) % 100 + 1 END FROM generate_series(1, 500) i;
		ANALYZE`)
	src := mustOpen(t, dsn, 2)
	ctx := testContext(t)
	refs, err := src.References(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		root    string
		percent float64
		direct  []string // children selected by the share of their reference
		joined  []string // children selected by a semi-join over the root
	}{
		{root: "member", percent: 30, direct: []string{"post"}, joined: []string{"vote", "tip"}},
		{root: "account", percent: 40, direct: []string{"invoice"}},
	}
	// Selection.References: the key text each row's reference names, as
	// the referenced table's copies render its key; NULL where a column is.
	inv := mustDescribe(t, src, "public", "invoice")
	var got []string
	if _, err := src.CopySelect(ctx, inv, nopii.Selection{References: [][]string{{"region", "account_id"}, {"id"}}}, func(v [][]byte) error {
		n := len(inv.Columns)
		got = append(got, string(v[n])+" "+nullText(v[n+1])+" "+nullText(v[n+2]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	rows, err := mustConnect(t, dsn).Query(ctx, `SELECT i.id::text || ' ' || CASE WHEN a.id IS NULL THEN 'NULL' ELSE json_build_array(a.region, a.id)::text END || ' ' || i.id::text
		FROM invoice i LEFT JOIN account a ON (a.region, a.id) = (i.region, i.account_id)`)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) || !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, " NULL ") }) {
		t.Errorf("references of invoice: %s\nwant %s (some NULL)", abbrev(got), abbrev(want))
	}

	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			var cands []*nopii.SubsetTable
			var rt []subsetref.Table
			tables := map[string]*nopii.Table{}
			for _, n := range append(append([]string{tt.root}, tt.direct...), tt.joined...) {
				tb := mustDescribe(t, src, "public", n)
				tables[n] = tb
				st := &nopii.SubsetTable{Table: tb}
				ref := subsetref.Table{Name: tb.Name.String(), Key: tb.PrimaryKey}
				if n == tt.root {
					st.Root = &nopii.SubsetRoot{Percent: tt.percent, Seed: 99, WithChildren: true}
					ref.Root, ref.WithChildren = shareSQL(tb, *st.Root), true
				}
				cands, rt = append(cands, st), append(rt, ref)
			}
			sub := nopii.NewSubset(cands, refs)
			want, err := subsetref.Closure(ctx, mustConnect(t, dsn), rt, refsOf(refs))
			if err != nil {
				t.Fatal(err)
			}
			for n, tb := range tables {
				sql := postgres.CopySQL(tb, nopii.Selection{Subset: sub})
				if joins := strings.Contains(sql, "IN (SELECT"); slices.Contains(tt.direct, n) == joins && n != tt.root {
					t.Errorf("%s: semi-join %v, want %v:\n%s", n, joins, !joins, sql)
				}
				var got []string
				if _, err := src.CopySelect(ctx, tb, nopii.Selection{Subset: sub, KeysOnly: true}, func(v [][]byte) error {
					got = append(got, string(v[0]))
					return nil
				}); err != nil {
					t.Fatalf("copy %s: %v\n%s", n, err, sql)
				}
				slices.Sort(got)
				if w := want[tb.Name.String()]; !slices.Equal(got, w) || len(w) == 0 {
					t.Errorf("%s: %d rows %s\nwant %d rows %s", n, len(got), abbrev(got), len(w), abbrev(w))
				}
			}
		})
	}
}
