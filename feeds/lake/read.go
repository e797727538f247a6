package lake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/nopii/nopii"
)

// ColumnText streams a table as a reader of the lake sees it — the parts
// of the manifest's snapshot, then of each delta after it (upserts; delete
// rows hold no values) — calling row with each row's source_primary_key and
// the column's value as PostgreSQL's text output renders it (nil for NULL).
// It is the read side of `nopii verify`. Parquet parts are read whole, one
// at a time; CSV and JSONL parts are streamed. Array columns of Parquet
// parts are not read back (ErrUnsupportedType); a table the lake does not
// hold yet is nopii.ErrNotFound.
func (f *Feed) ColumnText(ctx context.Context, target nopii.TableName, column string, row func(key, value []byte) error) error {
	if f.err != nil {
		return f.err
	}
	dir := TableDir(f.opts.Workflow, target)
	m, err := ReadManifest(ctx, f.store, dir)
	if errors.Is(err, ErrNotExist) {
		return fmt.Errorf("read %s: %w: no manifest in %s", target, nopii.ErrNotFound, f.store.Describe())
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", target, err)
	}
	if m == nil || m.Snapshot == nil {
		return fmt.Errorf("read %s: %w: no snapshot in %s", target, nopii.ErrNotFound, f.store.Describe())
	}
	typ := ""
	for _, c := range m.Schema {
		if c.Name == column {
			typ = c.Type
		}
	}
	if typ == "" {
		return fmt.Errorf("read %s.%s: column %w in the lake's schema", target, column, nopii.ErrNotFound)
	}
	parts := m.Snapshot.Parts
	for _, d := range m.Deltas {
		parts = append(parts, d.Parts...)
	}
	for _, p := range parts {
		key := dir + p.Path
		if err := f.readPart(ctx, key, m.Format, column, typ, row); err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
	return nil
}

// readPart streams one part's (key, value) pairs, skipping delete rows.
func (f *Feed) readPart(ctx context.Context, key, fmtName, column, typ string, row func(key, value []byte) error) error {
	rc, err := f.store.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	var rd io.Reader = rc
	switch {
	case strings.HasSuffix(key, ".gz"):
		gz, err := gzip.NewReader(rc)
		if err != nil {
			return err
		}
		defer gz.Close()
		rd = gz
	case strings.HasSuffix(key, ".zst"):
		zr, err := zstd.NewReader(rc)
		if err != nil {
			return err
		}
		defer zr.Close()
		rd = zr
	}
	switch fmtName {
	case FormatCSV:
		return readCSVColumn(rd, column, row)
	case FormatJSONL:
		return readJSONLColumn(rd, column, typ, row)
	}
	data, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	return readParquetColumn(data, column, row)
}

// colIndex finds the key, the column and the op among a part's column names.
type colIndex struct{ key, col, op int }

func indexOf(names []string, column string) (colIndex, error) {
	ix := colIndex{-1, -1, -1}
	for i, n := range names {
		switch n {
		case nopii.SourcePrimaryKeyColumn:
			ix.key = i
		case column:
			ix.col = i
		case OpColumn:
			ix.op = i
		}
	}
	if ix.key < 0 || ix.col < 0 {
		return ix, fmt.Errorf("the part lacks column %s or %s", column, nopii.SourcePrimaryKeyColumn)
	}
	return ix, nil
}

func readParquetColumn(data []byte, column string, row func(key, value []byte) error) error {
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	fields := pf.Schema().Fields()
	names := make([]string, len(fields))
	for i, fl := range fields {
		names[i] = fl.Name()
	}
	ix, err := indexOf(names, column)
	if err != nil {
		return err
	}
	if !fields[ix.col].Leaf() {
		return fmt.Errorf("column %s: %w: arrays in Parquet are not read back", column, nopii.ErrUnsupportedType)
	}
	rd := parquet.NewReader(pf)
	defer rd.Close()
	buf := make([]parquet.Row, 256)
	vals := make([]parquet.Value, len(fields))
	for {
		n, err := rd.ReadRows(buf)
		for _, r := range buf[:n] {
			// Leaf columns hold one value a row; the leaf index is the
			// field index because only arrays nest, and ours are not.
			for _, v := range r {
				if c := v.Column(); c < len(vals) {
					vals[c] = v
				}
			}
			if ix.op >= 0 && string(vals[ix.op].ByteArray()) == OpDelete {
				continue
			}
			var value []byte
			if v := vals[ix.col]; !v.IsNull() {
				s, err := ParquetText(fields[ix.col], v)
				if err != nil {
					return err
				}
				value = []byte(s)
			}
			if err := row(vals[ix.key].ByteArray(), value); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readCSVColumn streams RFC 4180 records with a header row: an unquoted
// empty field is NULL, a quoted one the empty string.
func readCSVColumn(r io.Reader, column string, row func(key, value []byte) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var ix colIndex
	header := true
	var fields [][]byte
	var nulls []bool
	var cur []byte
	quoted, inQuotes, atStart := false, false, true
	end := func() {
		fields = append(fields, append([]byte{}, cur...))
		nulls = append(nulls, len(cur) == 0 && !quoted)
		cur, quoted, atStart = cur[:0], false, true
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			if inQuotes || len(cur) > 0 || len(fields) > 0 {
				return errors.New("the last record is not terminated")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case inQuotes && c == '"':
			if next, _ := br.Peek(1); len(next) == 1 && next[0] == '"' {
				br.ReadByte()
				cur = append(cur, '"')
			} else {
				inQuotes = false
			}
		case inQuotes:
			cur = append(cur, c)
		case c == '"' && atStart:
			inQuotes, quoted, atStart = true, true, false
		case c == ',':
			end()
		case c == '\r':
		case c == '\n':
			end()
			if header {
				names := make([]string, len(fields))
				for i, f := range fields {
					names[i] = string(f)
				}
				if ix, err = indexOf(names, column); err != nil {
					return err
				}
				header = false
			} else {
				if len(fields) <= max(ix.key, ix.col, ix.op) {
					return errors.New("a record has too few fields")
				}
				if ix.op < 0 || string(fields[ix.op]) != OpDelete {
					v := fields[ix.col]
					if nulls[ix.col] {
						v = nil
					}
					if err := row(fields[ix.key], v); err != nil {
						return err
					}
				}
			}
			fields, nulls = fields[:0], nulls[:0]
		default:
			cur = append(cur, c)
			atStart = false
		}
	}
}

// readJSONLColumn streams one object per line.
func readJSONLColumn(r io.Reader, column, typ string, row func(key, value []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			return err
		}
		var op, key string
		if err := json.Unmarshal(obj[OpColumn], &op); obj[OpColumn] != nil && err != nil {
			return err
		}
		if op == OpDelete {
			continue
		}
		if err := json.Unmarshal(obj[nopii.SourcePrimaryKeyColumn], &key); err != nil {
			return fmt.Errorf("%s: %w", nopii.SourcePrimaryKeyColumn, err)
		}
		raw, ok := obj[column]
		if !ok {
			return fmt.Errorf("a line lacks column %s", column)
		}
		s, null, err := JSONText(raw, typ)
		if err != nil {
			return err
		}
		var v []byte
		if !null {
			v = []byte(s)
		}
		if err := row([]byte(key), v); err != nil {
			return err
		}
	}
	return sc.Err()
}

// JSONText turns a value of a JSONL part (PostgreSQL's to_json of a value
// of type typ, as the manifest names it) back into PostgreSQL's text
// output; null reports JSON null.
func JSONText(raw json.RawMessage, typ string) (s string, null bool, err error) {
	if string(raw) == "null" {
		return "", true, nil
	}
	if strings.HasSuffix(typ, "[]") {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return "", false, fmt.Errorf("%s value: %w", typ, err)
		}
		parts := make([]string, len(elems))
		for i, e := range elems {
			s, null, err := JSONText(e, strings.TrimSuffix(typ, "[]"))
			if err != nil {
				return "", false, err
			}
			if null {
				parts[i] = "NULL"
				continue
			}
			parts[i] = ArrayElem(s)
		}
		return "{" + strings.Join(parts, ",") + "}", false, nil
	}
	if typ == "json" || typ == "jsonb" {
		return string(raw), false, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false, fmt.Errorf("%s value: %w", typ, err)
	}
	switch v := v.(type) {
	case bool:
		if v {
			return "t", false, nil
		}
		return "f", false, nil
	case json.Number:
		return v.String(), false, nil
	case string:
		switch {
		case strings.HasPrefix(typ, "timestamp with time zone"):
			v = strings.Replace(v, "T", " ", 1)
			return strings.TrimSuffix(v, ":00"), false, nil // +00:00 → +00
		case strings.HasPrefix(typ, "timestamp"):
			return strings.Replace(v, "T", " ", 1), false, nil
		}
		return v, false, nil
	}
	return "", false, fmt.Errorf("%s value: unexpected JSON", typ)
}

// ArrayElem quotes an array element as PostgreSQL's array_out does.
func ArrayElem(s string) string {
	if s == "" || strings.EqualFold(s, "NULL") || strings.ContainsAny(s, "{}\",\\ \t\n\r\v\f") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return s
}

// ParquetText renders a non-NULL Parquet value of leaf n as PostgreSQL's
// text output of the column's type, from the physical and logical types
// alone.
func ParquetText(n parquet.Node, v parquet.Value) (string, error) {
	typ := n.Type()
	if lt := typ.LogicalType(); lt != nil && lt.Value != nil {
		switch l := lt.Value.(type) {
		case *format.DecimalType:
			var unscaled big.Int
			switch typ.Kind() {
			case parquet.Int32:
				unscaled.SetInt64(int64(v.Int32()))
			case parquet.Int64:
				unscaled.SetInt64(v.Int64())
			default:
				b := v.ByteArray()
				unscaled.SetBytes(b)
				if len(b) > 0 && b[0]&0x80 != 0 { // two's complement
					unscaled.Sub(&unscaled, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
				}
			}
			return decimalText(&unscaled, int(l.Scale)), nil
		case *format.DateType:
			switch d := v.Int32(); d {
			case math.MaxInt32:
				return "infinity", nil
			case math.MinInt32:
				return "-infinity", nil
			}
			return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02"), nil
		case *format.TimeType:
			return time.UnixMicro(v.Int64()).UTC().Format("15:04:05.999999"), nil
		case *format.TimestampType:
			switch us := v.Int64(); us {
			case math.MaxInt64:
				return "infinity", nil
			case math.MinInt64:
				return "-infinity", nil
			}
			s := time.UnixMicro(v.Int64()).UTC().Format("2006-01-02 15:04:05.999999")
			if l.IsAdjustedToUTC {
				s += "+00"
			}
			return s, nil
		case *format.UUIDType:
			h := hex.EncodeToString(v.ByteArray())
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
		case *format.StringType, *format.JsonType:
			return string(v.ByteArray()), nil
		case *format.IntType:
			if typ.Kind() == parquet.Int32 {
				return strconv.FormatInt(int64(v.Int32()), 10), nil
			}
			return strconv.FormatInt(v.Int64(), 10), nil
		}
		return "", fmt.Errorf("column %s: logical type %s: %w", n.String(), lt, nopii.ErrUnsupportedType)
	}
	switch typ.Kind() {
	case parquet.Boolean:
		if v.Boolean() {
			return "t", nil
		}
		return "f", nil
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10), nil
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10), nil
	case parquet.Float:
		return floatText(float64(v.Float()), 32), nil
	case parquet.Double:
		return floatText(v.Double(), 64), nil
	case parquet.ByteArray:
		return `\x` + hex.EncodeToString(v.ByteArray()), nil
	}
	return "", fmt.Errorf("column %s: type %s: %w", n.String(), typ, nopii.ErrUnsupportedType)
}

func decimalText(unscaled *big.Int, scale int) string {
	s := new(big.Int).Abs(unscaled).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if unscaled.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// floatText prints a float as PostgreSQL 12+ does (shortest round-trip
// digits; positional for decimal exponents -4 up to 14, or 5 for real).
func floatText(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, bits)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	limit := 15
	if bits == 32 {
		limit = 6
	}
	if f != 0 && (exp < -4 || exp >= limit) {
		return e
	}
	return strconv.FormatFloat(f, 'f', -1, bits)
}
