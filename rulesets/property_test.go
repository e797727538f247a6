package rulesets_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/rulesets"
)

// gen produces random binary values of one type.
type genFunc func(r *rand.Rand) []byte

var alphabet = []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .@-_éü名前😀")

func genText(r *rand.Rand) []byte {
	n := 1 + r.IntN(30)
	var b []byte
	for range n {
		b = append(b, string(alphabet[r.IntN(len(alphabet))])...)
	}
	return b
}

func genInt(size int) genFunc {
	return func(r *rand.Rand) []byte {
		v := int64(r.Uint64())
		switch size {
		case 2:
			v = int64(int16(v))
		case 4:
			v = int64(int32(v))
		}
		if r.IntN(4) == 0 {
			v %= 1000 // small values are common and the hard case for noise
		}
		return redact.AppendInt(nil, v, size)
	}
}

func genUUID(r *rand.Rand) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, r.Uint64()), r.Uint64())
}

func genDate(r *rand.Rand) []byte {
	return redact.AppendInt(nil, int64(r.IntN(80000)-40000), 4)
}

func genTimestamp(r *rand.Rand) []byte {
	return redact.AppendInt(nil, r.Int64N(1<<52)-1<<51, 8)
}

func genFloat(r *rand.Rand) []byte {
	return redact.AppendFloat(nil, (r.Float64()-0.5)*math.Pow(10, float64(r.IntN(40)-20)), 8)
}

func genNumeric(r *rand.Rand) []byte {
	var x redact.Decimal
	x.ParseText(fmt.Appendf(nil, "%d.%02d", r.IntN(2000000)-1000000, r.IntN(100)))
	return x.AppendNumeric(nil)
}

func genJSONB(r *rand.Rand) []byte {
	return fmt.Appendf([]byte{1}, `{"email": %q, "n": %d, "keep": "k"}`, genText(r), r.IntN(10000))
}

// propCase is a redacting rule on a column type with a generator.
type propCase struct {
	name  string
	col   nopii.Column
	spec  rulesets.Spec
	gen   genFunc
	keyed bool
	// varies: another key changes (nearly) every output; false for rules
	// with small output spaces, where only most outputs change.
	varies bool
}

func propCases() []propCase {
	text := column("a", builtinType("text"), -1)
	spec := func(rule string, kv ...any) rulesets.Spec {
		p := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			p[kv[i].(string)] = kv[i+1]
		}
		return rulesets.Spec{Rule: rule, Params: p}
	}
	return []propCase{
		{"redact_email/text", text, spec("redact_email"), genText, true, true},
		{"redact_email/varchar(30)", column("a", builtinType("varchar"), varcharMod(30)), spec("redact_email", "domain", "corp.test"), genText, true, true},
		{"hash/text", text, spec("hash"), genText, true, true},
		{"hash/int8", column("a", builtinType("int8"), -1), spec("hash"), genInt(8), true, true},
		{"hash/int4", column("a", builtinType("int4"), -1), spec("hash"), genInt(4), true, true},
		{"hash/int2", column("a", builtinType("int2"), -1), spec("hash"), genInt(2), true, false},
		{"hash/uuid", column("a", builtinType("uuid"), -1), spec("hash"), genUUID, true, true},
		{"hash/bytea", column("a", builtinType("bytea"), -1), spec("hash", "length", 16), genText, true, true},
		{"fake first_name/text", text, spec("fake", "kind", "first_name"), genText, true, false},
		{"fake full_name/varchar(8)", column("a", builtinType("varchar"), varcharMod(8)), spec("fake", "kind", "full_name"), genText, true, false},
		{"fake email/text", text, spec("fake", "kind", "email"), genText, true, false},
		{"fake phone/char(3)", column("a", builtinType("bpchar"), varcharMod(3)), spec("fake", "kind", "phone"), genText, true, false},
		{"fake date_of_birth/date", column("a", builtinType("date"), -1), spec("fake", "kind", "date_of_birth"), genDate, true, false},
		{"fake uuid/uuid", column("a", builtinType("uuid"), -1), spec("fake", "kind", "uuid"), genUUID, true, true},
		{"fake ipv4/inet", column("a", builtinType("inet"), -1), spec("fake", "kind", "ipv4"), genText, true, false},
		{"mask/text", text, spec("mask", "keep_last", 2), genText, false, false},
		{"random_string/text", text, spec("random_string", "length", 12), genText, true, true},
		{"random_string/char(1)", column("a", builtinType("bpchar"), varcharMod(1)), spec("random_string"), genText, true, false},
		{"shift_date/date", column("a", builtinType("date"), -1), spec("shift_date"), genDate, true, false},
		{"shift_date/timestamptz", column("a", builtinType("timestamptz"), -1), spec("shift_date", "max_days", 365), genTimestamp, true, false},
		{"noise/int8", column("a", builtinType("int8"), -1), spec("noise"), genInt(8), true, false},
		{"noise/int2", column("a", builtinType("int2"), -1), spec("noise", "percent", 1), genInt(2), true, false},
		{"noise/float8", column("a", builtinType("float8"), -1), spec("noise"), genFloat, true, false},
		{"noise/numeric(9,2)", column("a", builtinType("numeric"), numericMod(9, 2)), spec("noise"), genNumeric, true, false},
		{"json/jsonb", column("a", builtinType("jsonb"), -1), spec("json", "paths", map[string]any{
			"$.email": map[string]any{"rule": "redact_email"},
			"$.n":     map[string]any{"rule": "noise"},
		}), genJSONB, true, true},
	}
}

func mustCompile(tb testing.TB, t nopii.TableName, col nopii.Column, spec rulesets.Spec, key []byte) redact.Func {
	tb.Helper()
	f, err := rulesets.Compile(t, col, spec, key)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func run(tb testing.TB, f redact.Func, in []byte) []byte {
	tb.Helper()
	out, null, err := f(nil, in)
	if err != nil || null {
		tb.Fatalf("f(%x) = %x, %v, %v", in, out, null, err)
	}
	return out
}

// TestProperties checks, for every redacting rule, over random inputs: the
// output never equals the input; one key gives one output (also from a
// Func compiled for another column of the same type, so joins work);
// another key gives another output.
func TestProperties(t *testing.T) {
	for _, pc := range propCases() {
		t.Run(pc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(pc.name))))
			f1 := mustCompile(t, table, pc.col, pc.spec, testKey)
			otherCol := pc.col
			otherCol.Name = "b"
			f2 := mustCompile(t, nopii.TableName{Schema: "sales", Name: "order"}, otherCol, pc.spec, testKey)
			f3 := mustCompile(t, table, pc.col, pc.spec, otherKey)
			const n = 3000
			changed := 0
			for range n {
				in := pc.gen(r)
				if pc.name == "mask/text" {
					in = bytes.ReplaceAll(in, []byte("*"), []byte("+"))
					if len([]rune(string(in))) <= 2 {
						in = append(in, "xyz"...)
					}
				}
				if strings.HasPrefix(pc.name, "fake ipv4") {
					in = []byte{2, 32, 0, 4, in[0], 1, 2, 3}
				}
				out := run(t, f1, in)
				cmp := in
				if pc.col.Type.Name == "bpchar" {
					cmp = redact.TrimPad(in)
				}
				if bytes.Equal(out, cmp) {
					t.Fatalf("output equals input %x", in)
				}
				if again := run(t, f1, in); !bytes.Equal(again, out) {
					t.Fatalf("not deterministic for %x", in)
				}
				if other := run(t, f2, in); !bytes.Equal(other, out) {
					t.Fatalf("another column redacts %x differently", in)
				}
				if pc.keyed && !bytes.Equal(run(t, f3, in), out) {
					changed++
				}
			}
			switch {
			case !pc.keyed:
			case pc.varies && changed != n:
				t.Fatalf("another key changed %d of %d outputs", changed, n)
			case changed < n*3/4:
				t.Fatalf("another key changed only %d of %d outputs", changed, n)
			}
		})
	}
}

// TestInjective checks that redact_email and hash keep 100,000 distinct
// inputs distinct.
func TestInjective(t *testing.T) {
	for _, tt := range []struct {
		name string
		col  nopii.Column
		spec rulesets.Spec
		enc  func(i int) []byte
	}{
		{"redact_email", column("a", builtinType("text"), -1), rulesets.Spec{Rule: "redact_email"},
			func(i int) []byte { return fmt.Appendf(nil, "user%d@example.org", i) }},
		{"redact_email varchar(24)", column("a", builtinType("varchar"), varcharMod(24)), rulesets.Spec{Rule: "redact_email"},
			func(i int) []byte { return fmt.Appendf(nil, "user%d@example.org", i) }},
		{"hash text", column("a", builtinType("text"), -1), rulesets.Spec{Rule: "hash"},
			func(i int) []byte { return fmt.Appendf(nil, "%d", i) }},
		{"hash text length 16", column("a", builtinType("text"), -1), rulesets.Spec{Rule: "hash", Params: map[string]any{"length": 16}},
			func(i int) []byte { return fmt.Appendf(nil, "%d", i) }},
		{"hash int8", column("a", builtinType("int8"), -1), rulesets.Spec{Rule: "hash"},
			func(i int) []byte { return redact.AppendInt(nil, int64(i), 8) }},
		{"hash uuid", column("a", builtinType("uuid"), -1), rulesets.Spec{Rule: "hash"},
			func(i int) []byte { return binary.BigEndian.AppendUint64(make([]byte, 8), uint64(i)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := mustCompile(t, table, tt.col, tt.spec, testKey)
			seen := make(map[string]int, 100000)
			var buf []byte
			for i := range 100000 {
				buf, _, _ = f(buf[:0], tt.enc(i))
				if j, dup := seen[string(buf)]; dup {
					t.Fatalf("inputs %d and %d both redact to %q", j, i, buf)
				}
				seen[string(buf)] = i
			}
		})
	}
}

// TestJoinAcrossTypes checks that one value redacts alike wherever it sits:
// int4 and int8 columns, text and varchar columns, a text column and a JSON
// string.
func TestJoinAcrossTypes(t *testing.T) {
	// int4 and int8 hash 42 from one seed: the int4 output is the int8
	// output's low 31 bits.
	f4 := mustCompile(t, table, column("a", builtinType("int4"), -1), rulesets.Spec{Rule: "hash"}, testKey)
	f8 := mustCompile(t, table, column("a", builtinType("int8"), -1), rulesets.Spec{Rule: "hash"}, testKey)
	n4 := run(t, f4, redact.AppendInt(nil, 42, 4))
	n8 := run(t, f8, redact.AppendInt(nil, 42, 8))
	if binary.BigEndian.Uint32(n4) != uint32(binary.BigEndian.Uint64(n8)&0x7fffffff) {
		t.Fatalf("int4 and int8 hashes of 42 do not share their seed: %x, %x", n4, n8)
	}

	email := rulesets.Spec{Rule: "redact_email"}
	ft := mustCompile(t, table, column("a", builtinType("text"), -1), email, testKey)
	fv := mustCompile(t, table, column("a", builtinType("varchar"), varcharMod(255)), email, testKey)
	fj := mustCompile(t, table, column("a", builtinType("jsonb"), -1), rulesets.Spec{Rule: "json", Params: map[string]any{
		"paths": map[string]any{"$.contact.email": map[string]any{"rule": "redact_email"}}}}, testKey)
	in := []byte("alice@example.org")
	want := run(t, ft, in)
	if got := run(t, fv, in); !bytes.Equal(got, want) {
		t.Fatalf("varchar(255) gives %s, text %s", got, want)
	}
	got := run(t, fj, []byte("\x01{\"contact\": {\"email\": \"alice@example.org\"}}"))
	if wantJ := "\x01{\"contact\": {\"email\": \"" + string(want) + "\"}}"; string(got) != wantJ {
		t.Fatalf("json gives %q, want %q", got, wantJ)
	}

	// A date column and a JSON date string shift alike.
	fd := mustCompile(t, table, column("a", builtinType("date"), -1), rulesets.Spec{Rule: "shift_date"}, testKey)
	fjd := mustCompile(t, table, column("a", builtinType("json"), -1), rulesets.Spec{Rule: "json", Params: map[string]any{
		"paths": map[string]any{"$.born": map[string]any{"rule": "shift_date"}}}}, testKey)
	day, _ := time.Parse(time.DateOnly, "1980-05-17")
	shifted, _ := redact.ReadInt(run(t, fd, redact.AppendInt(nil, redact.TimeDate(day), 4)), 4)
	wantJD := `{"born": "` + redact.DateTime(shifted).Format(time.DateOnly) + `"}`
	if got := run(t, fjd, []byte(`{"born": "1980-05-17"}`)); string(got) != wantJD {
		t.Fatalf("json date gives %s, want %s", got, wantJD)
	}
}

// TestInjectiveCatalog: the catalog says which rules keep a column's
// distinct values distinct, for the column's type and length, as
// TestInjective measures them.
func TestInjectiveCatalog(t *testing.T) {
	text, short := column("a", builtinType("text"), -1), column("a", builtinType("varchar"), varcharMod(20))
	for _, tt := range []struct {
		name string
		col  nopii.Column
		spec rulesets.Spec
		want bool
		why  string
	}{
		{"keep", text, rulesets.Spec{Rule: "keep"}, true, "keep copies the values as they are"},
		{"redact_email", text, rulesets.Spec{Rule: "redact_email"}, true, "redact_email is injective"},
		{"redact_email varchar(40)", column("a", builtinType("varchar"), varcharMod(40)), rulesets.Spec{Rule: "redact_email"}, true, "redact_email is injective"},
		{"redact_email varchar(20)", short, rulesets.Spec{Rule: "redact_email"}, false, "redact_email keeps 28 bits of its hash in character varying(20)"},
		{"hash text", text, rulesets.Spec{Rule: "hash"}, true, "hash is injective"},
		{"hash text length 16", text, rulesets.Spec{Rule: "hash", Params: map[string]any{"length": 16}}, true, "hash is injective"},
		{"hash text length 8", text, rulesets.Spec{Rule: "hash", Params: map[string]any{"length": 8}}, false, "hash keeps 32 bits"},
		{"hash int8", column("a", builtinType("int8"), -1), rulesets.Spec{Rule: "hash"}, true, "hash is injective"},
		{"hash int4", column("a", builtinType("int4"), -1), rulesets.Spec{Rule: "hash"}, false, "hash keeps 31 bits of its hash in integer"},
		{"hash uuid", column("a", builtinType("uuid"), -1), rulesets.Spec{Rule: "hash"}, true, "hash is injective"},
		{"fake", text, rulesets.Spec{Rule: "fake", Params: map[string]any{"kind": "first_name"}}, false, "fake is not injective"},
		{"mask", text, rulesets.Spec{Rule: "mask"}, false, "mask is not injective"},
		{"replace", text, rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "x"}}, false, "replace gives every row the same value"},
		{"destroy", text, rulesets.Spec{Rule: "destroy"}, false, "destroy gives every row the same value"},
		{"random_string", text, rulesets.Spec{Rule: "random_string"}, false, "random_string is not injective"},
		{"shift_date", column("a", builtinType("date"), -1), rulesets.Spec{Rule: "shift_date"}, false, "shift_date is not injective"},
		{"noise", column("a", builtinType("int4"), -1), rulesets.Spec{Rule: "noise"}, false, "noise is not injective"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why := rulesets.Injective(tt.col, tt.spec)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("Injective = %v, %q; want %v, %q", got, why, tt.want, tt.why)
			}
		})
	}
}
