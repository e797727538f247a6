package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestSubsetWhereErrorHidesValues: a subset's where that fails on a row's
// value (a cast the value does not take) fails the run, and neither the
// report nor the log holds the value.
func TestSubsetWhereErrorHidesValues(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.people (id int PRIMARY KEY, email text, code text);
		INSERT INTO public.people VALUES (1, 'ann@example.com', '7'), (2, 'bob@example.com', 'bob@example.com')`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.people
            subset: { where: "code::int > 0" }
            columns:
              email: { rule: redact_email }
              code: { rule: hash }`)
	code, out, errOut := runCLI(t, "run", "--config", cfg, "--format", "json")
	if code == 0 {
		t.Fatalf("run with a failing where succeeded:\n%s", out)
	}
	if !strings.Contains(out+errOut, "invalid input syntax for type integer") {
		t.Errorf("the run does not say why it failed:\n%s\n%s", out, errOut)
	}
	if strings.Contains(out+errOut, "bob@example.com") {
		t.Errorf("a source value is in the report or the log:\n%s\n%s", out, errOut)
	}
}
