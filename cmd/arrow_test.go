package cmd

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
)

// arrowColumn is one column of the table TestParquetReadByArrow copies: how
// the source declares and fills it, the Parquet type the lake must give it,
// how Arrow must read it, and how its source value is normalised to text.
type arrowColumn struct {
	name, sqlType string
	gen           string // SQL for row i; every 11th row is NULL in every column but id
	src           string // SQL rendering the source value $c as the text compared (NULL stays NULL)
	phys          parquet.Type
	logical       schema.LogicalType // of the column, or of the LIST group for text[]
	arrow         string             // arrow.DataType.String() of the column as pqarrow reads it
	render        func(t *testing.T, a arrow.Array, i int) string
	norm          func(s string) string // applied to the source text and the rendered value alike; nil: none
}

// normFloat is the normalisation of floats: PostgreSQL spells Infinity and
// NaN its own way and turns to exponents at other magnitudes than strconv,
// so both sides are parsed and printed by strconv: the comparison is of the
// exact value (shortest round-trip digits), NaN equal to NaN.
func normFloat(bits int) func(string) string {
	return func(s string) string {
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return "unparsable float " + strconv.Quote(s)
		}
		return strconv.FormatFloat(f, 'g', -1, bits)
	}
}

// TestParquetReadByArrow copies a table of many column types from a real
// PostgreSQL through the CLI into files feeds in Parquet (one per
// compression), then reads every part back with Apache Arrow's Go Parquet
// implementation — independent of the parquet-go library the lake writes
// with — and checks the Parquet schema it reports and every value, row for
// row, against the source; the email column must hold redacted values only.
//
// Values are compared as text. The source side is PostgreSQL's output with
// TimeZone UTC and DateStyle ISO (the ::text of the column) except: bytea as
// lowercase hex without \x (encode(c, 'hex')), text[] as the JSON array of its
// elements flattened in row-major order (the lake flattens multi-dimensional
// arrays), floats re-printed by strconv (normFloat). The Arrow side prints
// each value the same way: dates, timestamps as PostgreSQL does (UTC, trailing
// fractional zeros trimmed, "+00" for timestamptz), ±infinity from the
// sentinels PostgreSQL uses (the lake keeps them), decimals with their scale.
// A timestamp after 294247-01-10 04:00:54.775806 is expected NULL: Parquet's
// INT64 microseconds since 1970 cannot hold it and the lake says so in doc.go
// (it used to wrap around to year -290278; this test found that).
func TestParquetReadByArrow(t *testing.T) {
	cols := []arrowColumn{
		// The key, NOT NULL, created apart from the others; the lake also
		// copies it to source_primary_key, its text.
		{name: "id", sqlType: "int8", src: "$c::text",
			phys: parquet.Types.Int64, logical: schema.NewIntLogicalType(64, true), arrow: "int64", render: renderArrow},
		{name: "i2", sqlType: "int2", gen: "(i * 37 % 65535 - 32767)::int2", src: "$c::text",
			phys: parquet.Types.Int32, logical: schema.NewIntLogicalType(16, true), arrow: "int16", render: renderArrow},
		{name: "i4", sqlType: "int4", gen: "(i::int8 * 1000003 % 2147483647 * (1 - 2 * (i % 2)))::int4", src: "$c::text",
			phys: parquet.Types.Int32, logical: schema.NewIntLogicalType(32, true), arrow: "int32", render: renderArrow},
		{name: "i8", sqlType: "int8", gen: "i::int8 * 3037000493 * (1 - 2 * (i % 2))", src: "$c::text",
			phys: parquet.Types.Int64, logical: schema.NewIntLogicalType(64, true), arrow: "int64", render: renderArrow},
		{name: "f4", sqlType: "float4", gen: "(i / 7.0)::float4", src: "$c::text",
			phys: parquet.Types.Float, logical: schema.NoLogicalType{}, arrow: "float32", render: renderArrow, norm: normFloat(32)},
		{name: "f8", sqlType: "float8", gen: "(i::float8 / 3) * power(10::float8, i % 40 - 20)", src: "$c::text",
			phys: parquet.Types.Double, logical: schema.NoLogicalType{}, arrow: "float64", render: renderArrow, norm: normFloat(64)},
		{name: "n", sqlType: "numeric(12,2)", gen: "(i * 1234567.891 % 9999999999.99 * (1 - 2 * (i % 2)))", src: "$c::text",
			phys: parquet.Types.Int64, logical: schema.NewDecimalLogicalType(12, 2), arrow: "decimal(12, 2)", render: renderArrow},
		{name: "t", sqlType: "text", gen: `'row ' || i || E' "q", \\ o''clock\n\tZoë 🎉 <&>'`, src: "$c",
			phys: parquet.Types.ByteArray, logical: schema.StringLogicalType{}, arrow: "utf8", render: renderArrow},
		{name: "vc", sqlType: "varchar(40)", gen: "left(md5(i::text) || md5(i::text), i % 41)", src: "$c",
			phys: parquet.Types.ByteArray, logical: schema.StringLogicalType{}, arrow: "utf8", render: renderArrow},
		{name: "b", sqlType: "bool", gen: "i % 3 = 0", src: "$c::text",
			phys: parquet.Types.Boolean, logical: schema.NoLogicalType{}, arrow: "bool", render: renderArrow},
		{name: "d", sqlType: "date", gen: "date '1950-01-01' + i * 13", src: "$c::text",
			phys: parquet.Types.Int32, logical: schema.DateLogicalType{}, arrow: "date32", render: renderArrow},
		{name: "ts", sqlType: "timestamp", gen: "timestamp '1960-01-01' + i * interval '1 day 1 hour 1 minute 1.000123 seconds'",
			// The lake writes NULL for what INT64 microseconds since 1970 cannot hold (doc.go).
			src:  "CASE WHEN $c > '294247-01-10 04:00:54.775806' AND $c <> 'infinity' THEN NULL ELSE $c::text END",
			phys: parquet.Types.Int64, logical: schema.NewTimestampLogicalType(false, schema.TimeUnitMicros), arrow: "timestamp[us]", render: renderArrow},
		{name: "tz", sqlType: "timestamptz", gen: "timestamptz '1965-06-01 00:00+02' + i * interval '7 hours 13 minutes 0.5 seconds'", src: "$c::text",
			phys: parquet.Types.Int64, logical: schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), arrow: "timestamp[us, tz=UTC]", render: renderArrow},
		{name: "u", sqlType: "uuid", gen: "md5(i::text)::uuid", src: "$c::text",
			phys: parquet.Types.FixedLenByteArray, logical: schema.UUIDLogicalType{}, arrow: "extension<arrow.uuid>", render: renderArrow},
		{name: "jb", sqlType: "jsonb", gen: "jsonb_build_object('i', i, 's', 'v' || i || E'\\n\"', 'a', jsonb_build_array(i, i * 0.5, NULL, true, 'é'))", src: "$c::text",
			phys: parquet.Types.ByteArray, logical: schema.JSONLogicalType{}, arrow: "binary", render: renderArrow},
		{name: "by", sqlType: "bytea", gen: "CASE WHEN i % 50 = 1 THEN ''::bytea ELSE decode(md5(i::text), 'hex') END", src: "encode($c, 'hex')",
			phys: parquet.Types.ByteArray, logical: schema.NoLogicalType{}, arrow: "binary", render: renderArrowHex},
		{name: "tags", sqlType: "text[]",
			gen: `CASE i % 5 WHEN 0 THEN '{}'::text[] WHEN 1 THEN ARRAY['a' || i, NULL, ''] WHEN 2 THEN ARRAY[['x', 'y'], ['z', i::text]] ` +
				`WHEN 3 THEN ARRAY[NULL]::text[] ELSE ARRAY['t' || i, 'with space', 'q"uote', E'back\\slash', 'NULL'] END`,
			src:  "CASE WHEN $c IS NULL THEN NULL ELSE array_to_json(ARRAY(SELECT unnest($c)))::text END",
			phys: parquet.Types.ByteArray, logical: schema.ListLogicalType{}, arrow: "list<element: utf8, nullable>", render: renderArrow},
	}
	// redacted is the column with a rule; it is not compared to the source
	// but checked to hold redacted values only.
	redacted := arrowColumn{name: "email", sqlType: "text", gen: "'person' || i || '@mail.example.org'",
		phys: parquet.Types.ByteArray, logical: schema.StringLogicalType{}, arrow: "utf8", render: renderArrow}
	all := append(slices.Clone(cols), redacted)

	const rows = 3000
	prodDSN := pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	var defs, gens []string
	for _, c := range all[1:] {
		defs = append(defs, c.name+" "+c.sqlType)
		gens = append(gens, fmt.Sprintf("CASE WHEN i %% 11 = 0 THEN NULL ELSE (%s)::%s END", c.gen, c.sqlType))
	}
	mustExec(t, prod, "CREATE TABLE public.kitchen (id int8 PRIMARY KEY, "+strings.Join(defs, ", ")+")")
	mustExec(t, prod, fmt.Sprintf("INSERT INTO public.kitchen SELECT i, %s FROM generate_series(1, %d) i", strings.Join(gens, ", "), rows))
	// The edges of each type, and what PostgreSQL has beyond Parquet's
	// (±infinity), in two rows of their own.
	mustExec(t, prod, `INSERT INTO public.kitchen VALUES
	 (-1, -32768, 2147483647, -9223372036854775808, 'Infinity', 'NaN', -9999999999.99, '', '', false,
	  'infinity', '-infinity', 'infinity', '00000000-0000-0000-0000-000000000000', 'null', '', '{NULL,NULL}', ''),
	 (9223372036854775807, 32767, -2147483648, 9223372036854775807, '-Infinity', '-0', 9999999999.99, 'x', repeat('é', 40), true,
	  '-infinity', '294276-12-31 23:59:59.999999', '1900-01-01 00:00:00.000001+00', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '[1, "a", {"k": []}]', '\x00ff', '{"{}"}', 'A.B@Mail.Example.ORG')`)

	// One files feed per Parquet compression, with parts small enough to
	// roll over.
	compressions := []string{"none", "snappy", "gzip", "zstd"}
	dirs := map[string]string{}
	var feeds strings.Builder
	for _, comp := range compressions {
		dirs[comp] = t.TempDir()
		fmt.Fprintf(&feeds, "      - type: files\n        path: %s\n        format: parquet\n        compression: %s\n        part_size: 64KiB\n", dirs[comp], comp)
	}
	cfg := writeConfig(t, `
version: 1
hmac_key: `+testKey+`
workflows:
  - name: lake
    inputs:
      - name: prod
        dsn: `+prodDSN+`
        tables:
          - name: public.kitchen
            columns:
              email: { rule: redact_email }
    feeds:
`+feeds.String())
	rep := runJSON(t, cfg, 0)
	if tr := tableReport(t, rep, "public.kitchen"); tr.Error != "" || tr.Mode != "full" || len(tr.Feeds) != len(compressions) {
		t.Fatalf("run: %+v", tr)
	}

	// The source, normalised: id → column values (nil for NULL), and the
	// raw emails.
	src := map[string][]*string{}
	srcEmail := map[string]*string{}
	{
		var exprs []string
		for _, c := range cols {
			exprs = append(exprs, strings.ReplaceAll(c.src, "$c", c.name))
		}
		mustExec(t, prod, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 1")
		r, err := prod.Query(context.Background(), "SELECT id::text, email, "+strings.Join(exprs, ", ")+" FROM public.kitchen")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(r, func(row pgx.CollectableRow) ([]*string, error) {
			vals := make([]*string, len(cols)+2)
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			return vals, row.Scan(ptrs...)
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range got {
			src[*v[0]] = v[2:]
			srcEmail[*v[0]] = v[1]
		}
		if len(src) != rows+2 {
			t.Fatalf("source has %d rows, want %d", len(src), rows+2)
		}
		// The test is only as good as its data: every column has NULLs
		// and more than one value.
		for i, c := range cols[1:] {
			i++
			distinct := map[string]bool{}
			nulls := 0
			for _, v := range src {
				if v[i] == nil {
					nulls++
				} else {
					distinct[*v[i]] = true
				}
			}
			if nulls == 0 || len(distinct) < 2 {
				t.Fatalf("source column %s: %d NULLs, %d distinct values", c.name, nulls, len(distinct))
			}
		}
	}

	emailRE := regexp.MustCompile(`^u[0-9a-f]+@example\.com$`)
	for _, comp := range compressions {
		t.Run(comp, func(t *testing.T) {
			// Every part on disk, found without the lake's manifest.
			parts, err := filepath.Glob(filepath.Join(dirs[comp], "lake", "public.kitchen", "snapshot=*", "part-*.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) < 2 {
				t.Fatalf("parts %v: want several (part_size 64KiB)", parts)
			}
			if snaps, _ := filepath.Glob(filepath.Join(dirs[comp], "lake", "public.kitchen", "snapshot=*")); len(snaps) != 1 {
				t.Fatalf("snapshot folders %v, want one", snaps)
			}
			seen := map[string]bool{}
			emails := map[string]bool{}
			for _, p := range parts {
				for key, vals := range readArrowPart(t, p, all, comp) {
					if seen[key] {
						t.Errorf("%s: key %q in more than one row", filepath.Base(p), key)
					}
					seen[key] = true
					want, ok := src[key]
					if !ok {
						t.Errorf("%s: key %q not in the source", filepath.Base(p), key)
						continue
					}
					for i, c := range cols {
						g, w := vals[i], want[i]
						if c.norm != nil {
							if g != nil {
								g = ptr(c.norm(*g))
							}
							if w != nil {
								w = ptr(c.norm(*w))
							}
						}
						if !equalPtr(g, w) {
							t.Errorf("%s: row %s column %s (%s) = %s, source %s", filepath.Base(p), key, c.name, c.sqlType, showPtr(g), showPtr(w))
						}
					}
					// The redacted column: NULL where the source is, a
					// redacted address elsewhere, never the source's.
					g, raw := vals[len(cols)], srcEmail[key]
					switch {
					case raw == nil:
						if g != nil {
							t.Errorf("row %s: email NULL in the source, %q in the file", key, *g)
						}
					case g == nil:
						t.Errorf("row %s: email %q became NULL", key, *raw)
					case !emailRE.MatchString(*g) || strings.EqualFold(*g, *raw):
						t.Errorf("row %s: email %q (source %q) is not redacted", key, *g, *raw)
					default:
						emails[*g] = true
					}
				}
			}
			if len(seen) != len(src) {
				t.Errorf("the parts hold %d rows, the source %d", len(seen), len(src))
			}
			// Distinct addresses stay distinct.
			if n := len(emails); n < rows*10/11 {
				t.Errorf("%d distinct redacted emails, want one per non-NULL source email", n)
			}
			// And no raw address anywhere in the bytes (uncompressed parts).
			if comp == "none" {
				assertNoRawValues(t, dirs[comp], regexp.MustCompile(`(?i)person[0-9]+@mail\.example\.org|a\.b@mail`))
			}
		})
	}
}

// readArrowPart opens one part with arrow-go, checks its Parquet schema and
// Arrow schema against cols (then source_primary_key), and returns its rows
// keyed by source_primary_key, each value rendered as text (nil for NULL).
func readArrowPart(t *testing.T, path string, cols []arrowColumn, comp string) map[string][]*string {
	t.Helper()
	name := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Not a checked allocator: arrow-go v18.8.0's DELTA_BINARY_PACKED
	// decoder keeps 64 bytes per column reader (its leak, not the file's).
	mem := memory.NewGoAllocator()
	rdr, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		t.Fatalf("%s: arrow-go cannot open the file: %v", name, err)
	}
	defer rdr.Close()
	md := rdr.MetaData()

	// The Parquet schema: the table's columns, optional, then the key,
	// required; physical and logical types as doc.go promises.
	root := md.Schema.Root()
	if root.NumFields() != len(cols)+1 {
		t.Fatalf("%s: %d top-level fields, want %d", name, root.NumFields(), len(cols)+1)
	}
	for i, c := range cols {
		n := root.Field(i)
		if n.Name() != c.name {
			t.Fatalf("%s: field %d is %q, want %q", name, i, n.Name(), c.name)
		}
		if n.RepetitionType() != parquet.Repetitions.Optional {
			t.Errorf("%s: %s is %s, want optional", name, c.name, n.RepetitionType())
		}
		if !n.LogicalType().Equals(c.logical) {
			t.Errorf("%s: %s has logical type %s, want %s", name, c.name, n.LogicalType(), c.logical)
		}
		leaf := n
		if _, isList := c.logical.(schema.ListLogicalType); isList {
			// The three-level LIST: optional group (LIST) { repeated group list { optional element } }.
			g, ok := n.(*schema.GroupNode)
			if !ok || g.NumFields() != 1 {
				t.Fatalf("%s: %s is not a LIST group: %v", name, c.name, n)
			}
			rep, ok := g.Field(0).(*schema.GroupNode)
			if !ok || rep.RepetitionType() != parquet.Repetitions.Repeated || rep.NumFields() != 1 {
				t.Fatalf("%s: %s: the LIST's middle level is %v", name, c.name, g.Field(0))
			}
			leaf = rep.Field(0)
			if leaf.RepetitionType() != parquet.Repetitions.Optional || !leaf.LogicalType().Equals(schema.StringLogicalType{}) {
				t.Errorf("%s: %s: element %s %s, want optional STRING", name, c.name, leaf.RepetitionType(), leaf.LogicalType())
			}
		}
		prim, ok := leaf.(*schema.PrimitiveNode)
		if !ok {
			t.Fatalf("%s: %s: leaf %v is not primitive", name, c.name, leaf)
		}
		if prim.PhysicalType() != c.phys {
			t.Errorf("%s: %s is %s, want %s", name, c.name, prim.PhysicalType(), c.phys)
		}
		if c.phys == parquet.Types.FixedLenByteArray && prim.TypeLength() != 16 {
			t.Errorf("%s: %s has length %d, want 16", name, c.name, prim.TypeLength())
		}
	}
	key := root.Field(len(cols))
	if key.Name() != "source_primary_key" || key.RepetitionType() != parquet.Repetitions.Required || !key.LogicalType().Equals(schema.StringLogicalType{}) {
		t.Errorf("%s: last field %s %s %s, want source_primary_key required STRING", name, key.Name(), key.RepetitionType(), key.LogicalType())
	}
	// The compression the feed was configured with, on every column chunk.
	for g := range md.NumRowGroups() {
		rg := md.RowGroup(g)
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"none": "UNCOMPRESSED", "snappy": "SNAPPY", "gzip": "GZIP", "zstd": "ZSTD"}[comp]
			if got := cc.Compression().String(); got != want {
				t.Errorf("%s: row group %d column %d compressed %s, want %s", name, g, c, got, want)
			}
		}
	}

	// The values, through pqarrow.
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1000}, mem)
	if err != nil {
		t.Fatalf("%s: pqarrow: %v", name, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: arrow-go cannot read the rows: %v", name, err)
	}
	defer tbl.Release()
	sch := tbl.Schema()
	if sch.NumFields() != len(cols)+1 {
		t.Fatalf("%s: Arrow schema %s", name, sch)
	}
	for i, c := range cols {
		f := sch.Field(i)
		if f.Name != c.name || f.Type.String() != c.arrow || !f.Nullable {
			t.Errorf("%s: Arrow field %d is %s %s nullable=%t, want %s %s nullable", name, i, f.Name, f.Type, f.Nullable, c.name, c.arrow)
		}
	}
	if f := sch.Field(len(cols)); f.Type.ID() != arrow.STRING || f.Nullable {
		t.Errorf("%s: Arrow key field %s %s nullable=%t, want utf8 not null", name, f.Name, f.Type, f.Nullable)
	}
	if tbl.NumRows() != md.NumRows || tbl.NumRows() == 0 {
		t.Fatalf("%s: %d rows read, footer says %d", name, tbl.NumRows(), md.NumRows)
	}

	n := int(tbl.NumRows())
	values := make([][]*string, n)
	for r := range values {
		values[r] = make([]*string, len(cols))
	}
	keys := make([]string, 0, n)
	for ci := 0; ci <= len(cols); ci++ {
		r := 0
		for _, chunk := range tbl.Column(ci).Data().Chunks() {
			for j := range chunk.Len() {
				switch {
				case ci == len(cols):
					if chunk.IsNull(j) {
						t.Fatalf("%s: row %d has a NULL key", name, r)
					}
					keys = append(keys, chunk.(*array.String).Value(j))
				case !chunk.IsNull(j):
					values[r][ci] = ptr(cols[ci].render(t, chunk, j))
				}
				r++
			}
		}
		if r != n {
			t.Fatalf("%s: column %d has %d values, want %d", name, ci, r, n)
		}
	}
	out := make(map[string][]*string, n)
	for r, k := range keys {
		if _, dup := out[k]; dup {
			t.Errorf("%s: key %q twice", name, k)
		}
		out[k] = values[r]
	}
	return out
}

// renderArrow prints a non-NULL Arrow value as the source side prints it
// (see TestParquetReadByArrow); binary values as their bytes.
func renderArrow(t *testing.T, a arrow.Array, i int) string {
	t.Helper()
	switch a := a.(type) {
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.Date32:
		switch d := a.Value(i); d {
		case math.MaxInt32:
			return "infinity"
		case math.MinInt32:
			return "-infinity"
		default:
			return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
		}
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		if typ.Unit != arrow.Microsecond {
			t.Fatalf("timestamp unit %s", typ.Unit)
		}
		switch us := int64(a.Value(i)); us {
		case math.MaxInt64:
			return "infinity"
		case math.MinInt64:
			return "-infinity"
		default:
			s := time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.999999")
			if typ.TimeZone != "" {
				s += "+00"
			}
			return s
		}
	case array.ExtensionArray: // arrow.uuid over fixed_size_binary[16]
		fsb, ok := a.Storage().(*array.FixedSizeBinary)
		if !ok || a.ExtensionType().ExtensionName() != "arrow.uuid" {
			t.Fatalf("extension %s over %s", a.ExtensionType().ExtensionName(), a.Storage().DataType())
		}
		h := hex.EncodeToString(fsb.Value(i))
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case *array.List:
		// The elements as a JSON array, as PostgreSQL's array_to_json.
		start, end := a.ValueOffsets(i)
		elems := a.ListValues().(*array.String)
		out := make([]*string, 0, end-start)
		for j := int(start); j < int(end); j++ {
			if elems.IsNull(j) {
				out = append(out, nil)
			} else {
				out = append(out, ptr(elems.Value(j)))
			}
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	t.Fatalf("unexpected Arrow array %s", a.DataType())
	return ""
}

// renderArrowHex prints a binary value as lowercase hex, as encode(c, 'hex').
func renderArrowHex(t *testing.T, a arrow.Array, i int) string {
	t.Helper()
	b, ok := a.(*array.Binary)
	if !ok {
		t.Fatalf("bytea read as %s", a.DataType())
	}
	return hex.EncodeToString(b.Value(i))
}

func ptr(s string) *string { return &s }

func equalPtr(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func showPtr(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}
