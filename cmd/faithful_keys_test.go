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
		{"public.orders", "users", "orders_user_id_fkey", "f"}, // windowed parent: NOT VALID
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
