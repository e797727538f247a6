package rulesets_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/rulesets"
)

// colCase is a column under test with sample values in text form.
type colCase struct {
	name   string
	col    nopii.Column
	class  string   // which rules fit: see fits
	inputs []string // text forms, "NULL" for SQL NULL
	except []string // rules that fit the class but not this column's limits
	value  any      // a valid replace value
}

func colCases() []colCase {
	email := []string{"alice@example.org", "Bob", "", "Ünïcødé 名前", strings.Repeat("long ", 60), "NULL"}
	domainVarchar := &nopii.Type{OID: 90003, Schema: "public", Name: "email_address", Kind: nopii.TypeDomain,
		Base: builtinType("varchar"), BaseTypmod: varcharMod(30), NotNull: true}
	return []colCase{
		{name: "text", col: column("c", builtinType("text"), -1), class: "text", inputs: email, value: "REDACTED"},
		{name: "varchar(64)", col: column("c", builtinType("varchar"), varcharMod(64)), class: "text", inputs: []string{"alice@example.org", "x", "NULL"}, value: "REDACTED"},
		{name: "varchar(10)", col: column("c", builtinType("varchar"), varcharMod(10)), class: "text", inputs: []string{"0123456789", "ab"},
			except: []string{"redact_email"}, value: "REDACTED"},
		{name: "char(12)", col: column("c", builtinType("bpchar"), varcharMod(12)), class: "text", inputs: []string{"ab          ", "abcdefghijkl"},
			except: []string{"redact_email"}, value: "REDACTED"},
		{name: "char(1)", col: column("c", builtinType("bpchar"), varcharMod(1)), class: "text", inputs: []string{"a", "b", "x", "y", " "},
			except: []string{"redact_email", "hash", "hash:12"}, value: "R"},
		{name: "name", col: column("c", builtinType("name"), -1), class: "text", inputs: []string{"relname", strings.Repeat("n", 63)}, value: "REDACTED"},
		{name: "citext", col: column("c", citextType, -1), class: "text", inputs: []string{"Alice@Example.org"}, value: "REDACTED"},
		{name: "domain varchar(30) not null", col: column("c", domainVarchar, -1), class: "text", inputs: []string{"x@y.z"}, value: "REDACTED"},
		{name: "enum", col: column("c", moodType, -1), class: "enum", inputs: []string{"happy", "sad", "NULL"}, value: "ok"},
		{name: "int2", col: column("c", builtinType("int2"), -1), class: "int", inputs: []string{"0", "42", "-32768", "32767", "NULL"}, value: 7},
		{name: "int4", col: column("c", builtinType("int4"), -1), class: "int", inputs: []string{"42", "-7", "2147483647"}, value: 7},
		{name: "int8", col: column("c", builtinType("int8"), -1), class: "int", inputs: []string{"42", "-9223372036854775808", "9223372036854775807"}, value: int64(7)},
		{name: "float4", col: column("c", builtinType("float4"), -1), class: "float", inputs: []string{"1.5", "-3.25e10", "0", "NaN"}, value: 1.5},
		{name: "float8", col: column("c", builtinType("float8"), -1), class: "float", inputs: []string{"123.456", "-1e300", "0", "Infinity"}, value: 1.5},
		{name: "numeric", col: column("c", builtinType("numeric"), -1), class: "numeric", inputs: []string{"123.45", "-0.001", "0", "NaN", "100000000000000000000", "Infinity"}, value: "12.5"},
		{name: "numeric(7,2)", col: column("c", builtinType("numeric"), numericMod(7, 2)), class: "numeric", inputs: []string{"12345.67", "-99999.99", "99999.99", "0.00", "0.01"}, value: "12.5"},
		{name: "numeric(5,-2)", col: column("c", builtinType("numeric"), numericMod(5, -2)), class: "numeric", inputs: []string{"1200", "9999900", "0"}, value: 1200},
		{name: "bool", col: column("c", builtinType("bool"), -1), class: "bool", inputs: []string{"true", "false"}, value: true},
		{name: "date", col: column("c", builtinType("date"), -1), class: "date", inputs: []string{"2024-01-31", "1970-01-01", "infinity", "-infinity"}, value: "2020-02-02"},
		{name: "timestamp", col: column("c", builtinType("timestamp"), -1), class: "date", inputs: []string{"2024-01-31 12:34:56.789", "-infinity"}, value: "2020-02-02 10:00:00"},
		{name: "timestamptz", col: column("c", builtinType("timestamptz"), -1), class: "date", inputs: []string{"2024-01-31 12:34:56.789+02", "infinity"}, value: "2020-02-02T10:00:00Z"},
		{name: "uuid", col: column("c", builtinType("uuid"), -1), class: "uuid", inputs: []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"}, value: "00000000-0000-0000-0000-000000000001"},
		{name: "json", col: column("c", builtinType("json"), -1), class: "json", inputs: []string{`{"email": "a@b.com", "n": 5, "tags": ["x", 1]}`, `{"n": 2.50}`}, value: map[string]any{"redacted": true}},
		{name: "jsonb", col: column("c", builtinType("jsonb"), -1), class: "json", inputs: []string{`{"email": "a@b.com", "n": 5, "tags": ["x"]}`, `[]`}, value: `{"redacted": true}`},
		{name: "bytea", col: column("c", builtinType("bytea"), -1), class: "bytea", inputs: []string{`\x0102030405`, `\x`}, value: `\x00ff`},
		{name: "inet", col: column("c", builtinType("inet"), -1), class: "inet", inputs: []string{"10.1.2.3", "2001:db8::1/64"}, value: "192.0.2.1"},
		{name: "cidr", col: column("c", builtinType("cidr"), -1), class: "inet", inputs: []string{"10.0.0.0/8"}, value: "192.0.2.0/24"},
		{name: "interval", col: column("c", builtinType("interval"), -1), class: "other", inputs: []string{"1 day"}, value: "02:00:00"},
		{name: "text[]", col: column("c", arrayOf(builtinType("text")), -1), class: "text", inputs: []string{"{alice@example.org,NULL,bob}", "{{a,b},{c,d}}", "NULL"}, value: "REDACTED"},
		{name: "varchar(20)[]", col: column("c", arrayOf(builtinType("varchar")), varcharMod(20)), class: "text", inputs: []string{"{alice@example.org,b}"},
			except: []string{"redact_email"}, value: "REDACTED"},
		{name: "int4[]", col: column("c", arrayOf(builtinType("int4")), -1), class: "int", inputs: []string{"{1,2,NULL}", "{{1,2},{3,4}}"}, value: 7},
		{name: "date[]", col: column("c", arrayOf(builtinType("date")), -1), class: "date", inputs: []string{"{2024-01-31,NULL}"}, value: "2020-02-02"},
		{name: "uuid[]", col: column("c", arrayOf(builtinType("uuid")), -1), class: "uuid", inputs: []string{"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"}, value: "00000000-0000-0000-0000-000000000001"},
		{name: "mood[]", col: column("c", &nopii.Type{OID: 90004, Schema: "public", Name: "_mood", Kind: nopii.TypeArray, Elem: moodType}, -1), class: "enum", inputs: []string{"{happy,NULL}"}, value: "sad"},
	}
}

// ruleCase is a rule spec under test.
type ruleCase struct {
	id   string
	spec rulesets.Spec
}

func ruleCases(value any) []ruleCase {
	p := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	return []ruleCase{
		{"redact_email", rulesets.Spec{Rule: "redact_email"}},
		{"fake:first_name", rulesets.Spec{Rule: "fake", Params: p("kind", "first_name")}},
		{"fake:full_name", rulesets.Spec{Rule: "fake", Params: p("kind", "full_name")}},
		{"fake:email", rulesets.Spec{Rule: "fake", Params: p("kind", "email")}},
		{"fake:iban", rulesets.Spec{Rule: "fake", Params: p("kind", "iban")}},
		{"fake:date_of_birth", rulesets.Spec{Rule: "fake", Params: p("kind", "date_of_birth")}},
		{"fake:uuid", rulesets.Spec{Rule: "fake", Params: p("kind", "uuid")}},
		{"fake:ipv4", rulesets.Spec{Rule: "fake", Params: p("kind", "ipv4")}},
		{"fake:ipv6", rulesets.Spec{Rule: "fake", Params: p("kind", "ipv6")}},
		{"hash", rulesets.Spec{Rule: "hash"}},
		{"hash:12", rulesets.Spec{Rule: "hash", Params: p("length", 12)}},
		{"mask", rulesets.Spec{Rule: "mask"}},
		{"mask:custom", rulesets.Spec{Rule: "mask", Params: p("keep_first", 1, "keep_last", 2, "char", "#")}},
		{"random_string", rulesets.Spec{Rule: "random_string"}},
		{"random_string:8", rulesets.Spec{Rule: "random_string", Params: p("length", 8)}},
		{"shift_date", rulesets.Spec{Rule: "shift_date"}},
		{"noise", rulesets.Spec{Rule: "noise"}},
		{"json", rulesets.Spec{Rule: "json", Params: p("paths", map[string]any{
			"$.email":   map[string]any{"rule": "redact_email"},
			"$.n":       map[string]any{"rule": "noise", "percent": 50},
			"$.tags[*]": map[string]any{"rule": "hash", "length": 10},
		})}},
		{"destroy", rulesets.Spec{Rule: "destroy"}},
		{"replace", rulesets.Spec{Rule: "replace", Params: p("value", value)}},
	}
}

// fits is the rule × type matrix of SPEC §2.
var fits = map[string][]string{
	"text": {"redact_email", "fake:first_name", "fake:full_name", "fake:email", "fake:iban", "fake:date_of_birth", "fake:uuid", "fake:ipv4", "fake:ipv6",
		"hash", "hash:12", "mask", "mask:custom", "random_string", "random_string:8", "destroy", "replace"},
	"enum":    {"destroy", "replace"},
	"int":     {"hash", "noise", "destroy", "replace"},
	"float":   {"noise", "destroy", "replace"},
	"numeric": {"noise", "destroy", "replace"},
	"bool":    {"destroy", "replace"},
	"date":    {"fake:date_of_birth", "shift_date", "destroy", "replace"},
	"uuid":    {"hash", "fake:uuid", "destroy", "replace"},
	"json":    {"json", "destroy", "replace"},
	"bytea":   {"hash", "hash:12", "destroy", "replace"},
	"inet":    {"fake:ipv4", "fake:ipv6", "destroy", "replace"},
	"other":   {"destroy", "replace"},
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// mayEqual lists the documented cases where a redacting rule's output may
// equal its input: values with nothing to hide (empty strings and arrays
// under mask, no matching json path) and values the rule leaves alone
// (infinities, NaN).
func mayEqual(rule, in string) bool {
	switch {
	case in == "{}" || in == "[]":
		return true
	case rule == "mask" || rule == "mask:custom":
		return strings.TrimSpace(in) == "" || strings.Trim(in, "*# ") == "" || utf8.RuneCountInString(strings.TrimRight(in, " ")) <= 1
	case rule == "shift_date":
		return strings.Contains(in, "infinity")
	case rule == "noise":
		return in == "NaN" || strings.Contains(in, "Infinity")
	case rule == "json":
		return !strings.Contains(in, "email") && !strings.Contains(in, "tags")
	}
	return false
}

func TestCompileMatrix(t *testing.T) {
	for _, cc := range colCases() {
		for _, rc := range ruleCases(cc.value) {
			t.Run(cc.name+"/"+rc.id, func(t *testing.T) {
				want := contains(fits[cc.class], rc.id) && !contains(cc.except, rc.id)
				f, err := rulesets.Compile(table, cc.col, rc.spec, testKey)
				if !want {
					var re *rulesets.RuleError
					if err == nil || !errors.As(err, &re) {
						t.Fatalf("Compile = %v, want a *RuleError", err)
					}
					if !strings.HasPrefix(err.Error(), "public.customer.c: rule "+rc.spec.Rule+": ") {
						t.Fatalf("error %q does not name table, column and rule", err)
					}
					if !errors.Is(err, rulesets.ErrTypeMismatch) {
						t.Fatalf("error %q is not ErrTypeMismatch", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				checkFunc(t, cc, rc, f)
			})
		}
	}
}

// checkFunc runs f over the column's sample values and checks its outputs.
func checkFunc(t *testing.T, cc colCase, rc ruleCase, f redact.Func) {
	t.Helper()
	oid := wireOID(cc.col.Type)
	maxChars := cc.col.MaxChars()
	if cc.col.Type.Kind == nopii.TypeDomain {
		maxChars = int(cc.col.Type.BaseTypmod - 4)
	}
	prefix := []byte("prefix")
	for _, text := range cc.inputs {
		var in []byte
		if text != "NULL" {
			in = encodeText(t, oid, text)
		}
		out, null, err := f(append([]byte(nil), prefix...), in)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("%q: dst prefix lost", text)
		}
		val := out[len(prefix):]
		// NULL stays NULL unless the rule is replace; destroy outputs NULL
		// on nullable columns.
		switch {
		case rc.id == "destroy" && !columnNotNull(cc.col):
			if !null {
				t.Fatalf("%q: destroy on a nullable column gave %x", text, val)
			}
			continue
		case rc.id == "destroy":
			if null {
				t.Fatalf("%q: destroy on a NOT NULL column gave NULL", text)
			}
		case in == nil && (rc.id != "replace" || cc.col.Type.Kind == nopii.TypeArray):
			if !null {
				t.Fatalf("NULL became %x", val)
			}
			continue
		case null:
			t.Fatalf("%q: output is NULL", text)
		}
		v := decodeBinary(t, oid, val)
		checkLimits(t, text, v, maxChars, cc.col.Type.Underlying().Name == "name")
		if rc.id != "replace" && bytes.Equal(val, in) && !mayEqual(rc.id, text) {
			t.Fatalf("%q: output equals the input", text)
		}
		again, _, _ := f(nil, in)
		if !bytes.Equal(again, val) {
			t.Fatalf("%q: not deterministic", text)
		}
	}
}

func columnNotNull(c nopii.Column) bool {
	nn := c.NotNull
	for t := c.Type; t.Kind == nopii.TypeDomain; t = t.Base {
		nn = nn || t.NotNull
	}
	return nn
}

// checkLimits checks text outputs, or array elements, against char(n),
// varchar(n) and name limits.
func checkLimits(t *testing.T, in string, v any, maxChars int, name bool) {
	t.Helper()
	switch x := v.(type) {
	case string:
		if maxChars > 0 && utf8.RuneCountInString(x) > maxChars {
			t.Fatalf("%q: output %q exceeds %d characters", in, x, maxChars)
		}
		if name && len(x) > 63 {
			t.Fatalf("%q: output exceeds a name's 63 bytes", in)
		}
		if !utf8.ValidString(x) || strings.IndexByte(x, 0) >= 0 {
			t.Fatalf("%q: output is not valid text", in)
		}
	case []any:
		for _, e := range x {
			checkLimits(t, in, e, maxChars, name)
		}
	}
}

func TestKeep(t *testing.T) {
	for _, cc := range colCases() {
		f, err := rulesets.Compile(table, cc.col, rulesets.Spec{Rule: "keep"}, nil)
		if f != nil || err != nil {
			t.Fatalf("%s: keep = %v, %v; want nil, nil", cc.name, f, err)
		}
	}
}

func TestDestroyNotNull(t *testing.T) {
	for _, tt := range []struct {
		col  nopii.Column
		want string // text form of the empty value
	}{
		{column("c", builtinType("text"), -1), ""},
		{column("c", builtinType("varchar"), varcharMod(5)), ""},
		{column("c", builtinType("int2"), -1), "0"},
		{column("c", builtinType("int4"), -1), "0"},
		{column("c", builtinType("int8"), -1), "0"},
		{column("c", builtinType("float8"), -1), "0"},
		{column("c", builtinType("numeric"), numericMod(7, 2)), "0.00"},
		{column("c", builtinType("bool"), -1), "false"},
		{column("c", builtinType("date"), -1), "1970-01-01"},
		{column("c", builtinType("timestamp"), -1), "1970-01-01 00:00:00"},
		{column("c", builtinType("timestamptz"), -1), "1970-01-01 00:00:00Z"},
		{column("c", builtinType("uuid"), -1), "00000000-0000-0000-0000-000000000000"},
		{column("c", builtinType("json"), -1), "{}"},
		{column("c", builtinType("jsonb"), -1), "{}"},
		{column("c", builtinType("bytea"), -1), `\x`},
		{column("c", builtinType("inet"), -1), "0.0.0.0"},
		{column("c", builtinType("interval"), -1), "00:00:00"},
		{column("c", arrayOf(builtinType("text")), -1), "{}"},
		{column("c", moodType, -1), "sad"},
		{column("c", &nopii.Type{Name: "d", Kind: nopii.TypeDomain, Base: builtinType("int4"), NotNull: true}, -1), "0"},
	} {
		col := tt.col
		if col.Type.Kind != nopii.TypeDomain {
			col = notNull(col)
		}
		t.Run(col.TypeSQL, func(t *testing.T) {
			f, err := rulesets.Compile(table, col, rulesets.Spec{Rule: "destroy"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			oid := wireOID(col.Type)
			for _, in := range [][]byte{nil, encodeText(t, oid, tt.want)} {
				out, null, err := f(nil, in)
				if err != nil || null {
					t.Fatalf("destroy = %x, %v, %v", out, null, err)
				}
				decodeBinary(t, oid, out)
				if want := encodeText(t, oid, tt.want); !sameValue(t, oid, out, want) && col.Type.Underlying().Kind != nopii.TypeArray {
					t.Fatalf("destroy = %x, want %x", out, want)
				}
			}
		})
	}
}

func TestReplace(t *testing.T) {
	for _, tt := range []struct {
		col   nopii.Column
		value any
		want  string
	}{
		{column("c", builtinType("text"), -1), "n/a", "n/a"},
		{column("c", builtinType("bpchar"), varcharMod(3)), "ab ", "ab"},
		{column("c", builtinType("int4"), -1), 42, "42"},
		{column("c", builtinType("int8"), -1), "  -5 ", "-5"},
		{column("c", builtinType("numeric"), numericMod(5, 2)), "1.005", "1.01"},
		{column("c", builtinType("numeric"), -1), 2.5, "2.5"},
		{column("c", builtinType("bool"), -1), "yes", "true"},
		{column("c", builtinType("date"), -1), "2020-02-29", "2020-02-29"},
		{column("c", builtinType("date"), -1), "infinity", "infinity"},
		{column("c", builtinType("timestamp"), -1), "2020-02-29 10:11:12+05", "2020-02-29 10:11:12"},
		{column("c", builtinType("timestamptz"), -1), "2020-02-29 10:11:12+05", "2020-02-29 05:11:12Z"},
		{column("c", builtinType("uuid"), -1), "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{column("c", builtinType("jsonb"), -1), []any{1, "two"}, `[1, "two"]`},
		{column("c", builtinType("json"), -1), `{"a": [1]}`, `{"a": [1]}`},
		{column("c", builtinType("point"), -1), "(1,2)", "(1,2)"},
		{column("c", moodType, -1), "happy", "happy"},
		{column("c", arrayOf(builtinType("int4")), -1), []any{1, nil, 3}, "{1,NULL,3}"},
	} {
		t.Run(tt.col.TypeSQL, func(t *testing.T) {
			f, err := rulesets.Compile(table, tt.col, rulesets.Spec{Rule: "replace", Params: map[string]any{"value": tt.value}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			oid := wireOID(tt.col.Type)
			out, null, err := f(nil, nil) // replace applies to NULL too
			if err != nil || null {
				t.Fatalf("replace(NULL) = %x, %v, %v", out, null, err)
			}
			want := encodeText(t, oid, tt.want)
			if oid == builtinOIDs["jsonb"][0] || oid == builtinOIDs["json"][0] {
				decodeBinary(t, oid, out)
			} else if !sameValue(t, oid, out, want) {
				t.Fatalf("replace = %x, want %x", out, want)
			}
		})
	}
	// A scalar replaces each element of an array; NULL elements and NULL
	// arrays stay NULL.
	f, err := rulesets.Compile(table, column("c", arrayOf(builtinType("text")), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := f(nil, encodeText(t, builtinOIDs["text"][1], "{a,NULL,b}"))
	if want := encodeText(t, builtinOIDs["text"][1], "{x,NULL,x}"); !bytes.Equal(out, want) {
		t.Fatalf("element-wise replace = %x, want %x", out, want)
	}
	if _, null, _ := f(nil, nil); !null {
		t.Fatal("NULL array replaced")
	}
	// value: null is NULL.
	f, _ = rulesets.Compile(table, column("c", builtinType("text"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": nil}}, nil)
	if _, null, _ := f(nil, []byte("x")); !null {
		t.Fatal("replace with null value is not NULL")
	}
}
