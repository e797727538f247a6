package lake

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgType resolves a type OID the way the source does, enough for codecs.
func pgType(t *testing.T, conn *pgx.Conn, oid uint32) *nopii.Type {
	t.Helper()
	var schema, name, typtype, category string
	var elem, base uint32
	var baseMod int32
	err := conn.QueryRow(context.Background(), `SELECT n.nspname, t.typname, t.typtype::text, t.typcategory::text, t.typelem, t.typbasetype, t.typtypmod
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`, oid).
		Scan(&schema, &name, &typtype, &category, &elem, &base, &baseMod)
	if err != nil {
		t.Fatalf("type %d: %v", oid, err)
	}
	ty := &nopii.Type{OID: oid, Schema: schema, Name: name}
	switch {
	case category == "A" && elem != 0:
		ty.Kind, ty.Elem = nopii.TypeArray, pgType(t, conn, elem)
	case typtype == "d":
		ty.Kind, ty.Base, ty.BaseTypmod = nopii.TypeDomain, pgType(t, conn, base), baseMod
	case typtype == "e":
		ty.Kind = nopii.TypeEnum
	case typtype == "c":
		ty.Kind = nopii.TypeComposite
	case typtype == "r":
		ty.Kind = nopii.TypeRange
	}
	return ty
}

// valueExprs are SQL expressions whose binary values the codecs must render
// exactly as PostgreSQL's output functions and to_json do.
var valueExprs = []string{
	"true", "false",
	"(-32768)::int2", "32767::int2", "(-2147483648)::int4", "9223372036854775807::int8", "(-9223372036854775808)::int8",
	"1.5::float4", "0.1::float4", "123456::float4", "1234567::float4", "1e-5::float4", "'NaN'::float4", "'-Infinity'::float4", "3.4028235e38::float4",
	"0.1::float8", "3.141592653589793::float8", "1e15::float8", "123456789012345::float8", "1e-4::float8", "1e-5::float8", "'Infinity'::float8", "'-0'::float8", "1e300::float8", "5e-324::float8",
	"0::numeric", "12.50::numeric(12,2)", "-0.001::numeric", "1e20::numeric", "123456789.000012345::numeric", "'NaN'::numeric", "'Infinity'::numeric", "'-Infinity'::numeric",
	"-123456789012345678901234.56789::numeric(30,5)", "0.00001234::numeric", "10000::numeric", "-10000.0001::numeric", "1.10::numeric(5,2)",
	"'12.34'::money2", "'-12.34'::money", "'92233720368547758.07'::money",
	"'hello'::text", "''::text", "'a,b \"c\" \\ d'::varchar(30)", "'ab'::char(5)", "'nm'::name", "'x'::\"char\"", "'Zoë 🎉'::text", "E'line\\nbreak\\ttab\\u0001'::text",
	"'\\xdeadbeef'::bytea", "''::bytea",
	"'2024-02-29'::date", "'0044-03-15 BC'::date", "'infinity'::date", "'-infinity'::date", "'10000-01-01'::date",
	"'12:34:56.789'::time", "'00:00'::time", "'24:00'::time", "'12:34:56.5+02'::timetz", "'12:00-03:30'::timetz",
	"'2024-01-02 03:04:05.123456'::timestamp", "'2024-01-02 03:04:05'::timestamp", "'1999-12-31 23:59:59.999999'::timestamp", "'0044-03-15 12:00 BC'::timestamp", "'infinity'::timestamp",
	"'2024-01-02 03:04:05.1+02'::timestamptz", "'1969-07-20 20:17:40Z'::timestamptz", "'-infinity'::timestamptz", "'0001-01-01 00:00Z'::timestamptz",
	"'1 year 2 mons 3 days 04:05:06.7'::interval", "'-1 day'::interval", "'0'::interval", "'-1 year +2 mons'::interval", "'1 day -00:00:01'::interval", "'-1 day +1 hour'::interval", "'100 hours'::interval",
	"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
	"'{\"b\": 1, \"a\": [1, 2.5, null, \"x\"]}'::json", "'{\"b\": 1, \"a\": [1, 2.5, null, \"x\"]}'::jsonb", "'\"str\"'::jsonb", "'null'::jsonb",
	"'192.168.1.5/24'::inet", "'10.0.0.1'::inet", "'10.0.0.0/8'::cidr", "'::1'::inet", "'2001:db8::/32'::cidr", "'::ffff:1.2.3.4'::inet",
	"'[1,5)'::int4range", "'empty'::int4range", "'(,10]'::int8range", "'[1.5,2.5]'::numrange", "'[2024-01-01,2024-02-01)'::daterange",
	"'[2024-01-01 10:00,2024-01-01 11:00)'::tsrange", "'[2024-01-01 10:00Z,)'::tstzrange",
	"'{1,2,NULL}'::int4[]", "'{}'::int4[]", "'{{1,2},{3,4}}'::int8[]", "'[0:1]={7,8}'::int4[]",
	"ARRAY['a', '', 'NULL', 'null', 'x y', 'q\"q', 'b\\s', '{c}', 'a,b', NULL]::text[]",
	"ARRAY['2024-01-02 03:04:05Z'::timestamptz, NULL]", "ARRAY['{\"a\": 1}'::jsonb]", "ARRAY[1.5::numeric(4,2), NULL]", "ARRAY['\\x01'::bytea]",
	"ARRAY['sad', 'happy']::mood[]", "'happy'::mood", "5::posint", "ARRAY[1.5::float8, 'NaN']", "ARRAY[true, false]", "ARRAY['[1,2)'::int4range]",
	"B'1011'::bit(4)", "B'10'::varbit", "point(1.5,2)", "'08:00:2b:01:02:03'::macaddr", "'a fat cat'::tsvector", "12::oid", "'<a/>'::xml",
	"'(1,2),(3,4)'::box",
}

// mustConn connects to a fresh database with the session settings the
// codecs render for, and the user types the expressions use.
func mustConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.MustDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, s := range []string{
		"SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, MDY'", "SET IntervalStyle = 'postgres'", "SET extra_float_digits = 1", "SET lc_monetary = 'C'",
		"CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
		"CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)",
		"CREATE DOMAIN money2 AS numeric(8,2)",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return conn
}

// TestValuesAgainstPostgres renders binary values from a real server and
// compares them with the server's own text output and to_json.
func TestValuesAgainstPostgres(t *testing.T) {
	ctx := context.Background()
	conn := mustConn(t)
	m := pgtype.NewMap()
	for _, e := range valueExprs {
		rows, err := conn.Query(ctx, "SELECT "+e+", ("+e+"), to_json("+e+")::text", pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.TextFormatCode, pgx.TextFormatCode})
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if !rows.Next() {
			t.Fatalf("%s: no row: %v", e, rows.Err())
		}
		fd := rows.FieldDescriptions()[0]
		raw := rows.RawValues()
		bin, text, js := append([]byte(nil), raw[0]...), string(raw[1]), string(raw[2])
		rows.Close()
		c := compileColumn(nopii.Column{Name: "c", Type: pgType(t, conn, fd.DataTypeOID), Typmod: fd.TypeModifier})
		if c.kind == kRaw {
			t.Errorf("%s: no codec renders type %d", e, fd.DataTypeOID)
		}
		got, err := c.appendText(nil, bin, m)
		if err != nil {
			t.Errorf("%s: text: %v", e, err)
		} else if string(got) != text {
			t.Errorf("%s: text = %q, PostgreSQL prints %q", e, got, text)
		}
		var scratch []byte
		gotJS, err := c.appendJSON(nil, bin, m, &scratch)
		if err != nil {
			t.Errorf("%s: json: %v", e, err)
			continue
		}
		if !json.Valid(gotJS) {
			t.Errorf("%s: json %q is not valid JSON", e, gotJS)
		}
		if string(gotJS) != js {
			t.Errorf("%s: json = %s, to_json gives %s", e, gotJS, js)
		}
	}
}

// TestMalformedValues feeds truncated and corrupt binary values to every
// codec: an error that names the type, never a panic, never the value.
func TestMalformedValues(t *testing.T) {
	ctx := context.Background()
	conn := mustConn(t)
	m := pgtype.NewMap()
	for _, e := range valueExprs {
		var bin []byte
		rows, err := conn.Query(ctx, "SELECT "+e, pgx.QueryResultFormats{pgx.BinaryFormatCode})
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		rows.Next()
		fd := rows.FieldDescriptions()[0]
		bin = append(bin, rows.RawValues()[0]...)
		rows.Close()
		c := compileColumn(nopii.Column{Name: "c", Type: pgType(t, conn, fd.DataTypeOID), Typmod: fd.TypeModifier})
		for cut := 0; cut < len(bin); cut++ {
			var scratch []byte
			// No panic is the assertion; a shorter value may still be valid
			// (text, bytea), so the error is not required.
			c.appendText(nil, bin[:cut], m)
			c.appendJSON(nil, bin[:cut], m, &scratch)
			parquetValue(nil, c, bin[:cut], m)
		}
	}
	for _, k := range []kind{kBool, kInt2, kInt4, kInt8, kFloat4, kFloat8, kNumeric, kDate, kTimestamp, kTimestamptz, kUUID, kInterval, kInet} {
		c := &codec{kind: k, name: "sometype", scale: -1}
		_, err := c.appendText(nil, []byte{1, 2, 3}, m)
		if err == nil || err.Error() != "sometype: malformed binary value" {
			t.Errorf("kind %d: error %v, want one naming the type only", k, err)
		}
	}
}
