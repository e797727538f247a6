package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestInputsWithPrefixes: two inputs of one workflow, each with the same
// schema, land side by side under their target_schema_prefix, user types
// included, with rules applied per input.
func TestInputsWithPrefixes(t *testing.T) {
	billing, crm, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	for _, dsn := range []string{billing, crm} {
		mustExec(t, mustConnect(t, dsn), `CREATE TYPE public.state AS ENUM ('open', 'closed');
			CREATE TABLE public.account (id int PRIMARY KEY, email text, st public.state, tags public.state[]);
			INSERT INTO public.account SELECT g, 'a' || g || '@x.org', 'open', ARRAY['open','closed']::public.state[] FROM generate_series(1, 20) g`)
	}
	mustExec(t, mustConnect(t, crm), "INSERT INTO public.account VALUES (1000, 'extra@x.org', 'closed', NULL)")
	cfg := writeConfig(t, `
version: 1
hmac_key: `+testKey+`
workflows:
  - name: w
    on_unclassified: warn
    inputs:
      - name: billing
        dsn: `+billing+`
        target_schema_prefix: billing_
        tables:
          - name: public.account
            columns:
              email: { rule: redact_email }
      - name: crm
        dsn: `+crm+`
        target_schema_prefix: crm_
        tables:
          - name: public.*
    feeds:
      - type: twin
        dsn: `+twinDSN+`
`)
	rep := runJSON(t, cfg, 0)
	if len(rep.Tables) != 2 {
		t.Fatalf("tables: %+v", rep.Tables)
	}
	twin := mustConnect(t, twinDSN)
	if n := queryInt(t, twin, "SELECT count(*) FROM billing_public.account WHERE email LIKE 'u%@example.com' AND st = 'open' AND tags[2] = 'closed'"); n == 0 {
		t.Error("billing_public.account missing or not redacted")
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM crm_public.account WHERE id = 1000 AND st = 'closed'"); n != 1 {
		t.Error("crm_public.account missing its own rows")
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM crm_public.account WHERE email LIKE '%@x.org'"); n == 0 {
		t.Error("crm has no rule for email, so it should be copied as is")
	}
	for _, typ := range []string{"billing_public.state", "crm_public.state"} {
		if got := queryString(t, twin, "SELECT to_regtype($1)::text", typ); got == "NULL" {
			t.Errorf("user type %s not created under the prefix", typ)
		}
	}
}

// TestUnclassifiedWarn: with on_unclassified: warn, a drift-added column
// that looks like PII is copied and the report warns, naming the rule.
func TestUnclassifiedWarn(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, "CREATE TABLE public.p (id int PRIMARY KEY); INSERT INTO public.p VALUES (1)")
	cfg := writeConfig(t, `
version: 1
workflows:
  - name: w
    on_unclassified: warn
    inputs:
      - name: prod
        dsn: `+prodDSN+`
        tables:
          - name: public.p
    feeds:
      - type: twin
        dsn: `+twinDSN+`
`)
	runJSON(t, cfg, 0)
	mustExec(t, prod, "ALTER TABLE public.p ADD COLUMN phone_number text; UPDATE public.p SET phone_number = '+1 555 0100'")
	tr := tableReport(t, runJSON(t, cfg, 0), "public.p")
	if !tr.DriftForced || len(tr.Warnings) != 1 || !strings.Contains(tr.Warnings[0], "phone_number looks like phone") {
		t.Fatalf("warn mode: %+v", tr)
	}
	// The finding the agent posts to the dashboard's scanner page.
	if len(tr.Unclassified) != 1 || tr.Unclassified[0].Column != "phone_number" || tr.Unclassified[0].Kind != "phone" || tr.Unclassified[0].Rule["rule"] != "fake" {
		t.Fatalf("unclassified findings: %+v", tr.Unclassified)
	}
	if n := queryInt(t, mustConnect(t, twinDSN), "SELECT count(*) FROM public.p WHERE phone_number IS NOT NULL"); n != 1 {
		t.Fatal("warn mode should copy the column")
	}
}
