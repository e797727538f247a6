package postgres_test

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/source/postgres"
)

// TestSample: one bounded read per table; TABLESAMPLE for a table that
// reltuples says is big (a partitioned root sums its partitions), LIMIT for
// a small one; NULLs left out; column comments read.
func TestSample(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, dsn),
		`CREATE TABLE public.big (id int PRIMARY KEY, email text, n int)`,
		`COMMENT ON COLUMN public.big.email IS 'E-Mail des Kunden'`,
		`INSERT INTO public.big SELECT i, CASE WHEN i % 2 = 0 THEN 'e' || i || '@x.org' END, i FROM generate_series(1, 60000) i`,
		`CREATE TABLE public.small (id int PRIMARY KEY, note text)`,
		`INSERT INTO public.small SELECT i, 'n' || i FROM generate_series(1, 50) i`,
		`CREATE TABLE public.parted (id int, v text) PARTITION BY RANGE (id)`,
		`CREATE TABLE public.parted_a PARTITION OF public.parted FOR VALUES FROM (0) TO (30000)`,
		`CREATE TABLE public.parted_b PARTITION OF public.parted FOR VALUES FROM (30000) TO (70000)`,
		`INSERT INTO public.parted SELECT i, 'v' || i FROM generate_series(1, 60000) i`,
		`CREATE TABLE public.emptied (id int PRIMARY KEY, v text)`,
		`INSERT INTO public.emptied SELECT i, 'v' || i FROM generate_series(1, 60000) i`,
		`ANALYZE`,
		`DELETE FROM public.emptied WHERE id > 3`)
	src := mustOpen(t, dsn, 2)
	big := mustDescribe(t, src, "public", "big")
	if c, _ := big.Column("email"); c.Comment != "E-Mail des Kunden" {
		t.Errorf("comment %q", c.Comment)
	}
	if sql := postgres.SampleSQL(big, []string{"email"}, 1000); !strings.Contains(sql, "TABLESAMPLE SYSTEM (") || !strings.Contains(sql, "LIMIT 1000") {
		t.Errorf("big table: %s", sql)
	}
	vs, err := src.Sample(testContext(t), big, []string{"n", "email"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || len(vs[0]) == 0 || len(vs[0]) > 1000 || len(vs[1]) == 0 || len(vs[1]) >= len(vs[0]) {
		t.Fatalf("sample: %d n values, %d emails (NULLs must be left out)", len(vs[0]), len(vs[1]))
	}
	for _, e := range vs[1] {
		if !strings.HasSuffix(e, "@x.org") {
			t.Fatalf("email column sampled %q", e)
		}
	}
	small := mustDescribe(t, src, "public", "small")
	if sql := postgres.SampleSQL(small, []string{"note"}, 1000); strings.Contains(sql, "TABLESAMPLE") {
		t.Errorf("small table: %s", sql)
	}
	if vs, err := src.Sample(testContext(t), small, []string{"note"}, 1000); err != nil || len(vs[0]) != 50 {
		t.Fatalf("small: %d values, %v", len(vs[0]), err)
	}
	// Statistics say 60,000 rows, 3 are left: the sampled pages hold none,
	// and Sample reads with LIMIT instead.
	emptied := mustDescribe(t, src, "public", "emptied")
	if vs, err := src.Sample(testContext(t), emptied, []string{"v"}, 1000); err != nil || len(vs[0]) != 3 {
		t.Fatalf("emptied: %d values, %v", len(vs[0]), err)
	}
	parted, err := src.Describe(testContext(t), rel("public", "parted"), nil)
	if parted == nil {
		t.Fatal(err)
	}
	if parted.EstRows < 50000 || !strings.Contains(postgres.SampleSQL(parted, []string{"v"}, 1000), "TABLESAMPLE") {
		t.Errorf("partitioned root: estimate %d", parted.EstRows)
	}
	if vs, err := src.Sample(testContext(t), parted, []string{"v"}, 1000); err != nil || len(vs[0]) == 0 || len(vs[0]) > 1000 {
		t.Fatalf("partitioned: %d values, %v", len(vs[0]), err)
	}
}
