package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestNoLeakAroundRules covers the ways a table could reach the twin without
// the rules meant for it: a misspelt or mis-cased name next to a pattern, an
// inheritance child, a partition named with rules, a generated column.
func TestNoLeakAroundRules(t *testing.T) {
	t.Run("misnamed entry next to a pattern", func(t *testing.T) {
		prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
		mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public."Customer" (id int PRIMARY KEY, email text);
			INSERT INTO public."Customer" VALUES (1, 'alice@real.example');
			CREATE TABLE public.other (id int PRIMARY KEY)`)
		cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.*
          - name: public.Customer
            columns:
              email: { rule: redact_email }`)
		rep := runJSON(t, cfg, 1)
		if tr := tableReport(t, rep, "public.customer"); !strings.Contains(tr.Error, `did you mean "public"."Customer"`) {
			t.Errorf("no hint for the mis-cased name: %q", tr.Error)
		}
		if tr := tableReport(t, rep, "public.Customer"); !strings.Contains(tr.Error, "not copied") {
			t.Errorf("the pattern's table was copied without its rules: %+v", tr)
		}
		if n := queryInt(t, mustConnect(t, twinDSN), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); n != 0 {
			t.Errorf("%d tables reached the twin", n)
		}
	})
	t.Run("inheritance child takes its parent's rules", func(t *testing.T) {
		prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
		mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.person (id int PRIMARY KEY, email text);
			CREATE TABLE public.employee (badge int) INHERITS (public.person);
			ALTER TABLE public.employee ADD PRIMARY KEY (id);
			INSERT INTO public.person VALUES (1, 'p@real.example');
			INSERT INTO public.employee VALUES (2, 'e@real.example', 7)`)
		cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.*
          - name: public.person
            columns:
              email: { rule: redact_email }`)
		rep := runJSON(t, cfg, 0)
		if tr := tableReport(t, rep, "public.employee"); tr.Note != "column rules inherited from public.person" {
			t.Errorf("note = %q", tr.Note)
		}
		twin := mustConnect(t, twinDSN)
		if n := queryInt(t, twin, "SELECT count(*) FROM public.employee WHERE email LIKE '%real.example'"); n != 0 {
			t.Error("the child table's emails reached the twin raw")
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM public.person"); n != 1 {
			t.Errorf("person has %d rows; FROM ONLY should keep the child's rows out", n)
		}
	})
	t.Run("partition named with rules while its root is selected", func(t *testing.T) {
		prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
		mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.ev (id int, at date, email text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
			CREATE TABLE public.ev_2025 PARTITION OF public.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
			INSERT INTO public.ev VALUES (1, '2025-02-02', 'x@real.example')`)
		cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.*
          - name: public.ev_2025
            columns:
              email: { rule: redact_email }`)
		rep := runJSON(t, cfg, 1)
		if tr := tableReport(t, rep, "public.ev"); !strings.Contains(tr.Error, "put the rules on public.ev") {
			t.Errorf("root copied despite its partition's rules: %+v", tr)
		}
		if n := queryInt(t, mustConnect(t, twinDSN), "SELECT count(*) FROM pg_tables WHERE tablename = 'ev'"); n != 0 {
			t.Error("the root reached the twin")
		}
	})
	t.Run("generated column computed from a redacted column", func(t *testing.T) {
		prodDSN := pgtest.MustDatabase(t)
		mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.u (id int PRIMARY KEY, email text,
			email_lc text GENERATED ALWAYS AS (lower(email)) STORED);
			INSERT INTO public.u (id, email) VALUES (1, 'Dave@Real.example')`)
		rules := `
          - name: public.u
            columns:
              email: { rule: redact_email }`
		// A faithful twin computes email_lc from the redacted email: the
		// source does not send it and it needs no rule.
		twinDSN := pgtest.MustDatabase(t)
		runJSON(t, oneInputConfig(t, prodDSN, twinDSN, rules), 0)
		twin := mustConnect(t, twinDSN)
		if got := queryString(t, twin, "SELECT email_lc FROM public.u"); strings.Contains(got, "real") || got != strings.ToLower(queryString(t, twin, "SELECT email FROM public.u")) {
			t.Errorf("faithful twin's email_lc = %q: not computed from the redacted email", got)
		}
		// A data-only twin stores what the source sends: the raw value, so
		// the run refuses the table until email_lc has a rule.
		twinDSN = pgtest.MustDatabase(t)
		dataOnly := func(tables string) string {
			return writeConfig(t, workflowYAML("w", prodDSN, tables+"\n", "    feeds:\n      - type: twin\n        dsn: "+twinDSN+"\n        schema: data_only\n"))
		}
		rep := runJSON(t, dataOnly(rules), 1)
		if tr := tableReport(t, rep, "public.u"); !strings.Contains(tr.Error, "generated column email_lc of public.u is computed from redacted column email") {
			t.Fatalf("generated column not guarded: %+v", tr)
		}
		runJSON(t, dataOnly(rules+`
              email_lc: { rule: redact_email }`), 0)
		if n := queryInt(t, mustConnect(t, twinDSN), "SELECT count(*) FROM public.u WHERE email_lc LIKE '%real%'"); n != 0 {
			t.Error("generated column leaked")
		}
	})
}
