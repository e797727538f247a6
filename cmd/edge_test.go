package cmd

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestEdgeValues runs rules over the values at the edges of their types —
// NaN, ±Infinity, -0, huge and tiny numerics, infinite and BC dates, empty
// and NULL-holding and multi-dimensional arrays, empty strings, a 1 MB
// string and a 32 MB jsonb document — through a real source and twin. The
// twin's binary COPY accepting the rows proves each output is valid for its
// type; NULL stays NULL; array shapes are kept; and each case's check holds.
func TestEdgeValues(t *testing.T) {
	cases := []struct {
		typ, rule string
		values    []string // SQL expressions, one row each (cycled over the table's rows)
		check     string   // SQL predicate on the twin's value v (text) and the source's s (text), for non-NULL rows
	}{
		{"float8", "{ rule: noise }", []string{"'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "1e308", "5e-324", "-1e308"},
			"(s IN ('NaN', 'Infinity', '-Infinity')) = (v = s)"},
		{"float4", "{ rule: noise, percent: 50 }", []string{"'NaN'", "'Infinity'", "'-Infinity'", "3.4e38", "1e-45"}, ""},
		{"numeric", "{ rule: noise }", []string{"'NaN'", "'Infinity'", "'-Infinity'", "repeat('9', 1000)::numeric", "('0.' || repeat('0', 900) || '1')::numeric", "0"}, ""},
		{"numeric(6,2)", "{ rule: noise, percent: 50 }", []string{"9999.99", "-9999.99", "0.01"}, "abs(v::numeric) <= 9999.99"},
		{"numeric", "{ rule: replace, value: '12.5' }", []string{"'NaN'", "'Infinity'"}, "v = '12.5'"},
		{"date", "{ rule: shift_date }", []string{"'infinity'", "'-infinity'", "'4713-01-01 BC'", "'5874897-12-31'"}, "(s LIKE '%infinity') = (v = s)"},
		{"timestamptz", "{ rule: shift_date }", []string{"'infinity'", "'-infinity'", "'4713-01-01 00:00+00 BC'", "'294276-12-31 23:59:59+00'"}, ""},
		{"text[]", "{ rule: redact_email }", []string{"'{}'", "'{NULL}'", "'{{a@x.org,b@x.org},{c@x.org,NULL}}'", "'[0:1]={d@x.org,e@x.org}'", "ARRAY['']"},
			"array_dims(v::text[]) IS NOT DISTINCT FROM array_dims(s::text[]) AND cardinality(v::text[]) = cardinality(s::text[])"},
		{"int4[]", "{ rule: noise }", []string{"'{}'", "'{NULL,NULL}'", "'{{1,2},{3,4}}'", "ARRAY[2147483647, -2147483648]"},
			"array_dims(v::int4[]) IS NOT DISTINCT FROM array_dims(s::int4[])"},
		{"uuid[]", "{ rule: hash }", []string{"'{}'", "ARRAY[NULL::uuid]", "ARRAY['00000000-0000-0000-0000-000000000000'::uuid]"}, ""},
		{"text", "{ rule: mask }", []string{"''", "'x'", "repeat('é', 1000000)"}, "length(v) = length(s)"},
		{"text", "{ rule: redact_email }", []string{"''", "'not an email'", "'@'", "repeat('a', 100000) || '@x.org'"}, "v ~ '^u[0-9a-f]+@example\\.com$'"},
		{"varchar(8)", "{ rule: hash }", []string{"''", "'x'"}, "length(v) = 8"},
		{"bytea", "{ rule: hash }", []string{"''::bytea", "'\\x00'::bytea"}, ""},
		{"jsonb", `{ rule: json, paths: { "$.email": { rule: redact_email }, "$.list[*].n": { rule: hash } } }`, []string{
			"'{}'", "'[]'", "'null'", `'"just a string"'`, `'{"email": null}'`, `'{"email": 42}'`, `'{"list": []}'`, `'{"list": [{"n": "a"}, 1, null]}'`,
			// 32 MB: a big document streams through whole.
			`jsonb_build_object('email', 'big@x.org', 'pad', repeat('p', 32 << 20))`,
		}, "NOT (v LIKE '%@x.org%') AND length(v) >= length(s) - 100"},
		{"json", `{ rule: json, paths: { "$.a": { rule: destroy } } }`, []string{`'{"a": 1, "a": 2}'`, `'  {"b" : [1,2]}  '`}, "v::jsonb->'a' IS NULL OR v::jsonb->'a' = 'null'"},
	}
	rows := 0
	for _, c := range cases {
		rows = max(rows, len(c.values))
	}
	rows++ // one row of NULLs at least
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	var cols, rules []string
	for i, c := range cases {
		cols = append(cols, fmt.Sprintf("c%d %s", i, c.typ))
		rules = append(rules, fmt.Sprintf("              c%d: %s", i, c.rule))
	}
	mustExec(t, prod, "CREATE TABLE public.edge (id int PRIMARY KEY, "+strings.Join(cols, ", ")+")")
	for r := 1; r <= rows; r++ {
		vals := []string{fmt.Sprint(r)}
		for _, c := range cases {
			v := "NULL"
			if r <= len(c.values) {
				v = c.values[r-1]
			}
			vals = append(vals, fmt.Sprintf("(%s)::%s", v, c.typ))
		}
		mustExec(t, prod, "INSERT INTO public.edge VALUES ("+strings.Join(vals, ", ")+")")
	}
	runRules(t, prodDSN, twinDSN, "edge", rules)
	for i, c := range cases {
		col := fmt.Sprintf("c%d", i)
		t.Run(fmt.Sprintf("%s/%s", c.typ, c.rule), func(t *testing.T) {
			src, dst := columnText(t, prod, "edge", col), columnText(t, twin, "edge", col)
			if len(src) != len(dst) {
				t.Fatalf("rows: %d vs %d", len(src), len(dst))
			}
			replace := strings.Contains(c.rule, "rule: replace")
			for r := range src {
				if src[r] == nil && !replace && dst[r] != nil {
					t.Errorf("row %d: NULL became %.40q", r+1, *dst[r])
				}
				if src[r] != nil && dst[r] == nil {
					t.Errorf("row %d: %.40q became NULL", r+1, *src[r])
				}
				if c.check == "" || src[r] == nil || dst[r] == nil {
					continue
				}
				var ok bool
				if err := twin.QueryRow(context.Background(), "SELECT "+c.check+" FROM (SELECT $1::text AS v, $2::text AS s) x", *dst[r], *src[r]).Scan(&ok); err != nil {
					t.Fatalf("row %d: check %q: %v", r+1, c.check, err)
				}
				if !ok {
					t.Errorf("row %d: %q fails for source %.60q → twin %.60q", r+1, c.check, *src[r], *dst[r])
				}
			}
		})
	}
}
