package lake

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nopii/nopii"
)

// kind says how a column's binary values are decoded.
type kind uint8

const (
	kBool kind = iota
	kInt2
	kInt4
	kInt8
	kFloat4
	kFloat8
	kNumeric
	kMoney
	kText // text, varchar, bpchar, name, "char", citext, xml, enum labels
	kBytea
	kDate
	kTime
	kTimetz
	kTimestamp
	kTimestamptz
	kInterval
	kUUID
	kJSON
	kJSONB
	kInet
	kRange
	kArray
	kOther // a built-in type that pgtype renders as PostgreSQL does
	kRaw   // bytes we cannot render: composites, extension and unknown types
)

// codec is how one column (or array element, or range bound) is decoded.
type codec struct {
	kind      kind
	name      string // the type's name, for errors
	oid       uint32 // kOther: the pgtype OID
	precision int    // kNumeric: from the typmod; 0 when unconstrained
	scale     int    // kNumeric: from the typmod; -1 when unconstrained
	elem      *codec // kArray: the element; kRange: the bound
}

// decimal reports whether a numeric column fits Parquet's DECIMAL.
func (c *codec) decimal() bool {
	return c.kind == kNumeric && c.precision >= 1 && c.precision <= 38 && c.scale >= 0 && c.scale <= c.precision
}

// compileColumn returns the codec of a column: domains are decoded as their
// base type, with the base's typmod when the column has none.
func compileColumn(c nopii.Column) *codec {
	t, mod := c.Type, c.Typmod
	for t != nil && t.Kind == nopii.TypeDomain && t.Base != nil {
		if mod < 0 {
			mod = t.BaseTypmod
		}
		t = t.Base
	}
	return compileType(t, mod)
}

func compileType(t *nopii.Type, mod int32) *codec {
	if t == nil {
		return &codec{kind: kRaw, name: "?", scale: -1}
	}
	c := &codec{name: t.Name, scale: -1}
	switch t.Kind {
	case nopii.TypeDomain:
		return compileType(t.Underlying(), mod)
	case nopii.TypeEnum:
		c.kind = kText // an enum's binary value is its label
		return c
	case nopii.TypeArray:
		c.kind = kArray
		e := t.Elem
		for e != nil && e.Kind == nopii.TypeDomain && e.Base != nil {
			if mod < 0 {
				mod = e.BaseTypmod
			}
			e = e.Base
		}
		c.elem = compileType(e, mod) // an array column's typmod is its elements'
		if c.elem.kind == kArray {
			c.elem = &codec{kind: kRaw, name: c.elem.name, scale: -1}
		}
		return c
	case nopii.TypeComposite:
		c.kind = kRaw
		return c
	}
	if t.Extension == "citext" && t.Name == "citext" {
		c.kind = kText // citext sends its text
		return c
	}
	if !t.BuiltIn() {
		c.kind = kRaw
		return c
	}
	switch t.Name {
	case "bool":
		c.kind = kBool
	case "int2":
		c.kind = kInt2
	case "int4":
		c.kind = kInt4
	case "int8":
		c.kind = kInt8
	case "float4":
		c.kind = kFloat4
	case "float8":
		c.kind = kFloat8
	case "numeric":
		c.kind = kNumeric
		if mod >= 4 {
			m := mod - 4
			c.precision = int(m>>16) & 0xffff
			c.scale = ((int(m) & 0x7ff) ^ 1024) - 1024 // PostgreSQL 15 allows a negative scale
		}
	case "money":
		c.kind = kMoney
	case "text", "varchar", "bpchar", "name", "char", "xml", "unknown":
		c.kind = kText
	case "bytea":
		c.kind = kBytea
	case "date":
		c.kind = kDate
	case "time":
		c.kind = kTime
	case "timetz":
		c.kind = kTimetz
	case "timestamp":
		c.kind = kTimestamp
	case "timestamptz":
		c.kind = kTimestamptz
	case "interval":
		c.kind = kInterval
	case "uuid":
		c.kind = kUUID
	case "json":
		c.kind = kJSON
	case "jsonb":
		c.kind = kJSONB
	case "inet", "cidr":
		c.kind = kInet
	case "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange":
		c.kind = kRange
		c.elem = compileType(&nopii.Type{Schema: "pg_catalog", Name: rangeSubtype[t.Name]}, -1)
	default:
		if _, ok := textByPgtype[t.Name]; ok {
			c.kind, c.oid = kOther, t.OID
		} else {
			c.kind = kRaw
		}
	}
	return c
}

var rangeSubtype = map[string]string{
	"int4range": "int4", "int8range": "int8", "numrange": "numeric",
	"daterange": "date", "tsrange": "timestamp", "tstzrange": "timestamptz",
}

// textByPgtype lists the built-in types whose text pgtype renders exactly as
// PostgreSQL's output function does (checked against a server in tests).
var textByPgtype = map[string]struct{}{
	"bit": {}, "varbit": {}, "point": {}, "box": {}, "lseg": {}, "line": {}, "path": {},
	"polygon": {}, "circle": {}, "macaddr": {}, "macaddr8": {}, "tsvector": {}, "tsquery": {},
	"oid": {}, "xid": {}, "xid8": {}, "cid": {}, "tid": {}, "jsonpath": {},
}

var errMalformed = errors.New("malformed binary value")

func malformed(c *codec) error { return fmt.Errorf("%s: %w", c.name, errMalformed) }

// Epoch offsets: PostgreSQL counts from 2000-01-01, Unix from 1970-01-01.
const (
	pgEpochDays   = 10957
	pgEpochMicros = pgEpochDays * 86400 * 1000000
)

func readInt(v []byte, n int, c *codec) (int64, error) {
	if len(v) != n {
		return 0, malformed(c)
	}
	switch n {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v))), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v))), nil
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func intSize(k kind) int {
	switch k {
	case kInt2:
		return 2
	case kInt4:
		return 4
	}
	return 8
}

// appendText appends the value as PostgreSQL's output function renders it
// with DateStyle ISO, IntervalStyle postgres, TimeZone UTC, bytea_output hex
// and extra_float_digits 1: what COPY … TO (FORMAT csv) writes.
func (c *codec) appendText(dst, v []byte, m *pgtype.Map) ([]byte, error) {
	switch c.kind {
	case kBool:
		if len(v) != 1 {
			return dst, malformed(c)
		}
		if v[0] != 0 {
			return append(dst, 't'), nil
		}
		return append(dst, 'f'), nil
	case kInt2, kInt4, kInt8:
		n, err := readInt(v, intSize(c.kind), c)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, n, 10), nil
	case kFloat4:
		if len(v) != 4 {
			return dst, malformed(c)
		}
		return appendFloat(dst, float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 32), nil
	case kFloat8:
		if len(v) != 8 {
			return dst, malformed(c)
		}
		return appendFloat(dst, math.Float64frombits(binary.BigEndian.Uint64(v)), 64), nil
	case kNumeric:
		return appendNumeric(dst, v, c)
	case kMoney:
		n, err := readInt(v, 8, c)
		if err != nil {
			return dst, err
		}
		return appendMoney(dst, n), nil
	case kText, kJSON:
		return append(dst, v...), nil
	case kJSONB:
		if len(v) < 1 || v[0] != 1 {
			return dst, malformed(c)
		}
		return append(dst, v[1:]...), nil
	case kBytea, kRaw:
		return appendHex(dst, v), nil
	case kDate:
		d, err := readInt(v, 4, c)
		if err != nil {
			return dst, err
		}
		return appendDate(dst, d), nil
	case kTime:
		us, err := readInt(v, 8, c)
		if err != nil {
			return dst, err
		}
		return appendClock(dst, us), nil
	case kTimetz:
		if len(v) != 12 {
			return dst, malformed(c)
		}
		us := int64(binary.BigEndian.Uint64(v))
		west := int32(binary.BigEndian.Uint32(v[8:])) // seconds west of UTC
		return appendOffset(appendClock(dst, us), -int64(west), false), nil
	case kTimestamp, kTimestamptz:
		us, err := readInt(v, 8, c)
		if err != nil {
			return dst, err
		}
		return appendTimestamp(dst, us, c.kind == kTimestamptz, false), nil
	case kInterval:
		return appendInterval(dst, v, c)
	case kUUID:
		if len(v) != 16 {
			return dst, malformed(c)
		}
		return appendUUID(dst, v), nil
	case kInet:
		return appendInet(dst, v, c)
	case kRange:
		return c.appendRange(dst, v, m)
	case kArray:
		return c.appendArrayText(dst, v, m)
	case kOther:
		return appendPgtype(dst, v, c, m)
	}
	return dst, malformed(c)
}

// appendJSON appends the value as PostgreSQL's to_json renders it (TimeZone
// UTC): numbers and booleans as JSON, json and jsonb embedded, arrays as
// JSON arrays, everything else as a string.
func (c *codec) appendJSON(dst, v []byte, m *pgtype.Map, scratch *[]byte) ([]byte, error) {
	switch c.kind {
	case kBool:
		if len(v) != 1 {
			return dst, malformed(c)
		}
		if v[0] != 0 {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case kInt2, kInt4, kInt8:
		return c.appendText(dst, v, m)
	case kFloat4, kFloat8, kNumeric:
		start := len(dst)
		dst, err := c.appendText(dst, v, m)
		if err != nil {
			return dst, err
		}
		if s := dst[start:]; len(s) > 0 && (s[0] == 'N' || s[0] == 'I' || s[len(s)-1] == 'y') {
			// NaN, Infinity, -Infinity are not JSON numbers.
			*scratch = append((*scratch)[:0], s...)
			return appendJSONString(dst[:start], *scratch), nil
		}
		return dst, nil
	case kJSON, kJSONB:
		s := v
		if c.kind == kJSONB {
			if len(v) < 1 || v[0] != 1 {
				return dst, malformed(c)
			}
			s = v[1:]
		}
		if !json.Valid(s) {
			return appendJSONString(dst, s), nil
		}
		return append(dst, s...), nil
	case kDate:
		d, err := readInt(v, 4, c)
		if err != nil {
			return dst, err
		}
		dst = append(dst, '"')
		return append(appendDate(dst, d), '"'), nil
	case kTimestamp, kTimestamptz:
		us, err := readInt(v, 8, c)
		if err != nil {
			return dst, err
		}
		dst = append(dst, '"')
		return append(appendTimestamp(dst, us, c.kind == kTimestamptz, true), '"'), nil
	case kArray:
		return c.appendArrayJSON(dst, v, m, scratch)
	case kText:
		return appendJSONString(dst, v), nil
	}
	var err error
	*scratch, err = c.appendText((*scratch)[:0], v, m)
	if err != nil {
		return dst, err
	}
	return appendJSONString(dst, *scratch), nil
}

// appendFloat renders a float as PostgreSQL 12+ does: the shortest text
// that reads back exactly, in positional notation when the decimal exponent
// is in [-4, 15) for float8 ([-4, 6) for float4), else with an exponent.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, bits)
	// e is [-]d[.ddd]e±XX.
	i := len(e) - 1
	for e[i] != 'e' {
		i--
	}
	exp, _ := strconv.Atoi(string(e[i+1:]))
	limit := 15
	if bits == 32 {
		limit = 6
	}
	if exp < -4 || exp >= limit {
		return append(dst, e...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, bits)
}

// numericSign values of the binary numeric format.
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// appendNumeric renders a binary numeric (base-10000 digits) as
// PostgreSQL's numeric_out does, with exactly dscale fraction digits.
func appendNumeric(dst, v []byte, c *codec) ([]byte, error) {
	if len(v) < 8 {
		return dst, malformed(c)
	}
	ndigits := int(binary.BigEndian.Uint16(v))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	if len(v) != 8+2*ndigits {
		return dst, malformed(c)
	}
	switch sign {
	case numericNaN:
		return append(dst, "NaN"...), nil
	case numericPInf:
		return append(dst, "Infinity"...), nil
	case numericNInf:
		return append(dst, "-Infinity"...), nil
	case numericNeg:
		dst = append(dst, '-')
	case numericPos:
	default:
		return dst, malformed(c)
	}
	digit := func(i int) int {
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*i:]))
	}
	d := 0
	if weight < 0 {
		d = weight + 1
		dst = append(dst, '0')
	} else {
		for ; d <= weight; d++ {
			g := digit(d)
			if g > 9999 {
				return dst, malformed(c)
			}
			if d == 0 {
				dst = strconv.AppendInt(dst, int64(g), 10)
			} else {
				dst = append(dst, byte('0'+g/1000), byte('0'+g/100%10), byte('0'+g/10%10), byte('0'+g%10))
			}
		}
	}
	if dscale > 0 {
		dst = append(dst, '.')
		end := len(dst) + dscale
		for i := 0; i < dscale; i += 4 {
			g := digit(d)
			d++
			dst = append(dst, byte('0'+g/1000%10), byte('0'+g/100%10), byte('0'+g/10%10), byte('0'+g%10))
		}
		dst = dst[:end]
	}
	return dst, nil
}

// appendMoney renders cents as cash_out does with lc_monetary C:
// $1,234.50, -$1.50.
func appendMoney(dst []byte, cents int64) []byte {
	u := uint64(cents)
	if cents < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = append(dst, '$')
	var buf [24]byte
	whole := strconv.AppendUint(buf[:0], u/100, 10)
	for i, b := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, b)
	}
	return append(dst, '.', byte('0'+u%100/10), byte('0'+u%10))
}

const hexDigits = "0123456789abcdef"

func appendHex(dst, v []byte) []byte {
	dst = append(dst, '\\', 'x')
	return hex.AppendEncode(dst, v)
}

func appendUUID(dst, u []byte) []byte {
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

func appendPad(dst []byte, n int64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], n, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// appendYMD appends a date; a year before 1 AD is rendered as PostgreSQL
// does, "0044-03-15" and bc true (the " BC" suffix is the caller's).
func appendYMD(dst []byte, y int, mo time.Month, d int) (out []byte, bc bool) {
	if y <= 0 {
		bc = true
		y = 1 - y
	}
	dst = appendPad(dst, int64(y), 4)
	dst = append(dst, '-')
	dst = appendPad(dst, int64(mo), 2)
	dst = append(dst, '-')
	return appendPad(dst, int64(d), 2), bc
}

// appendDate renders days since 2000-01-01.
func appendDate(dst []byte, days int64) []byte {
	switch days {
	case math.MaxInt32:
		return append(dst, "infinity"...)
	case math.MinInt32:
		return append(dst, "-infinity"...)
	}
	y, mo, d := time.Unix((days+pgEpochDays)*86400, 0).UTC().Date()
	dst, bc := appendYMD(dst, y, mo, d)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendClock renders microseconds since midnight as HH:MM:SS[.ffffff].
func appendClock(dst []byte, us int64) []byte {
	sec := us / 1e6
	dst = appendPad(dst, sec/3600, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, sec/60%60, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, sec%60, 2)
	return appendMicros(dst, us%1e6)
}

// appendMicros appends a fraction of a second without trailing zeros.
func appendMicros(dst []byte, frac int64) []byte {
	if frac == 0 {
		return dst
	}
	dst = append(dst, '.')
	dst = appendPad(dst, frac, 6)
	end := len(dst)
	for dst[end-1] == '0' {
		end--
	}
	return dst[:end]
}

// appendOffset renders a UTC offset in seconds east: +02, -03:30, or in
// to_json's form +00:00.
func appendOffset(dst []byte, east int64, json bool) []byte {
	if east < 0 {
		dst = append(dst, '-')
		east = -east
	} else {
		dst = append(dst, '+')
	}
	dst = appendPad(dst, east/3600, 2)
	if m, s := east/60%60, east%60; m != 0 || s != 0 || json {
		dst = append(dst, ':')
		dst = appendPad(dst, m, 2)
		if s != 0 {
			dst = append(dst, ':')
			dst = appendPad(dst, s, 2)
		}
	}
	return dst
}

// appendTimestamp renders microseconds since 2000-01-01 00:00 (UTC for
// timestamptz) as PostgreSQL's output (json false) or to_json (json true).
func appendTimestamp(dst []byte, us int64, tz, json bool) []byte {
	switch us {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	unixUS := us + pgEpochMicros
	sec, frac := unixUS/1e6, unixUS%1e6
	if frac < 0 {
		sec--
		frac += 1e6
	}
	t := time.Unix(sec, 0).UTC()
	y, mo, d := t.Date()
	dst, bc := appendYMD(dst, y, mo, d)
	if json {
		dst = append(dst, 'T')
	} else {
		dst = append(dst, ' ')
	}
	h, mi, s := t.Clock()
	dst = appendPad(dst, int64(h), 2)
	dst = append(dst, ':')
	dst = appendPad(dst, int64(mi), 2)
	dst = append(dst, ':')
	dst = appendPad(dst, int64(s), 2)
	dst = appendMicros(dst, frac)
	if tz {
		dst = appendOffset(dst, 0, json)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendInterval renders an interval as IntervalStyle postgres does:
// "1 year 2 mons 3 days 04:05:06.7", "-1 years +2 mons".
func appendInterval(dst, v []byte, c *codec) ([]byte, error) {
	if len(v) != 16 {
		return dst, malformed(c)
	}
	us := int64(binary.BigEndian.Uint64(v))
	days := int64(int32(binary.BigEndian.Uint32(v[8:])))
	months := int64(int32(binary.BigEndian.Uint32(v[12:])))
	start := len(dst)
	before := false // the previous field was negative: PostgreSQL marks a positive one with +
	unit := func(n int64, name string) {
		if n == 0 {
			return
		}
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		if before && n > 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, ' ')
		dst = append(dst, name...)
		if n != 1 {
			dst = append(dst, 's')
		}
		before = n < 0
	}
	unit(months/12, "year")
	unit(months%12, "mon")
	unit(days, "day")
	if us != 0 || len(dst) == start {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		if us < 0 {
			dst = append(dst, '-')
			us = -us
		} else if before {
			dst = append(dst, '+')
		}
		sec := us / 1e6
		dst = appendPad(dst, sec/3600, 2)
		dst = append(dst, ':')
		dst = appendPad(dst, sec/60%60, 2)
		dst = append(dst, ':')
		dst = appendPad(dst, sec%60, 2)
		dst = appendMicros(dst, us%1e6)
	}
	return dst, nil
}

// appendInet renders inet and cidr: inet omits a full-length mask.
func appendInet(dst, v []byte, c *codec) ([]byte, error) {
	if len(v) < 4 {
		return dst, malformed(c)
	}
	family, bits, isCIDR, n := v[0], int(v[1]), v[2] != 0, int(v[3])
	addr := v[4:]
	if len(addr) != n {
		return dst, malformed(c)
	}
	var a netip.Addr
	var full int
	switch {
	case family == 2 && n == 4: // PGSQL_AF_INET
		a, full = netip.AddrFrom4([4]byte(addr)), 32
	case family == 3 && n == 16: // PGSQL_AF_INET6
		a, full = netip.AddrFrom16([16]byte(addr)), 128
	default:
		return dst, malformed(c)
	}
	dst = a.AppendTo(dst)
	if isCIDR || bits != full {
		dst = append(dst, '/')
		dst = strconv.AppendInt(dst, int64(bits), 10)
	}
	return dst, nil
}

// Range flags of the binary range format.
const (
	rangeEmpty = 0x01
	rangeLBInc = 0x02
	rangeUBInc = 0x04
	rangeLBInf = 0x08
	rangeUBInf = 0x10
)

func (c *codec) appendRange(dst, v []byte, m *pgtype.Map) ([]byte, error) {
	if len(v) < 1 {
		return dst, malformed(c)
	}
	flags := v[0]
	if flags&rangeEmpty != 0 {
		return append(dst, "empty"...), nil
	}
	if flags&rangeLBInc != 0 {
		dst = append(dst, '[')
	} else {
		dst = append(dst, '(')
	}
	rest := v[1:]
	bound := func(present bool) error {
		if !present {
			return nil
		}
		if len(rest) < 4 {
			return malformed(c)
		}
		n := int(int32(binary.BigEndian.Uint32(rest)))
		if n < 0 || len(rest) < 4+n {
			return malformed(c)
		}
		start := len(dst)
		var err error
		if dst, err = c.elem.appendText(dst, rest[4:4+n], m); err != nil {
			return err
		}
		rest = rest[4+n:]
		if needsQuote(dst[start:], "\"\\()[],") {
			dst = quoteInPlace(dst, start)
		}
		return nil
	}
	if err := bound(flags&rangeLBInf == 0); err != nil {
		return dst, err
	}
	dst = append(dst, ',')
	if err := bound(flags&rangeUBInf == 0); err != nil {
		return dst, err
	}
	if len(rest) != 0 {
		return dst, malformed(c)
	}
	if flags&rangeUBInc != 0 {
		return append(dst, ']'), nil
	}
	return append(dst, ')'), nil
}

// needsQuote reports whether an array element or range bound must be
// quoted: empty, whitespace, or one of special.
func needsQuote(s []byte, special string) bool {
	if len(s) == 0 {
		return true
	}
	for _, b := range s {
		switch b {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			return true
		}
		for i := 0; i < len(special); i++ {
			if b == special[i] {
				return true
			}
		}
	}
	return false
}

// quoteInPlace wraps dst[start:] in double quotes, escaping " and \.
func quoteInPlace(dst []byte, start int) []byte {
	n := 2
	for _, b := range dst[start:] {
		if b == '"' || b == '\\' {
			n++
		}
	}
	end := len(dst)
	dst = append(dst, make([]byte, n)...)
	w := len(dst) - 1
	dst[w] = '"'
	w--
	for r := end - 1; r >= start; r-- {
		b := dst[r]
		dst[w] = b
		w--
		if b == '"' || b == '\\' {
			dst[w] = '\\'
			w--
		}
	}
	dst[w] = '"'
	return dst
}

// array is a parsed binary array header.
type array struct {
	ndim   int
	dims   [maxDims]int32 // sizes
	lbound [maxDims]int32
	n      int    // elements
	body   []byte // the elements
}

const maxDims = 6 // PostgreSQL's MAXDIM

func parseArray(v []byte, c *codec, a *array) error {
	if len(v) < 12 {
		return malformed(c)
	}
	ndim := int(int32(binary.BigEndian.Uint32(v)))
	if ndim < 0 || ndim > maxDims || len(v) < 12+8*ndim {
		return malformed(c)
	}
	a.ndim, a.n = ndim, 1
	if ndim == 0 {
		a.n = 0
	}
	for i := 0; i < ndim; i++ {
		a.dims[i] = int32(binary.BigEndian.Uint32(v[12+8*i:]))
		a.lbound[i] = int32(binary.BigEndian.Uint32(v[16+8*i:]))
		if a.dims[i] < 0 {
			return malformed(c)
		}
		a.n *= int(a.dims[i])
	}
	a.body = v[12+8*ndim:]
	return nil
}

// next splits the next element off body; nil is NULL.
func (a *array) next(c *codec) ([]byte, error) {
	if len(a.body) < 4 {
		return nil, malformed(c)
	}
	n := int32(binary.BigEndian.Uint32(a.body))
	if n < 0 {
		a.body = a.body[4:]
		return nil, nil
	}
	if len(a.body) < 4+int(n) {
		return nil, malformed(c)
	}
	e := a.body[4 : 4+n : 4+n]
	a.body = a.body[4+n:]
	return e, nil
}

// appendArrayText renders an array as array_out does: {1,2,NULL},
// {{a,b},{c,d}}, [0:1]={x,y} for lower bounds other than 1.
func (c *codec) appendArrayText(dst, v []byte, m *pgtype.Map) ([]byte, error) {
	var a array
	if err := parseArray(v, c, &a); err != nil {
		return dst, err
	}
	if a.n == 0 {
		return append(dst, "{}"...), nil
	}
	if slices.ContainsFunc(a.lbound[:a.ndim], func(l int32) bool { return l != 1 }) {
		for j := 0; j < a.ndim; j++ {
			dst = append(dst, '[')
			dst = strconv.AppendInt(dst, int64(a.lbound[j]), 10)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, int64(a.lbound[j])+int64(a.dims[j])-1, 10)
			dst = append(dst, ']')
		}
		dst = append(dst, '=')
	}
	dst, err := c.arrayText(dst, &a, 0, m)
	if err == nil && len(a.body) != 0 {
		err = malformed(c)
	}
	return dst, err
}

func (c *codec) arrayText(dst []byte, a *array, dim int, m *pgtype.Map) ([]byte, error) {
	dst = append(dst, '{')
	for i := int32(0); i < a.dims[dim]; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dim+1 < a.ndim {
			if dst, err = c.arrayText(dst, a, dim+1, m); err != nil {
				return dst, err
			}
			continue
		}
		e, err := a.next(c)
		if err != nil {
			return dst, err
		}
		if e == nil {
			dst = append(dst, "NULL"...)
			continue
		}
		start := len(dst)
		if dst, err = c.elem.appendText(dst, e, m); err != nil {
			return dst, err
		}
		if s := dst[start:]; needsQuote(s, "\"\\{},") || isNULL(s) {
			dst = quoteInPlace(dst, start)
		}
	}
	return append(dst, '}'), nil
}

func isNULL(s []byte) bool {
	return len(s) == 4 && (s[0]|0x20) == 'n' && (s[1]|0x20) == 'u' && (s[2]|0x20) == 'l' && (s[3]|0x20) == 'l'
}

// appendArrayJSON renders an array as nested JSON arrays, as to_json does.
func (c *codec) appendArrayJSON(dst, v []byte, m *pgtype.Map, scratch *[]byte) ([]byte, error) {
	var a array
	if err := parseArray(v, c, &a); err != nil {
		return dst, err
	}
	if a.n == 0 {
		return append(dst, "[]"...), nil
	}
	dst, err := c.arrayJSON(dst, &a, 0, m, scratch)
	if err == nil && len(a.body) != 0 {
		err = malformed(c)
	}
	return dst, err
}

func (c *codec) arrayJSON(dst []byte, a *array, dim int, m *pgtype.Map, scratch *[]byte) ([]byte, error) {
	dst = append(dst, '[')
	for i := int32(0); i < a.dims[dim]; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dim+1 < a.ndim {
			if dst, err = c.arrayJSON(dst, a, dim+1, m, scratch); err != nil {
				return dst, err
			}
			continue
		}
		e, err := a.next(c)
		if err != nil {
			return dst, err
		}
		if e == nil {
			dst = append(dst, "null"...)
			continue
		}
		if dst, err = c.elem.appendJSON(dst, e, m, scratch); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func appendPgtype(dst, v []byte, c *codec, m *pgtype.Map) ([]byte, error) {
	t, ok := m.TypeForOID(c.oid)
	if !ok {
		return appendHex(dst, v), nil
	}
	val, err := t.Codec.DecodeValue(m, c.oid, pgtype.BinaryFormatCode, v)
	if err != nil {
		return dst, fmt.Errorf("%s: decode: %w", c.name, errMalformed)
	}
	out, err := m.Encode(c.oid, pgtype.TextFormatCode, val, dst)
	if err != nil {
		return dst, fmt.Errorf("%s: render as text: %w", c.name, errMalformed)
	}
	return out, nil
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
