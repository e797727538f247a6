package cmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestRulesOnTypes runs every rule on every type it supports through a real
// source and twin. The twin's binary COPY accepting the rows proves the
// output is valid for the type (and fits varchar(n)/char(n)); the checks
// then prove the values changed row by row, NULL stayed NULL, and replace
// gave its constant.
func TestRulesOnTypes(t *testing.T) {
	cases := []struct {
		typ, rule, gen string
		check          string // optional SQL predicate on the twin value v that must hold for every non-NULL row
	}{
		{"text", "{ rule: redact_email }", "'person' || i || '@mail.org'", "v ~ '^u[0-9a-f]+@example\\.com$'"},
		{"varchar(30)", "{ rule: redact_email, domain: corp.test }", "'p' || i || '@mail.org'", "v ~ '@corp\\.test$'"},
		{"text", "{ rule: fake, kind: first_name }", "'Name' || i", ""},
		{"varchar(12)", "{ rule: fake, kind: full_name }", "'Full Name ' || i", "length(v) <= 12"},
		{"text", "{ rule: fake, kind: phone }", "'+1 555 ' || i", ""},
		{"text", "{ rule: hash }", "'h' || i", "v ~ '^[0-9a-f]{64}$'"},
		{"varchar(12)", "{ rule: hash }", "'h' || i", "v ~ '^[0-9a-f]{12}$'"},
		{"char(11)", "{ rule: hash }", "lpad(i::text, 11, '0')", "length(v) = 11"},
		{"text", "{ rule: hash, length: 10 }", "'h' || i", "length(v) = 10"},
		{"text", "{ rule: mask }", "'4111111111' || lpad(i::text, 6, '0')", "v ~ '^\\*+[0-9]{4}$'"},
		{"char(11)", "{ rule: mask, keep_last: 2, char: '#' }", "lpad(i::text, 11, '7')", ""},
		{"text", "{ rule: random_string, length: 12 }", "'r' || i", "v ~ '^[A-Za-z0-9]{12}$'"},
		{"text", "{ rule: replace, value: redacted }", "'x' || i", "v = 'redacted'"},
		{"text", "{ rule: destroy }", "'d' || i", "false"},
		{"int2", "{ rule: hash }", "(i % 30000)::int2", ""},
		{"int2", "{ rule: noise }", "(i % 30000)::int2", ""},
		{"int4", "{ rule: noise, percent: 20 }", "i * 10", ""},
		{"int4", "{ rule: replace, value: 42 }", "i", "v = '42'"},
		{"int8", "{ rule: hash }", "i::int8 * 1000003", ""},
		{"int8", "{ rule: destroy }", "i", "false"},
		{"numeric(12,2)", "{ rule: noise, percent: 5 }", "i * 1.25", "v ~ '^-?[0-9]+\\.[0-9]{2}$'"},
		{"float8", "{ rule: noise }", "i * 1.5", ""},
		{"date", "{ rule: shift_date, max_days: 10 }", "date '1980-01-01' + i", "abs(v::date - (date '1980-01-01' + id)) BETWEEN 1 AND 10"},
		{"date", "{ rule: fake, kind: date_of_birth }", "date '1980-01-01' + i", ""},
		{"timestamp", "{ rule: shift_date }", "timestamp '2020-01-01' + i * interval '1 hour'", ""},
		{"timestamptz", "{ rule: shift_date }", "timestamptz '2020-01-01 00:00+00' + i * interval '1 hour'", ""},
		{"timestamptz", "{ rule: replace, value: '2000-01-01 00:00:00+00' }", "now()", "v::timestamptz = timestamptz '2000-01-01 00:00:00+00'"},
		{"uuid", "{ rule: hash }", "md5(i::text)::uuid", ""},
		{"uuid", "{ rule: fake, kind: uuid }", "md5(i::text)::uuid", ""},
		{"json", `{ rule: json, paths: { "$.email": { rule: redact_email } } }`, "json_build_object('email', 'p' || i || '@x.org', 'n', i)", "(v::json->>'email') LIKE 'u%@example.com' AND (v::json->>'n')::int = id"},
		{"jsonb", `{ rule: json, paths: { "$.a.b": { rule: hash } } }`, "jsonb_build_object('a', jsonb_build_object('b', 'v' || i))", "(v::jsonb#>>'{a,b}') ~ '^[0-9a-f]{64}$'"},
		{"jsonb", "{ rule: destroy }", "jsonb_build_object('k', i)", "false"},
		{"bytea", "{ rule: hash }", "('secret' || i)::bytea", ""},
		{"bytea", "{ rule: destroy }", "('secret' || i)::bytea", "false"},
		{"text[]", "{ rule: redact_email }", "ARRAY['a' || i || '@x.org', NULL, 'b' || i || '@x.org']", "array_length(v::text[], 1) = 3 AND (v::text[])[2] IS NULL AND (v::text[])[1] LIKE 'u%@example.com'"},
		{"int8[]", "{ rule: noise }", "ARRAY[i * 100, i * 200]::int8[]", "array_length(v::int8[], 1) = 2"},
		{"varchar(20)[]", "{ rule: mask }", "ARRAY['secret-' || i]::varchar(20)[]", ""},
		{"uuid[]", "{ rule: hash }", "ARRAY[md5(i::text)::uuid]", ""},
		{"inet", "{ rule: fake, kind: ipv4 }", "('10.1.' || (i % 256) || '.' || (i % 200))::inet", "family(v::inet) = 4"},
		{"mood", "{ rule: replace, value: sad }", "(ARRAY['happy','ok']::mood[])[1 + i % 2]", "v = 'sad'"},
		{"mood[]", "{ rule: destroy }", "ARRAY['happy']::mood[]", "false"},
		{"email_d", "{ rule: hash }", "'d' || i || '@x.org'", ""},
		{"tsvector", "{ rule: keep }", "to_tsvector('simple', 'word' || i)", ""},
	}
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN email_d AS text CHECK (VALUE <> '')`)
	var cols, gens, rules []string
	for i, c := range cases {
		cols = append(cols, fmt.Sprintf("c%d %s", i, c.typ))
		// Every 7th row is NULL in every column.
		gens = append(gens, fmt.Sprintf("CASE WHEN i %% 7 = 0 THEN NULL ELSE (%s)::%s END", c.gen, c.typ))
		rules = append(rules, fmt.Sprintf("              c%d: %s", i, c.rule))
	}
	mustExec(t, prod, "CREATE TABLE public.typed (id int PRIMARY KEY, "+strings.Join(cols, ", ")+")")
	mustExec(t, prod, "INSERT INTO public.typed SELECT i, "+strings.Join(gens, ", ")+" FROM generate_series(1, 500) i")
	runRules(t, prodDSN, twinDSN, "typed", rules)
	for i, c := range cases {
		col := fmt.Sprintf("c%d", i)
		t.Run(fmt.Sprintf("%s/%s", c.typ, c.rule), func(t *testing.T) {
			src, dst := columnText(t, prod, "typed", col), columnText(t, twin, "typed", col)
			if len(src) != len(dst) {
				t.Fatalf("rows: %d vs %d", len(src), len(dst))
			}
			isReplace := strings.Contains(c.rule, "rule: replace")
			isKeep := strings.Contains(c.rule, "rule: keep ")
			isDestroy := strings.Contains(c.rule, "rule: destroy")
			for r := range src {
				switch {
				case src[r] == nil && !isReplace:
					if dst[r] != nil {
						t.Fatalf("row %d: NULL became %q", r+1, *dst[r])
					}
				case isDestroy:
					if dst[r] != nil {
						t.Fatalf("row %d: destroy left %q", r+1, *dst[r])
					}
				case isKeep:
					if dst[r] == nil || *dst[r] != *src[r] {
						t.Fatalf("row %d: keep changed the value", r+1)
					}
				case src[r] != nil && !isReplace:
					if dst[r] == nil {
						t.Fatalf("row %d: value became NULL", r+1)
					}
					if *dst[r] == *src[r] {
						t.Fatalf("row %d: the rule output its input %q", r+1, *src[r])
					}
				}
			}
			if c.check != "" {
				q := fmt.Sprintf("SELECT count(*) FROM (SELECT id, %s::text AS v FROM public.typed) x WHERE v IS NOT NULL AND NOT (%s)", col, c.check)
				if n := queryInt(t, twin, q); n != 0 {
					ex := queryString(t, twin, fmt.Sprintf("SELECT min(v) FROM (SELECT id, %s::text AS v FROM public.typed) x WHERE v IS NOT NULL AND NOT (%s)", col, c.check))
					t.Fatalf("%d rows fail %q, e.g. %q", n, c.check, ex)
				}
			}
		})
	}
	// Same type in the twin, typmods included.
	for i := range cases {
		got := queryString(t, twin, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.typed'::regclass AND attname = $1", fmt.Sprintf("c%d", i))
		want := queryString(t, prod, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.typed'::regclass AND attname = $1", fmt.Sprintf("c%d", i))
		if got != want {
			t.Errorf("c%d: twin type %s, source %s", i, got, want)
		}
	}
}
