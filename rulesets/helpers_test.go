package rulesets_test

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

var (
	testKey  = []byte("test key: not a secret")
	otherKey = []byte("another key")
	table    = nopii.TableName{Schema: "public", Name: "customer"}
)

// builtinOIDs are the OIDs of the built-in types the tests use, and of
// their array types.
var builtinOIDs = map[string][2]uint32{
	"text":        {pgtype.TextOID, pgtype.TextArrayOID},
	"varchar":     {pgtype.VarcharOID, pgtype.VarcharArrayOID},
	"bpchar":      {pgtype.BPCharOID, pgtype.BPCharArrayOID},
	"name":        {pgtype.NameOID, pgtype.NameArrayOID},
	"int2":        {pgtype.Int2OID, pgtype.Int2ArrayOID},
	"int4":        {pgtype.Int4OID, pgtype.Int4ArrayOID},
	"int8":        {pgtype.Int8OID, pgtype.Int8ArrayOID},
	"float4":      {pgtype.Float4OID, pgtype.Float4ArrayOID},
	"float8":      {pgtype.Float8OID, pgtype.Float8ArrayOID},
	"numeric":     {pgtype.NumericOID, pgtype.NumericArrayOID},
	"bool":        {pgtype.BoolOID, pgtype.BoolArrayOID},
	"date":        {pgtype.DateOID, pgtype.DateArrayOID},
	"timestamp":   {pgtype.TimestampOID, pgtype.TimestampArrayOID},
	"timestamptz": {pgtype.TimestamptzOID, pgtype.TimestamptzArrayOID},
	"uuid":        {pgtype.UUIDOID, pgtype.UUIDArrayOID},
	"json":        {pgtype.JSONOID, pgtype.JSONArrayOID},
	"jsonb":       {pgtype.JSONBOID, pgtype.JSONBArrayOID},
	"bytea":       {pgtype.ByteaOID, pgtype.ByteaArrayOID},
	"inet":        {pgtype.InetOID, pgtype.InetArrayOID},
	"cidr":        {pgtype.CIDROID, pgtype.CIDRArrayOID},
	"interval":    {pgtype.IntervalOID, pgtype.IntervalArrayOID},
	"point":       {pgtype.PointOID, pgtype.PointArrayOID},
	"time":        {pgtype.TimeOID, pgtype.TimeArrayOID},
}

func builtinType(name string) *nopii.Type {
	return &nopii.Type{OID: builtinOIDs[name][0], Schema: "pg_catalog", Name: name, Kind: nopii.TypeBase}
}

func arrayOf(elem *nopii.Type) *nopii.Type {
	return &nopii.Type{OID: builtinOIDs[elem.Name][1], Schema: elem.Schema, Name: "_" + elem.Name, Kind: nopii.TypeArray, Elem: elem}
}

var moodType = &nopii.Type{OID: 90001, Schema: "public", Name: "mood", Kind: nopii.TypeEnum, Labels: []string{"sad", "ok", "happy"}}

var citextType = &nopii.Type{OID: 90002, Schema: "public", Name: "citext", Kind: nopii.TypeBase, Extension: "citext"}

// varcharMod is the typmod of varchar(n) and char(n).
func varcharMod(n int) int32 { return int32(n + 4) }

// numericMod is the typmod of numeric(p, s).
func numericMod(p, s int) int32 { return int32(p<<16|(s&0x7ff)) + 4 }

func column(name string, t *nopii.Type, typmod int32) nopii.Column {
	return nopii.Column{Name: name, Type: t, Typmod: typmod, TypeSQL: sqlName(t, typmod)}
}

func notNull(c nopii.Column) nopii.Column {
	c.NotNull = true
	return c
}

func sqlName(t *nopii.Type, typmod int32) string {
	if t.Kind == nopii.TypeArray {
		return sqlName(t.Elem, typmod) + "[]"
	}
	switch t.Name {
	case "int4":
		return "integer"
	case "varchar":
		if typmod >= 4 {
			return "character varying(" + itoa(int(typmod-4)) + ")"
		}
		return "character varying"
	case "bpchar":
		return "character(" + itoa(int(typmod-4)) + ")"
	}
	return t.Name
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// wireOID is the OID pgx decodes a column's values with: user types are
// read as their wire format (enums and citext are text).
func wireOID(t *nopii.Type) uint32 {
	t = t.Underlying()
	switch {
	case t.Kind == nopii.TypeArray:
		e := t.Elem.Underlying()
		if e.Kind == nopii.TypeEnum || e.Name == "citext" {
			return pgtype.TextArrayOID
		}
		return builtinOIDs[e.Name][1]
	case t.Kind == nopii.TypeEnum || t.Name == "citext":
		return pgtype.TextOID
	}
	return builtinOIDs[t.Name][0]
}

// encodeText encodes the text form of a value of type oid in binary.
func encodeText(tb testing.TB, oid uint32, text string) []byte {
	tb.Helper()
	// pgx cannot encode infinite dates and timestamps it parsed from text.
	switch {
	case oid == pgtype.DateOID && text == "infinity":
		return []byte{0x7f, 0xff, 0xff, 0xff}
	case oid == pgtype.DateOID && text == "-infinity":
		return []byte{0x80, 0, 0, 0}
	case (oid == pgtype.TimestampOID || oid == pgtype.TimestamptzOID) && text == "infinity":
		return []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	case (oid == pgtype.TimestampOID || oid == pgtype.TimestamptzOID) && text == "-infinity":
		return []byte{0x80, 0, 0, 0, 0, 0, 0, 0}
	}
	m := pgtype.NewMap()
	typ, ok := m.TypeForOID(oid)
	if !ok {
		tb.Fatalf("no type for OID %d", oid)
	}
	v, err := typ.Codec.DecodeValue(m, oid, pgtype.TextFormatCode, []byte(text))
	if err != nil {
		tb.Fatalf("decode %q as %s: %v", text, typ.Name, err)
	}
	b, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
	if err != nil {
		tb.Fatalf("encode %q as %s: %v", text, typ.Name, err)
	}
	return b
}

// decodeBinary decodes a binary value with pgx, failing the test when pgx
// rejects it.
func decodeBinary(tb testing.TB, oid uint32, b []byte) any {
	tb.Helper()
	m := pgtype.NewMap()
	typ, ok := m.TypeForOID(oid)
	if !ok {
		tb.Fatalf("no type for OID %d", oid)
	}
	v, err := typ.Codec.DecodeValue(m, oid, pgtype.BinaryFormatCode, b)
	if err != nil {
		tb.Fatalf("pgx rejects %s value %x: %v", typ.Name, b, err)
	}
	return v
}

// sameValue reports whether two binary values of type oid are the same
// value (numeric allows different digit layouts).
func sameValue(tb testing.TB, oid uint32, a, b []byte) bool {
	tb.Helper()
	if oid == pgtype.NumericOID {
		var x, y redact.Decimal
		if x.ReadNumeric(a) != nil || y.ReadNumeric(b) != nil {
			return false
		}
		return x.Kind == y.Kind && x.Scale == y.Scale && x.Coef.Cmp(&y.Coef) == 0
	}
	return bytes.Equal(a, b)
}
