package rulesets_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/rulesets"
)

func TestCompileErrors(t *testing.T) {
	text := column("email", builtinType("text"), -1)
	paths := func(p map[string]any) rulesets.Spec {
		return rulesets.Spec{Rule: "json", Params: map[string]any{"paths": p}}
	}
	for _, tt := range []struct {
		name string
		col  nopii.Column
		spec rulesets.Spec
		key  []byte
		is   error  // errors.Is target, if any
		want string // substring of the message
	}{
		{"redact_email on integer", column("age", builtinType("int4"), -1), rulesets.Spec{Rule: "redact_email"}, testKey, rulesets.ErrTypeMismatch,
			"public.customer.age: rule redact_email: needs a text column, got integer"},
		{"varchar(5) too short for redact_email", column("email", builtinType("varchar"), varcharMod(5)), rulesets.Spec{Rule: "redact_email"}, testKey, rulesets.ErrTypeMismatch,
			"character varying(5) cannot hold u + 8 hex characters + @example.com (21 characters)"},
		{"varchar(20) with a long domain", column("email", builtinType("varchar"), varcharMod(20)), rulesets.Spec{Rule: "redact_email", Params: map[string]any{"domain": "example.com"}}, testKey, rulesets.ErrTypeMismatch,
			"cannot hold"},
		{"hash on char(4)", column("c", builtinType("bpchar"), varcharMod(4)), rulesets.Spec{Rule: "hash"}, testKey, rulesets.ErrTypeMismatch, "cannot hold 8 hex characters"},
		{"hash length on uuid", column("c", builtinType("uuid"), -1), rulesets.Spec{Rule: "hash", Params: map[string]any{"length": 8}}, testKey, rulesets.ErrTypeMismatch, "param length applies to text and bytea"},
		{"hash length too long for bytea", column("c", builtinType("bytea"), -1), rulesets.Spec{Rule: "hash", Params: map[string]any{"length": 40}}, testKey, rulesets.ErrTypeMismatch, "exceeds the 32 bytes"},
		{"mask on enum", column("m", moodType, -1), rulesets.Spec{Rule: "mask"}, nil, rulesets.ErrTypeMismatch, "needs a text column, got mood (an enum"},
		{"mask with multi-byte char on name", column("n", builtinType("name"), -1), rulesets.Spec{Rule: "mask", Params: map[string]any{"char": "█"}}, nil, rulesets.ErrTypeMismatch, "must be ASCII"},
		{"shift_date on text", text, rulesets.Spec{Rule: "shift_date"}, testKey, rulesets.ErrTypeMismatch, "needs a date, timestamp or timestamptz column"},
		{"noise on text", text, rulesets.Spec{Rule: "noise"}, testKey, rulesets.ErrTypeMismatch, "needs an integer, numeric"},
		{"json on text", text, paths(map[string]any{"$.a": map[string]any{"rule": "hash"}}), testKey, rulesets.ErrTypeMismatch, "needs a json or jsonb column"},
		{"fake on integer", column("c", builtinType("int4"), -1), rulesets.Spec{Rule: "fake", Params: map[string]any{"kind": "first_name"}}, testKey, rulesets.ErrTypeMismatch, "needs a text, date, timestamp, uuid or inet column"},
		{"fake kind that does not fit", column("c", builtinType("date"), -1), rulesets.Spec{Rule: "fake", Params: map[string]any{"kind": "first_name"}}, testKey, rulesets.ErrTypeMismatch,
			"fake kind first_name does not fit a date column (kinds that do: date_of_birth)"},
		{"unknown fake kind", text, rulesets.Spec{Rule: "fake", Params: map[string]any{"kind": "pokemon"}}, testKey, nil, `unknown fake kind "pokemon"`},
		{"destroy on NOT NULL point", notNull(column("p", builtinType("point"), -1)), rulesets.Spec{Rule: "destroy"}, nil, rulesets.ErrTypeMismatch, "no empty value for the type"},
		{"destroy on NOT NULL enum without labels", notNull(column("m", &nopii.Type{Name: "e", Kind: nopii.TypeEnum}, -1)), rulesets.Spec{Rule: "destroy"}, nil, rulesets.ErrTypeMismatch, "no labels"},
		{"replace int4 with text", column("c", builtinType("int4"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "abc"}}, nil, rulesets.ErrTypeMismatch, "value is not a valid integer"},
		{"replace int2 out of range", column("c", builtinType("int2"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": 70000}}, nil, rulesets.ErrTypeMismatch, "value out of range"},
		{"replace varchar(3) too long", column("c", builtinType("varchar"), varcharMod(3)), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "toolong"}}, nil, rulesets.ErrTypeMismatch, "does not fit character varying(3)"},
		{"replace enum with a non-label", column("m", moodType, -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "angry"}}, nil, rulesets.ErrTypeMismatch, "not a label of enum mood (labels: sad, ok, happy)"},
		{"replace date with garbage", column("d", builtinType("date"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "yesterday"}}, nil, rulesets.ErrTypeMismatch, "not a valid date"},
		{"replace numeric(3,1) overflow", column("n", builtinType("numeric"), numericMod(3, 1)), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": 123.4}}, nil, rulesets.ErrTypeMismatch, "does not fit"},
		{"replace uuid with garbage", column("u", builtinType("uuid"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "xyz"}}, nil, rulesets.ErrTypeMismatch, "not a valid uuid"},
		{"replace jsonb with invalid JSON", column("j", builtinType("jsonb"), -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "{bad"}}, nil, nil, "not valid JSON"},
		{"replace NOT NULL with null", notNull(text), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": nil}}, nil, rulesets.ErrTypeMismatch, "NOT NULL"},
		{"replace composite", column("c", &nopii.Type{Schema: "public", Name: "addr", Kind: nopii.TypeComposite}, -1), rulesets.Spec{Rule: "replace", Params: map[string]any{"value": "(1)"}}, nil, rulesets.ErrTypeMismatch, "does not support type addr"},
		{"replace with a list on a scalar", text, rulesets.Spec{Rule: "replace", Params: map[string]any{"value": []any{"a"}}}, nil, nil, "want a scalar"},
		{"bad json path", column("j", builtinType("jsonb"), -1), paths(map[string]any{"$.a[": map[string]any{"rule": "hash"}}), testKey, nil, `param paths["$.a["]: json path`},
		{"json nested rule that does not fit", column("j", builtinType("jsonb"), -1), paths(map[string]any{"$.a": map[string]any{"rule": "hash", "length": 100}}), testKey, nil, "json path $.a: rule hash: length 100 exceeds"},
		{"keyed rule without key", text, rulesets.Spec{Rule: "hash"}, nil, rulesets.ErrNoKey, "rule needs hmac_key"},
		{"json with keyed path without key", column("j", builtinType("jsonb"), -1), paths(map[string]any{"$.a": map[string]any{"rule": "hash"}}), nil, rulesets.ErrNoKey, "hmac_key"},
		{"unknown rule", text, rulesets.Spec{Rule: "scramble"}, testKey, rulesets.ErrUnknownRule, `unknown rule "scramble" (valid: destroy, fake, hash, json, keep, mask, noise, random_string, redact_email, replace, shift_date)`},
		{"column without type", nopii.Column{Name: "x"}, rulesets.Spec{Rule: "destroy"}, nil, nopii.ErrUnsupportedType, "no type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := rulesets.Compile(table, tt.col, tt.spec, tt.key)
			if err == nil || f != nil {
				t.Fatalf("Compile = %v, %v; want an error", f, err)
			}
			var re *rulesets.RuleError
			if !errors.As(err, &re) || re.Table != "public.customer" || re.Column != tt.col.Name || re.Rule != tt.spec.Rule {
				t.Fatalf("error %#v is not a RuleError for the column", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
		})
	}
	// Without a key, rules that need none still compile.
	for _, rule := range []string{"destroy", "mask", "keep"} {
		if _, err := rulesets.Compile(table, text, rulesets.Spec{Rule: rule}, nil); err != nil {
			t.Fatalf("%s without key: %v", rule, err)
		}
	}
	if _, err := rulesets.Compile(table, column("j", builtinType("json"), -1), paths(map[string]any{"$.a": map[string]any{"rule": "destroy"}}), nil); err != nil {
		t.Fatalf("json with only destroy paths needs no key: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rule   string
		params map[string]any
		param  string   // ParamName(), "" for errors that are not about a param
		path   []string // the full param path for nested errors
		want   string
	}{
		{"unknown rule", "scramble", nil, "", nil, "unknown rule \"scramble\" (valid: destroy, fake, hash"},
		{"unknown param", "hash", map[string]any{"lenght": 8}, "lenght", nil, "unknown param for rule hash (valid: length)"},
		{"param on rule without params", "destroy", map[string]any{"x": 1}, "x", nil, "(valid: none)"},
		{"wrong type", "fake", map[string]any{"kind": 5}, "kind", nil, "want a string, got a number"},
		{"unknown kind", "fake", map[string]any{"kind": "pokemon"}, "kind", nil, "unknown fake kind"},
		{"missing kind", "fake", nil, "kind", nil, "required (one of "},
		{"length not an integer", "random_string", map[string]any{"length": 1.5}, "length", nil, "want an integer"},
		{"length zero", "random_string", map[string]any{"length": 0}, "length", nil, "want an integer in [1,"},
		{"hash length too short", "hash", map[string]any{"length": 4}, "length", nil, "at least 8"},
		{"negative keep_last", "mask", map[string]any{"keep_last": -1}, "keep_last", nil, "want an integer in [0,"},
		{"mask char too long", "mask", map[string]any{"char": "**"}, "char", nil, "single character"},
		{"domain with @", "redact_email", map[string]any{"domain": "a@b"}, "domain", nil, "domain name"},
		{"percent zero", "noise", map[string]any{"percent": 0}, "percent", nil, "(0, 100]"},
		{"percent as string", "noise", map[string]any{"percent": "10%"}, "percent", nil, "want a number, got a string"},
		{"max_days zero", "shift_date", map[string]any{"max_days": 0}, "max_days", nil, "want an integer in [1,"},
		{"replace without value", "replace", nil, "value", nil, "required"},
		{"replace with a function", "replace", map[string]any{"value": func() {}}, "value", nil, "want a scalar, list or mapping"},
		{"json without paths", "json", nil, "paths", nil, "required"},
		{"json paths not a mapping", "json", map[string]any{"paths": []any{"$.a"}}, "paths", nil, "want a mapping of JSON path to rule, got a list"},
		{"json bad path", "json", map[string]any{"paths": map[string]any{"a.b": map[string]any{"rule": "hash"}}}, "paths", []string{"paths", "a.b"}, "must start with $"},
		{"json path without rule", "json", map[string]any{"paths": map[string]any{"$.a": map[string]any{"length": 8}}}, "paths", []string{"paths", "$.a", "rule"}, "required"},
		{"json nested unknown rule", "json", map[string]any{"paths": map[string]any{"$.a": map[string]any{"rule": "nope"}}}, "paths", []string{"paths", "$.a", "rule"}, "unknown rule"},
		{"json nested bad param", "json", map[string]any{"paths": map[string]any{"$.a": map[string]any{"rule": "fake", "kind": 1}}}, "paths", []string{"paths", "$.a", "kind"}, `param paths["$.a"].kind: want a string`},
		{"json nested json", "json", map[string]any{"paths": map[string]any{"$.a": map[string]any{"rule": "json"}}}, "paths", []string{"paths", "$.a", "rule"}, "do not nest"},
		{"json no paths", "json", map[string]any{"paths": map[string]any{}}, "paths", nil, "no paths"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := rulesets.Check(tt.rule, tt.params)
			if err == nil {
				t.Fatal("Check accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
			var pn interface{ ParamName() string }
			if tt.param == "" {
				if errors.As(err, &pn) {
					t.Fatalf("error %q claims param %q", err, pn.ParamName())
				}
				if !errors.Is(err, rulesets.ErrUnknownRule) {
					t.Fatalf("error %q is not ErrUnknownRule", err)
				}
				return
			}
			if !errors.As(err, &pn) || pn.ParamName() != tt.param {
				t.Fatalf("error %q: ParamName is not %q", err, tt.param)
			}
			if tt.path != nil {
				var pe *rulesets.ParamError
				if !errors.As(err, &pe) || !slices.Equal(pe.Path, tt.path) {
					t.Fatalf("error %q: path %v, want %v", err, pe.Path, tt.path)
				}
			}
		})
	}
	// Valid specs pass, with a rule key in params ignored.
	for _, ok := range []struct {
		rule   string
		params map[string]any
	}{
		{"redact_email", map[string]any{"rule": "redact_email", "domain": "corp.example"}},
		{"fake", map[string]any{"kind": "iban"}},
		{"hash", map[string]any{"length": 16}},
		{"mask", map[string]any{"keep_first": 1, "keep_last": 0, "char": "•"}},
		{"replace", map[string]any{"value": nil}},
		{"noise", map[string]any{"percent": 2.5}},
		{"shift_date", map[string]any{"max_days": int64(10)}},
		{"random_string", map[string]any{"length": float64(8)}},
		{"json", map[string]any{"paths": map[any]any{"$.items[*].email": map[string]any{"rule": "redact_email"}, "$['odd key']": map[string]any{"rule": "keep"}}}},
		{"keep", nil},
	} {
		if err := rulesets.Check(ok.rule, ok.params); err != nil {
			t.Errorf("Check(%s, %v): %v", ok.rule, ok.params, err)
		}
	}
}

func TestCatalog(t *testing.T) {
	want := []string{"destroy", "fake", "hash", "json", "keep", "mask", "noise", "random_string", "redact_email", "replace", "shift_date"}
	if got := rulesets.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v", got)
	}
	for _, n := range want {
		keyless := n == "keep" || n == "destroy" || n == "replace" || n == "mask"
		if rulesets.NeedsKey(n) == keyless {
			t.Errorf("NeedsKey(%s) = %v", n, !keyless)
		}
	}
	destroyOnly := rulesets.Spec{Rule: "json", Params: map[string]any{"paths": map[string]any{"$.a": map[string]any{"rule": "destroy"}}}}
	hashed := rulesets.Spec{Rule: "json", Params: map[string]any{"paths": map[string]any{"$.a": map[string]any{"rule": "hash"}}}}
	if destroyOnly.NeedsKey() || !hashed.NeedsKey() || !(rulesets.Spec{Rule: "fake"}).NeedsKey() {
		t.Fatal("Spec.NeedsKey looks at the wrong rules")
	}
}
