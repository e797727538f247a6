package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestSwapKeepsWhatUsersBuilt: views and grants on a twin table survive the
// full copy that replaces it; a view the new schema cannot carry fails the
// swap and leaves the old copy; enum labels added in the source keep their
// order in the twin.
func TestSwapKeepsWhatUsersBuilt(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TYPE public.tier AS ENUM ('bronze', 'gold');
		CREATE TABLE public.acct (id int PRIMARY KEY, email text, tier public.tier, region text);
		INSERT INTO public.acct SELECT i, 'a' || i || '@x.org', 'gold', 'eu' FROM generate_series(1, 20) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.acct
            columns:
              email: { rule: redact_email }`)
	runJSON(t, cfg, 0)
	mustExec(t, twin, `DO $$ BEGIN CREATE ROLE nopii_test_analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
		GRANT SELECT ON public.acct TO nopii_test_analyst;
		CREATE VIEW public.eu_acct AS SELECT id, email FROM public.acct WHERE region = 'eu';
		CREATE VIEW public.eu_count AS SELECT count(*) AS n FROM public.eu_acct;
		GRANT SELECT ON public.eu_count TO nopii_test_analyst`)
	mustExec(t, prod, "INSERT INTO public.acct VALUES (21, 'new@x.org', 'gold', 'eu')")
	runJSON(t, cfg, 0)
	if n := queryInt(t, twin, "SELECT n FROM public.eu_count"); n != 21 {
		t.Fatalf("dependent views were not recreated on the new copy: eu_count = %d", n)
	}
	for _, rel := range []string{"public.acct", "public.eu_count"} {
		if got := queryString(t, twin, "SELECT has_table_privilege('nopii_test_analyst', $1, 'SELECT')::text", rel); got != "true" {
			t.Errorf("grant on %s lost in the swap", rel)
		}
	}

	// A new label in the middle of the enum keeps its place.
	mustExec(t, prod, "ALTER TYPE public.tier ADD VALUE 'silver' BEFORE 'gold'")
	mustExec(t, prod, "UPDATE public.acct SET tier = 'silver' WHERE id = 1")
	runJSON(t, cfg, 0)
	if got := queryString(t, twin, "SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'public.tier'::regtype"); got != "bronze,silver,gold" {
		t.Errorf("twin enum order = %s", got)
	}

	// Drift that breaks a view: the swap fails, the old copy stays.
	mustExec(t, prod, "ALTER TABLE public.acct DROP COLUMN region")
	rep := runJSON(t, cfg, 1)
	if tr := tableReport(t, rep, "public.acct"); !strings.Contains(tr.Error, "view public.eu_acct depends on the table and cannot be recreated") {
		t.Fatalf("error = %q", tr.Error)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.acct WHERE region = 'eu'"); n != 21 {
		t.Fatalf("old copy not intact after the failed swap: %d rows", n)
	}
}
