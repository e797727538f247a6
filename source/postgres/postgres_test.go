package postgres_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/source/postgres"
)

var quiet = slog.New(slog.DiscardHandler)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testContext(t), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// mustExec runs each statement on its own, so that statements which refuse
// transaction blocks (ALTER TYPE … ADD VALUE) work.
func mustExec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(testContext(t), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(testContext(t), sql).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return n
}

func mustOpen(t *testing.T, dsn string, readers int) *postgres.Source {
	t.Helper()
	src, err := postgres.Open(testContext(t), dsn, postgres.Options{Name: "test", Readers: readers, Logger: quiet})
	if err != nil {
		t.Fatalf("open source: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func rel(schema, name string) nopii.Relation {
	return nopii.Relation{Name: nopii.TableName{Schema: schema, Name: name}}
}

func mustDescribe(t *testing.T, src *postgres.Source, schema, name string, primaryKey ...string) *nopii.Table {
	t.Helper()
	tbl, err := src.Describe(testContext(t), rel(schema, name), primaryKey)
	if err != nil {
		t.Fatalf("describe %s.%s: %v", schema, name, err)
	}
	return tbl
}

// copyRows copies every row of tbl out of the decoder's buffers.
func copyRows(ctx context.Context, src *postgres.Source, tbl *nopii.Table) ([][][]byte, nopii.CopyStats, error) {
	var rows [][][]byte
	stats, err := src.Copy(ctx, tbl, func(values [][]byte) error {
		row := make([][]byte, len(values))
		for i, v := range values {
			if v != nil {
				row[i] = slices.Clone(v)
			}
		}
		rows = append(rows, row)
		return nil
	})
	return rows, stats, err
}

func mustCopy(t *testing.T, src *postgres.Source, tbl *nopii.Table) [][][]byte {
	t.Helper()
	rows, stats, err := copyRows(testContext(t), src, tbl)
	if err != nil {
		t.Fatalf("copy %s: %v", tbl.Name, err)
	}
	if stats.Rows != int64(len(rows)) {
		t.Errorf("copy %s: stats say %d rows, the callback saw %d", tbl.Name, stats.Rows, len(rows))
	}
	if stats.Bytes <= 0 {
		t.Errorf("copy %s: stats say %d bytes", tbl.Name, stats.Bytes)
	}
	return rows
}

// render decodes a row of int4, int8 and text columns, plus the key text
// Copy appends, as "v1|v2|…|key", with NULL for SQL NULL.
func render(tbl *nopii.Table, row [][]byte) (string, error) {
	if len(row) != len(tbl.Columns)+1 {
		return "", fmt.Errorf("row has %d values, want %d columns and the key", len(row), len(tbl.Columns)+1)
	}
	parts := make([]string, len(row))
	for i, v := range row {
		typ := "text" // the key
		if i < len(tbl.Columns) {
			typ = tbl.Columns[i].Type.Name
		}
		switch {
		case v == nil:
			parts[i] = "NULL"
		case typ == "int8" && len(v) == 8:
			parts[i] = strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10)
		case typ == "int4" && len(v) == 4:
			parts[i] = strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10)
		case typ == "text" || typ == "varchar":
			parts[i] = string(v)
		default:
			return "", fmt.Errorf("value %d: cannot render %d bytes of %s", i, len(v), typ)
		}
	}
	return strings.Join(parts, "|"), nil
}

func renderAll(t *testing.T, tbl *nopii.Table, rows [][][]byte) []string {
	t.Helper()
	out := make([]string, len(rows))
	for i, r := range rows {
		s, err := render(tbl, r)
		if err != nil {
			t.Fatalf("%s row %d: %v", tbl.Name, i, err)
		}
		out[i] = s
	}
	slices.Sort(out)
	return out
}

func columnNames(tbl *nopii.Table) []string {
	var names []string
	for _, c := range tbl.Columns {
		names = append(names, c.Name)
	}
	return names
}

// TestSnapshot checks that everything a Source returns is as of Open:
// changes committed later, by another session, are invisible to Relations,
// Describe and to copies running in parallel on two reader connections.
func TestSnapshot(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	mustExec(t, db,
		`CREATE TABLE accounts (id int8 PRIMARY KEY, name text NOT NULL)`,
		`INSERT INTO accounts VALUES (1, 'ann'), (2, 'bob'), (3, 'cat')`,
		`CREATE TABLE orders (id int8 PRIMARY KEY, account int8 NOT NULL, item text)`,
		`INSERT INTO orders VALUES (10, 1, 'apple'), (11, 2, 'pear'), (12, 3, NULL)`)

	src := mustOpen(t, dsn, 2)
	ctx := testContext(t)

	// One table changed statement by statement, the other in one
	// transaction; the catalog changes too.
	mustExec(t, db,
		`INSERT INTO accounts VALUES (4, 'dan')`,
		`DELETE FROM accounts WHERE id = 1`,
		`UPDATE accounts SET name = 'BOB' WHERE id = 2`,
		`BEGIN`,
		`INSERT INTO orders VALUES (13, 4, 'plum')`,
		`DELETE FROM orders WHERE id = 10`,
		`UPDATE orders SET item = 'PEAR' WHERE id = 11`,
		`COMMIT`,
		`CREATE TABLE late (id int8 PRIMARY KEY)`,
		`ALTER TABLE orders ADD COLUMN note text DEFAULT 'new'`)
	if n := queryInt(t, db, `SELECT count(*) FROM accounts WHERE name = 'BOB' OR id = 4`); n != 2 {
		t.Fatalf("the changes are not visible outside the snapshot either (%d of 2 rows): the test proves nothing", n)
	}

	rels, err := src.Relations(ctx)
	if err != nil {
		t.Fatalf("relations: %v", err)
	}
	wantRels := []nopii.Relation{rel("public", "accounts"), rel("public", "orders")}
	if !slices.Equal(rels, wantRels) {
		t.Errorf("relations = %v, want %v (the table created after Open must not show)", rels, wantRels)
	}
	if _, err := src.Describe(ctx, rel("public", "late"), nil); !errors.Is(err, nopii.ErrNotFound) {
		t.Errorf("describe a table created after Open: error %v, want ErrNotFound", err)
	}

	accounts := mustDescribe(t, src, "public", "accounts")
	orders := mustDescribe(t, src, "public", "orders")
	if got, want := columnNames(orders), []string{"id", "account", "item"}; !slices.Equal(got, want) {
		t.Errorf("orders columns = %q, want %q (a column added after Open must not show)", got, want)
	}

	// Each copy waits in its first row until the other has begun: that needs
	// two reader connections streaming at the same time.
	tables := []*nopii.Table{accounts, orders}
	started := []chan struct{}{make(chan struct{}), make(chan struct{})}
	got := make([][][][]byte, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, tbl := range tables {
		wg.Go(func() {
			first := true
			_, errs[i] = src.Copy(ctx, tbl, func(values [][]byte) error {
				if first {
					first = false
					close(started[i])
					select {
					case <-started[1-i]:
					case <-time.After(10 * time.Second):
						return errors.New("the other copy did not start: copies do not run in parallel")
					}
				}
				row := make([][]byte, len(values))
				for j, v := range values {
					if v != nil {
						row[j] = slices.Clone(v)
					}
				}
				got[i] = append(got[i], row)
				return nil
			})
		})
	}
	wg.Wait()
	want := [][]string{
		{"1|ann|1", "2|bob|2", "3|cat|3"},
		{"10|1|apple|10", "11|2|pear|11", "12|3|NULL|12"},
	}
	for i, tbl := range tables {
		if errs[i] != nil {
			t.Errorf("copy %s: %v", tbl.Name, errs[i])
			continue
		}
		if rows := renderAll(t, tbl, got[i]); !slices.Equal(rows, want[i]) {
			t.Errorf("copy %s = %q, want the rows as of Open %q", tbl.Name, rows, want[i])
		}
	}
}

// catalogSQL is a source with one of every kind of relation Relations and
// Describe tell apart.
var catalogSQL = []string{
	`CREATE TABLE single (id int4 PRIMARY KEY, v text)`,
	`CREATE TABLE composite (a int4, b text, c int4, v text, PRIMARY KEY (c, a))`,
	`CREATE TABLE nokey (x int4, y text)`,
	`CREATE TABLE reserved (id int4 PRIMARY KEY, source_primary_key text)`,
	`CREATE VIEW single_view AS SELECT id, v FROM single`,
	`CREATE MATERIALIZED VIEW single_mv AS SELECT id, v FROM single`,
	`CREATE TABLE parent (id int8 PRIMARY KEY, v text)`,
	`CREATE TABLE child (extra text) INHERITS (parent)`,
	`CREATE TABLE events (id int8, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)`,
	`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
	`CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
	`CREATE SCHEMA "Weird Schema"`,
	`CREATE TABLE "Weird Schema"."Odd""Table" ("Mixed Case" int4 PRIMARY KEY, "with space" text)`,
	// nopii's own schema (the twin's state) is never a source table.
	`CREATE SCHEMA nopii`,
	`CREATE TABLE nopii.table_state (id int PRIMARY KEY)`,
}

func TestRelations(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, dsn), catalogSQL...)
	src := mustOpen(t, dsn, 1)

	got, err := src.Relations(testContext(t))
	if err != nil {
		t.Fatalf("relations: %v", err)
	}
	r := func(schema, name string, kind nopii.RelKind, partition bool, parent string) nopii.Relation {
		rel := nopii.Relation{Name: nopii.TableName{Schema: schema, Name: name}, Kind: kind, Partition: partition}
		if parent != "" {
			rel.Parent = nopii.TableName{Schema: "public", Name: parent}
		}
		return rel
	}
	want := []nopii.Relation{
		r("Weird Schema", `Odd"Table`, nopii.RelTable, false, ""),
		r("public", "child", nopii.RelTable, false, "parent"),
		r("public", "composite", nopii.RelTable, false, ""),
		r("public", "events", nopii.RelPartitioned, false, ""),
		r("public", "events_2024", nopii.RelTable, true, "events"),
		r("public", "events_2025", nopii.RelTable, true, "events"),
		r("public", "nokey", nopii.RelTable, false, ""),
		r("public", "parent", nopii.RelTable, false, ""),
		r("public", "reserved", nopii.RelTable, false, ""),
		r("public", "single", nopii.RelTable, false, ""),
		r("public", "single_mv", nopii.RelMatView, false, ""),
		r("public", "single_view", nopii.RelView, false, ""),
	}
	if !slices.Equal(got, want) {
		t.Errorf("relations:\n got %v\nwant %v", got, want)
	}
}

func TestDescribeKeys(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, dsn), catalogSQL...)
	// One Source for all cases, as in a run: a failed Describe must not
	// spoil the snapshot for the next one.
	src := mustOpen(t, dsn, 1)

	tests := []struct {
		name       string
		rel        nopii.Relation
		primaryKey []string

		wantErr     error  // errors.Is
		wantErrText string // substring
		wantKey     []string
		wantColumns []string
		partitioned bool
		view        bool
		keyless     bool // the error comes with the table, described but without a key
	}{
		{name: "single key", rel: rel("public", "single"), wantKey: []string{"id"}, wantColumns: []string{"id", "v"}},
		{name: "composite key in index order", rel: rel("public", "composite"), wantKey: []string{"c", "a"}, wantColumns: []string{"a", "b", "c", "v"}},
		{name: "override replaces the catalog key", rel: rel("public", "composite"), primaryKey: []string{"b"}, wantKey: []string{"b"}},
		{name: "override on a table without key", rel: rel("public", "nokey"), primaryKey: []string{"y", "x"}, wantKey: []string{"y", "x"}},
		{name: "override names a missing column", rel: rel("public", "nokey"), primaryKey: []string{"x", "nope"}, wantErr: nopii.ErrNotFound, wantErrText: `"nope"`, keyless: true},
		{name: "no key", rel: rel("public", "nokey"), wantErr: nopii.ErrNoPrimaryKey, keyless: true},
		{name: "missing table", rel: rel("public", "nope"), wantErr: nopii.ErrNotFound},
		{name: "missing schema", rel: rel("nope", "single"), wantErr: nopii.ErrNotFound},
		{name: "reserved column", rel: rel("public", "reserved"), wantErrText: "source_primary_key"},
		{name: "view without override", rel: rel("public", "single_view"), wantErr: nopii.ErrNoPrimaryKey, keyless: true},
		{name: "view with override", rel: rel("public", "single_view"), primaryKey: []string{"id"}, wantKey: []string{"id"}, view: true},
		{name: "partitioned root", rel: rel("public", "events"), wantKey: []string{"id", "day"}, wantColumns: []string{"id", "day"}, partitioned: true},
		{name: "partition on its own", rel: rel("public", "events_2024"), wantKey: []string{"id", "day"}},
		{name: "inheritance child", rel: rel("public", "child"), primaryKey: []string{"id"}, wantKey: []string{"id"}, wantColumns: []string{"id", "v", "extra"}},
		{name: "quoted identifiers", rel: rel("Weird Schema", `Odd"Table`), wantKey: []string{"Mixed Case"}, wantColumns: []string{"Mixed Case", "with space"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := src.Describe(testContext(t), tt.rel, tt.primaryKey)
			if tt.wantErr != nil || tt.wantErrText != "" {
				if err == nil {
					t.Fatalf("describe %s: no error, want %v %q", tt.rel.Name, tt.wantErr, tt.wantErrText)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("describe %s: error %q, want errors.Is %q", tt.rel.Name, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErrText) {
					t.Errorf("describe %s: error %q does not mention %q", tt.rel.Name, err, tt.wantErrText)
				}
				if !strings.Contains(err.Error(), tt.rel.Name.String()) {
					t.Errorf("describe %s: error %q does not name the table", tt.rel.Name, err)
				}
				switch {
				case tt.keyless && (tbl == nil || len(tbl.Columns) == 0 || len(tbl.PrimaryKey) != 0):
					t.Errorf("describe %s: table %+v with the error, want it described without a key", tt.rel.Name, tbl)
				case !tt.keyless && tbl != nil:
					t.Errorf("describe %s: a table with the error %q, want none", tt.rel.Name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("describe %s: %v", tt.rel.Name, err)
			}
			if tbl.Name != tt.rel.Name {
				t.Errorf("name = %v, want %v", tbl.Name, tt.rel.Name)
			}
			if !slices.Equal(tbl.PrimaryKey, tt.wantKey) {
				t.Errorf("primary key = %q, want %q", tbl.PrimaryKey, tt.wantKey)
			}
			if tt.wantColumns != nil && !slices.Equal(columnNames(tbl), tt.wantColumns) {
				t.Errorf("columns = %q, want %q", columnNames(tbl), tt.wantColumns)
			}
			if tbl.Partitioned != tt.partitioned || tbl.View != tt.view {
				t.Errorf("Partitioned, View = %t, %t; want %t, %t", tbl.Partitioned, tbl.View, tt.partitioned, tt.view)
			}
		})
	}
}

func TestDescribeTypes(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	mustExec(t, db,
		`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
		// Labels come in sort order, not in the order they were added.
		`ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'`,
		`CREATE DOMAIN short_name AS varchar(30) NOT NULL CHECK (VALUE <> '')`,
		`CREATE TYPE address AS (street text, zip int4)`,
		`CREATE TABLE people (
			id int8 PRIMARY KEY,
			code varchar(20) NOT NULL,
			balance numeric(10,2),
			tags text[],
			mood mood NOT NULL,
			nick short_name,
			home address,
			moods mood[]
		)`,
		`INSERT INTO people (id, code, mood, nick) VALUES (1, 'a', 'ok', 'x'), (2, 'b', 'ok', 'y'), (3, 'c', 'sad', 'z')`,
		`ANALYZE people`)
	moodOID := uint32(queryInt(t, db, `SELECT 'mood'::regtype::oid::int8`))

	src := mustOpen(t, dsn, 1)
	tbl := mustDescribe(t, src, "public", "people")

	if !slices.Equal(tbl.PrimaryKey, []string{"id"}) || tbl.Partitioned || tbl.View {
		t.Errorf("table: key %q, partitioned %t, view %t; want [id], false, false", tbl.PrimaryKey, tbl.Partitioned, tbl.View)
	}
	if tbl.EstRows != 3 {
		t.Errorf("EstRows = %d, want 3 (the table is analyzed)", tbl.EstRows)
	}

	type col struct {
		name      string
		typeName  string
		kind      nopii.TypeKind
		typeSQL   string
		typmod    int32
		notNull   bool
		builtIn   bool
		maxChars  int
		numScale  int
		typeSQLOf string // Type.SQL
	}
	want := []col{
		{"id", "int8", nopii.TypeBase, "bigint", -1, true, true, 0, -1, "bigint"},
		{"code", "varchar", nopii.TypeBase, "character varying(20)", 24, true, true, 20, -1, "character varying"},
		{"balance", "numeric", nopii.TypeBase, "numeric(10,2)", (10<<16 | 2) + 4, false, true, 0, 2, "numeric"},
		{"tags", "_text", nopii.TypeArray, "text[]", -1, false, true, 0, -1, "text[]"},
		{"mood", "mood", nopii.TypeEnum, "public.mood", -1, true, false, 0, -1, "public.mood"},
		{"nick", "short_name", nopii.TypeDomain, "public.short_name", -1, false, false, 30, -1, "public.short_name"},
		{"home", "address", nopii.TypeComposite, "public.address", -1, false, false, 0, -1, "public.address"},
		{"moods", "_mood", nopii.TypeArray, "public.mood[]", -1, false, false, 0, -1, "public.mood[]"},
	}
	if len(tbl.Columns) != len(want) {
		t.Fatalf("columns = %q, want %d", columnNames(tbl), len(want))
	}
	for i, w := range want {
		c := tbl.Columns[i]
		got := col{c.Name, c.Type.Name, c.Type.Kind, c.TypeSQL, c.Typmod, c.NotNull, c.Type.BuiltIn(), c.MaxChars(), c.NumericScale(), c.Type.SQL}
		if got != w {
			t.Errorf("column %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	byName := func(name string) *nopii.Type {
		c, ok := tbl.Column(name)
		if !ok {
			t.Fatalf("no column %s", name)
		}
		return c.Type
	}

	mood := byName("mood")
	if mood.OID != moodOID {
		t.Errorf("mood OID = %d, want %d", mood.OID, moodOID)
	}
	if want := []string{"sad", "meh", "ok", "happy"}; !slices.Equal(mood.Labels, want) {
		t.Errorf("mood labels = %q, want %q in sort order", mood.Labels, want)
	}

	if tags := byName("tags"); tags.Elem == nil || tags.Elem.Name != "text" || tags.Elem.Kind != nopii.TypeBase {
		t.Errorf("tags element = %+v, want text", tags.Elem)
	}
	if moods := byName("moods"); moods.Elem == nil || moods.Elem.OID != moodOID || !slices.Equal(moods.Elem.Labels, mood.Labels) {
		t.Errorf("moods element = %+v, want the enum mood with its labels", moods.Elem)
	}

	nick := byName("nick")
	if nick.Base == nil || nick.Base.Name != "varchar" || nick.Underlying().Name != "varchar" {
		t.Errorf("short_name base = %+v, want varchar", nick.Base)
	}
	if nick.BaseTypmod != 34 || nick.BaseSQL != "character varying(30)" || !nick.NotNull {
		t.Errorf("short_name: base typmod %d, base SQL %q, NOT NULL %t; want 34, character varying(30), true", nick.BaseTypmod, nick.BaseSQL, nick.NotNull)
	}
	if want := []string{`CHECK (((VALUE)::text <> ''::text))`}; !slices.Equal(nick.Checks, want) {
		t.Errorf("short_name checks = %q, want %q", nick.Checks, want)
	}

	home := byName("home")
	var attrs []string
	for _, a := range home.Attrs {
		attrs = append(attrs, a.Name+" "+a.TypeSQL+" "+a.Type.Name)
	}
	if want := []string{"street text text", "zip integer int4"}; !slices.Equal(attrs, want) {
		t.Errorf("address attributes = %q, want %q", attrs, want)
	}
}

// TestCopy checks what Copy hands on: raw binary values, NULL as nil, and
// the key as PostgreSQL renders it, for each kind of relation.
func TestCopy(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	mustExec(t, db,
		`CREATE TABLE items (id int8 PRIMARY KEY, name text, qty int4, price numeric(10,2), tags text[])`,
		`INSERT INTO items VALUES (42, 'widget', NULL, 9.99, '{a,b}'), (7, NULL, 3, NULL, NULL)`,
		`CREATE VIEW stocked AS SELECT id, name FROM items WHERE qty IS NOT NULL`,
		`CREATE TABLE pairs (n int4, s text, v text, PRIMARY KEY (n, s))`,
		`INSERT INTO pairs VALUES (1, 'a', 'x'), (2, 'x"y', NULL)`,
		`CREATE TABLE parent (id int8 PRIMARY KEY, v text)`,
		`CREATE TABLE child (extra text) INHERITS (parent)`,
		`INSERT INTO parent VALUES (1, 'p1'), (2, 'p2')`,
		`INSERT INTO child VALUES (3, 'c3', 'e3')`,
		`CREATE TABLE events (id int8, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)`,
		`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
		`INSERT INTO events VALUES (1, '2024-06-01', 'a'), (2, '2025-06-01', 'b')`,
		`CREATE SCHEMA "Weird Schema"`,
		`CREATE TABLE "Weird Schema"."Odd""Table" ("Mixed Case" int4 PRIMARY KEY, "with space" text)`,
		`INSERT INTO "Weird Schema"."Odd""Table" VALUES (5, 'five')`)
	if n := queryInt(t, db, `SELECT count(*) FROM parent`); n != 3 {
		t.Fatalf("parent without ONLY has %d rows, want 3: the child's row must be in it for the test to mean anything", n)
	}
	src := mustOpen(t, dsn, 1)

	t.Run("values", func(t *testing.T) {
		tbl := mustDescribe(t, src, "public", "items")
		rows := mustCopy(t, src, tbl)
		byKey := map[string][][]byte{}
		for _, r := range rows {
			if len(r) != 6 {
				t.Fatalf("row has %d values, want 5 columns and the key", len(r))
			}
			byKey[string(r[5])] = r
		}
		if len(byKey) != 2 || byKey["42"] == nil || byKey["7"] == nil {
			t.Fatalf("keys = %q, want 42 and 7", slices.Sorted(maps.Keys(byKey)))
		}
		m := pgtype.NewMap()
		r := byKey["42"]
		if len(r[0]) != 8 || binary.BigEndian.Uint64(r[0]) != 42 {
			t.Errorf("id = %x, want int8 42 in binary (8 bytes, big endian)", r[0])
		}
		if string(r[1]) != "widget" {
			t.Errorf("name = %q, want widget", r[1])
		}
		if r[2] != nil {
			t.Errorf("qty = %x, want nil for NULL", r[2])
		}
		var price string
		if err := m.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, r[3], &price); err != nil || price != "9.99" {
			t.Errorf("price = %q (%v), want binary numeric 9.99", price, err)
		}
		var tags []string
		if err := m.Scan(pgtype.TextArrayOID, pgtype.BinaryFormatCode, r[4], &tags); err != nil || !slices.Equal(tags, []string{"a", "b"}) {
			t.Errorf("tags = %q (%v), want binary text[] {a,b}", tags, err)
		}
		r = byKey["7"]
		if len(r[0]) != 8 || binary.BigEndian.Uint64(r[0]) != 7 {
			t.Errorf("id = %x, want int8 7", r[0])
		}
		if len(r[2]) != 4 || binary.BigEndian.Uint32(r[2]) != 3 {
			t.Errorf("qty = %x, want int4 3", r[2])
		}
		for _, i := range []int{1, 3, 4} {
			if r[i] != nil {
				t.Errorf("%s = %x, want nil for NULL", tbl.Columns[i].Name, r[i])
			}
		}
	})

	tests := []struct {
		name       string
		rel        nopii.Relation
		primaryKey []string
		want       []string // rendered rows, key last, sorted
	}{
		{name: "composite key as json", rel: rel("public", "pairs"),
			want: []string{`1|a|x|[1, "a"]`, `2|x"y|NULL|[2, "x\"y"]`}},
		{name: "inheritance parent without its child's rows", rel: rel("public", "parent"),
			want: []string{"1|p1|1", "2|p2|2"}},
		{name: "inheritance child", rel: rel("public", "child"), primaryKey: []string{"id"},
			want: []string{"3|c3|e3|3"}},
		{name: "view with a key override", rel: rel("public", "stocked"), primaryKey: []string{"id"},
			want: []string{"7|NULL|7"}},
		{name: "quoted identifiers", rel: rel("Weird Schema", `Odd"Table`),
			want: []string{"5|five|5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := src.Describe(testContext(t), tt.rel, tt.primaryKey)
			if err != nil {
				t.Fatalf("describe: %v", err)
			}
			if got := renderAll(t, tbl, mustCopy(t, src, tbl)); !slices.Equal(got, tt.want) {
				t.Errorf("rows = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("partitioned root reads every partition", func(t *testing.T) {
		tbl := mustDescribe(t, src, "public", "events")
		var got []string
		for _, r := range mustCopy(t, src, tbl) {
			if len(r) != 4 {
				t.Fatalf("row has %d values, want 3 columns and the key", len(r))
			}
			got = append(got, string(r[2])+" "+string(r[3]))
		}
		slices.Sort(got)
		if want := []string{`a [1, "2024-06-01"]`, `b [2, "2025-06-01"]`}; !slices.Equal(got, want) {
			t.Errorf("rows = %q, want %q", got, want)
		}
	})
}

// TestDescribeLocksTable checks that a described table cannot change under
// the run: DDL from another session waits for the snapshot to end.
func TestDescribeLocksTable(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	mustExec(t, db,
		`CREATE TABLE described (id int8 PRIMARY KEY)`,
		`CREATE TABLE other (id int8 PRIMARY KEY)`,
		`SET lock_timeout = '200ms'`)
	src := mustOpen(t, dsn, 1)
	mustDescribe(t, src, "public", "described")

	_, err := db.Exec(testContext(t), `ALTER TABLE described ADD COLUMN z int`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("ALTER TABLE on a described table: error %v, want lock_not_available (55P03)", err)
	}
	// Only described tables are locked.
	mustExec(t, db, `ALTER TABLE other ADD COLUMN z int`)

	if err := src.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	mustExec(t, db, `ALTER TABLE described ADD COLUMN z int`)
}

// TestCopyFailureDiscardsReader checks that a copy that fails half way
// leaves the Source usable: with one reader allowed, the broken reader must
// be closed and its slot freed, and its replacement must read the same
// snapshot.
func TestCopyFailureDiscardsReader(t *testing.T) {
	const total = 50000 // several MB: the copy is still streaming when it fails
	errCallback := errors.New("callback failed")
	tests := []struct {
		name    string
		wantErr error
		// fail runs in the callback of the first row; its result is returned.
		fail func(cancel context.CancelFunc) error
	}{
		{name: "context cancelled", wantErr: context.Canceled, fail: func(cancel context.CancelFunc) error { cancel(); return nil }},
		{name: "row callback fails", wantErr: errCallback, fail: func(context.CancelFunc) error { return errCallback }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			db := mustConnect(t, dsn)
			mustExec(t, db,
				`CREATE TABLE big (id int8 PRIMARY KEY, pad text NOT NULL)`,
				fmt.Sprintf(`INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, %d) i`, total))
			src := mustOpen(t, dsn, 1)
			tbl := mustDescribe(t, src, "public", "big")

			// Warm the single reader up, so that the failure hits a reader
			// that has already served a copy.
			if rows := mustCopy(t, src, tbl); len(rows) != total {
				t.Fatalf("first copy: %d rows, want %d", len(rows), total)
			}

			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			var seen int64
			stats, err := src.Copy(ctx, tbl, func([][]byte) error {
				seen++
				if seen == 1 {
					return tt.fail(cancel)
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("copy: error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "big") {
				t.Errorf("copy: error %q does not name the table", err)
			}
			if seen >= total || stats.Rows >= total {
				t.Errorf("copy read %d rows (stats %d) of %d: it did not stop", seen, stats.Rows, total)
			}

			mustExec(t, db, `INSERT INTO big VALUES (0, 'after open')`)
			ctx, cancel2 := context.WithTimeout(testContext(t), 30*time.Second)
			defer cancel2()
			rows, _, err := copyRows(ctx, src, tbl)
			if err != nil {
				t.Fatalf("copy after the failure: %v", err)
			}
			if len(rows) != total {
				t.Errorf("copy after the failure: %d rows, want %d as of Open", len(rows), total)
			}
		})
	}
}
