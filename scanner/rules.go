package scanner

import (
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/rulesets"
)

// candidates are the rules a kind may get, best first; the first that
// compiles for the column's type is suggested.
var candidates = map[string][]map[string]any{
	KindEmail:      {{"rule": "redact_email"}, {"rule": "hash"}},
	KindPhone:      {{"rule": "fake", "kind": "phone"}, {"rule": "hash"}, {"rule": "noise", "percent": 50}},
	KindFirstName:  {{"rule": "fake", "kind": "first_name"}},
	KindLastName:   {{"rule": "fake", "kind": "last_name"}},
	KindFullName:   {{"rule": "fake", "kind": "full_name"}},
	KindUsername:   {{"rule": "fake", "kind": "username"}, {"rule": "hash"}},
	KindSSN:        {{"rule": "fake", "kind": "ssn"}, {"rule": "hash"}},
	KindNationalID: {{"rule": "hash"}, {"rule": "random_string"}},
	KindCard:       {{"rule": "mask", "keep_last": 4}, {"rule": "fake", "kind": "credit_card"}, {"rule": "hash"}},
	KindIBAN:       {{"rule": "fake", "kind": "iban"}, {"rule": "mask", "keep_last": 4}},
	KindBirthDate:  {{"rule": "shift_date", "max_days": 365}, {"rule": "fake", "kind": "date_of_birth"}},
	KindAddress:    {{"rule": "fake", "kind": "street"}},
	KindPostcode:   {{"rule": "fake", "kind": "zip"}},
	KindCity:       {{"rule": "fake", "kind": "city"}},
	KindIP:         {{"rule": "fake", "kind": "ipv4"}, {"rule": "hash"}},
	KindPassword:   {{"rule": "destroy"}},
	KindFreeText:   {{"rule": "fake", "kind": "sentence"}, {"rule": "destroy"}},
}

// checkKey is a key for compiling suggestions: rules that need hmac_key
// compile only with one; the key is never used on data.
var checkKey = []byte(strings.Repeat("k", 32))

// suggest returns the first candidate rule of the finding's kind that
// compiles for the column, falling back to destroy and then replace; nil
// when nothing fits.
func suggest(c nopii.Column, f Finding, values []string) map[string]any {
	cands := candidates[f.Kind]
	if f.Kind == KindIP && ipv6Share(values) > 0.5 {
		cands = append([]map[string]any{{"rule": "fake", "kind": "ipv6"}}, cands...)
	}
	if f.Kind == KindJSON {
		paths := map[string]any{}
		for _, p := range f.Paths {
			paths[p.Path] = candidates[p.Kind][0]
		}
		cands = []map[string]any{{"rule": "json", "paths": paths}}
	}
	cands = append(cands, map[string]any{"rule": "destroy"}, map[string]any{"rule": "hash"})
	for _, spec := range cands {
		params := map[string]any{}
		for k, v := range spec {
			if k != "rule" {
				params[k] = v
			}
		}
		if _, err := rulesets.Compile(nopii.TableName{}, c, rulesets.Spec{Rule: spec["rule"].(string), Params: params}, checkKey); err == nil {
			return spec
		}
	}
	return nil
}

func ipv6Share(values []string) float64 {
	if len(values) == 0 {
		return 0
	}
	n := 0
	for _, v := range values {
		if strings.Contains(v, ":") {
			n++
		}
	}
	return float64(n) / float64(len(values))
}
