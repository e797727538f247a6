package lake

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"reflect"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/nopii/nopii"
)

// Row groups are flushed at this many rows or this many buffered bytes,
// whichever comes first: a Parquet writer holds its row group in memory.
const (
	rowGroupRows  = 64 << 10
	rowGroupBytes = 64 << 20
)

// orderedGroup is a Parquet group whose fields keep the table's column
// order; parquet.Group sorts them by name.
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := g.Group.Fields()
	out := make([]parquet.Field, len(g.order))
	for i, name := range g.order {
		for _, f := range fields {
			if f.Name() == name {
				out[i] = f
				break
			}
		}
	}
	return out
}

// GoType is not used: rows are built as parquet.Row values. A map type keeps
// parquet-go from deriving a struct from column names Go cannot spell.
func (g orderedGroup) GoType() reflect.Type { return reflect.TypeFor[map[string]any]() }

// parquetLeaf is the Parquet type of a column's (or array element's) values.
func parquetLeaf(c *codec) parquet.Node {
	switch c.kind {
	case kBool:
		return parquet.Leaf(parquet.BooleanType)
	case kInt2:
		return parquet.Int(16)
	case kInt4:
		return parquet.Int(32)
	case kInt8:
		return parquet.Int(64)
	case kFloat4:
		return parquet.Leaf(parquet.FloatType)
	case kFloat8:
		return parquet.Leaf(parquet.DoubleType)
	case kNumeric:
		if !c.decimal() {
			return parquet.String()
		}
		switch {
		case c.precision <= 9:
			return parquet.Decimal(c.scale, c.precision, parquet.Int32Type)
		case c.precision <= 18:
			return parquet.Decimal(c.scale, c.precision, parquet.Int64Type)
		}
		return parquet.Decimal(c.scale, c.precision, parquet.FixedLenByteArrayType(decimalSize(c.precision)))
	case kJSON, kJSONB:
		return parquet.JSON()
	case kBytea, kRaw:
		return parquet.Leaf(parquet.ByteArrayType)
	case kDate:
		return parquet.Date()
	case kTime:
		return parquet.TimeAdjusted(parquet.Microsecond, false)
	case kTimestamp:
		return parquet.TimestampAdjusted(parquet.Microsecond, false)
	case kTimestamptz:
		return parquet.TimestampAdjusted(parquet.Microsecond, true)
	case kUUID:
		return parquet.UUID()
	case kArray:
		return parquet.List(parquet.Optional(parquetLeaf(c.elem)))
	}
	return parquet.String() // text, and the text of everything else
}

// decimalSize is the fewest bytes that hold every unscaled value of a
// DECIMAL of that precision in two's complement.
func decimalSize(precision int) int {
	return int(math.Ceil((float64(precision)*math.Log2(10) + 1) / 8))
}

func parquetCodec(compression string) compress.Codec {
	switch compression {
	case CompressionGzip:
		return &gzip.Codec{Level: gzip.DefaultCompression}
	case CompressionZstd:
		return &zstd.Codec{Level: zstd.SpeedDefault}
	case CompressionSnappy:
		return &snappy.Codec{}
	}
	return &uncompressed.Codec{}
}

// parquetSchema is the file schema of a table: its columns, all optional,
// then source_primary_key (required) and, in deltas, _nopii_op (required).
func parquetSchema(t *nopii.Table, codecs []*codec, delta bool) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}}
	for i, c := range t.Columns {
		g.Group[c.Name] = parquet.Optional(parquetLeaf(codecs[i]))
		g.order = append(g.order, c.Name)
	}
	g.Group[nopii.SourcePrimaryKeyColumn] = parquet.String()
	g.order = append(g.order, nopii.SourcePrimaryKeyColumn)
	if delta {
		g.Group[OpColumn] = parquet.String()
		g.order = append(g.order, OpColumn)
	}
	return parquet.NewSchema(t.Name.Name, g)
}

// parquetEncoder writes one part as a Parquet file.
type parquetEncoder struct {
	w        *parquet.GenericWriter[any]
	codecs   []*codec
	m        *pgtype.Map
	row      parquet.Row
	rows     []parquet.Row
	arena    []byte
	flushed  int64 // Size() after the last row-group flush
	warnings *int64
}

func newParquetEncoder(out io.Writer, schema *parquet.Schema, codecs []*codec, compression string, m *pgtype.Map, warnings *int64) *parquetEncoder {
	w := parquet.NewGenericWriter[any](out, schema,
		parquet.Compression(parquetCodec(compression)),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.CreatedBy("nopii", "", ""),
	)
	return &parquetEncoder{w: w, codecs: codecs, m: m, rows: make([]parquet.Row, 1), warnings: warnings}
}

func (e *parquetEncoder) writeRow(values [][]byte, op string) error {
	row, arena := e.row[:0], e.arena[:0]
	var err error
	n := len(e.codecs)
	for i, c := range e.codecs {
		if row, arena, err = appendParquet(row, arena, c, i, values[i], e.m, e.warnings); err != nil {
			return err
		}
	}
	row = append(row, parquet.ByteArrayValue(values[n]).Level(0, 0, n))
	if op != "" {
		row = append(row, parquet.ByteArrayValue(opBytes(op)).Level(0, 0, n+1))
	}
	e.row, e.arena = row, arena
	e.rows[0] = row
	if _, err := e.w.WriteRows(e.rows); err != nil {
		return err
	}
	if size := e.w.Size(); size-e.flushed >= rowGroupBytes {
		if err := e.w.Flush(); err != nil {
			return err
		}
		e.flushed = e.w.Size()
	}
	return nil
}

func (e *parquetEncoder) size() int64 { return e.w.Size() }

func (e *parquetEncoder) close() error { return e.w.Close() }

var (
	opUpsertBytes = []byte(OpUpsert)
	opDeleteBytes = []byte(OpDelete)
)

func opBytes(op string) []byte {
	if op == OpDelete {
		return opDeleteBytes
	}
	return opUpsertBytes
}

// appendParquet appends the Parquet values of one column to row: one value
// for a scalar, one per element for an array (LIST: definition level 0 for
// NULL, 1 for an empty list, 2 for a NULL element, 3 for an element).
// Values that need bytes of their own are built in arena.
func appendParquet(row parquet.Row, arena []byte, c *codec, col int, v []byte, m *pgtype.Map, warnings *int64) (parquet.Row, []byte, error) {
	if v == nil {
		return append(row, parquet.NullValue().Level(0, 0, col)), arena, nil
	}
	if c.kind != kArray {
		pv, arena, null, err := parquetValue(arena, c, v, m)
		if err != nil {
			return row, arena, err
		}
		if null {
			*warnings++
			return append(row, parquet.NullValue().Level(0, 0, col)), arena, nil
		}
		return append(row, pv.Level(0, 1, col)), arena, nil
	}
	var a array
	if err := parseArray(v, c, &a); err != nil {
		return row, arena, err
	}
	if a.n == 0 {
		return append(row, parquet.NullValue().Level(0, 1, col)), arena, nil
	}
	// Multi-dimensional arrays are flattened in row-major order.
	for i := 0; i < a.n; i++ {
		rep := 1
		if i == 0 {
			rep = 0
		}
		e, err := a.next(c)
		if err != nil {
			return row, arena, err
		}
		if e == nil {
			row = append(row, parquet.NullValue().Level(rep, 2, col))
			continue
		}
		var pv parquet.Value
		var null bool
		if pv, arena, null, err = parquetValue(arena, c.elem, e, m); err != nil {
			return row, arena, err
		}
		if null {
			*warnings++
			row = append(row, parquet.NullValue().Level(rep, 2, col))
			continue
		}
		row = append(row, pv.Level(rep, 3, col))
	}
	if len(a.body) != 0 {
		return row, arena, malformed(c)
	}
	return row, arena, nil
}

// parquetValue converts one non-NULL scalar. null reports a value that the
// column's Parquet type cannot hold (NaN in a DECIMAL, a timestamp after
// 294247-01-10 04:00:54.775807 UTC): it is written NULL.
func parquetValue(arena []byte, c *codec, v []byte, m *pgtype.Map) (parquet.Value, []byte, bool, error) {
	switch c.kind {
	case kBool:
		if len(v) != 1 {
			return parquet.Value{}, arena, false, malformed(c)
		}
		return parquet.BooleanValue(v[0] != 0), arena, false, nil
	case kInt2, kInt4:
		n, err := readInt(v, intSize(c.kind), c)
		return parquet.Int32Value(int32(n)), arena, false, err
	case kInt8:
		n, err := readInt(v, 8, c)
		return parquet.Int64Value(n), arena, false, err
	case kFloat4:
		if len(v) != 4 {
			return parquet.Value{}, arena, false, malformed(c)
		}
		return parquet.FloatValue(math.Float32frombits(binary.BigEndian.Uint32(v))), arena, false, nil
	case kFloat8:
		if len(v) != 8 {
			return parquet.Value{}, arena, false, malformed(c)
		}
		return parquet.DoubleValue(math.Float64frombits(binary.BigEndian.Uint64(v))), arena, false, nil
	case kNumeric:
		if c.decimal() {
			return decimalValue(arena, c, v)
		}
	case kText, kJSON, kBytea, kRaw:
		return parquet.ByteArrayValue(v), arena, false, nil
	case kJSONB:
		if len(v) < 1 || v[0] != 1 {
			return parquet.Value{}, arena, false, malformed(c)
		}
		return parquet.ByteArrayValue(v[1:]), arena, false, nil
	case kDate:
		d, err := readInt(v, 4, c)
		if err == nil && d != math.MaxInt32 && d != math.MinInt32 {
			d += pgEpochDays // infinity keeps its sentinel
		}
		return parquet.Int32Value(int32(d)), arena, false, err
	case kTime:
		us, err := readInt(v, 8, c)
		return parquet.Int64Value(us), arena, false, err
	case kTimestamp, kTimestamptz:
		us, err := readInt(v, 8, c)
		switch {
		case err != nil, us == math.MaxInt64, us == math.MinInt64: // infinity keeps its sentinel
		case us >= math.MaxInt64-pgEpochMicros:
			// After 294247-01-10 04:00:54.775807 UTC (PostgreSQL goes on
			// to 294276): microseconds since 1970 overflow INT64, or would
			// be +infinity's sentinel.
			return parquet.Value{}, arena, true, nil
		default:
			us += pgEpochMicros
		}
		return parquet.Int64Value(us), arena, false, err
	case kUUID:
		if len(v) != 16 {
			return parquet.Value{}, arena, false, malformed(c)
		}
		return parquet.FixedLenByteArrayValue(v), arena, false, nil
	}
	start := len(arena)
	arena, err := c.appendText(arena, v, m)
	if err != nil {
		return parquet.Value{}, arena, false, err
	}
	return parquet.ByteArrayValue(arena[start:len(arena):len(arena)]), arena, false, nil
}

// u128 is an unsigned 128-bit integer: the magnitude of a DECIMAL(38).
type u128 struct{ hi, lo uint64 }

// mulAdd returns a×m+add, and false on overflow.
func (a u128) mulAdd(m, add uint64) (u128, bool) {
	hi1, lo := bits.Mul64(a.lo, m)
	hi2, hiLo := bits.Mul64(a.hi, m)
	if hi2 != 0 {
		return a, false
	}
	hi, c := bits.Add64(hiLo, hi1, 0)
	if c != 0 {
		return a, false
	}
	lo, c = bits.Add64(lo, add, 0)
	hi, c = bits.Add64(hi, 0, c)
	if c != 0 {
		return a, false
	}
	return u128{hi, lo}, true
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// pow10 holds 10^0 … 10^38.
var pow10 = func() (p [39]u128) {
	p[0] = u128{0, 1}
	for i := 1; i < len(p); i++ {
		p[i], _ = p[i-1].mulAdd(10, 0)
	}
	return p
}()

// decimalValue converts a binary numeric to the unscaled integer of a
// DECIMAL(precision, scale), rounding half away from zero past the scale.
func decimalValue(arena []byte, c *codec, v []byte) (parquet.Value, []byte, bool, error) {
	if len(v) < 8 {
		return parquet.Value{}, arena, false, malformed(c)
	}
	switch binary.BigEndian.Uint16(v[4:]) {
	case numericNaN, numericPInf, numericNInf:
		return parquet.Value{}, arena, true, nil
	}
	start := len(arena)
	arena, err := appendNumeric(arena, v, c)
	if err != nil {
		return parquet.Value{}, arena, false, err
	}
	s := arena[start:]
	arena = arena[:start] // s is read before anything else is appended
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac := s, []byte(nil)
	for i, b := range s {
		if b == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	var acc u128
	ok := true
	for _, b := range intPart {
		if acc, ok = acc.mulAdd(10, uint64(b-'0')); !ok {
			break
		}
	}
	for i := 0; ok && i < c.scale; i++ {
		var d uint64
		if i < len(frac) {
			d = uint64(frac[i] - '0')
		}
		acc, ok = acc.mulAdd(10, d)
	}
	if ok && len(frac) > c.scale && frac[c.scale] >= '5' {
		acc, ok = acc.mulAdd(1, 1)
	}
	if !ok || !acc.less(pow10[c.precision]) {
		return parquet.Value{}, arena, false, fmt.Errorf("%s: value does not fit numeric(%d,%d)", c.name, c.precision, c.scale)
	}
	if neg { // two's complement
		var borrow uint64
		acc.lo, borrow = bits.Sub64(0, acc.lo, 0)
		acc.hi, _ = bits.Sub64(0, acc.hi, borrow)
	}
	switch {
	case c.precision <= 9:
		return parquet.Int32Value(int32(acc.lo)), arena, false, nil
	case c.precision <= 18:
		return parquet.Int64Value(int64(acc.lo)), arena, false, nil
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], acc.hi)
	binary.BigEndian.PutUint64(b[8:], acc.lo)
	arena = append(arena, b[16-decimalSize(c.precision):]...)
	return parquet.FixedLenByteArrayValue(arena[start:len(arena):len(arena)]), arena, false, nil
}
