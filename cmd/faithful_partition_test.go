package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestFaithfulTwinPartitionKeyRedacted: a table partitioned by a column a
// rule changes is copied to a faithful twin as a plain table: the bounds
// (the source's values of that column) are not in the twin, every redacted
// row is, and the report says why.
func TestFaithfulTwinPartitionKeyRedacted(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.signups (id int, email text NOT NULL, PRIMARY KEY (id, email)) PARTITION BY LIST (email);
		CREATE TABLE public.signups_ceo PARTITION OF public.signups FOR VALUES IN ('ceo@example.com');
		CREATE TABLE public.signups_rest PARTITION OF public.signups DEFAULT;
		INSERT INTO public.signups VALUES (1, 'ceo@example.com'), (2, 'ann@example.com'), (3, 'bob@example.com')`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.signups
            columns:
              email: { rule: redact_email }`)
	tr := tableReport(t, runJSON(t, cfg, 0), "public.signups")
	if tr.Error != "" || tr.Rows != 3 {
		t.Fatalf("run: rows %d, error %q", tr.Rows, tr.Error)
	}
	if !strings.Contains(strings.Join(tr.Schema, "\n"), "partitioning left out: its key reads email (rule redact_email)") {
		t.Errorf("report's schema notes %q do not say the partitioning was left out", tr.Schema)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.signups WHERE email NOT IN ('ceo@example.com', 'ann@example.com', 'bob@example.com')"); n != 3 {
		t.Errorf("%d redacted rows in the twin, want 3", n)
	}
	dump := strings.Join(schemaDumpOf(t, twinDSN, "public"), "\n")
	if strings.Contains(dump, "ceo@example.com") || strings.Contains(dump, "PARTITION") {
		t.Errorf("the twin's schema holds the source's partitioning:\n%s", dump)
	}
}
