package twin_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgcopy"
	"github.com/nopii/nopii/internal/pgtest"
)

var quiet = slog.New(slog.DiscardHandler)

// prefix is the input's target_schema_prefix in every test.
const prefix = "anon_"

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

func mustExec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(testContext(t), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(testContext(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return n
}

func queryStrings(t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(testContext(t), sql, args...)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return out
}

func mustOpen(t *testing.T, dsn string, lockTimeout time.Duration) *twin.Feed {
	t.Helper()
	f, err := twin.Open(testContext(t), dsn, twin.Options{Logger: quiet, LockTimeout: lockTimeout})
	if err != nil {
		t.Fatalf("open twin: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mustPrepare(t *testing.T, f *twin.Feed, targets ...nopii.Target) {
	t.Helper()
	if err := f.Prepare(testContext(t), targets); err != nil {
		t.Fatalf("prepare: %v", err)
	}
}

// Built-in types as source/postgres describes them.
var (
	int4Type      = &nopii.Type{OID: pgtype.Int4OID, Schema: "pg_catalog", Name: "int4", SQL: "integer"}
	int8Type      = &nopii.Type{OID: pgtype.Int8OID, Schema: "pg_catalog", Name: "int8", SQL: "bigint"}
	textType      = &nopii.Type{OID: pgtype.TextOID, Schema: "pg_catalog", Name: "text", SQL: "text"}
	varcharType   = &nopii.Type{OID: pgtype.VarcharOID, Schema: "pg_catalog", Name: "varchar", SQL: "character varying"}
	numericType   = &nopii.Type{OID: pgtype.NumericOID, Schema: "pg_catalog", Name: "numeric", SQL: "numeric"}
	textArrayType = &nopii.Type{OID: pgtype.TextArrayOID, Schema: "pg_catalog", Name: "_text", Kind: nopii.TypeArray, SQL: "text[]", Elem: textType}
)

func col(name string, typ *nopii.Type, typeSQL string, typmod int32, notNull bool) nopii.Column {
	return nopii.Column{Name: name, Type: typ, TypeSQL: typeSQL, Typmod: typmod, NotNull: notNull}
}

func target(tbl *nopii.Table) nopii.Target {
	return nopii.Target{Table: tbl, Name: nopii.TableName{Schema: prefix + tbl.Name.Schema, Name: tbl.Name.Name}, Prefix: prefix}
}

// notesTable is the simple table most tests load: id int8 NOT NULL, body text.
func notesTable(name string) *nopii.Table {
	return &nopii.Table{
		Name:       nopii.TableName{Schema: "public", Name: name},
		Columns:    []nopii.Column{col("id", int8Type, "bigint", -1, true), col("body", textType, "text", -1, false)},
		PrimaryKey: []string{"id"},
	}
}

func int8Value(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func keyValue(n int64) []byte { return []byte(strconv.FormatInt(n, 10)) }

// noteRows returns rows from..to of a notes table in binary, key last.
func noteRows(from, to int64, body string) [][][]byte {
	var rows [][][]byte
	for id := from; id <= to; id++ {
		rows = append(rows, [][]byte{int8Value(id), []byte(body), keyValue(id)})
	}
	return rows
}

// noteLines is what notes reads back for noteRows(from, to, body).
func noteLines(from, to int64, body string) []string {
	var out []string
	for id := from; id <= to; id++ {
		out = append(out, fmt.Sprintf("%d %s %d", id, body, id))
	}
	return out
}

// notes reads a notes table of the twin as "id body key", by id.
func notes(t *testing.T, db *pgx.Conn, name nopii.TableName) []string {
	t.Helper()
	return queryStrings(t, db, `SELECT id || ' ' || coalesce(body, 'NULL') || ' ' || source_primary_key FROM `+name.Quoted()+` ORDER BY id`)
}

func load(ctx context.Context, f *twin.Feed, tg nopii.Target, rows [][][]byte) error {
	l, err := f.FullCopy(ctx, tg)
	if err != nil {
		return err
	}
	defer l.Abort()
	for _, r := range rows {
		if err := l.WriteRow(r); err != nil {
			return err
		}
	}
	return l.Commit(ctx)
}

func mustLoad(t *testing.T, f *twin.Feed, tg nopii.Target, rows [][][]byte) {
	t.Helper()
	if err := load(testContext(t), f, tg, rows); err != nil {
		t.Fatalf("load %s: %v", tg.Name, err)
	}
}

// assertNoLeftovers waits until none of the feed's sessions is inside a
// transaction (the feed keeps idle ones for its next caller), so that
// whatever they did is committed or rolled back, and checks that no shadow
// table remains. (While a load's transaction is open, its shadow is
// invisible to other sessions anyway.)
func assertNoLeftovers(t *testing.T, db *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queryInt(t, db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nopii' AND datname = current_database() AND state IS DISTINCT FROM 'idle'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the feed's connections are still busy or in a transaction 10s after the load ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left := queryStrings(t, db, `SELECT relname::text FROM pg_class WHERE relname LIKE '\_nopii\_new\_%'`); len(left) > 0 {
		t.Errorf("shadow tables left behind: %q", left)
	}
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestFullCopy loads a table into an empty twin and checks what a user of
// the twin would see: the schema with the prefix, the columns and their
// constraints, the key column and its unique constraint, the data.
func TestFullCopy(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	f := mustOpen(t, dsn, 0)
	if f.Kind() != "twin" {
		t.Errorf("Kind() = %q, want twin", f.Kind())
	}

	people := &nopii.Table{
		Name: nopii.TableName{Schema: "public", Name: "people"},
		Columns: []nopii.Column{
			col("id", int8Type, "bigint", -1, true),
			col("name", varcharType, "character varying(20)", 24, true),
			col("score", numericType, "numeric(10,2)", (10<<16|2)+4, false),
			col("tags", textArrayType, "text[]", -1, false),
			col("note", textType, "text", -1, false),
		},
		PrimaryKey: []string{"id"},
	}
	tg := target(people)
	mustPrepare(t, f, tg)

	types := pgtype.NewMap()
	encode := func(oid uint32, v any) []byte {
		t.Helper()
		b, err := types.Encode(oid, pgtype.BinaryFormatCode, v, nil)
		if err != nil || b == nil {
			t.Fatalf("encode %v: %v", v, err)
		}
		return b
	}
	rows := [][][]byte{
		{int8Value(1), []byte("Ann"), encode(pgtype.NumericOID, pgtype.Numeric{Int: big.NewInt(1250), Exp: -2, Valid: true}),
			encode(pgtype.TextArrayOID, []string{"a", "b c"}), []byte{}, []byte("1")},
		{int8Value(2), []byte("Bob"), nil, nil, nil, []byte("2")},
	}
	l, err := f.FullCopy(testContext(t), tg)
	if err != nil {
		t.Fatalf("full copy: %v", err)
	}
	for _, r := range rows {
		if err := l.WriteRow(r); err != nil {
			t.Fatalf("write row: %v", err)
		}
	}
	if err := l.Commit(testContext(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := l.Commit(testContext(t)); err == nil {
		t.Errorf("a second Commit succeeded, want an error")
	}
	l.Abort() // a no-op after Commit: callers defer it

	table := tg.Name.Quoted()
	if table != `"anon_public"."people"` {
		t.Fatalf("target = %s, want anon_public.people", table)
	}
	gotCols := queryStrings(t, db, `
		SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
		       || coalesce((SELECT ' COLLATE ' || c.collname FROM pg_collation c WHERE c.oid = a.attcollation AND c.collname <> 'default'), '')
		FROM pg_attribute a WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
	wantCols := []string{
		"id bigint NOT NULL",
		"name character varying(20) NOT NULL",
		"score numeric(10,2)",
		"tags text[]",
		"note text",
		"source_primary_key text NOT NULL COLLATE C",
	}
	if !slices.Equal(gotCols, wantCols) {
		t.Errorf("twin columns:\n got %q\nwant %q", gotCols, wantCols)
	}
	gotCons := queryStrings(t, db, `SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::text::regclass ORDER BY 1`, table)
	if want := []string{"people_source_primary_key_key UNIQUE (source_primary_key)"}; !slices.Equal(gotCons, want) {
		t.Errorf("twin constraints = %q, want %q", gotCons, want)
	}
	gotRows := queryStrings(t, db, `
		SELECT id || '|' || name || '|' || coalesce(score::text, 'NULL') || '|' || coalesce(tags::text, 'NULL') || '|'
		       || quote_nullable(note) || '|' || source_primary_key
		FROM `+table+` ORDER BY id`)
	wantRows := []string{`1|Ann|12.50|{a,"b c"}|''|1`, `2|Bob|NULL|NULL|NULL|2`}
	if !slices.Equal(gotRows, wantRows) {
		t.Errorf("twin rows:\n got %q\nwant %q", gotRows, wantRows)
	}
	assertNoLeftovers(t, db)
}

// TestFailedLoadKeepsPreviousCopy checks every way a load can end without
// publishing: the previous copy stays as it was and nothing is left behind.
func TestFailedLoadKeepsPreviousCopy(t *testing.T) {
	padding := strings.Repeat("p", 200)
	tests := []struct {
		name string
		// run drives the load to its failure and checks the errors.
		run func(t *testing.T, l nopii.Load)
	}{
		{name: "abort after rows", run: func(t *testing.T, l nopii.Load) {
			for _, r := range noteRows(1, 10, "new") {
				if err := l.WriteRow(r); err != nil {
					t.Fatalf("write row: %v", err)
				}
			}
			l.Abort()
		}},
		{name: "abort without rows", run: func(t *testing.T, l nopii.Load) { l.Abort() }},
		{name: "invalid value fails WriteRow", run: func(t *testing.T, l nopii.Load) {
			// An int8 of 9 bytes: PostgreSQL rejects the first row, and
			// WriteRow reports it once the stream has backed up.
			bad := [][]byte{make([]byte, 9), []byte(padding), []byte("1")}
			var err error
			for i := 0; i < 200000 && err == nil; i++ {
				err = l.WriteRow(bad)
			}
			if err == nil {
				t.Fatalf("WriteRow accepted 200000 invalid rows (%d MB) without an error", 200000*len(padding)>>20)
			}
			if pgCode(err) != "22P03" || !strings.Contains(err.Error(), "anon_public.notes") {
				t.Errorf("WriteRow: error %q (SQLSTATE %q), want invalid_binary_representation (22P03) naming the table", err, pgCode(err))
			}
			if err := l.Commit(testContext(t)); err == nil {
				t.Errorf("Commit after a failed WriteRow succeeded")
			}
			l.Abort()
		}},
		{name: "invalid value fails Commit", run: func(t *testing.T, l nopii.Load) {
			if err := l.WriteRow([][]byte{make([]byte, 9), []byte("x"), []byte("1")}); err != nil {
				t.Fatalf("write row: %v", err)
			}
			if err := l.Commit(testContext(t)); pgCode(err) != "22P03" {
				t.Errorf("commit: error %v, want invalid_binary_representation (22P03)", err)
			}
		}},
		{name: "NULL in a NOT NULL column", run: func(t *testing.T, l nopii.Load) {
			if err := l.WriteRow([][]byte{nil, []byte("x"), []byte("1")}); err != nil {
				t.Fatalf("write row: %v", err)
			}
			if err := l.Commit(testContext(t)); pgCode(err) != "23502" {
				t.Errorf("commit: error %v, want not_null_violation (23502)", err)
			}
		}},
		{name: "duplicate source_primary_key", run: func(t *testing.T, l nopii.Load) {
			const key = "dup-key-4711"
			for id := range int64(3) {
				if err := l.WriteRow([][]byte{int8Value(id), []byte("x"), []byte(key)}); err != nil {
					t.Fatalf("write row: %v", err)
				}
			}
			err := l.Commit(testContext(t))
			if pgCode(err) != "23505" || !strings.Contains(err.Error(), nopii.SourcePrimaryKeyColumn) {
				t.Errorf("commit: error %v, want unique_violation (23505) about %s", err, nopii.SourcePrimaryKeyColumn)
			}
			if err != nil && strings.Contains(err.Error(), key) {
				t.Errorf("commit: error %q contains the duplicated key: row values must not reach errors", err)
			}
		}},
		{name: "commit with a cancelled context", run: func(t *testing.T, l nopii.Load) {
			for _, r := range noteRows(1, 10, "new") {
				if err := l.WriteRow(r); err != nil {
					t.Fatalf("write row: %v", err)
				}
			}
			ctx, cancel := context.WithCancel(testContext(t))
			cancel()
			if err := l.Commit(ctx); err == nil {
				t.Errorf("commit with a cancelled context succeeded")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			db := mustConnect(t, dsn)
			f := mustOpen(t, dsn, 0)
			tg := target(notesTable("notes"))
			mustPrepare(t, f, tg)
			mustLoad(t, f, tg, noteRows(1, 3, "old"))
			oid := queryInt(t, db, `SELECT $1::text::regclass::oid::int8`, tg.Name.Quoted())

			l, err := f.FullCopy(testContext(t), tg)
			if err != nil {
				t.Fatalf("full copy: %v", err)
			}
			tt.run(t, l)
			// A failed Commit ends the load by itself: assertNoLeftovers
			// waits for its connection to close. Only then may a deferred
			// Abort run, as a no-op.
			defer l.Abort()

			if got, want := notes(t, db, tg.Name), noteLines(1, 3, "old"); !slices.Equal(got, want) {
				t.Errorf("after the failed load the twin has %q, want the previous copy %q", got, want)
			}
			if got := queryInt(t, db, `SELECT $1::text::regclass::oid::int8`, tg.Name.Quoted()); got != oid {
				t.Errorf("the twin table was replaced (OID %d, was %d)", got, oid)
			}
			assertNoLeftovers(t, db)

			// The failure leaves nothing in the way of the next run.
			mustLoad(t, f, tg, noteRows(1, 2, "next"))
			if got, want := notes(t, db, tg.Name), noteLines(1, 2, "next"); !slices.Equal(got, want) {
				t.Errorf("the next load gave %q, want %q", got, want)
			}
		})
	}
}

// TestFullCopyIsAtomic checks that readers of the twin see the previous copy
// while a new one loads, and the new one, whole, after Commit.
func TestFullCopyIsAtomic(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	f := mustOpen(t, dsn, 0)
	tg := target(notesTable("notes"))
	mustPrepare(t, f, tg)
	mustLoad(t, f, tg, noteRows(1, 3, "old"))
	oldOID := queryInt(t, db, `SELECT $1::text::regclass::oid::int8`, tg.Name.Quoted())

	const n = 20000 // a few MB: several buffers reach the server before Commit
	body := strings.Repeat("n", 100)
	l, err := f.FullCopy(testContext(t), tg)
	if err != nil {
		t.Fatalf("full copy: %v", err)
	}
	defer l.Abort()
	for _, r := range noteRows(1, n, body) {
		if err := l.WriteRow(r); err != nil {
			t.Fatalf("write row: %v", err)
		}
	}
	// Wait until PostgreSQL has taken rows in, so that they exist, uncommitted.
	deadline := time.Now().Add(10 * time.Second)
	for queryInt(t, db, `SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy WHERE datname = current_database()`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no row reached the server before Commit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := notes(t, db, tg.Name), noteLines(1, 3, "old"); !slices.Equal(got, want) {
		t.Errorf("during the load readers see %q, want the previous copy %q", got, want)
	}

	if err := l.Commit(testContext(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM `+tg.Name.Quoted()+` WHERE body = $1 AND source_primary_key = id::text`, body); got != n {
		t.Errorf("after Commit the twin has %d new rows, want %d", got, n)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM `+tg.Name.Quoted()); got != n {
		t.Errorf("after Commit the twin has %d rows, want %d", got, n)
	}
	if queryInt(t, db, `SELECT $1::text::regclass::oid::int8`, tg.Name.Quoted()) == oldOID {
		t.Errorf("the table was not replaced")
	}
	if got := queryStrings(t, db, `SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass`, tg.Name.Quoted()); !slices.Equal(got, []string{"notes_source_primary_key_key"}) {
		t.Errorf("constraints after the swap = %q, want the one unique constraint", got)
	}
	assertNoLeftovers(t, db)
}

// TestSwapWaitsForReaders checks the swap against a reader that holds the
// old table: it waits for a reader that leaves in time, and gives up with a
// clear error, keeping the old copy, on one that does not.
func TestSwapWaitsForReaders(t *testing.T) {
	const lockTimeout = 300 * time.Millisecond
	tests := []struct {
		name string
		hold time.Duration // 0: until Commit has returned
	}{
		{name: "reader leaves within the lock timeout", hold: 100 * time.Millisecond},
		{name: "reader stays past three attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			db := mustConnect(t, dsn)
			f := mustOpen(t, dsn, lockTimeout)
			tg := target(notesTable("notes"))
			mustPrepare(t, f, tg)
			mustLoad(t, f, tg, noteRows(1, 3, "old"))

			reader := mustConnect(t, dsn)
			mustExec(t, reader, `BEGIN`, `SELECT count(*) FROM `+tg.Name.Quoted())

			l, err := f.FullCopy(testContext(t), tg)
			if err != nil {
				t.Fatalf("full copy: %v", err)
			}
			defer l.Abort()
			for _, r := range noteRows(1, 5, "new") {
				if err := l.WriteRow(r); err != nil {
					t.Fatalf("write row: %v", err)
				}
			}

			type release struct {
				at  time.Time
				err error
			}
			released := make(chan release, 1)
			if tt.hold > 0 {
				go func() {
					time.Sleep(tt.hold)
					at := time.Now() // before COMMIT: the swap may finish before the reader hears back
					_, err := reader.Exec(context.Background(), "COMMIT")
					released <- release{at, err}
				}()
			}
			start := time.Now()
			err = l.Commit(testContext(t))
			end := time.Now()

			if tt.hold > 0 {
				r := <-released
				if r.err != nil {
					t.Fatalf("reader commit: %v", r.err)
				}
				if err != nil {
					t.Fatalf("commit: %v", err)
				}
				if end.Before(r.at) {
					t.Errorf("the swap finished %v before the reader left: it did not wait for the lock", r.at.Sub(end))
				}
				if got, want := notes(t, db, tg.Name), noteLines(1, 5, "new"); !slices.Equal(got, want) {
					t.Errorf("after the swap the twin has %q, want %q", got, want)
				}
				assertNoLeftovers(t, db)
				return
			}

			if err == nil {
				t.Fatalf("commit succeeded while a reader held the table")
			}
			if pgCode(err) != "55P03" || !strings.Contains(err.Error(), "readers hold it") || !strings.Contains(err.Error(), "anon_public.notes") {
				t.Errorf("commit: error %q (SQLSTATE %q), want lock_not_available (55P03) saying readers hold anon_public.notes", err, pgCode(err))
			}
			if waited := end.Sub(start); waited < 3*lockTimeout {
				t.Errorf("commit gave up after %v, want three attempts of %v", waited, lockTimeout)
			}
			mustExec(t, reader, `COMMIT`)
			if got, want := notes(t, db, tg.Name), noteLines(1, 3, "old"); !slices.Equal(got, want) {
				t.Errorf("after the failed swap the twin has %q, want the previous copy %q", got, want)
			}
			assertNoLeftovers(t, db)
		})
	}
}

// TestSwapKeepsViewsAndGrants checks that what users of the twin built on a
// table survives a full copy: views (on views too), materialized views, and
// grants on all of them.
func TestSwapKeepsViewsAndGrants(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	f := mustOpen(t, dsn, 0)
	tg := target(notesTable("notes"))
	mustPrepare(t, f, tg)
	mustLoad(t, f, tg, noteRows(1, 3, "old"))
	mustExec(t, db,
		// Roles belong to the cluster, which the package's tests share.
		`DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
		`CREATE VIEW anon_public.recent AS SELECT id, body FROM anon_public.notes WHERE id > 1`,
		`CREATE VIEW public.recent_ids AS SELECT id FROM anon_public.recent`,
		`CREATE MATERIALIZED VIEW anon_public.counts AS SELECT count(*) AS n FROM anon_public.notes`,
		`GRANT SELECT ON anon_public.notes, anon_public.recent TO analyst`)

	mustLoad(t, f, tg, noteRows(1, 5, "new"))

	checks := []struct{ sql, want string }{
		{`SELECT string_agg(id || ' ' || body, ',' ORDER BY id) FROM anon_public.recent`, "2 new,3 new,4 new,5 new"},
		{`SELECT string_agg(id::text, ',' ORDER BY id) FROM public.recent_ids`, "2,3,4,5"},
		{`SELECT n::text FROM anon_public.counts`, "5"},
		{`SELECT has_table_privilege('analyst', 'anon_public.notes', 'SELECT')::text`, "true"},
		{`SELECT has_table_privilege('analyst', 'anon_public.recent', 'SELECT')::text`, "true"},
		{`SELECT has_table_privilege('analyst', 'anon_public.notes', 'INSERT')::text`, "false"},
	}
	for _, c := range checks {
		if got := queryStrings(t, db, c.sql); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s = %q, want %q", c.sql, got, c.want)
		}
	}
	assertNoLeftovers(t, db)
}

// recordingProxy forwards TCP connections to dsn's server and records what
// each client sends, so tests can check bytes on the wire.
func recordingProxy(t *testing.T, dsn string) (proxyDSN string, streams func() [][]byte) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse dsn: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		sent  []*bytes.Buffer
		wg    sync.WaitGroup
	)
	upstream := u.Host
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			buf := &lockedBuffer{mu: &mu}
			mu.Lock()
			conns = append(conns, client, server)
			sent = append(sent, &buf.b)
			mu.Unlock()
			wg.Go(func() {
				io.Copy(server, io.TeeReader(client, buf))
				server.Close()
			})
			wg.Go(func() {
				io.Copy(client, server)
				client.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	u.Host = ln.Addr().String()
	return u.String(), func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		var out [][]byte
		for _, b := range sent {
			out = append(out, slices.Clone(b.Bytes()))
		}
		return out
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// array returns a one-dimensional array in PostgreSQL's binary format;
// a nil element is NULL.
func array(elemOID uint32, elems ...[]byte) []byte {
	var b []byte
	if len(elems) == 0 {
		b = binary.BigEndian.AppendUint32(b, 0) // ndim
		b = binary.BigEndian.AppendUint32(b, 0) // flags
		return binary.BigEndian.AppendUint32(b, elemOID)
	}
	var hasNull uint32
	if slices.ContainsFunc(elems, func(e []byte) bool { return e == nil }) {
		hasNull = 1
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, hasNull)
	b = binary.BigEndian.AppendUint32(b, elemOID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(elems)))
	b = binary.BigEndian.AppendUint32(b, 1) // lower bound
	for _, e := range elems {
		b = pgcopy.AppendValue(b, e)
	}
	return b
}

// TestUserTypes checks that Prepare recreates the source's user types under
// the prefixed schema, adds enum labels on a later run, and that values of
// those types load, including arrays of an enum whose binary form carries
// the source's type OID.
func TestUserTypes(t *testing.T) {
	srcDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	src, db := mustConnect(t, srcDSN), mustConnect(t, twinDSN)
	mustExec(t, src,
		`CREATE TYPE filler AS ENUM ('x')`, // takes OIDs, so that the source's and the twin's differ
		`CREATE TYPE mood AS ENUM ('sad', 'ok')`,
		`CREATE DOMAIN short_name AS varchar(30) NOT NULL CHECK (VALUE <> '')`,
		`CREATE TYPE address AS (street text, zip int4)`)
	oid := func(typ string) uint32 {
		t.Helper()
		return uint32(queryInt(t, src, `SELECT $1::text::regtype::oid::int8`, typ))
	}
	moodOID := oid("mood")

	mood := func(labels ...string) *nopii.Type {
		return &nopii.Type{OID: moodOID, Schema: "public", Name: "mood", Kind: nopii.TypeEnum, SQL: "public.mood", Labels: labels}
	}
	feelings := func(m *nopii.Type) nopii.Target {
		moods := &nopii.Type{OID: oid("mood[]"), Schema: "public", Name: "_mood", Kind: nopii.TypeArray, SQL: "public.mood[]", Elem: m}
		return target(&nopii.Table{
			Name: nopii.TableName{Schema: "public", Name: "feelings"},
			Columns: []nopii.Column{
				col("id", int8Type, "bigint", -1, true),
				col("m", m, "public.mood", -1, false),
				col("ms", moods, "public.mood[]", -1, false),
			},
			PrimaryKey: []string{"id"},
		})
	}
	shortName := &nopii.Type{OID: oid("short_name"), Schema: "public", Name: "short_name", Kind: nopii.TypeDomain, SQL: "public.short_name",
		Base: varcharType, BaseTypmod: 34, BaseSQL: "character varying(30)", NotNull: true, Checks: []string{`CHECK (((VALUE)::text <> ''::text))`}}
	address := &nopii.Type{OID: oid("address"), Schema: "public", Name: "address", Kind: nopii.TypeComposite, SQL: "public.address",
		Attrs: []nopii.Column{col("street", textType, "text", -1, false), col("zip", int4Type, "integer", -1, false)}}
	contacts := target(&nopii.Table{
		Name: nopii.TableName{Schema: "public", Name: "contacts"},
		Columns: []nopii.Column{
			col("id", int8Type, "bigint", -1, true),
			col("nick", shortName, "public.short_name", -1, false),
			col("home", address, "public.address", -1, false),
		},
		PrimaryKey: []string{"id"},
	})
	labels := func() []string {
		t.Helper()
		return queryStrings(t, db, `SELECT enumlabel::text FROM pg_enum WHERE enumtypid = 'anon_public.mood'::regtype ORDER BY enumsortorder`)
	}

	// First run.
	mustPrepare(t, mustOpen(t, twinDSN, 0), feelings(mood("sad", "ok")), contacts)
	if got, want := labels(), []string{"sad", "ok"}; !slices.Equal(got, want) {
		t.Errorf("twin enum labels = %q, want %q", got, want)
	}
	twinMoodOID := uint32(queryInt(t, db, `SELECT 'anon_public.mood'::regtype::oid::int8`))
	if twinMoodOID == moodOID {
		t.Fatalf("the enum has OID %d in both databases: the test cannot tell whether array headers are rewritten", moodOID)
	}
	if got := queryStrings(t, db, `SELECT format_type(typbasetype, typtypmod) || CASE WHEN typnotnull THEN ' NOT NULL' ELSE '' END FROM pg_type WHERE oid = 'anon_public.short_name'::regtype`); !slices.Equal(got, []string{"character varying(30) NOT NULL"}) {
		t.Errorf("twin domain = %q, want character varying(30) NOT NULL", got)
	}
	if got := queryStrings(t, db, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = 'anon_public.short_name'::regtype`); !slices.Equal(got, shortName.Checks) {
		t.Errorf("twin domain checks = %q, want %q", got, shortName.Checks)
	}
	if got := queryStrings(t, db, `SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'anon_public.address'::regtype) ORDER BY attnum`); !slices.Equal(got, []string{"street text", "zip integer"}) {
		t.Errorf("twin composite attributes = %q, want street text, zip integer", got)
	}

	// A later run, after the source gained a label in the middle and one at
	// the end. Recent PostgreSQL
	// releases ignore a user type's element OID in a binary array, older
	// ones reject a mismatch: this run's feed talks through a proxy that
	// records the wire, to see that the twin gets its own OID either way.
	proxyDSN, streams := recordingProxy(t, twinDSN)
	f := mustOpen(t, proxyDSN, 0)
	tg := feelings(mood("sad", "meh", "ok", "happy"))
	mustPrepare(t, f, tg, contacts)
	if got, want := labels(), []string{"sad", "meh", "ok", "happy"}; !slices.Equal(got, want) {
		t.Errorf("twin enum labels after the second Prepare = %q, want %q in the source's order", got, want)
	}

	happySad := array(moodOID, []byte("happy"), []byte("sad"))
	rows := [][][]byte{
		{int8Value(1), []byte("happy"), happySad, keyValue(1)},
		{int8Value(2), nil, array(moodOID, []byte("ok"), nil), keyValue(2)},
		{int8Value(3), []byte("sad"), nil, keyValue(3)},
		{int8Value(4), []byte("ok"), array(moodOID), keyValue(4)},
	}
	sent := slices.Clone(happySad)
	mustLoad(t, f, tg, rows)
	if !bytes.Equal(happySad, sent) {
		t.Errorf("WriteRow changed the caller's value (%x, was %x): other feeds get the same row", happySad, sent)
	}
	patched, unpatched := array(twinMoodOID, []byte("happy"), []byte("sad")), happySad
	var sawPatched, sawUnpatched bool
	for _, s := range streams() {
		sawPatched = sawPatched || bytes.Contains(s, patched)
		sawUnpatched = sawUnpatched || bytes.Contains(s, unpatched)
	}
	if !sawPatched || sawUnpatched {
		t.Errorf("on the wire to the twin: array with the twin's element OID %d seen %t, with the source's %d seen %t; want only the twin's",
			twinMoodOID, sawPatched, moodOID, sawUnpatched)
	}
	if got := queryStrings(t, db, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'anon_public.feelings'::regclass AND attname IN ('m', 'ms') ORDER BY attnum`); !slices.Equal(got, []string{"anon_public.mood", "anon_public.mood[]"}) {
		t.Errorf("twin column types = %q, want anon_public.mood, anon_public.mood[]", got)
	}
	got := queryStrings(t, db, `SELECT id || ' ' || coalesce(m::text, 'NULL') || ' ' || coalesce(ms::text, 'NULL') FROM anon_public.feelings ORDER BY id`)
	if want := []string{"1 happy {happy,sad}", "2 NULL {ok,NULL}", "3 sad NULL", "4 ok {}"}; !slices.Equal(got, want) {
		t.Errorf("twin rows:\n got %q\nwant %q", got, want)
	}

	// A composite value carries its attributes' OIDs: built-in ones here.
	composite := func(street string, zip int32) []byte {
		b := binary.BigEndian.AppendUint32(nil, 2)
		b = binary.BigEndian.AppendUint32(b, pgtype.TextOID)
		b = pgcopy.AppendValue(b, []byte(street))
		b = binary.BigEndian.AppendUint32(b, pgtype.Int4OID)
		return pgcopy.AppendValue(b, binary.BigEndian.AppendUint32(nil, uint32(zip)))
	}
	mustLoad(t, f, contacts, [][][]byte{{int8Value(1), []byte("neo"), composite("Main St", 12345), keyValue(1)}})
	if got := queryStrings(t, db, `SELECT nick || ' ' || home::text FROM anon_public.contacts`); !slices.Equal(got, []string{`neo ("Main St",12345)`}) {
		t.Errorf("twin contacts = %q, want neo (\"Main St\",12345)", got)
	}
	// The domain's CHECK holds in the twin too.
	err := load(testContext(t), f, contacts, [][][]byte{{int8Value(2), []byte(""), nil, keyValue(2)}})
	if pgCode(err) != "23514" {
		t.Errorf("loading a value the domain's CHECK forbids: error %v, want check_violation (23514)", err)
	}
	assertNoLeftovers(t, db)
}

var copyShadow = regexp.MustCompile(`^COPY "(?:[^"]|"")*"\."((?:[^"]|"")*)"`)

// TestLongNames loads tables whose names leave no room for the shadow's
// prefix or the constraint's suffix, two of them alike in their first 56
// bytes, one in two-byte characters, all at once.
func TestLongNames(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	f := mustOpen(t, dsn, 0)
	base := strings.Repeat("customer_address_", 4)[:56]
	names := []string{base + "_alpha", base + "_bravo", strings.Repeat("é", 31)}
	var targets []nopii.Target
	for _, n := range names {
		if len(n) < 60 || len(n) > 63 {
			t.Fatalf("name %q has %d bytes, want 60 to 63", n, len(n))
		}
		targets = append(targets, target(notesTable(n)))
	}
	mustPrepare(t, f, targets...)
	for _, tg := range targets {
		mustLoad(t, f, tg, noteRows(1, 2, "v1"))
	}

	// Replace all three at once: shadows with the same name would block
	// each other on the catalog until the context expires.
	ctx, cancel := context.WithTimeout(testContext(t), 20*time.Second)
	defer cancel()
	var loads []nopii.Load
	for _, tg := range targets {
		l, err := f.FullCopy(ctx, tg)
		if err != nil {
			t.Fatalf("full copy %s: %v", tg.Name, err)
		}
		defer l.Abort()
		for _, r := range noteRows(1, 3, "v2") {
			if err := l.WriteRow(r); err != nil {
				t.Fatalf("write row: %v", err)
			}
		}
		loads = append(loads, l)
	}
	var copies []string
	for deadline := time.Now().Add(10 * time.Second); len(copies) < len(targets); time.Sleep(10 * time.Millisecond) {
		copies = queryStrings(t, db, `SELECT query FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'nopii' AND query LIKE 'COPY %'`)
		if time.Now().After(deadline) {
			t.Fatalf("the loads' COPY statements = %q, want %d", copies, len(targets))
		}
	}
	shadows := map[string]bool{}
	for _, q := range copies {
		m := copyShadow.FindStringSubmatch(q)
		if m == nil {
			t.Fatalf("cannot find the shadow table in %q", q)
		}
		s := strings.ReplaceAll(m[1], `""`, `"`)
		if len(s) > 63 || !strings.HasPrefix(s, "_nopii_new_") || !utf8.ValidString(s) {
			t.Errorf("shadow name %q (%d bytes): want _nopii_new_…, valid UTF-8, at most 63 bytes", s, len(s))
		}
		shadows[s] = true
	}
	if len(shadows) != len(targets) {
		t.Errorf("shadow names %q: want %d distinct", copies, len(targets))
	}
	for i, l := range loads {
		if err := l.Commit(ctx); err != nil {
			t.Fatalf("commit %s: %v", targets[i].Name, err)
		}
	}

	constraints := map[string]bool{}
	for _, tg := range targets {
		if got, want := notes(t, db, tg.Name), noteLines(1, 3, "v2"); !slices.Equal(got, want) {
			t.Errorf("%s has %q, want %q", tg.Name, got, want)
		}
		got := queryStrings(t, db, `SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::text::regclass`, tg.Name.Quoted())
		if len(got) != 1 || !strings.HasSuffix(got[0], " UNIQUE (source_primary_key)") {
			t.Errorf("%s constraints = %q, want one UNIQUE (source_primary_key)", tg.Name, got)
			continue
		}
		name := strings.TrimSuffix(got[0], " UNIQUE (source_primary_key)")
		if len(name) > 63 || !utf8.ValidString(name) {
			t.Errorf("constraint name %q has %d bytes, want at most 63, valid UTF-8", name, len(name))
		}
		constraints[name] = true
	}
	if len(constraints) != len(targets) {
		t.Errorf("constraint names %v: want %d distinct", constraints, len(targets))
	}
	assertNoLeftovers(t, db)
}
