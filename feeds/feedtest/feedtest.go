package feedtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nopii/nopii"
)

// Workflow and Input name the workflow and input of every target and state
// the suite writes; a feed under test is opened for Workflow.
const (
	Workflow = "feedtest"
	Input    = "src"
	Schema   = "feedtest" // the schema of every target table
)

// Null stands for SQL NULL among the values a Reader returns. No text value
// can equal it: PostgreSQL text holds no NUL byte.
const Null = "\x00NULL"

// Reader reads back what a feed holds.
type Reader interface {
	// Rows returns the rows of target keyed by source_primary_key, each the
	// values of the table's columns in order (the key not repeated), as
	// PostgreSQL's output functions print them with TimeZone UTC, DateStyle
	// ISO, IntervalStyle postgres, extra_float_digits 1 and bytea_output hex
	// — what psql shows, not a ::text cast (which trims char(n)) — and Null
	// for NULL. It returns nil when the feed does not have the table.
	Rows(t *testing.T, target nopii.TableName) map[string][]string
}

// PartReader is a Reader of a feed that writes tables in parts (a lake).
// The suite then checks that parts roll over.
type PartReader interface {
	Reader
	// Parts returns the number of parts of the table's current snapshot.
	Parts(t *testing.T, target nopii.TableName) int
	// PartSize returns the part size the feed under test was opened with;
	// the suite needs it at most 64 KiB.
	PartSize() int64
}

// Run runs the suite. newFeed returns a new, empty feed (its own database,
// bucket or directory) for Workflow and a Reader of it; the suite closes
// the feed.
func Run(t *testing.T, newFeed func(t *testing.T) (nopii.Feed, Reader)) {
	open := func(t *testing.T) (nopii.Feed, Reader) {
		t.Helper()
		f, r := newFeed(t)
		t.Cleanup(func() {
			if err := f.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return f, r
	}
	cases := []struct {
		name string
		run  func(t *testing.T, f nopii.Feed, r Reader)
	}{
		{"FullCopyTypes", testFullCopyTypes},
		{"NullVersusEmpty", testNullVersusEmpty},
		{"EmptyTable", testEmptyTable},
		{"AbortKeepsPrevious", testAbortKeepsPrevious},
		{"SecondFullCopyReplaces", testSecondFullCopyReplaces},
		{"DeltaUpsertsAndDeletes", testDelta},
		{"Changes", testChanges},
		{"State", testState},
		{"PartRollOver", testPartRollOver},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, r := open(t)
			c.run(t, f, r)
		})
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// A Table is a source table with rows to load: binary values for the feed,
// and the text PostgreSQL prints for each.
type Table struct {
	*nopii.Table
	Rows []Row
}

// A Row is one source row.
type Row struct {
	Key    string
	Values [][]byte // binary, nil for NULL
	Text   []string // as PostgreSQL prints them, Null for NULL
}

// Target returns the feed target of the table, with a state to commit.
func (tb *Table) Target(mode string, rows int64) nopii.Target {
	return nopii.Target{Table: tb.Table, Name: tb.Name, State: StateOf(tb.Table, mode, rows)}
}

// StateOf returns a state like the agent's for a load of t.
func StateOf(t *nopii.Table, mode string, rows int64) *nopii.TableState {
	return &nopii.TableState{Workflow: Workflow, Input: Input, Table: t.Name, Mode: mode,
		Fingerprint: t.Fingerprint(), Columns: t.Shape(), PrimaryKey: t.PrimaryKey,
		Cursors: map[string]string{"updated_at": "2024-01-02 03:04:05+00"}, LastRun: time.Now().UTC().Truncate(time.Microsecond), Rows: rows}
}

// Want returns the rows as a Reader should return them.
func Want(rows ...Row) map[string][]string {
	out := map[string][]string{}
	for _, r := range rows {
		out[r.Key] = r.Text
	}
	return out
}

// row builds a row from binary values; key is the source_primary_key.
func (r Row) values() [][]byte {
	return append(slices.Clip(r.Values), []byte(r.Key))
}

// MustFullCopy loads rows as a full copy of tb and commits.
func MustFullCopy(t *testing.T, f nopii.Feed, tb *Table, rows ...Row) {
	t.Helper()
	ctx := testContext(t)
	l, err := f.FullCopy(ctx, tb.Target("full", int64(len(rows))))
	if err != nil {
		t.Fatalf("full copy of %s: %v", tb.Name, err)
	}
	defer l.Abort()
	for _, r := range rows {
		if err := l.WriteRow(r.values()); err != nil {
			t.Fatalf("write row %q: %v", r.Key, err)
		}
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatalf("commit full copy of %s: %v", tb.Name, err)
	}
}

// MustPrepare readies f for the tables.
func MustPrepare(t *testing.T, f nopii.Feed, tables ...*Table) {
	t.Helper()
	var targets []nopii.Target
	for _, tb := range tables {
		targets = append(targets, tb.Target("full", 0))
	}
	if err := f.Prepare(testContext(t), targets); err != nil {
		t.Fatalf("prepare: %v", err)
	}
}

// CheckRows compares what r reads of tb with want, naming the differences.
func CheckRows(t *testing.T, r Reader, tb *Table, want map[string][]string) {
	t.Helper()
	got := r.Rows(t, tb.Name)
	if got == nil {
		t.Fatalf("%s: the feed does not have the table", tb.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: row %q missing", tb.Name, k)
			continue
		}
		if len(g) != len(want[k]) {
			t.Errorf("%s: row %q has %d values, want %d", tb.Name, k, len(g), len(want[k]))
			continue
		}
		for i, w := range want[k] {
			if g[i] != w {
				t.Errorf("%s: row %q column %s = %s, want %s", tb.Name, k, tb.Columns[i].Name, show(g[i]), show(w))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected row %q", tb.Name, k)
		}
	}
}

func show(s string) string {
	if s == Null {
		return "NULL"
	}
	return strconv.Quote(s)
}

// Types used by the suite's tables, as the source describes them.
var (
	int2Type        = builtin(pgtype.Int2OID, "int2", "smallint")
	int4Type        = builtin(pgtype.Int4OID, "int4", "integer")
	int8Type        = builtin(pgtype.Int8OID, "int8", "bigint")
	float4Type      = builtin(pgtype.Float4OID, "float4", "real")
	float8Type      = builtin(pgtype.Float8OID, "float8", "double precision")
	boolType        = builtin(pgtype.BoolOID, "bool", "boolean")
	numericType     = builtin(pgtype.NumericOID, "numeric", "numeric")
	textType        = builtin(pgtype.TextOID, "text", "text")
	varcharType     = builtin(pgtype.VarcharOID, "varchar", "character varying")
	bpcharType      = builtin(pgtype.BPCharOID, "bpchar", "character")
	dateType        = builtin(pgtype.DateOID, "date", "date")
	timeType        = builtin(pgtype.TimeOID, "time", "time without time zone")
	timestampType   = builtin(pgtype.TimestampOID, "timestamp", "timestamp without time zone")
	timestamptzType = builtin(pgtype.TimestamptzOID, "timestamptz", "timestamp with time zone")
	intervalType    = builtin(pgtype.IntervalOID, "interval", "interval")
	uuidType        = builtin(pgtype.UUIDOID, "uuid", "uuid")
	jsonType        = builtin(pgtype.JSONOID, "json", "json")
	jsonbType       = builtin(pgtype.JSONBOID, "jsonb", "jsonb")
	byteaType       = builtin(pgtype.ByteaOID, "bytea", "bytea")
	inetType        = builtin(pgtype.InetOID, "inet", "inet")
	int4ArrayType   = &nopii.Type{OID: pgtype.Int4ArrayOID, Schema: "pg_catalog", Name: "_int4", Kind: nopii.TypeArray, SQL: "integer[]", Elem: int4Type}
	textArrayType   = &nopii.Type{OID: pgtype.TextArrayOID, Schema: "pg_catalog", Name: "_text", Kind: nopii.TypeArray, SQL: "text[]", Elem: textType}
	tstzArrayType   = &nopii.Type{OID: pgtype.TimestamptzArrayOID, Schema: "pg_catalog", Name: "_timestamptz", Kind: nopii.TypeArray, SQL: "timestamp with time zone[]", Elem: timestamptzType}
	moodType        = &nopii.Type{OID: 990001, Schema: Schema, Name: "mood", Kind: nopii.TypeEnum, SQL: Schema + ".mood", Labels: []string{"sad", "ok", "happy"}}
	posintType      = &nopii.Type{OID: 990002, Schema: Schema, Name: "posint", Kind: nopii.TypeDomain, SQL: Schema + ".posint",
		Base: int4Type, BaseTypmod: -1, BaseSQL: "integer"}
)

func builtin(oid uint32, name, sql string) *nopii.Type {
	return &nopii.Type{OID: oid, Schema: "pg_catalog", Name: name, Kind: nopii.TypeBase, SQL: sql}
}

func col(name string, t *nopii.Type, typmod int32, typeSQL string) nopii.Column {
	if typeSQL == "" && t.BuiltIn() {
		typeSQL = t.SQL
	}
	return nopii.Column{Name: name, Type: t, Typmod: typmod, TypeSQL: typeSQL}
}

func numericMod(precision, scale int32) int32 { return precision<<16 | scale + 4 }

// encoder builds binary values with pgx's codecs.
type encoder struct {
	t *testing.T
	m *pgtype.Map
}

func (e encoder) enc(oid uint32, v any) []byte {
	e.t.Helper()
	if v == nil {
		return nil
	}
	b, err := e.m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
	if err != nil {
		e.t.Fatalf("encode %v as type %d: %v", v, oid, err)
	}
	if b == nil {
		b = []byte{} // an empty value, not NULL
	}
	return b
}

func (e encoder) numeric(s string) []byte {
	e.t.Helper()
	var n pgtype.Numeric
	if err := n.Scan(s); err != nil {
		e.t.Fatalf("numeric %q: %v", s, err)
	}
	return e.enc(pgtype.NumericOID, n)
}

func mustTime(t *testing.T, layout, s string) time.Time {
	t.Helper()
	v, err := time.Parse(layout, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// KitchenSink returns a table with a column of most types that a feed
// must carry, and rows that probe their edges.
func KitchenSink(t *testing.T) *Table {
	t.Helper()
	e := encoder{t, pgtype.NewMap()}
	tb := &Table{Table: &nopii.Table{Name: nopii.TableName{Schema: Schema, Name: "kitchen"}, PrimaryKey: []string{"id"}, EstRows: -1}}
	tb.Columns = []nopii.Column{
		col("id", int8Type, -1, ""), col("i2", int2Type, -1, ""), col("i4", int4Type, -1, ""),
		col("f4", float4Type, -1, ""), col("f8", float8Type, -1, ""), col("b", boolType, -1, ""),
		col("n", numericType, numericMod(12, 2), "numeric(12,2)"), col("nu", numericType, -1, ""), col("nb", numericType, numericMod(30, 5), "numeric(30,5)"),
		col("t", textType, -1, ""), col("vc", varcharType, 24, "character varying(20)"), col("c", bpcharType, 9, "character(5)"),
		col("d", dateType, -1, ""), col("tm", timeType, -1, ""), col("ts", timestampType, -1, ""), col("tz", timestamptzType, -1, ""),
		col("iv", intervalType, -1, ""), col("u", uuidType, -1, ""), col("j", jsonType, -1, ""), col("jb", jsonbType, -1, ""),
		col("by", byteaType, -1, ""), col("ip", inetType, -1, ""), col("ai", int4ArrayType, -1, ""), col("at", textArrayType, -1, ""),
		col("atz", tstzArrayType, -1, ""), col("m", moodType, -1, ""), col("dm", posintType, -1, ""),
	}
	tb.Columns[0].NotNull = true
	i32 := func(v int32) *int32 { return &v }
	str := func(v string) *string { return &v }
	jsonb := func(s string) []byte { return append([]byte{1}, s...) }
	uuid := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	tsLayout := "2006-01-02 15:04:05.999999"
	tb.Rows = []Row{{
		Key: "1",
		Values: [][]byte{
			e.enc(pgtype.Int8OID, int64(1)), e.enc(pgtype.Int2OID, int16(-32768)), e.enc(pgtype.Int4OID, int32(math.MaxInt32)),
			e.enc(pgtype.Float4OID, float32(1.5)), e.enc(pgtype.Float8OID, 0.1), e.enc(pgtype.BoolOID, true),
			e.numeric("12.50"), e.numeric("-0.001"), e.numeric("-1234567890123456789012345.67891"),
			e.enc(pgtype.TextOID, "he said \"hi\", then\nleft \\ o'clock"), e.enc(pgtype.VarcharOID, "Zoë 🎉"), e.enc(pgtype.BPCharOID, "ab   "),
			e.enc(pgtype.DateOID, mustTime(t, "2006-01-02", "2024-02-29")),
			e.enc(pgtype.TimeOID, pgtype.Time{Microseconds: (12*3600+34*60+56)*1e6 + 789000, Valid: true}),
			e.enc(pgtype.TimestampOID, pgtype.Timestamp{Time: mustTime(t, tsLayout, "2024-01-02 03:04:05.123456"), Valid: true}),
			e.enc(pgtype.TimestamptzOID, mustTime(t, tsLayout, "2024-01-02 03:04:05.1")),
			e.enc(pgtype.IntervalOID, pgtype.Interval{Months: 14, Days: 3, Microseconds: (4*3600+5*60+6)*1e6 + 700000, Valid: true}),
			e.enc(pgtype.UUIDOID, uuid), []byte(`{"b":1, "a":[1,2.5,null]}`), jsonb(`{"a": [1, 2.5, null, "x"], "b": {"c": true}}`),
			e.enc(pgtype.ByteaOID, []byte{0xde, 0xad, 0xbe, 0xef}), e.enc(pgtype.InetOID, netip.MustParsePrefix("192.168.1.5/24")),
			e.enc(pgtype.Int4ArrayOID, []*int32{i32(1), i32(-2), nil}),
			e.enc(pgtype.TextArrayOID, []*string{str("a"), str("x y"), str(`q"q`), str(""), str("NULL"), nil}),
			e.enc(pgtype.TimestamptzArrayOID, []time.Time{mustTime(t, tsLayout, "2024-06-01 00:00:00")}),
			e.enc(pgtype.TextOID, "happy"), e.enc(pgtype.Int4OID, int32(5)),
		},
		Text: []string{"1", "-32768", "2147483647", "1.5", "0.1", "t", "12.50", "-0.001", "-1234567890123456789012345.67891",
			"he said \"hi\", then\nleft \\ o'clock", "Zoë 🎉", "ab   ", "2024-02-29", "12:34:56.789", "2024-01-02 03:04:05.123456",
			"2024-01-02 03:04:05.1+00", "1 year 2 mons 3 days 04:05:06.7", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			`{"b":1, "a":[1,2.5,null]}`, `{"a": [1, 2.5, null, "x"], "b": {"c": true}}`, `\xdeadbeef`, "192.168.1.5/24",
			"{1,-2,NULL}", `{a,"x y","q\"q","","NULL",NULL}`, `{"2024-06-01 00:00:00+00"}`, "happy", "5"},
	}, {
		Key: "2",
		Values: [][]byte{
			e.enc(pgtype.Int8OID, int64(2)), e.enc(pgtype.Int2OID, int16(0)), e.enc(pgtype.Int4OID, int32(-1)),
			e.enc(pgtype.Float4OID, float32(-0.25)), e.enc(pgtype.Float8OID, 1e20), e.enc(pgtype.BoolOID, false),
			e.numeric("0.00"), e.numeric("10000"), e.numeric("0.00001"),
			e.enc(pgtype.TextOID, ""), e.enc(pgtype.VarcharOID, ""), e.enc(pgtype.BPCharOID, "     "),
			e.enc(pgtype.DateOID, mustTime(t, "2006-01-02", "1969-07-20")),
			e.enc(pgtype.TimeOID, pgtype.Time{Microseconds: 0, Valid: true}),
			e.enc(pgtype.TimestampOID, pgtype.Timestamp{Time: mustTime(t, tsLayout, "1999-12-31 23:59:59.999999"), Valid: true}),
			e.enc(pgtype.TimestamptzOID, mustTime(t, tsLayout, "1969-07-20 20:17:40")),
			e.enc(pgtype.IntervalOID, pgtype.Interval{Days: -1, Valid: true}),
			e.enc(pgtype.UUIDOID, [16]byte{}), []byte(`[]`), jsonb(`{}`),
			e.enc(pgtype.ByteaOID, []byte{}), e.enc(pgtype.InetOID, netip.MustParsePrefix("::1/128")),
			e.enc(pgtype.Int4ArrayOID, []int32{}), e.enc(pgtype.TextArrayOID, []string{}), e.enc(pgtype.TimestamptzArrayOID, []time.Time{}),
			e.enc(pgtype.TextOID, "sad"), e.enc(pgtype.Int4OID, int32(1)),
		},
		Text: []string{"2", "0", "-1", "-0.25", "1e+20", "f", "0.00", "10000", "0.00001",
			"", "", "     ", "1969-07-20", "00:00:00", "1999-12-31 23:59:59.999999", "1969-07-20 20:17:40+00", "-1 days",
			"00000000-0000-0000-0000-000000000000", "[]", "{}", `\x`, "::1", "{}", "{}", "{}", "sad", "1"},
	}, {
		Key:    "3",
		Values: append([][]byte{e.enc(pgtype.Int8OID, int64(3))}, make([][]byte, len(tb.Columns)-1)...),
		Text:   append([]string{"3"}, slices.Repeat([]string{Null}, len(tb.Columns)-1)...),
	}, {
		Key: "4",
		Values: [][]byte{
			e.enc(pgtype.Int8OID, int64(4)), nil, nil, e.enc(pgtype.Float4OID, float32(math.Inf(1))), e.enc(pgtype.Float8OID, math.NaN()), nil,
			e.numeric("-9999999999.99"), e.numeric("NaN"), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
			[]byte(`"str"`), jsonb(`[null, "null"]`), nil, nil, e.enc(pgtype.Int4ArrayOID, []*int32{nil}), nil, nil, nil, nil,
		},
		Text: []string{"4", Null, Null, "Infinity", "NaN", Null, "-9999999999.99", "NaN", Null, Null, Null, Null, Null, Null, Null, Null, Null, Null,
			`"str"`, `[null, "null"]`, Null, Null, "{NULL}", Null, Null, Null, Null},
	}}
	return tb
}

// textTable returns a table of a text key and one text column.
func textTable(name string) *Table {
	return &Table{Table: &nopii.Table{Name: nopii.TableName{Schema: Schema, Name: name}, PrimaryKey: []string{"k"}, EstRows: -1,
		Columns: []nopii.Column{{Name: "k", Type: textType, Typmod: -1, TypeSQL: "text", NotNull: true}, col("v", textType, -1, "")}}}
}

// textRow is a row of a textTable; v nil is NULL.
func textRow(key string, v *string) Row {
	r := Row{Key: key, Values: [][]byte{[]byte(key), nil}, Text: []string{key, Null}}
	if v != nil {
		r.Values[1], r.Text[1] = []byte(*v), *v
	}
	return r
}

func ptr(s string) *string { return &s }

func testFullCopyTypes(t *testing.T, f nopii.Feed, r Reader) {
	tb := KitchenSink(t)
	MustPrepare(t, f, tb)
	if got := r.Rows(t, tb.Name); got != nil {
		t.Fatalf("before any load the feed has %d rows of %s, want no table", len(got), tb.Name)
	}
	MustFullCopy(t, f, tb, tb.Rows...)
	CheckRows(t, r, tb, Want(tb.Rows...))
}

func testNullVersusEmpty(t *testing.T, f nopii.Feed, r Reader) {
	tb := textTable("nulls")
	MustPrepare(t, f, tb)
	rows := []Row{
		textRow("null", nil), textRow("empty", ptr("")), textRow("quotes", ptr(`""`)), textRow("NULL", ptr("NULL")),
		textRow("space", ptr(" ")), textRow(`\N`, ptr(`\N`)), textRow("comma,key\nwith \"breaks\"", ptr("x")),
	}
	MustFullCopy(t, f, tb, rows...)
	CheckRows(t, r, tb, Want(rows...))
}

func testEmptyTable(t *testing.T, f nopii.Feed, r Reader) {
	tb := textTable("empty")
	MustPrepare(t, f, tb)
	MustFullCopy(t, f, tb)
	got := r.Rows(t, tb.Name)
	if got == nil || len(got) != 0 {
		t.Fatalf("after a full copy of no rows, Rows = %v, want an empty table", got)
	}
}

func testAbortKeepsPrevious(t *testing.T, f nopii.Feed, r Reader) {
	ctx := testContext(t)
	tb := textTable("abort")
	MustPrepare(t, f, tb)
	v1 := []Row{textRow("a", ptr("1")), textRow("b", ptr("2"))}
	MustFullCopy(t, f, tb, v1...)

	l, err := f.FullCopy(ctx, tb.Target("full", 3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 { // enough to fill buffers, parts
		if err := l.WriteRow(textRow(fmt.Sprintf("new%05d", i), ptr(strings.Repeat("x", 100))).values()); err != nil {
			t.Fatal(err)
		}
	}
	l.Abort()
	l.Abort() // twice is harmless
	if err := l.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	CheckRows(t, r, tb, Want(v1...))

	d, err := f.Delta(ctx, tb.Target("delta", 1), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRow(textRow("a", ptr("changed")).values()); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteKey([]byte("a")); err != nil {
		t.Fatal(err)
	}
	d.Abort()
	CheckRows(t, r, tb, Want(v1...))

	// A load that failed may be retried: the table is not left locked.
	MustFullCopy(t, f, tb, v1[0])
	CheckRows(t, r, tb, Want(v1[0]))
}

func testSecondFullCopyReplaces(t *testing.T, f nopii.Feed, r Reader) {
	tb := textTable("replace")
	MustPrepare(t, f, tb)
	MustFullCopy(t, f, tb, textRow("a", ptr("1")), textRow("b", ptr("2")), textRow("c", ptr("3")))
	v2 := []Row{textRow("b", ptr("two")), textRow("d", nil)}
	MustFullCopy(t, f, tb, v2...)
	CheckRows(t, r, tb, Want(v2...))
	v3 := []Row{textRow("e", ptr("5"))}
	MustFullCopy(t, f, tb, v3...)
	CheckRows(t, r, tb, Want(v3...))
}

// delta runs one delta load: rows upserted, then (deletes) the keys that
// remain. It returns what Applied reports, when the load has it.
func delta(t *testing.T, f nopii.Feed, tb *Table, deletes bool, rows []Row, remain []string) (upserted, deleted int64, ok bool) {
	t.Helper()
	ctx := testContext(t)
	l, err := f.Delta(ctx, tb.Target("delta", int64(len(rows))), deletes)
	if err != nil {
		t.Fatalf("delta of %s: %v", tb.Name, err)
	}
	defer l.Abort()
	for _, r := range rows {
		if err := l.WriteRow(r.values()); err != nil {
			t.Fatalf("write row %q: %v", r.Key, err)
		}
	}
	for _, k := range remain {
		if err := l.WriteKey([]byte(k)); err != nil {
			t.Fatalf("write key %q: %v", k, err)
		}
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatalf("commit delta of %s: %v", tb.Name, err)
	}
	if a, isA := l.(interface{ Applied() (int64, int64) }); isA {
		upserted, deleted = a.Applied()
		return upserted, deleted, true
	}
	return 0, 0, false
}

func testDelta(t *testing.T, f nopii.Feed, r Reader) {
	tb := textTable("delta")
	MustPrepare(t, f, tb)
	odd := "odd\nkey, \"quoted\" \\ é" // keys are text: any character may be in one
	base := []Row{textRow("a", ptr("1")), textRow("b", ptr("2")), textRow("c", ptr("3")), textRow(odd, ptr("odd")), textRow("", ptr("empty key"))}
	MustFullCopy(t, f, tb, base...)

	// Upserts and deletes: b changes, e is new, c and the odd key left.
	rows := []Row{textRow("b", ptr("two")), textRow("e", ptr("5"))}
	up, del, ok := delta(t, f, tb, true, rows, []string{"e", "a", "b", ""})
	if ok && (up != 2 || del != 2) {
		t.Errorf("Applied() = %d upserted, %d deleted; want 2, 2", up, del)
	}
	want := Want(textRow("a", ptr("1")), textRow("b", ptr("two")), textRow("e", ptr("5")), textRow("", ptr("empty key")))
	CheckRows(t, r, tb, want)

	// Without delete detection: upserts only; a row becomes NULL.
	_, _, _ = delta(t, f, tb, false, []Row{textRow("f", ptr("6")), textRow("a", nil)}, nil)
	want["f"], want["a"] = []string{"f", "6"}, []string{"a", Null}
	CheckRows(t, r, tb, want)

	// Deletes only, counting the key f added by the delta before.
	up, del, ok = delta(t, f, tb, true, nil, []string{"e", "a"})
	if ok && (up != 0 || del != 3) {
		t.Errorf("Applied() = %d upserted, %d deleted; want 0, 3", up, del)
	}
	CheckRows(t, r, tb, Want(textRow("a", nil), textRow("e", ptr("5"))))

	// Nothing changed: nothing to apply.
	up, del, ok = delta(t, f, tb, true, nil, []string{"a", "e"})
	if ok && (up != 0 || del != 0) {
		t.Errorf("Applied() = %d upserted, %d deleted; want 0, 0", up, del)
	}
	CheckRows(t, r, tb, Want(textRow("a", nil), textRow("e", ptr("5"))))

	// No key remains: the table empties.
	delta(t, f, tb, true, nil, nil)
	CheckRows(t, r, tb, map[string][]string{})

	// A full copy after deltas starts afresh.
	MustFullCopy(t, f, tb, textRow("z", ptr("26")))
	delta(t, f, tb, true, []Row{textRow("y", ptr("25"))}, []string{"y"})
	CheckRows(t, r, tb, Want(textRow("y", ptr("25"))))
}

// changes runs one load of streamed changes: an optional truncate, the
// deleted keys, the upserted rows; the state says lsn.
func changes(t *testing.T, f nopii.ChangeFeed, tb *Table, truncate bool, gone []string, rows []Row, lsn string) {
	t.Helper()
	ctx := testContext(t)
	target := tb.Target("cdc", 0)
	target.State.LSN = lsn
	l, err := f.Changes(ctx, target)
	if err != nil {
		t.Fatalf("changes to %s: %v", tb.Name, err)
	}
	defer l.Abort()
	if truncate {
		if err := l.Truncate(); err != nil {
			t.Fatalf("truncate: %v", err)
		}
	}
	for _, k := range gone {
		if err := l.DeleteKey([]byte(k)); err != nil {
			t.Fatalf("delete key %q: %v", k, err)
		}
	}
	for _, r := range rows {
		if err := l.WriteRow(r.values()); err != nil {
			t.Fatalf("write row %q: %v", r.Key, err)
		}
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatalf("commit changes to %s: %v", tb.Name, err)
	}
	st, err := f.State(ctx, nopii.StateKey{Workflow: Workflow, Input: Input, Table: tb.Name})
	if err != nil || st == nil || st.LSN != lsn || st.Mode != "cdc" {
		t.Fatalf("state after changes = %+v, %v; want mode cdc, lsn %s", st, err, lsn)
	}
}

// testChanges: streamed changes (mode cdc) upsert, delete by key (a key
// the table does not have is no error), truncate, and save the state's LSN.
func testChanges(t *testing.T, f nopii.Feed, r Reader) {
	cf, ok := f.(nopii.ChangeFeed)
	if !ok {
		t.Fatalf("%s feed does not implement nopii.ChangeFeed", f.Kind())
	}
	tb := textTable("changes")
	MustPrepare(t, f, tb)
	odd := "odd\nkey, \"quoted\" \\ é"
	MustFullCopy(t, f, tb, textRow("a", ptr("1")), textRow("b", ptr("2")), textRow(odd, ptr("odd")))

	changes(t, cf, tb, false, []string{"b", "never there"}, []Row{textRow("a", ptr("one")), textRow("c", ptr("3"))}, "0/16B3748")
	CheckRows(t, r, tb, Want(textRow("a", ptr("one")), textRow("c", ptr("3")), textRow(odd, ptr("odd"))))

	changes(t, cf, tb, false, []string{odd}, nil, "0/16B3800")
	CheckRows(t, r, tb, Want(textRow("a", ptr("one")), textRow("c", ptr("3"))))

	changes(t, cf, tb, true, nil, []Row{textRow("z", nil)}, "1/0")
	CheckRows(t, r, tb, Want(textRow("z", nil)))

	changes(t, cf, tb, true, nil, nil, "1/10")
	CheckRows(t, r, tb, map[string][]string{})
}

func testState(t *testing.T, f nopii.Feed, r Reader) {
	ctx := testContext(t)
	tb := textTable("stated")
	MustPrepare(t, f, tb)
	key := nopii.StateKey{Workflow: Workflow, Input: Input, Table: tb.Name}
	st, err := f.State(ctx, key)
	if err != nil || st != nil {
		t.Fatalf("State before any load = %+v, %v; want nil, nil", st, err)
	}

	target := tb.Target("full", 2)
	l, err := f.FullCopy(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []Row{textRow("a", ptr("1")), textRow("b", ptr("2"))} {
		if err := l.WriteRow(row.values()); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := f.State(ctx, key); err != nil || st != nil {
		t.Fatalf("State during the first load = %+v, %v; want nil, nil", st, err)
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkState(t, f, key, target.State)
	CheckRows(t, r, tb, Want(textRow("a", ptr("1")), textRow("b", ptr("2"))))

	// A delta saves its state with its rows.
	next := tb.Target("delta", 1)
	next.State.Cursors = map[string]string{"updated_at": "2024-02-03 00:00:00+00"}
	d, err := f.Delta(ctx, next, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRow(textRow("c", ptr("3")).values()); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkState(t, f, key, next.State)

	// An aborted load leaves the state as it was.
	aborted := tb.Target("full", 0)
	aborted.State.Cursors = map[string]string{"updated_at": "2099-01-01 00:00:00+00"}
	l, err = f.FullCopy(ctx, aborted)
	if err != nil {
		t.Fatal(err)
	}
	l.Abort()
	checkState(t, f, key, next.State)

	// Each table of each input has its own state.
	other := textTable("other")
	MustPrepare(t, f, other)
	MustFullCopy(t, f, other, textRow("x", nil))
	checkState(t, f, key, next.State)
	if st, err := f.State(ctx, nopii.StateKey{Workflow: Workflow, Input: "another input", Table: tb.Name}); err != nil || st != nil {
		t.Errorf("State of another input = %+v, %v; want nil, nil", st, err)
	}
}

func checkState(t *testing.T, f nopii.Feed, key nopii.StateKey, want *nopii.TableState) {
	t.Helper()
	got, err := f.State(testContext(t), key)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if got == nil {
		t.Fatalf("State = nil, want the state committed")
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("State = %s\nwant    %s", g, w)
	}
}

func testPartRollOver(t *testing.T, f nopii.Feed, r Reader) {
	tb := KitchenSink(t)
	tb.Name.Name = "rolled"
	MustPrepare(t, f, tb)
	size := int64(64 << 10)
	pr, parts := r.(PartReader)
	if parts {
		if pr.PartSize() > 64<<10 {
			t.Fatalf("the feed under test has PartSize %d: open it with at most 64 KiB so that parts roll over", pr.PartSize())
		}
		size = pr.PartSize()
	}
	// Enough rows for several parts, whatever the format's compression.
	var rows []Row
	var bytes int64
	e := encoder{t, pgtype.NewMap()}
	for i := 0; bytes < 6*size; i++ {
		proto := tb.Rows[i%len(tb.Rows)]
		id := int64(1000 + i)
		row := Row{Key: strconv.FormatInt(id, 10), Values: slices.Clone(proto.Values), Text: slices.Clone(proto.Text)}
		row.Values[0], row.Text[0] = e.enc(pgtype.Int8OID, id), row.Key
		// A text value unique to the row keeps compression honest.
		txt := fmt.Sprintf("row %d %x", i, uint64(id)*0x9e3779b97f4a7c15)
		row.Values[9], row.Text[9] = []byte(txt), txt
		rows = append(rows, row)
		for _, v := range row.Values {
			bytes += int64(len(v))
		}
	}
	MustFullCopy(t, f, tb, rows...)
	CheckRows(t, r, tb, Want(rows...))
	if parts {
		if n := pr.Parts(t, tb.Name); n < 2 {
			t.Errorf("%d rows (%d bytes of values) with PartSize %d made %d part, want several", len(rows), bytes, size, n)
		}
	}
}
