package laketest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/lake"
)

var _ feedtest.PartReader = (*Reader)(nil)

// Reader reads the tables of one workflow's lake.
type Reader struct {
	Store   lake.Store
	Options lake.Options // as the feed was opened: Workflow, PartSize
}

// NewReader returns a reader of the lake that a feed opened with o writes
// to st.
func NewReader(st lake.Store, o lake.Options) *Reader { return &Reader{Store: st, Options: o} }

// Record is one row of a part: values as PostgreSQL prints them
// (feedtest.Null for NULL), the key, and in deltas the operation.
type Record struct {
	Values []string
	Key    string
	Op     string
}

// Manifest returns the table's manifest, or nil when it has none.
func (r *Reader) Manifest(t *testing.T, target nopii.TableName) *lake.Manifest {
	t.Helper()
	m, err := lake.ReadManifest(context.Background(), r.Store, lake.TableDir(r.Options.Workflow, target))
	if errors.Is(err, lake.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read manifest of %s: %v", target, err)
	}
	return m
}

// Rows implements feedtest.Reader.
func (r *Reader) Rows(t *testing.T, target nopii.TableName) map[string][]string {
	t.Helper()
	m := r.Manifest(t, target)
	if m == nil {
		return nil
	}
	if m.Snapshot == nil {
		t.Fatalf("%s: manifest without a snapshot", target)
	}
	dir := lake.TableDir(r.Options.Workflow, target)
	rows := map[string][]string{}
	var n int64
	for _, p := range m.Snapshot.Parts {
		recs := r.Part(t, m, dir, p, false)
		for _, rec := range recs {
			if _, dup := rows[rec.Key]; dup {
				t.Errorf("%s: key %q twice in the snapshot", target, rec.Key)
			}
			rows[rec.Key] = rec.Values
		}
		n += int64(len(recs))
	}
	if n != m.Snapshot.Rows {
		t.Errorf("%s: snapshot has %d rows, manifest says %d", target, n, m.Snapshot.Rows)
	}
	for _, d := range m.Deltas {
		var ups, dels int64
		for _, p := range d.Parts {
			for _, rec := range r.Part(t, m, dir, p, true) {
				switch rec.Op {
				case lake.OpUpsert:
					rows[rec.Key] = rec.Values
					ups++
				case lake.OpDelete:
					for i, v := range rec.Values {
						if v != feedtest.Null {
							t.Errorf("%s: delete row %q has %s = %q, want NULL", target, rec.Key, m.Schema[i].Name, v)
						}
					}
					delete(rows, rec.Key)
					dels++
				default:
					t.Errorf("%s: %s = %q", target, lake.OpColumn, rec.Op)
				}
			}
		}
		if ups != d.Upserts || dels != d.Deletes || ups+dels != d.Rows {
			t.Errorf("%s: delta %s has %d upserts and %d deletes, manifest says %d, %d (rows %d)", target, d.Path, ups, dels, d.Upserts, d.Deletes, d.Rows)
		}
	}
	return rows
}

// Parts implements feedtest.PartReader.
func (r *Reader) Parts(t *testing.T, target nopii.TableName) int {
	t.Helper()
	m := r.Manifest(t, target)
	if m == nil || m.Snapshot == nil {
		t.Fatalf("%s: no snapshot", target)
	}
	return len(m.Snapshot.Parts)
}

// PartSize implements feedtest.PartReader.
func (r *Reader) PartSize() int64 {
	if r.Options.PartSize <= 0 {
		return lake.DefaultPartSize
	}
	return r.Options.PartSize
}

// Part reads one part and checks it against the manifest.
func (r *Reader) Part(t *testing.T, m *lake.Manifest, dir string, p lake.Part, delta bool) []Record {
	t.Helper()
	rc, err := r.Store.Get(context.Background(), dir+p.Path)
	if err != nil {
		t.Fatalf("get part %s: %v", p.Path, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read part %s: %v", p.Path, err)
	}
	if int64(len(data)) != p.Bytes {
		t.Errorf("part %s has %d bytes, manifest says %d", p.Path, len(data), p.Bytes)
	}
	if !strings.HasSuffix(p.Path, lake.Extension(m.Format, m.Compression)) {
		t.Errorf("part %s: want extension %s", p.Path, lake.Extension(m.Format, m.Compression))
	}
	names := make([]string, 0, len(m.Schema)+1)
	for _, c := range m.Schema {
		names = append(names, c.Name)
	}
	if delta {
		names = append(names, lake.OpColumn)
	}
	var recs []Record
	switch m.Format {
	case lake.FormatParquet:
		recs = readParquet(t, p.Path, data, names)
	case lake.FormatCSV:
		recs = readCSV(t, p.Path, decompress(t, p.Path, data), names)
	case lake.FormatJSONL:
		recs = readJSONL(t, p.Path, decompress(t, p.Path, data), m.Schema, names)
	default:
		t.Fatalf("format %q", m.Format)
	}
	if int64(len(recs)) != p.Rows {
		t.Errorf("part %s has %d rows, manifest says %d", p.Path, len(recs), p.Rows)
	}
	return recs
}

// record splits a row of len(names) texts into a Record.
func record(vals []string, delta bool) Record {
	rec := Record{}
	if delta {
		rec.Op = vals[len(vals)-1]
		vals = vals[:len(vals)-1]
	}
	rec.Key = vals[len(vals)-1]
	rec.Values = vals[:len(vals)-1]
	return rec
}

func decompress(t *testing.T, path string, data []byte) []byte {
	t.Helper()
	var rd io.Reader
	switch {
	case strings.HasSuffix(path, ".gz"):
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rd = gz
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		rd = zr
	default:
		return data
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("%s: decompress: %v", path, err)
	}
	return out
}

// readParquet reads a Parquet part with parquet-go and renders each value
// from its physical and logical type alone.
func readParquet(t *testing.T, path string, data []byte, names []string) []Record {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("%s: open parquet: %v", path, err)
	}
	fields := f.Schema().Fields()
	var got []string
	for _, fl := range fields {
		got = append(got, fl.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s: columns %q, want %q", path, got, names)
	}
	delta := names[len(names)-1] == lake.OpColumn
	ncols := len(fields) - 1 - btoi(delta) // the table's columns; then the key and the op
	for i, fl := range fields {
		if fl.Optional() != (i < ncols) {
			t.Errorf("%s: column %s optional=%t, want %t", path, fl.Name(), fl.Optional(), i < ncols)
		}
	}
	rd := parquet.NewReader(f)
	defer rd.Close()
	var recs []Record
	buf := make([]parquet.Row, 64)
	for {
		n, err := rd.ReadRows(buf)
		for _, row := range buf[:n] {
			byCol := make([][]parquet.Value, len(fields))
			for _, v := range row {
				byCol[v.Column()] = append(byCol[v.Column()], v)
			}
			vals := make([]string, len(fields))
			for i, fl := range fields {
				vals[i] = renderColumn(t, fl, byCol[i])
			}
			recs = append(recs, record(vals, delta))
		}
		if errors.Is(err, io.EOF) {
			return recs
		}
		if err != nil {
			t.Fatalf("%s: read rows: %v", path, err)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isList(n parquet.Node) bool {
	if n.Leaf() {
		return false
	}
	lt := n.Type().LogicalType()
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.ListType)
	return ok
}

// renderColumn renders one column's values of a row (one value, or a LIST's
// elements with their definition levels: 0 NULL, 1 empty, 2 NULL element).
func renderColumn(t *testing.T, fl parquet.Field, vals []parquet.Value) string {
	t.Helper()
	if !isList(fl) {
		if len(vals) != 1 {
			t.Fatalf("column %s: %d values in a row", fl.Name(), len(vals))
		}
		if vals[0].IsNull() {
			return feedtest.Null
		}
		return renderValue(t, fl, vals[0])
	}
	elem := fl.Fields()[0].Fields()[0]
	if len(vals) == 1 && vals[0].DefinitionLevel() == 0 {
		return feedtest.Null
	}
	if len(vals) == 1 && vals[0].DefinitionLevel() == 1 {
		return "{}"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		if v.IsNull() {
			b.WriteString("NULL")
			continue
		}
		b.WriteString(lake.ArrayElem(renderValue(t, elem, v)))
	}
	b.WriteByte('}')
	return b.String()
}

func renderValue(t *testing.T, n parquet.Node, v parquet.Value) string {
	t.Helper()
	s, err := lake.ParquetText(n, v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readCSV parses RFC 4180 text with a header row; an unquoted empty field
// is NULL, a quoted one the empty string.
func readCSV(t *testing.T, path string, data []byte, names []string) []Record {
	t.Helper()
	type field struct {
		s      string
		quoted bool
	}
	var records [][]field
	var rec []field
	var cur strings.Builder
	quoted, inQuotes, atStart := false, false, true
	endField := func() {
		rec = append(rec, field{cur.String(), quoted})
		cur.Reset()
		quoted, atStart = false, true
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inQuotes && c == '"' && i+1 < len(data) && data[i+1] == '"':
			cur.WriteByte('"')
			i++
		case inQuotes && c == '"':
			inQuotes = false
		case inQuotes:
			cur.WriteByte(c)
		case c == '"' && atStart:
			inQuotes, quoted, atStart = true, true, false
		case c == ',':
			endField()
		case c == '\r' && i+1 < len(data) && data[i+1] == '\n':
			// CRLF ends the record at the \n
		case c == '\n':
			endField()
			records = append(records, rec)
			rec = nil
		default:
			if quoted {
				t.Fatalf("%s: text after a closing quote", path)
			}
			cur.WriteByte(c)
			atStart = false
		}
	}
	if inQuotes || cur.Len() > 0 || len(rec) > 0 {
		t.Fatalf("%s: the last record is not terminated", path)
	}
	if len(records) == 0 {
		t.Fatalf("%s: no header", path)
	}
	var header []string
	for _, f := range records[0] {
		header = append(header, f.s)
	}
	if !slices.Equal(header, names) {
		t.Fatalf("%s: header %q, want %q", path, header, names)
	}
	delta := names[len(names)-1] == lake.OpColumn
	var out []Record
	for _, r := range records[1:] {
		if len(r) != len(names) {
			t.Fatalf("%s: a record has %d fields, want %d", path, len(r), len(names))
		}
		vals := make([]string, len(r))
		for i, f := range r {
			vals[i] = f.s
			if f.s == "" && !f.quoted {
				vals[i] = feedtest.Null
			}
		}
		out = append(out, record(vals, delta))
	}
	return out
}

// readJSONL decodes one object per line with encoding/json and turns each
// value back into PostgreSQL's text, by the column's type.
func readJSONL(t *testing.T, path string, data []byte, schema []lake.ManifestColumn, names []string) []Record {
	t.Helper()
	delta := names[len(names)-1] == lake.OpColumn
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// Keys must come in column order: decode the object token by token.
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("%s: line is not an object: %v", path, err)
		}
		vals := make([]string, 0, len(names))
		for i := 0; dec.More(); i++ {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if i >= len(names) || tok != names[i] {
				t.Fatalf("%s: key %v at position %d, want %q", path, tok, i, names)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("%s: %s: %v", path, names[i], err)
			}
			typ := "text"
			if i < len(schema) {
				typ = schema[i].Type
			}
			vals = append(vals, jsonText(t, raw, typ))
		}
		if len(vals) != len(names) {
			t.Fatalf("%s: %d keys, want %d", path, len(vals), len(names))
		}
		out = append(out, record(vals, delta))
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// jsonText turns a to_json value back into PostgreSQL's text output.
func jsonText(t *testing.T, raw json.RawMessage, typ string) string {
	t.Helper()
	s, null, err := lake.JSONText(raw, typ)
	if err != nil {
		t.Fatal(err)
	}
	if null {
		return feedtest.Null
	}
	return s
}

// Objects lists every key under the workflow, for tests that check what a
// load leaves behind.
func (r *Reader) Objects(t *testing.T) []string {
	t.Helper()
	keys, err := r.Store.List(context.Background(), r.Options.Workflow+"/")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return keys
}

// Referenced returns the keys that the table's manifest names: its parts,
// key list and the manifest itself.
func (r *Reader) Referenced(t *testing.T, target nopii.TableName) []string {
	t.Helper()
	m := r.Manifest(t, target)
	if m == nil {
		return nil
	}
	dir := lake.TableDir(r.Options.Workflow, target)
	out := []string{dir + lake.ManifestName}
	if m.Keys != "" {
		out = append(out, m.Keys)
	}
	if m.Snapshot != nil {
		for _, p := range m.Snapshot.Parts {
			out = append(out, dir+p.Path)
		}
	}
	for _, d := range m.Deltas {
		for _, p := range d.Parts {
			out = append(out, dir+p.Path)
		}
	}
	slices.Sort(out)
	return out
}

// String helps failure messages.
func (r *Reader) String() string {
	return fmt.Sprintf("lake %s/%s (%s)", r.Store.Describe(), r.Options.Workflow, r.Options.Format)
}
