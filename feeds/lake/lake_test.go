package lake_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
)

var quiet = slog.New(slog.DiscardHandler)

// writeKitchen loads feedtest's kitchen-sink table into a files lake and
// returns the store, the manifest and the bytes of its one part.
func writeKitchen(t *testing.T, format, compression string) (*files.Store, *lake.Manifest, []byte) {
	t.Helper()
	dir := t.TempDir()
	o := lake.Options{Workflow: feedtest.Workflow, Format: format, Compression: compression, Logger: quiet}
	f, err := files.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	tb := feedtest.KitchenSink(t)
	feedtest.MustFullCopy(t, f, tb, tb.Rows...)
	st, _ := files.NewStore(dir)
	r := laketest.NewReader(st, o)
	m := r.Manifest(t, tb.Name)
	if m == nil || m.Snapshot == nil || len(m.Snapshot.Parts) != 1 {
		t.Fatalf("manifest %+v: want one snapshot of one part", m)
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(lake.TableDir(o.Workflow, tb.Name)+m.Snapshot.Parts[0].Path)))
	if err != nil {
		t.Fatal(err)
	}
	return st, m, data
}

// TestParquetTypes checks the Parquet schema a kitchen-sink table gets, and
// reads typed values back with parquet-go's generic reader.
func TestParquetTypes(t *testing.T) {
	_, _, data := writeKitchen(t, lake.FormatParquet, lake.CompressionZstd)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": "optional int64 id (INT(64,true))", "i2": "optional int32 i2 (INT(16,true))", "i4": "optional int32 i4 (INT(32,true))",
		"f4": "optional float f4", "f8": "optional double f8", "b": "optional boolean b",
		"n": "optional int64 n (DECIMAL(12,2))", "nu": "optional binary nu (STRING)", "nb": "optional fixed_len_byte_array(13) nb (DECIMAL(30,5))",
		"t": "optional binary t (STRING)", "vc": "optional binary vc (STRING)", "c": "optional binary c (STRING)",
		"d": "optional int32 d (DATE)", "tm": "optional int64 tm (TIME(isAdjustedToUTC=false,unit=MICROS))",
		"ts": "optional int64 ts (TIMESTAMP(isAdjustedToUTC=false,unit=MICROS))", "tz": "optional int64 tz (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"iv": "optional binary iv (STRING)", "u": "optional fixed_len_byte_array(16) u (UUID)", "j": "optional binary j (JSON)", "jb": "optional binary jb (JSON)",
		"by": "optional binary by", "ip": "optional binary ip (STRING)", "m": "optional binary m (STRING)", "dm": "optional int32 dm (INT(32,true))",
		"source_primary_key": "required binary source_primary_key (STRING)",
	}
	schema := f.Schema().String()
	for _, w := range want {
		if !strings.Contains(schema, w+";") {
			t.Errorf("schema lacks %q:\n%s", w, schema)
		}
	}
	if !strings.Contains(schema, "optional group ai (LIST) {\n\t\trepeated group list {\n\t\t\toptional int32 element (INT(32,true));") {
		t.Errorf("ai is not a LIST of optional INT(32):\n%s", schema)
	}
	var names []string
	for _, fl := range f.Schema().Fields() {
		names = append(names, fl.Name())
	}
	if names[0] != "id" || names[len(names)-1] != "source_primary_key" || names[len(names)-2] != "dm" {
		t.Errorf("columns out of table order: %q", names)
	}

	type typed struct {
		ID  *int64    `parquet:"id"`
		I2  *int16    `parquet:"i2"`
		F4  *float32  `parquet:"f4"`
		F8  *float64  `parquet:"f8"`
		B   *bool     `parquet:"b"`
		T   *string   `parquet:"t"`
		C   *string   `parquet:"c"`
		D   *int32    `parquet:"d,date"`
		TS  *int64    `parquet:"ts"`
		TZ  *int64    `parquet:"tz"`
		U   *[16]byte `parquet:"u"`
		By  []byte    `parquet:"by,optional"`
		AI  []*int32  `parquet:"ai,list"`
		AT  []*string `parquet:"at,list"`
		M   *string   `parquet:"m"`
		Key string    `parquet:"source_primary_key"`
	}
	rd := parquet.NewGenericReader[typed](bytes.NewReader(data))
	rows := make([]typed, 10)
	n, err := rd.Read(rows)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("read %d rows, want 4", n)
	}
	r1, r2, r3, r4 := rows[0], rows[1], rows[2], rows[3]
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s", what)
		}
	}
	check("row 1 id", *r1.ID == 1 && r1.Key == "1")
	check("row 1 i2", *r1.I2 == -32768)
	check("row 1 f4", *r1.F4 == 1.5)
	check("row 1 f8", *r1.F8 == 0.1)
	check("row 1 b", *r1.B)
	check("row 1 t", *r1.T == "he said \"hi\", then\nleft \\ o'clock")
	check("row 1 c keeps char(5) padding", *r1.C == "ab   ")
	check("row 1 d", time.Unix(int64(*r1.D)*86400, 0).UTC().Format(time.DateOnly) == "2024-02-29")
	check("row 1 ts", time.UnixMicro(*r1.TS).UTC().Format("2006-01-02 15:04:05.999999") == "2024-01-02 03:04:05.123456")
	check("row 1 tz", time.UnixMicro(*r1.TZ).UTC().Format("2006-01-02 15:04:05.999999") == "2024-01-02 03:04:05.1")
	check("row 1 u", *r1.U == [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11})
	check("row 1 by", bytes.Equal(r1.By, []byte{0xde, 0xad, 0xbe, 0xef}))
	check("row 1 ai", len(r1.AI) == 3 && *r1.AI[0] == 1 && *r1.AI[1] == -2 && r1.AI[2] == nil)
	check("row 1 at", len(r1.AT) == 6 && *r1.AT[1] == "x y" && *r1.AT[3] == "" && *r1.AT[4] == "NULL" && r1.AT[5] == nil)
	check("row 1 m", *r1.M == "happy")
	check("row 2 empty text is not NULL", r2.T != nil && *r2.T == "")
	check("row 2 empty bytea is not NULL", r2.By != nil && len(r2.By) == 0)
	check("row 2 empty array", r2.AI != nil && len(r2.AI) == 0)
	check("row 2 f8", *r2.F8 == 1e20)
	check("row 2 d before 1970", time.Unix(int64(*r2.D)*86400, 0).UTC().Format(time.DateOnly) == "1969-07-20")
	check("row 3 NULL i2", r3.I2 == nil)
	check("row 3 NULL t", r3.T == nil)
	check("row 3 NULL by", r3.By == nil)
	check("row 3 NULL ai", len(r3.AI) == 0) // Go cannot tell; the levels below do
	check("row 3 NULL u", r3.U == nil)
	check("row 3 NULL ts", r3.TS == nil)
	check("row 4 infinity and NaN", math.IsInf(float64(*r4.F4), 1) && math.IsNaN(*r4.F8))
	check("row 4 array of one NULL", len(r4.AI) == 1 && r4.AI[0] == nil)

	// LIST levels: NULL array 0, empty array 1, NULL element 2, element 3.
	ai := slices.Index(names, "ai")
	prows := make([]parquet.Row, 4)
	pr := parquet.NewReader(f)
	if n, err := pr.ReadRows(prows); n != 4 {
		t.Fatalf("read %d rows: %v", n, err)
	}
	levels := func(r parquet.Row) (out []int) {
		for _, v := range r {
			if v.Column() == ai {
				out = append(out, v.DefinitionLevel())
			}
		}
		return out
	}
	for i, want := range [][]int{{3, 3, 2}, {1}, {0}, {2}} {
		if got := levels(prows[i]); !slices.Equal(got, want) {
			t.Errorf("row %d: ai definition levels %v, want %v", i+1, got, want)
		}
	}
}

// TestCSVWithEncodingCSV reads a CSV part with the standard library.
func TestCSVWithEncodingCSV(t *testing.T) {
	for _, comp := range []string{lake.CompressionNone, lake.CompressionGzip} {
		_, m, data := writeKitchen(t, lake.FormatCSV, comp)
		if comp == lake.CompressionGzip {
			if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
				t.Fatalf("gzip part does not start with the gzip magic")
			}
			continue // laketest reads it in the suite; encoding/csv needs the plain one
		}
		if !bytes.HasSuffix(data, []byte("\r\n")) {
			t.Error("records do not end with CRLF")
		}
		records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		tb := feedtest.KitchenSink(t)
		if len(records) != 1+len(tb.Rows) {
			t.Fatalf("%d records, want a header and %d rows", len(records), len(tb.Rows))
		}
		var header []string
		for _, c := range m.Schema {
			header = append(header, c.Name)
		}
		if !slices.Equal(records[0], header) {
			t.Errorf("header %q, want %q", records[0], header)
		}
		for i, r := range tb.Rows {
			want := append(slices.Clone(r.Text), r.Key)
			for j, v := range want {
				if v == feedtest.Null {
					want[j] = "" // encoding/csv reads NULL and "" alike; laketest tells them apart
				}
			}
			if !slices.Equal(records[i+1], want) {
				t.Errorf("row %s: %q\nwant %q", r.Key, records[i+1], want)
			}
		}
		// NULL is an empty unquoted field, "" a quoted one (row 2's t and vc).
		lines := strings.Split(string(data), "\r\n")
		if !strings.HasPrefix(lines[2], `2,0,-1,-0.25,1e+20,f,0.00,10000,0.00001,"","",     ,`) {
			t.Errorf("row 2 = %q", lines[2])
		}
		if !strings.HasPrefix(lines[3], "3,,,,") {
			t.Errorf("row 3 = %q", lines[3])
		}
	}
}

// TestJSONLWithEncodingJSON reads a JSONL part with the standard library
// and checks the JSON types of the values.
func TestJSONLWithEncodingJSON(t *testing.T) {
	_, _, data := writeKitchen(t, lake.FormatJSONL, lake.CompressionNone)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	var rows []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		rows = append(rows, m)
	}
	r1, r2, r3, r4 := rows[0], rows[1], rows[2], rows[3]
	eq := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	eq("id", r1["id"], 1)
	eq("i4", r1["i4"], math.MaxInt32)
	eq("f8", r1["f8"], 0.1)
	eq("b", r1["b"], true)
	eq("n", r1["n"], 12.5)
	eq("t", r1["t"], "he said \"hi\", then\nleft \\ o'clock")
	eq("ts", r1["ts"], "2024-01-02T03:04:05.123456")
	eq("tz", r1["tz"], "2024-01-02T03:04:05.1+00:00")
	eq("d", r1["d"], "2024-02-29")
	eq("j (embedded)", r1["j"], map[string]any{"a": []any{1, 2.5, nil}, "b": 1})
	eq("jb (embedded)", r1["jb"], map[string]any{"a": []any{1, 2.5, nil, "x"}, "b": map[string]any{"c": true}})
	eq("by", r1["by"], `\xdeadbeef`)
	eq("ai", r1["ai"], []any{1, -2, nil})
	eq("at", r1["at"], []any{"a", "x y", `q"q`, "", "NULL", nil})
	eq("atz", r1["atz"], []any{"2024-06-01T00:00:00+00:00"})
	eq("m", r1["m"], "happy")
	eq("dm", r1["dm"], 5)
	eq("key", r1["source_primary_key"], "1")
	eq("empty text", r2["t"], "")
	eq("empty array", r2["ai"], []any{})
	eq("json []", r2["j"], []any{})
	eq("NULL", r3["t"], nil)
	if _, ok := r3["t"]; !ok {
		t.Error("a NULL column is left out instead of null")
	}
	eq("Infinity", r4["f4"], "Infinity")
	eq("NaN", r4["f8"], "NaN")
	eq("numeric NaN", r4["nu"], "NaN")
	// Numbers keep every digit: decode without float64.
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.UseNumber()
	var exact map[string]any
	if err := dec.Decode(&exact); err != nil {
		t.Fatal(err)
	}
	eq("exact numeric", exact["nb"], json.Number("-1234567890123456789012345.67891"))
}

// TestLayout checks the object layout of SPEC §4 and the manifest's
// contents after a full copy and a delta.
func TestLayout(t *testing.T) {
	dir := t.TempDir()
	o := lake.Options{Workflow: "ml", Format: lake.FormatCSV, Compression: lake.CompressionGzip, Logger: quiet}
	f, err := files.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	tb := feedtest.KitchenSink(t)
	tb.Name.Name = "customer"
	st, _ := files.NewStore(dir)
	r := laketest.NewReader(st, o)

	ctx := context.Background()
	l, err := f.FullCopy(ctx, tb.Target("full", 4))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range tb.Rows {
		if err := l.WriteRow(append(slices.Clone(row.Values), []byte(row.Key))); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Objects(t); len(got) != 0 {
		t.Errorf("before Commit these objects are visible: %q", got)
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := f.Delta(ctx, tb.Target("delta", 1), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRow(append(slices.Clone(tb.Rows[0].Values), []byte("1"))); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"1", "2", "4"} {
		if err := d.WriteKey([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	m := r.Manifest(t, tb.Name)
	stamp := `\d{8}T\d{6}Z`
	objects := r.Objects(t)
	patterns := []string{
		`^ml/_nopii/keys/feedtest\.customer/` + stamp + `\.keys\.gz$`,
		`^ml/_nopii/state\.json$`,
		`^ml/feedtest\.customer/_manifest\.json$`,
		`^ml/feedtest\.customer/delta=` + stamp + `/part-00000\.csv\.gz$`,
		`^ml/feedtest\.customer/snapshot=` + stamp + `/part-00000\.csv\.gz$`,
	}
	if len(objects) != len(patterns) {
		t.Fatalf("objects %q, want %d", objects, len(patterns))
	}
	for i, p := range patterns {
		if !regexp.MustCompile(p).MatchString(objects[i]) {
			t.Errorf("object %q does not match %s", objects[i], p)
		}
	}
	if !slices.Equal(r.Referenced(t, tb.Name), []string{objects[0], objects[2], objects[3], objects[4]}) {
		t.Errorf("the manifest names %q", r.Referenced(t, tb.Name))
	}
	if m.Version != 1 || m.Workflow != "ml" || m.Input != feedtest.Input || m.Table != "feedtest.customer" || m.Target != "feedtest.customer" ||
		m.Format != "csv" || m.Compression != "gzip" || !slices.Equal(m.PrimaryKey, []string{"id"}) {
		t.Errorf("manifest header %+v", m)
	}
	if m.Schema[6] != (lake.ManifestColumn{Name: "n", Type: "numeric(12,2)", Nullable: true}) || m.Schema[0].Nullable ||
		m.Schema[len(m.Schema)-1] != (lake.ManifestColumn{Name: "source_primary_key", Type: "text"}) ||
		m.Schema[25].Type != "feedtest.mood" || m.Schema[22].Type != "integer[]" {
		t.Errorf("manifest schema %+v", m.Schema)
	}
	if m.Snapshot.Rows != 4 || len(m.Deltas) != 1 || m.Deltas[0].Upserts != 1 || m.Deltas[0].Deletes != 1 || m.Deltas[0].Rows != 2 {
		t.Errorf("manifest counts: snapshot %+v, deltas %+v", m.Snapshot, m.Deltas)
	}
	if !strings.HasPrefix(m.Deltas[0].Parts[0].Path, m.Deltas[0].Path+"/") || m.Deltas[0].Path <= strings.Replace(m.Snapshot.Path, "snapshot", "delta", 1) {
		t.Errorf("delta %s after snapshot %s", m.Deltas[0].Path, m.Snapshot.Path)
	}
	if time.Since(m.Snapshot.WrittenAt) > time.Minute || m.Snapshot.WrittenAt.Location() != time.UTC {
		t.Errorf("written_at %v", m.Snapshot.WrittenAt)
	}
	want := feedtest.Want(tb.Rows[0], tb.Rows[1], tb.Rows[3])
	feedtest.CheckRows(t, r, tb, want)

	// A full copy resets the deltas.
	feedtest.MustFullCopy(t, f, tb, tb.Rows[2])
	if m := r.Manifest(t, tb.Name); len(m.Deltas) != 0 || m.Snapshot.Rows != 1 {
		t.Errorf("after a full copy: %d deltas, %d rows", len(m.Deltas), m.Snapshot.Rows)
	}
	// The manifest is indented JSON with the documented keys.
	raw, _ := os.ReadFile(filepath.Join(dir, "ml", "feedtest.customer", "_manifest.json"))
	for _, k := range []string{`"table"`, `"target"`, `"schema"`, `"primary_key"`, `"snapshot"`, `"deltas"`, `"format"`, `"compression"`, `"written_at"`, `"parts"`, `"nullable"`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("manifest lacks %s", k)
		}
	}
}
