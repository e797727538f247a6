package rulesets

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nopii/nopii/internal/didyoumean"
	"github.com/nopii/nopii/redact"
)

// Spec is a column's rule as the configuration gives it: the rule name and
// its parameters, decoded from YAML (string, int, float64, bool, []any,
// map[string]any).
type Spec struct {
	Rule   string
	Params map[string]any
}

// Rule names.
const (
	RuleRedactEmail  = "redact_email"
	RuleFake         = "fake"
	RuleHash         = "hash"
	RuleMask         = "mask"
	RuleReplace      = "replace"
	RuleDestroy      = "destroy"
	RuleRandomString = "random_string"
	RuleShiftDate    = "shift_date"
	RuleNoise        = "noise"
	RuleJSON         = "json"
	RuleKeep         = "keep"
)

// ruleInfo is one catalog entry: whether the rule needs hmac_key, the
// params it takes, and whether it keeps distinct values distinct.
type ruleInfo struct {
	keyed  bool
	params []string
	// injective: distinct inputs give distinct outputs (keep: the
	// identity; redact_email and hash: 64 bits of HMAC and more, where the
	// column leaves room for them: Injective). The others are not in
	// general: fakes, masks, shifted dates and noise collide, replace and
	// destroy give one value.
	injective bool
}

var catalog = map[string]ruleInfo{
	RuleRedactEmail:  {true, []string{"domain"}, true},
	RuleFake:         {true, []string{"kind"}, false},
	RuleHash:         {true, []string{"length"}, true},
	RuleMask:         {false, []string{"char", "keep_first", "keep_last"}, false},
	RuleReplace:      {false, []string{"value"}, false},
	RuleDestroy:      {false, nil, false},
	RuleRandomString: {true, []string{"length"}, false},
	RuleShiftDate:    {true, []string{"max_days"}, false},
	RuleNoise:        {true, []string{"percent"}, false},
	RuleJSON:         {true, []string{"paths"}, false},
	RuleKeep:         {false, nil, true},
}

// Names returns the rule names, sorted.
func Names() []string {
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NeedsKey reports whether rule derives its output from hmac_key: false
// for keep, destroy, replace and mask. It is true for json, whose paths may
// hold keyed rules; Spec.NeedsKey looks inside.
func NeedsKey(rule string) bool { return catalog[rule].keyed }

// NeedsKey reports whether the spec needs hmac_key, looking into the nested
// rules of a json spec.
func (s Spec) NeedsKey() bool {
	if s.Rule != RuleJSON {
		return NeedsKey(s.Rule)
	}
	p, err := decode(s.Rule, s.Params)
	if err != nil {
		return true
	}
	for _, ps := range p.paths {
		if ps.spec.NeedsKey() {
			return true
		}
	}
	return false
}

// Errors callers may test for with errors.Is.
var (
	// ErrUnknownRule reports a rule name that is not in the catalog.
	ErrUnknownRule = errors.New("unknown rule")
	// ErrNoKey reports a keyed rule compiled without hmac_key.
	ErrNoKey = errors.New("rule needs hmac_key")
	// ErrTypeMismatch reports a rule that cannot produce values of the
	// column's type, or that do not fit its limits.
	ErrTypeMismatch = errors.New("rule does not fit the column")
)

// ParamError reports a bad rule parameter: unknown, missing, of the wrong
// type or out of range.
type ParamError struct {
	Rule  string
	Param string   // the top-level parameter: kind, paths …
	Path  []string // for nested json rules, the full path: paths, $.a.b, kind
	Err   error
}

// ParamName returns the parameter at fault.
func (e *ParamError) ParamName() string { return e.Param }

func (e *ParamError) Error() string {
	name := e.Param
	if len(e.Path) > 1 {
		var b strings.Builder
		b.WriteString(e.Path[0])
		for _, p := range e.Path[1:] {
			if strings.HasPrefix(p, "$") {
				fmt.Fprintf(&b, "[%q]", p)
			} else {
				b.WriteString("." + p)
			}
		}
		name = b.String()
	}
	return fmt.Sprintf("param %s: %v", name, e.Err)
}

func (e *ParamError) Unwrap() error { return e.Err }

// RuleError reports a rule that does not compile for a column. The message
// reads "public.customer.age: rule redact_email: needs a text column, got
// integer"; it never holds a row value.
type RuleError struct {
	Table  string
	Column string
	Rule   string
	Err    error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("%s.%s: rule %s: %v", e.Table, e.Column, e.Rule, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// Check validates a rule and its params at configuration time: the rule
// must exist, every param must be known and of the right type and range,
// and a json rule's paths and nested rules must be valid. Errors about a
// param are *ParamError (they implement ParamName() string). A "rule" key
// in params is ignored, so callers may pass the column's whole mapping.
func Check(rule string, params map[string]any) error {
	_, err := decode(rule, params)
	return err
}

// params are a rule's parameters, decoded and checked.
type params struct {
	domain    string
	kind      string
	length    int // 0: unset
	keepFirst int
	keepLast  int
	char      rune
	value     any
	maxDays   int
	percent   float64
	paths     []pathSpec
}

type pathSpec struct {
	path   redact.JSONPath
	spec   Spec
	params params
}

// meant is "; did you mean "x"?" for the valid name closest to name, or "".
func meant(name string, valid []string) string {
	if s := didyoumean.Closest(name, valid); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

func decode(rule string, raw map[string]any) (params, error) {
	p := params{domain: "example.com", keepLast: 4, char: '*', maxDays: 30, percent: 10}
	info, ok := catalog[rule]
	if !ok {
		return p, fmt.Errorf("%w %q (valid: %s)%s", ErrUnknownRule, rule, strings.Join(Names(), ", "), meant(rule, Names()))
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	perr := func(name string, err error) error {
		return &ParamError{Rule: rule, Param: name, Path: []string{name}, Err: err}
	}
	for _, k := range keys {
		if k == "rule" {
			continue
		}
		if !slices.Contains(info.params, k) {
			valid := "none"
			if len(info.params) > 0 {
				valid = strings.Join(info.params, ", ")
			}
			return p, perr(k, fmt.Errorf("unknown param for rule %s (valid: %s)%s", rule, valid, meant(k, info.params)))
		}
		v := raw[k]
		var err error
		switch k {
		case "domain":
			p.domain, err = asString(v)
			if err == nil {
				err = checkDomain(p.domain)
			}
		case "kind":
			p.kind, err = asString(v)
			if err == nil {
				if _, err = redact.NewFaker(p.kind); err != nil {
					err = fmt.Errorf("%w%s", err, meant(p.kind, redact.FakeKinds()))
				}
			}
		case "length":
			p.length, err = asInt(v, 1, 1<<20)
		case "keep_first":
			p.keepFirst, err = asInt(v, 0, 1<<20)
		case "keep_last":
			p.keepLast, err = asInt(v, 0, 1<<20)
		case "char":
			var s string
			if s, err = asString(v); err == nil {
				if r, size := utf8.DecodeRuneInString(s); size == 0 || size != len(s) || r == utf8.RuneError || r == 0 {
					err = errors.New("want a single character")
				} else {
					p.char = r
				}
			}
		case "value":
			p.value, err = v, checkValue(v)
		case "max_days":
			p.maxDays, err = asInt(v, 1, 1000000)
		case "percent":
			p.percent, err = asFloat(v)
			if err == nil && !(p.percent > 0 && p.percent <= 100) {
				err = errors.New("want a number in (0, 100]")
			}
		case "paths":
			p.paths, err = decodePaths(rule, v)
			if err != nil {
				return p, err
			}
		}
		if err != nil {
			return p, perr(k, err)
		}
	}
	switch {
	case rule == RuleFake && p.kind == "":
		return p, perr("kind", fmt.Errorf("required (one of %s)", strings.Join(redact.FakeKinds(), ", ")))
	case rule == RuleReplace && !hasKey(raw, "value"):
		return p, perr("value", errors.New("required"))
	case rule == RuleJSON && !hasKey(raw, "paths"):
		return p, perr("paths", errors.New(`required: a mapping of JSON path to rule, e.g. {"$.email": {rule: redact_email}}`))
	case rule == RuleHash && p.length != 0 && p.length < minHashHex:
		return p, perr("length", fmt.Errorf("want at least %d, fewer would collide", minHashHex))
	}
	return p, nil
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

func decodePaths(rule string, v any) ([]pathSpec, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, &ParamError{Rule: rule, Param: "paths", Path: []string{"paths"},
			Err: fmt.Errorf("want a mapping of JSON path to rule, got %s", typeName(v))}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []pathSpec
	for _, k := range keys {
		nerr := func(sub []string, err error) error {
			return &ParamError{Rule: rule, Param: "paths", Path: append([]string{"paths", k}, sub...), Err: err}
		}
		path, err := redact.ParseJSONPath(k)
		if err != nil {
			return nil, nerr(nil, err)
		}
		nm, ok := asMap(m[k])
		if !ok {
			return nil, nerr(nil, fmt.Errorf("want a mapping such as {rule: hash}, got %s", typeName(m[k])))
		}
		name, ok := nm["rule"].(string)
		if !ok {
			return nil, nerr([]string{"rule"}, errors.New("required: the rule to apply at the path"))
		}
		if name == RuleJSON {
			return nil, nerr([]string{"rule"}, errors.New("json rules do not nest; list the inner paths instead"))
		}
		np, err := decode(name, nm)
		if err != nil {
			var pe *ParamError
			if errors.As(err, &pe) {
				return nil, nerr(pe.Path, pe.Err)
			}
			return nil, nerr([]string{"rule"}, err)
		}
		out = append(out, pathSpec{path: path, spec: Spec{Rule: name, Params: nm}, params: np})
	}
	if len(out) == 0 {
		return nil, &ParamError{Rule: rule, Param: "paths", Path: []string{"paths"}, Err: errors.New("no paths")}
	}
	return out, nil
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			s, ok := k.(string)
			if !ok {
				return nil, false
			}
			out[s] = v
		}
		return out, true
	}
	return nil, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64, int32, uint32, float32:
		return "a number"
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", typeName(v))
	}
	return s, nil
}

func asInt(v any, lo, hi int) (int, error) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > math.MaxInt64 {
			n = math.MaxInt64
		} else {
			n = int64(x)
		}
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("want an integer, got %s", typeName(v))
		}
		n = int64(x)
	default:
		return 0, fmt.Errorf("want an integer, got %s", typeName(v))
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, fmt.Errorf("want an integer in [%d, %d], got %d", lo, hi, n)
	}
	return int(n), nil
}

func asFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, fmt.Errorf("want a number, got %s", typeName(v))
}

func checkDomain(d string) error {
	if d == "" || len(d) > 253 || !utf8.ValidString(d) {
		return errors.New("want a domain name such as example.com")
	}
	for _, r := range d {
		if r <= ' ' || r == '@' || r == '/' || r == '\\' || r == '"' || r == 0x7f {
			return errors.New("want a domain name such as example.com")
		}
	}
	return nil
}

// checkValue accepts the YAML scalars, lists of them (array columns) and
// mappings (json columns); whether the value fits the column is checked
// at compile time.
func checkValue(v any) error {
	switch x := v.(type) {
	case nil, string, bool, int, int64, uint64, float64:
		return nil
	case []any:
		for _, e := range x {
			switch e.(type) {
			case nil, string, bool, int, int64, uint64, float64:
			default:
				if _, ok := asMap(e); !ok {
					if _, ok := e.([]any); !ok {
						return fmt.Errorf("unsupported list element %s", typeName(e))
					}
				}
			}
		}
		return nil
	}
	if _, ok := asMap(v); ok {
		return nil
	}
	return fmt.Errorf("want a scalar, list or mapping, got %s", typeName(v))
}
