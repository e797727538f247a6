package config_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/nopii/nopii/config"
)

// subsetFile is minimal with the table entry's extra lines spliced in
// (indented under "- name: public.customer").
func subsetFile(entry string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(entry), "\n") {
		b.WriteString("            " + l + "\n")
	}
	return strings.Replace(fmt.Sprintf(minimal, "x"), "          - name: public.customer\n", "          - name: public.customer\n"+b.String(), 1)
}

func TestSubsetAndReferences(t *testing.T) {
	tests := []struct {
		name   string
		entry  string
		subset *config.Subset
		refs   []config.Reference
	}{
		{name: "where", entry: `subset: { where: "customer_id % 10 = 0" }`,
			subset: &config.Subset{Where: "customer_id % 10 = 0", WithChildren: true}},
		{name: "percent", entry: `subset: { percent: 10 }`,
			subset: &config.Subset{Percent: 10, WithChildren: true}},
		{name: "fractional percent and where", entry: "subset:\n  where: country = 'DE'\n  percent: 0.5\n  with_children: false",
			subset: &config.Subset{Where: "country = 'DE'", Percent: 0.5}},
		{name: "hundred percent", entry: `subset: { percent: 100 }`,
			subset: &config.Subset{Percent: 100, WithChildren: true}},
		{name: "reference", entry: "references:\n  - { columns: [referrer_id], table: public.customer, to: [customer_id] }",
			refs: []config.Reference{{Columns: []string{"referrer_id"}, Table: "public.customer", Schema: "public", Name: "customer", To: []string{"customer_id"}}}},
		{name: "reference to the key, quoted name", entry: "references:\n  - { columns: user_id, table: '\"Sales\".\"Users\"' }",
			refs: []config.Reference{{Columns: []string{"user_id"}, Table: `"Sales"."Users"`, Schema: "Sales", Name: "Users"}}},
		{name: "composite reference", entry: "references:\n  - { columns: [a, b], table: public.pair, to: [x, y] }",
			refs: []config.Reference{{Columns: []string{"a", "b"}, Table: "public.pair", Schema: "public", Name: "pair", To: []string{"x", "y"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, subsetFile(tt.entry), nil)
			tb := cfg.Workflows[0].Inputs[0].Tables[0]
			if tb.Subset != nil {
				if tb.Subset.Pos.Line == 0 {
					t.Errorf("subset has no position")
				}
				tb.Subset.Pos = config.Pos{}
			}
			for i := range tb.References {
				if tb.References[i].Pos.Line == 0 {
					t.Errorf("reference %d has no position", i)
				}
				tb.References[i].Pos = config.Pos{}
			}
			if !reflect.DeepEqual(tb.Subset, tt.subset) {
				t.Errorf("Subset = %+v, want %+v", tb.Subset, tt.subset)
			}
			if !reflect.DeepEqual(tb.References, tt.refs) {
				t.Errorf("References = %+v, want %+v", tb.References, tt.refs)
			}
		})
	}
}

func TestSubsetErrors(t *testing.T) {
	// Line 10 is the entry's first spliced line, column 13 its key.
	tests := []struct {
		name      string
		entry     string
		line, col int
		want      string
	}{
		{"empty subset", `subset: {}`, 10, 21, "needs where"},
		{"unknown key", `subset: { percent: 10, precent: 5 }`, 10, 36, `unknown key "precent" in subset (expected one of: where, percent, with_children); did you mean "percent"?`},
		{"percent zero", `subset: { percent: 0 }`, 10, 32, "must be more than 0 and at most 100"},
		{"percent over", `subset: { percent: 101 }`, 10, 32, "must be more than 0 and at most 100"},
		{"percent string", `subset: { percent: ten }`, 10, 32, "expected a number of percent"},
		{"empty where", `subset: { where: "" }`, 10, 30, "must not be empty"},
		{"two statements", `subset: { where: "true; drop table x" }`, 10, 30, "without ';'"},
		{"not a mapping", `subset: 10`, 10, 21, "expected a mapping"},
		{"reference without table", "references:\n  - { columns: [a] }", 11, 17, "table: required"},
		{"reference without columns", "references:\n  - { table: public.x }", 11, 17, "columns: required"},
		{"reference count", "references:\n  - { columns: [a, b], table: public.x, to: [c] }", 11, 57, "names 1 column(s) for 2 in columns"},
		{"reference pattern", "references:\n  - { columns: [a], table: public.* }", 11, 40, "not a pattern"},
		{"reference unknown key", "references:\n  - { columns: [a], table: public.x, too: [b] }", 11, 50, `did you mean "to"?`},
		{"references not a list", "references: public.x", 10, 25, "expected a list of references"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, subsetFile(tt.entry), nil)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error = %v, want config.Errors", err)
			}
			for _, e := range errs {
				if e.Pos.Line == tt.line && e.Pos.Col == tt.col && strings.Contains(e.Error(), tt.want) {
					return
				}
			}
			t.Errorf("no error at %d:%d containing %q; got:\n%v", tt.line, tt.col, tt.want, err)
		})
	}
}

func TestSubsetOnPattern(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(minimal, "x"), "public.customer", "public.*\n            subset: { percent: 5 }", 1)
	_, err := parse(t, text, nil)
	if err == nil || !strings.Contains(err.Error(), "a pattern selects tables with default options and takes no subset") {
		t.Errorf("err = %v, want the pattern refusal", err)
	}
}
