package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestFaithfulTwinKeysLeftOut: where a parent is not copied whole, its
// foreign keys are left out or made NOT VALID, the load does not fail, and
// the report (JSON and text) says which and why; a unique constraint that
// the redacted rows break is left out with its reason.
func TestFaithfulTwinKeysLeftOut(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `
		CREATE TABLE public.users (id int PRIMARY KEY, created_at timestamptz NOT NULL);
		CREATE TABLE public.orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES public.users, created_at timestamptz NOT NULL);
		CREATE TABLE public.secret (id int PRIMARY KEY);
		CREATE TABLE public.audit (id int PRIMARY KEY, secret_id int REFERENCES public.secret);
		CREATE TABLE public.codes (id int PRIMARY KEY, code text NOT NULL UNIQUE);
		INSERT INTO public.users SELECT i, now() - i * interval '1 day' FROM generate_series(1, 100) i;
		INSERT INTO public.orders SELECT i, 1 + i % 100, now() FROM generate_series(1, 300) i;
		INSERT INTO public.secret SELECT generate_series(1, 10);
		INSERT INTO public.audit SELECT i, 1 + i % 10 FROM generate_series(1, 10) i;
		INSERT INTO public.codes SELECT i, 'code-' || i FROM generate_series(1, 50) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.users
            created_at: created_at
            window: 30d
          - name: public.orders
          - name: public.audit
          - name: public.secret
            exclude: true
          - name: public.codes
            columns:
              code: { rule: replace, value: "x" }`)
	rep := runJSON(t, cfg, 0)
	twin := mustConnect(t, twinDSN)
	for _, c := range []struct{ table, note, constraint, validated string }{
		{"public.orders", "users", "orders_user_id_fkey", ""},  // windowed parent, updated by deltas: left out
		{"public.audit", "secret", "audit_secret_id_fkey", ""}, // excluded parent: left out
	} {
		notes := strings.Join(tableReport(t, rep, c.table).Schema, "\n")
		if !strings.Contains(notes, c.constraint) || !strings.Contains(notes, c.note) {
			t.Errorf("%s: the report does not say what became of %s and why: %q", c.table, c.constraint, notes)
		}
		got := queryString(t, twin, "SELECT coalesce((SELECT convalidated::text FROM pg_constraint WHERE conname = $1), '')", c.constraint)
		if !strings.HasPrefix(got, c.validated) || (c.validated == "" && got != "") {
			t.Errorf("%s in the twin: validated = %q, want %q (\"\" = absent)", c.constraint, got, c.validated)
		}
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.codes"); n != 50 {
		t.Errorf("codes: %d rows in the twin, want all 50 despite the unique constraint that replace breaks", n)
	}
	if notes := strings.Join(tableReport(t, rep, "public.codes").Schema, "\n"); !strings.Contains(notes, "codes_code_key") {
		t.Errorf("codes: the report does not say the unique constraint was left out: %q", notes)
	}
	// The text report says it too.
	code, out, errOut := runCLI(t, "run", "--config", cfg)
	if code != 0 || !strings.Contains(out, "schema: prod public.audit: ") || !strings.Contains(out, "audit_secret_id_fkey") {
		t.Errorf("text report (exit %d) does not name the keys left out:\n%s\n%s", code, out, errOut)
	}
}

// TestPlanSchemaDecisions: before any row moves, plan and validate
// --connect say what a faithful twin does with each constraint and index
// that a rule could break: a unique constraint on an injectively redacted
// column is kept, one on a column whose rule is not injective (fake, a hash
// cut to 32 bits) is left out with the reason, a CHECK on a redacted
// column and a unique index on a generated column computed from one are
// tried on the copied rows. The run's report names what it left out, and
// the twin holds exactly the kept ones; the generated column needs no rule.
func TestPlanSchemaDecisions(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `
		CREATE TABLE public.people (id int PRIMARY KEY, email text NOT NULL UNIQUE, nick text NOT NULL UNIQUE,
			code text NOT NULL, age int NOT NULL CHECK (age >= 18),
			email_lower text GENERATED ALWAYS AS (lower(email)) STORED);
		CREATE UNIQUE INDEX people_code ON public.people (code);
		CREATE UNIQUE INDEX people_email_lower ON public.people (email_lower);
		INSERT INTO public.people (id, email, nick, code, age)
			SELECT i, 'p' || i || '@x.org', 'nick' || i, 'c' || i, 18 + i % 3 FROM generate_series(1, 300) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.people
            columns:
              email: { rule: redact_email }
              nick: { rule: fake, kind: first_name }
              code: { rule: hash, length: 8 }
              age: { rule: noise, percent: 50 }`)
	decisions := []string{
		"primary key people_pkey", // no rule on id: nothing to decide
		"unique constraint people_email_key kept: email: redact_email is injective",
		"unique constraint people_nick_key left out: nick: fake is not injective",
		"unique index people_code left out: code: hash keeps 32 bits of its hash in text",
		"check constraint people_age_check tried on the copied rows (it reads age (rule noise)",
		"unique index people_email_lower tried on the copied rows (email_lower is computed from email (rule redact_email))",
	}
	code, plan, errOut := runCLI(t, "plan", "--config", cfg)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, plan, errOut)
	}
	code, validate, errOut := runCLI(t, "validate", "--config", cfg, "--connect")
	if code != 0 {
		t.Fatalf("validate --connect: exit %d (the generated column needs no rule)\n%s\n%s", code, validate, errOut)
	}
	for i, want := range decisions {
		for what, out := range map[string]string{"plan": plan, "validate --connect": validate} {
			if got := strings.Contains(out, want); got != (i > 0) {
				t.Errorf("%s says %q: %v, want %v\n%s", what, want, got, i > 0, out)
			}
		}
	}
	rep := runJSON(t, cfg, 0)
	notes := strings.Join(tableReport(t, rep, "public.people").Schema, "\n")
	for _, want := range []string{decisions[2], decisions[3], "check constraint people_age_check left out"} {
		if !strings.Contains(notes, want) {
			t.Errorf("the run's report lacks %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "people_email_key") {
		t.Errorf("the run's report names a kept constraint:\n%s", notes)
	}
	twin := mustConnect(t, twinDSN)
	got := queryString(t, twin, `SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'public.people'::regclass`)
	if want := "people_email_key people_email_lower people_pkey people_source_primary_key_key"; got != want {
		t.Errorf("the twin's indexes: %s, want %s", got, want)
	}
}
