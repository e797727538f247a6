package redact_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nopii/nopii/redact"
)

func mustPath(tb testing.TB, s string) redact.JSONPath {
	tb.Helper()
	p, err := redact.ParseJSONPath(s)
	if err != nil {
		tb.Fatalf("ParseJSONPath(%q): %v", s, err)
	}
	return p
}

// tag marks a scalar as redacted: "x" → "R(x)".
func tag(dst []byte, kind redact.JSONKind, text []byte) ([]byte, error) {
	return redact.AppendJSONString(dst, []byte("R("+string(text)+")")), nil
}

func TestParseJSONPath(t *testing.T) {
	for _, ok := range []string{"$", "$.a", "$.a.b", "$.items[*].email", "$.a[0]", "$['odd key']", `$["x\"y"]`, "$.*", "$.a[12].b", "$.ключ"} {
		if p := mustPath(t, ok); p.String() != ok {
			t.Errorf("String() = %q", p.String())
		}
	}
	for _, bad := range []string{"", "a.b", "$.", "$..a", "$[", "$[x]", "$['a'", "$.a b", "$[-1]", "$.a]", "$[1"} {
		if _, err := redact.ParseJSONPath(bad); err == nil {
			t.Errorf("ParseJSONPath(%q) accepted", bad)
		}
	}
}

func TestJSONRewrite(t *testing.T) {
	doc := `{"a": {"b": "x", "c": 1}, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`
	for _, tt := range []struct {
		name    string
		actions []redact.JSONAction
		want    string
	}{
		{"nested key", []redact.JSONAction{{Path: mustPath(t, "$.a.b"), Scalar: tag}},
			`{"a": {"b": "R(x)", "c": 1}, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"wildcard", []redact.JSONAction{{Path: mustPath(t, "$.items[*].email"), Scalar: tag}},
			`{"a": {"b": "x", "c": 1}, "items": [{"email": "R(e1)", "n": 2}, {"email": "R(e2)"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"index and number", []redact.JSONAction{{Path: mustPath(t, "$.items[0].n"), Scalar: tag}, {Path: mustPath(t, "$.items[2]"), Scalar: tag}},
			`{"a": {"b": "x", "c": 1}, "items": [{"email": "e1", "n": "R(2)"}, {"email": "e2"}, "R(3)"], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"quoted key and escapes", []redact.JSONAction{{Path: mustPath(t, "$['odd key']"), Scalar: tag}, {Path: mustPath(t, "$.escape"), Scalar: tag}},
			`{"a": {"b": "x", "c": 1}, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": "R(true)", "esc\u0061pe": "R(q\"uote)", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"null stays null", []redact.JSONAction{{Path: mustPath(t, "$.nil"), Scalar: tag}},
			`{"a": {"b": "x", "c": 1}, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"container: every scalar", []redact.JSONAction{{Path: mustPath(t, "$.obj"), Scalar: tag}},
			`{"a": {"b": "x", "c": 1}, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["R(v)", "R(4.5)", null]}}`},
		{"whole", []redact.JSONAction{{Path: mustPath(t, "$.a"), Whole: []byte("null")}, {Path: mustPath(t, "$.items"), Whole: []byte(`"gone"`)}},
			`{"a": null, "items": "gone", "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"outer path wins", []redact.JSONAction{{Path: mustPath(t, "$.a.b"), Scalar: tag}, {Path: mustPath(t, "$.a"), Whole: []byte("0")}},
			`{"a": 0, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
		{"missing path", []redact.JSONAction{{Path: mustPath(t, "$.nope.deeper"), Scalar: tag}, {Path: mustPath(t, "$.a.b[3]"), Scalar: tag}},
			doc},
		{"root", []redact.JSONAction{{Path: mustPath(t, "$"), Whole: []byte("{}")}}, `{}`},
		{"member wildcard", []redact.JSONAction{{Path: mustPath(t, "$.a.*"), Scalar: tag}},
			`{"a": {"b": "R(x)", "c": "R(1)"}, "items": [{"email": "e1", "n": 2}, {"email": "e2"}, 3], "odd key": true, "esc\u0061pe": "q\"uote", "nil": null, "obj": {"k": ["v", 4.5, null]}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := redact.NewJSONRewriter(tt.actions)
			got, err := w.Rewrite([]byte("pre:"), []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "pre:"+tt.want {
				t.Fatalf("got  %s\nwant %s", got[4:], tt.want)
			}
			if !json.Valid(got[4:]) {
				t.Fatal("output is not valid JSON")
			}
		})
	}
}

func TestJSONInvalid(t *testing.T) {
	w := redact.NewJSONRewriter([]redact.JSONAction{{Path: mustPath(t, "$.a"), Scalar: tag}})
	for _, bad := range []string{"", "{", `{"a":}`, `{"a" 1}`, `[1,]`, `{"a":1,}`, `"abc`, `tru`, `01`, `1.`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":1} x`, `[1 2]`, `{"a":"\u12"}`, strings.Repeat("[", 20000) + strings.Repeat("]", 20000)} {
		out, err := w.Rewrite([]byte("x"), []byte(bad))
		if !errors.Is(err, redact.ErrInvalidJSON) {
			t.Errorf("%q: err = %v", bad, err)
		}
		if string(out) != "x" {
			t.Errorf("%q: dst not restored", bad)
		}
		if err != nil && len(bad) > 3 && strings.Contains(err.Error(), bad) {
			t.Errorf("error holds the value: %v", err)
		}
		if json.Valid([]byte(bad)) {
			t.Errorf("test case %q is valid JSON", bad)
		}
	}
}

func TestJSONStrings(t *testing.T) {
	for _, s := range []string{"plain", `q"uote\back`, "ctl\x01\n\t\r", "ünï 名", "😀"} {
		enc := redact.AppendJSONString(nil, []byte(s))
		var back string
		if err := json.Unmarshal(enc, &back); err != nil || back != s {
			t.Errorf("AppendJSONString(%q) = %s (%v)", s, enc, err)
		}
	}
	// Escaped input reaches the scalar function unescaped, surrogate pairs
	// included.
	var seen []string
	f := func(dst []byte, _ redact.JSONKind, text []byte) ([]byte, error) {
		seen = append(seen, string(text))
		return append(dst, '0'), nil
	}
	w := redact.NewJSONRewriter([]redact.JSONAction{{Path: mustPath(t, "$[*]"), Scalar: f}})
	if _, err := w.Rewrite(nil, []byte(`["\ud83d\ude00", "a\/b\u00e9", "\ud800x"]`)); err != nil {
		t.Fatal(err)
	}
	want := []string{"😀", "a/bé", "\uFFFDx"}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("scalar %d = %q, want %q", i, seen[i], want[i])
		}
	}
}

func FuzzJSONRewrite(f *testing.F) {
	f.Add([]byte(`{"a": {"b": "x"}, "items": [{"email": "e"}]}`))
	f.Add([]byte(`[1, -2.5e3, true, null, "s\u00e9"]`))
	w := redact.NewJSONRewriter([]redact.JSONAction{
		{Path: mustPath(f, "$.a.b"), Scalar: tag},
		{Path: mustPath(f, "$.items[*].email"), Scalar: tag},
		{Path: mustPath(f, "$[1]"), Whole: []byte("null")},
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := w.Rewrite(nil, in)
		valid := json.Valid(in)
		if err != nil {
			if valid {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("invalid JSON accepted")
		}
		if !json.Valid(out) {
			t.Fatalf("output %q is not JSON", out)
		}
		// Rewriting is idempotent on the structure: the output rewrites.
		if _, err := w.Rewrite(nil, out); err != nil {
			t.Fatalf("output does not rewrite: %v", err)
		}
	})
}
