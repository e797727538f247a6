package scanner_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/scanner"
	"github.com/nopii/nopii/source/postgres"
)

const benchTables, benchRows, benchSample = 50, 10000, 1000

// mustBenchDB makes 50 tables of 10,000 rows and 10 columns (PII, json,
// numbers, dates, prose), analyzed so that samples use TABLESAMPLE.
func mustBenchDB(b *testing.B) string {
	b.Helper()
	var sql strings.Builder
	sql.WriteString(`CREATE FUNCTION pick(a text[], i int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT a[1 + (i % array_length(a, 1))] $$;`)
	for t := range benchTables {
		fmt.Fprintf(&sql, `
CREATE TABLE t%02d (id bigint PRIMARY KEY, contact text, tel text, given text, town text, amount numeric(10,2),
  status text, created_at timestamptz, doc jsonb, note text);
INSERT INTO t%02d SELECT i, 'u' || i || '@example.com', '+49 30 ' || (1000000 + i), pick(ARRAY['Anna','Lukas','Marie','Jan','Sofia','Paul','Emma','Noah','Lea','Finn','Mia','Ben','Clara','Tom','Lina','Max','Ella','Leon','Nora','Elias','Ida','Felix','Lena','Jonas','Maria'], i),
  pick(ARRAY['Berlin','Paris','Madrid'], i), i / 7.0, pick(ARRAY['open','closed'], i), now() - i * interval '1 minute',
  jsonb_build_object('customer', jsonb_build_object('email', 'c' || i || '@x.org'), 'n', i), 'note ' || i
FROM generate_series(1, %d) i;`, t, t, benchRows)
	}
	sql.WriteString("ANALYZE;")
	return mustLoadSQL(b, sql.String())
}

// BenchmarkScan scans 50 tables with 1,000 sampled rows each (target: under
// 5 s), next to the raw cost of the same samples: the same statements, one
// after another on one connection, with no describing and no judging.
func BenchmarkScan(b *testing.B) {
	dsn := mustBenchDB(b)
	ctx := context.Background()
	b.Run("nopii-scan", func(b *testing.B) {
		for b.Loop() {
			src, err := postgres.Open(ctx, dsn, postgres.Options{Name: "bench", Readers: 4, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			findings, err := scanner.Scan(ctx, src, scanner.Options{Sample: benchSample, Schemas: []string{"public"}})
			src.Close()
			if err != nil {
				b.Fatal(err)
			}
			if len(findings) != benchTables*5 { // contact, tel, given, town, doc
				b.Fatalf("%d findings, want %d", len(findings), benchTables*5)
			}
		}
		b.ReportMetric(float64(benchTables)*float64(b.N)/b.Elapsed().Seconds(), "tables/s")
	})
	b.Run("raw-sample", func(b *testing.B) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		cols := []string{"contact", "tel", "given", "town", "amount", "status", "created_at", "doc", "note"}
		for b.Loop() {
			for i := range benchTables {
				t := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: fmt.Sprintf("t%02d", i)}, EstRows: benchRows}
				if _, err := conn.PgConn().CopyTo(ctx, io.Discard, postgres.SampleSQL(t, cols, benchSample)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(benchTables)*float64(b.N)/b.Elapsed().Seconds(), "tables/s")
	})
}

// newTableRows is the size of the table BenchmarkJudgeNewTable judges.
const newTableRows = 1_000_000

// BenchmarkJudgeNewTable measures what the guard pays to judge a table it
// has not seen: describe it, sample it once (200 rows, as the guard does,
// and the scanner's 1000) and judge its 8 columns, a free-text one with a
// phone number in one row of ten among them. The table has 1M rows; the
// target is well under 1 s. "fresh" is the table as a new one is, never
// analyzed (LIMIT); "analyzed" has statistics (TABLESAMPLE SYSTEM).
func BenchmarkJudgeNewTable(b *testing.B) {
	dsn := mustLoadSQL(b, fmt.Sprintf(`
CREATE FUNCTION pick(a text[], i int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT a[1 + (i %% array_length(a, 1))] $$;
CREATE TABLE fresh (id bigint PRIMARY KEY, email text, phone text, full_name text, notes text, amount numeric(10,2),
  status text, created_at timestamptz) WITH (autovacuum_enabled = off);
INSERT INTO fresh SELECT i, 'u' || i || '@example.com', '+1 (201) 555-' || lpad((i %% 10000)::text, 4, '0'),
  pick(ARRAY['Mary Smith','John Miller','Anna Müller','Jean Dubois','Giulia Rossi','Jan de Vries'], i),
  CASE WHEN i %% 10 = 0 THEN 'Please call me at 555-867-' || lpad((i %% 10000)::text, 4, '0') || ' before delivery'
       ELSE pick(ARRAY['Leave the parcel at the door','Order shipped on 2024-03-01 10:22','Gift wrap please'], i) END,
  i %% 100000 / 7.0, pick(ARRAY['open','paid','shipped'], i), timestamptz '2024-01-01' + i * interval '1 minute'
FROM generate_series(1, %d) i;
CREATE TABLE analyzed (LIKE fresh INCLUDING ALL) WITH (autovacuum_enabled = off);
INSERT INTO analyzed SELECT * FROM fresh;
ANALYZE analyzed;`, newTableRows))
	ctx := context.Background()
	src, err := postgres.Open(ctx, dsn, postgres.Options{Name: "bench", Readers: 1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for _, table := range []string{"fresh", "analyzed"} {
		for _, sample := range []int{200, scanner.DefaultSample} {
			b.Run(fmt.Sprintf("%s/sample-%d", table, sample), func(b *testing.B) {
				rel := nopii.Relation{Name: nopii.TableName{Schema: "public", Name: table}, Kind: nopii.RelTable}
				for b.Loop() {
					t, err := src.Describe(ctx, rel, nil)
					if err != nil {
						b.Fatal(err)
					}
					if (t.EstRows > 0) != (table == "analyzed") {
						b.Fatalf("%s: %d rows estimated", table, t.EstRows)
					}
					findings, err := scanner.JudgeTable(ctx, src, t, sample, nil)
					if err != nil {
						b.Fatal(err)
					}
					kinds := map[string]string{}
					for _, f := range findings {
						kinds[f.Column] = f.Kind
					}
					if fmt.Sprint(kinds) != "map[email:email full_name:full_name notes:free_text phone:phone]" {
						b.Fatalf("findings %v", kinds)
					}
				}
			})
		}
	}
}
