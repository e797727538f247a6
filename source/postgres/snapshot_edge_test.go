package postgres_test

import (
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
)

// SPEC §1: views and materialized views are copied when named explicitly,
// and an explicit entry "chooses anything it names" (README), foreign
// tables included. Describe takes ACCESS SHARE with LOCK TABLE, which
// PostgreSQL refuses for both kinds.
func TestDescribeMatViewAndForeignTable(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, dsn),
		`CREATE TABLE single (id int4 PRIMARY KEY, v text)`,
		`INSERT INTO single VALUES (1, 'a')`,
		`CREATE MATERIALIZED VIEW single_mv AS SELECT id, v FROM single`,
		`CREATE EXTENSION file_fdw`,
		`CREATE SERVER files FOREIGN DATA WRAPPER file_fdw`,
		`CREATE FOREIGN TABLE nothing (id int4, v text) SERVER files OPTIONS (filename '/dev/null')`)
	src := mustOpen(t, dsn, 1)
	for _, tt := range []struct {
		name string
		kind nopii.RelKind
		rows int
	}{
		{"single_mv", nopii.RelMatView, 1},
		{"nothing", nopii.RelForeign, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rel("public", tt.name)
			r.Kind = tt.kind
			tbl, err := src.Describe(testContext(t), r, []string{"id"})
			if err != nil {
				t.Fatalf("describe %s, named explicitly: %v", tt.name, err)
			}
			if rows := mustCopy(t, src, tbl); len(rows) != tt.rows {
				t.Errorf("copy: %d rows, want %d", len(rows), tt.rows)
			}
		})
	}
}

// TRUNCATE and table-rewriting ALTER TABLE are not MVCC-safe: committed
// between Open and Describe, they make the snapshot see an empty table.
// Copy then returns zero rows and no error, and the twin's copy of the
// table is replaced by an empty one.
func TestRewriteAfterOpen(t *testing.T) {
	for _, ddl := range []string{
		`TRUNCATE t`,
		`ALTER TABLE t ALTER COLUMN v TYPE varchar(10)`,
	} {
		t.Run(ddl, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			db := mustConnect(t, dsn)
			mustExec(t, db, `CREATE TABLE t (id int8 PRIMARY KEY, v text)`, `INSERT INTO t SELECT i, 'x' FROM generate_series(1, 3) i`)
			src := mustOpen(t, dsn, 1)
			mustExec(t, db, ddl)
			tbl, err := src.Describe(testContext(t), rel("public", "t"), nil)
			if err != nil {
				// Failing loudly, saying why, is the answer.
				if !strings.Contains(err.Error(), "truncated or rewritten") {
					t.Fatalf("describe after %s: %v", ddl, err)
				}
				return
			}
			rows, _, err := copyRows(testContext(t), src, tbl)
			if err == nil && len(rows) != 3 {
				t.Fatalf("%s committed after Open: Copy returned %d rows and no error; want the snapshot's 3 rows or an error", ddl, len(rows))
			}
		})
	}
}
