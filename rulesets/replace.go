package rulesets

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

// compileDestroy outputs NULL, or for NOT NULL columns the type's empty
// value.
func compileDestroy(c *target) (redact.Func, error) {
	if !c.notNull {
		return redact.Const(nil), nil
	}
	if c.array {
		return redact.Const(redact.AppendEmptyArray(nil, c.elemOID)), nil
	}
	v, err := emptyValue(c)
	if err != nil {
		return nil, err
	}
	return redact.Const(v), nil
}

// emptyValue is what destroy writes into a NOT NULL column: ”, 0, false,
// 1970-01-01, the nil uuid, {}, the first enum label…
func emptyValue(c *target) ([]byte, error) {
	switch c.class {
	case cText, cBytea:
		return []byte{}, nil
	case cEnum:
		if len(c.typ.Labels) == 0 {
			return nil, mismatchf("enum %s has no labels to destroy a NOT NULL value with", c.what())
		}
		return []byte(c.typ.Labels[0]), nil
	case cInt2, cInt4, cInt8:
		return make([]byte, c.class.intSize()), nil
	case cFloat4:
		return make([]byte, 4), nil
	case cFloat8:
		return make([]byte, 8), nil
	case cNumeric:
		x := redact.Decimal{Scale: max(c.numScale, 0)}
		return x.AppendNumeric(nil), nil
	case cBool:
		return []byte{0}, nil
	case cDate:
		return redact.AppendInt(nil, int64(redact.EpochDate), 4), nil
	case cTimestamp, cTimestamptz:
		return redact.AppendInt(nil, redact.EpochTimestamp, 8), nil
	case cUUID:
		return make([]byte, redact.UUIDLen), nil
	case cJSON:
		return []byte("{}"), nil
	case cJSONB:
		return []byte{redact.JSONBVersion, '{', '}'}, nil
	case cInet:
		return redact.AppendInet(nil, redact.Inet{Family: redact.InetFamilyV4, Bits: 32, Addr: make([]byte, 4)}), nil
	case cCidr:
		return redact.AppendInet(nil, redact.Inet{Family: redact.InetFamilyV4, CIDR: true, Addr: make([]byte, 4)}), nil
	}
	if builtin(c) {
		switch c.typ.Name {
		case "time", "money":
			return make([]byte, 8), nil
		case "timetz":
			return make([]byte, 12), nil
		case "interval":
			return make([]byte, 16), nil
		}
	}
	return nil, mismatchf("destroy on NOT NULL column of type %s: no empty value for the type (use replace)", c.what())
}

func builtin(c *target) bool { return c.typ.Schema == "pg_catalog" || c.typ.Schema == "" }

// compileReplace outputs the constant, cast to the column type, for every
// row, NULL included. On array columns a list replaces the whole array and
// a scalar replaces each non-NULL element.
func compileReplace(c *target, p params) (redact.Func, error) {
	if p.value == nil {
		if c.notNull {
			return nil, mismatchf("value null for a NOT NULL column")
		}
		return redact.Const(nil), nil
	}
	if c.array {
		if list, ok := p.value.([]any); ok {
			elems := make([][]byte, len(list))
			for i, v := range list {
				if v == nil {
					continue
				}
				b, err := encodeConst(c, v)
				if err != nil {
					return nil, fmt.Errorf("value element %d: %w", i, err)
				}
				elems[i] = b
			}
			return redact.Const(redact.AppendArray(nil, c.elemOID, elems)), nil
		}
		b, err := encodeConst(c, p.value)
		if err != nil {
			return nil, err
		}
		return redact.ArrayOf(redact.Const(b)), nil
	}
	b, err := encodeConst(c, p.value)
	if err != nil {
		return nil, err
	}
	return redact.Const(b), nil
}

// constText renders a YAML scalar as the text PostgreSQL would cast.
func constText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return "", fmt.Errorf("value: want a scalar, got %s", typeName(v))
}

// normalizeJSON turns map[any]any from YAML into map[string]any so that
// encoding/json accepts it.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeJSON(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalizeJSON(e)
		}
		return out
	}
	return v
}

// encodeConst casts a replace value to the column's (element) type and
// encodes it in binary.
func encodeConst(c *target, v any) ([]byte, error) {
	if c.class == cJSON || c.class == cJSONB {
		var text []byte
		if s, ok := v.(string); ok {
			// A string is JSON text, as in '…'::jsonb.
			if _, err := redact.NewJSONRewriter(nil).Rewrite(nil, []byte(s)); err != nil {
				return nil, fmt.Errorf("value is not valid JSON: %w", err)
			}
			text = []byte(s)
		} else {
			var err error
			if text, err = json.Marshal(normalizeJSON(v)); err != nil {
				return nil, fmt.Errorf("value: %w", err)
			}
		}
		if c.class == cJSONB {
			return append([]byte{redact.JSONBVersion}, text...), nil
		}
		return text, nil
	}
	s, err := constText(v)
	if err != nil {
		return nil, err
	}
	bad := func(err error) error {
		if err == nil {
			return mismatchf("value is not a valid %s", c.what())
		}
		return mismatchf("value is not a valid %s: %v", c.what(), err)
	}
	switch c.class {
	case cText:
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return nil, bad(errors.New("not UTF-8 text"))
		}
		if c.bpchar {
			s = strings.TrimRight(s, " ")
		}
		if (c.maxChars > 0 && utf8.RuneCountInString(s) > c.maxChars) || (c.maxBytes > 0 && len(s) > c.maxBytes) {
			return nil, mismatchf("value does not fit %s", c.what())
		}
		return []byte(s), nil
	case cEnum:
		if !slices.Contains(c.typ.Labels, s) {
			return nil, mismatchf("value is not a label of enum %s (labels: %s)", c.what(), strings.Join(c.typ.Labels, ", "))
		}
		return []byte(s), nil
	case cInt2, cInt4, cInt8:
		size := c.class.intSize()
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 8*size)
		if err != nil {
			return nil, bad(errors.Unwrap(err))
		}
		return redact.AppendInt(nil, n, size), nil
	case cFloat4, cFloat8:
		size := 4
		if c.class == cFloat8 {
			size = 8
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 8*size)
		if err != nil {
			return nil, bad(errors.Unwrap(err))
		}
		return redact.AppendFloat(nil, f, size), nil
	case cNumeric:
		var x redact.Decimal
		if err := x.ParseText([]byte(s)); err != nil {
			return nil, bad(err)
		}
		if c.numPrec > 0 {
			if x.Kind != redact.NumericFinite && x.Kind != redact.NumericNaN {
				return nil, mismatchf("value infinity does not fit %s", c.what())
			}
			x.Round(c.numScale)
			if x.CoefDigits() > c.numPrec-c.numScale+x.Scale {
				return nil, mismatchf("value does not fit %s", c.what())
			}
		}
		return x.AppendNumeric(nil), nil
	case cBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "t", "true", "y", "yes", "on", "1":
			return []byte{1}, nil
		case "f", "false", "n", "no", "off", "0":
			return []byte{0}, nil
		}
		return nil, bad(nil)
	case cDate, cTimestamp, cTimestamptz:
		return encodeTimeConst(c, s)
	case cUUID:
		h := strings.NewReplacer("-", "", "{", "", "}", "").Replace(strings.TrimSpace(s))
		u, err := hex.DecodeString(h)
		if err != nil || len(u) != redact.UUIDLen {
			return nil, bad(nil)
		}
		return u, nil
	}
	if !builtin(c) || c.typ.Kind != nopii.TypeBase {
		return nil, mismatchf("replace does not support type %s", c.what())
	}
	m := pgtype.NewMap()
	t, ok := m.TypeForName(c.typ.Name)
	if !ok {
		return nil, mismatchf("replace does not support type %s", c.what())
	}
	val, err := t.Codec.DecodeValue(m, t.OID, pgtype.TextFormatCode, []byte(s))
	if err != nil {
		return nil, bad(err)
	}
	b, err := m.Encode(t.OID, pgtype.BinaryFormatCode, val, nil)
	if err != nil || b == nil {
		return nil, bad(err)
	}
	return b, nil
}

func encodeTimeConst(c *target, s string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "infinity", "+infinity":
		if c.class == cDate {
			return redact.AppendInt(nil, redact.DateInfinity, 4), nil
		}
		return redact.AppendInt(nil, redact.TimestampInfinity, 8), nil
	case "-infinity":
		if c.class == cDate {
			return redact.AppendInt(nil, redact.DateNegInfinity, 4), nil
		}
		return redact.AppendInt(nil, redact.TimestampNegInfinity, 8), nil
	}
	t, _, err := redact.ParseTimeText([]byte(s))
	if err != nil {
		return nil, mismatchf("value is not a valid %s: want ISO 8601 such as 2024-01-31 or 2024-01-31 12:00:00+00", c.what())
	}
	switch c.class {
	case cDate:
		d := redact.TimeDate(t)
		if !redact.DateInRange(d) {
			return nil, mismatchf("value is out of range for %s", c.what())
		}
		return redact.AppendInt(nil, d, 4), nil
	case cTimestamp:
		// timestamp ignores a zone in its input, as PostgreSQL does.
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		t = time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
	}
	us := redact.TimeTimestamp(t)
	if !redact.TimestampInRange(us) {
		return nil, mismatchf("value is out of range for %s", c.what())
	}
	return redact.AppendInt(nil, us, 8), nil
}
