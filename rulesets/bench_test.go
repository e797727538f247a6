package rulesets_test

import (
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/rulesets"
)

// hotCase is a rule on a common type: these must not allocate per value.
type hotCase struct {
	name string
	col  nopii.Column
	spec rulesets.Spec
	in   func(tb testing.TB) []byte
}

func hotCases() []hotCase {
	text := func(s string) func(testing.TB) []byte { return func(testing.TB) []byte { return []byte(s) } }
	enc := func(typ, s string) func(testing.TB) []byte {
		return func(tb testing.TB) []byte { return encodeText(tb, builtinOIDs[typ][0], s) }
	}
	encArr := func(typ, s string) func(testing.TB) []byte {
		return func(tb testing.TB) []byte { return encodeText(tb, builtinOIDs[typ][1], s) }
	}
	kind := func(k string) rulesets.Spec { return rulesets.Spec{Rule: "fake", Params: map[string]any{"kind": k}} }
	return []hotCase{
		{"redact_email/text", column("c", builtinType("text"), -1), rulesets.Spec{Rule: "redact_email"}, text("alice.smith@example.org")},
		{"redact_email/varchar(40)", column("c", builtinType("varchar"), varcharMod(40)), rulesets.Spec{Rule: "redact_email"}, text("alice.smith@example.org")},
		{"hash/text", column("c", builtinType("text"), -1), rulesets.Spec{Rule: "hash"}, text("alice.smith@example.org")},
		{"hash/int8", column("c", builtinType("int8"), -1), rulesets.Spec{Rule: "hash"}, enc("int8", "123456789")},
		{"hash/uuid", column("c", builtinType("uuid"), -1), rulesets.Spec{Rule: "hash"}, enc("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")},
		{"fake full_name/text", column("c", builtinType("text"), -1), kind("full_name"), text("Alice Smith")},
		{"fake first_name/varchar(5)", column("c", builtinType("varchar"), varcharMod(5)), kind("first_name"), text("Alice")},
		{"fake phone/text", column("c", builtinType("text"), -1), kind("phone"), text("5551234567")},
		{"fake date_of_birth/date", column("c", builtinType("date"), -1), kind("date_of_birth"), enc("date", "1980-05-17")},
		{"fake uuid/uuid", column("c", builtinType("uuid"), -1), kind("uuid"), enc("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")},
		{"mask/text", column("c", builtinType("text"), -1), rulesets.Spec{Rule: "mask"}, text("4111 1111 1111 1111")},
		{"mask/char(20)", column("c", builtinType("bpchar"), varcharMod(20)), rulesets.Spec{Rule: "mask"}, text("123-45-6789         ")},
		{"random_string/text", column("c", builtinType("text"), -1), rulesets.Spec{Rule: "random_string"}, text("secret")},
		{"shift_date/date", column("c", builtinType("date"), -1), rulesets.Spec{Rule: "shift_date"}, enc("date", "1980-05-17")},
		{"shift_date/timestamptz", column("c", builtinType("timestamptz"), -1), rulesets.Spec{Rule: "shift_date"}, enc("timestamptz", "2024-01-31 12:34:56.789+00")},
		{"noise/int8", column("c", builtinType("int8"), -1), rulesets.Spec{Rule: "noise"}, enc("int8", "123456789")},
		{"noise/int2", column("c", builtinType("int2"), -1), rulesets.Spec{Rule: "noise"}, enc("int2", "42")},
		{"noise/float8", column("c", builtinType("float8"), -1), rulesets.Spec{Rule: "noise"}, enc("float8", "1234.5")},
		{"hash/text[]", column("c", arrayOf(builtinType("text")), -1), rulesets.Spec{Rule: "hash"}, encArr("text", "{a,NULL,b}")},
		{"destroy/text", column("c", builtinType("text"), -1), rulesets.Spec{Rule: "destroy"}, text("x")},
		{"replace/text", column("c", builtinType("text"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "n/a"}}, text("x")},
	}
}

// TestNoAllocs holds the hot path to its promise: no allocation per value
// for the text family, integers, uuid and dates (gofakeit kinds that build
// strings are the exception; the fake kinds here do not).
func TestNoAllocs(t *testing.T) {
	for _, hc := range hotCases() {
		t.Run(hc.name, func(t *testing.T) {
			f := mustCompile(t, table, hc.col, hc.spec, testKey)
			in := hc.in(t)
			dst := make([]byte, 0, 256)
			if n := testing.AllocsPerRun(200, func() {
				if _, _, err := f(dst[:0], in); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Fatalf("%v allocations per value", n)
			}
		})
	}
}

func benchmark(b *testing.B, col nopii.Column, spec rulesets.Spec, in []byte) {
	f := mustCompile(b, table, col, spec, testKey)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var err error
		if dst, _, err = f(dst[:0], in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRules(b *testing.B) {
	for _, hc := range hotCases() {
		b.Run(hc.name, func(b *testing.B) { benchmark(b, hc.col, hc.spec, hc.in(b)) })
	}
	b.Run("fake street/text", func(b *testing.B) {
		benchmark(b, column("c", builtinType("text"), -1), rulesets.Spec{Rule: "fake", Params: map[string]any{"kind": "street"}}, []byte("1 Main St"))
	})
	b.Run("noise/numeric(12,2)", func(b *testing.B) {
		benchmark(b, column("c", builtinType("numeric"), numericMod(12, 2)), rulesets.Spec{Rule: "noise"}, encodeText(b, builtinOIDs["numeric"][0], "12345.67"))
	})
	b.Run("json/jsonb", func(b *testing.B) {
		spec := rulesets.Spec{Rule: "json", Params: map[string]any{"paths": map[string]any{
			"$.email":           map[string]any{"rule": "redact_email"},
			"$.items[*].serial": map[string]any{"rule": "hash", "length": 12},
		}}}
		in := []byte("\x01{\"id\": 17, \"email\": \"alice@example.org\", \"items\": [{\"serial\": \"A1\", \"qty\": 2}, {\"serial\": \"B2\", \"qty\": 1}]}")
		benchmark(b, column("c", builtinType("jsonb"), -1), spec, in)
	})
}

// BenchmarkKeyed is the floor under every keyed rule: one HMAC-SHA256.
func BenchmarkKeyed(b *testing.B) {
	k := redact.NewKeyed(testKey)
	var d redact.Digest
	v := []byte("alice.smith@example.org")
	b.ReportAllocs()
	for b.Loop() {
		k.Sum(&d, v)
	}
}
