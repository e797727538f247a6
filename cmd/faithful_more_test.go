package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestFaithfulTwinDrift: an index or a constraint added to or dropped from
// a source table that a faithful twin copies by delta makes the next run
// copy it in full, saying which objects changed (plan says so first); the
// twin then has the source's objects, and the run after goes back to
// deltas.
func TestFaithfulTwinDrift(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.items (id int PRIMARY KEY, sku text NOT NULL, qty int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
		CREATE INDEX items_updated_at ON public.items (updated_at);
		INSERT INTO public.items SELECT i, 'sku' || i, i FROM generate_series(1, 100) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.items
            updated_at: updated_at`)
	runJSON(t, cfg, 0)
	if tr := tableReport(t, runJSON(t, cfg, 0), "public.items"); tr.Mode != "delta" {
		t.Fatalf("second run: mode %s, want delta", tr.Mode)
	}
	has := func(name string) bool {
		return queryInt(t, twin, "SELECT count(*) FROM pg_class WHERE relname = $1", name)+
			queryInt(t, twin, "SELECT count(*) FROM pg_constraint WHERE conname = $1", name) > 0
	}
	for _, step := range []struct {
		ddl, reason string
		present     []string
		absent      []string
	}{
		{"CREATE INDEX items_sku ON public.items (sku); ALTER TABLE public.items ADD CONSTRAINT items_qty_check CHECK (qty >= 0)",
			"full copy: indexes or constraints changed in the source (check constraint items_qty_check added, index items_sku added)",
			[]string{"items_sku", "items_qty_check"}, nil},
		{"DROP INDEX public.items_sku; ALTER TABLE public.items DROP CONSTRAINT items_qty_check; ALTER TABLE public.items ADD CONSTRAINT items_qty_check CHECK (qty > 0)",
			"full copy: indexes or constraints changed in the source (check constraint items_qty_check changed, index items_sku dropped)",
			[]string{"items_qty_check"}, []string{"items_sku"}},
	} {
		mustExec(t, prod, step.ddl)
		if code, out, errOut := runCLI(t, "plan", "--config", cfg); code != 0 || !strings.Contains(out, step.reason) {
			t.Errorf("plan (exit %d) does not say %q:\n%s\n%s", code, step.reason, out, errOut)
		}
		tr := tableReport(t, runJSON(t, cfg, 0), "public.items")
		if tr.Mode != "full" || !tr.DriftForced || tr.Reason != step.reason {
			t.Errorf("after %q: mode %s, drift %v, reason %q; want a full copy for %q", step.ddl, tr.Mode, tr.DriftForced, tr.Reason, step.reason)
		}
		for _, name := range step.present {
			if !has(name) {
				t.Errorf("after %q: the twin lacks %s", step.ddl, name)
			}
		}
		for _, name := range step.absent {
			if has(name) {
				t.Errorf("after %q: the twin still has %s", step.ddl, name)
			}
		}
		if def := queryString(t, twin, "SELECT coalesce((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'items_qty_check'), '')"); def != queryString(t, prod, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'items_qty_check'") {
			t.Errorf("after %q: the twin's items_qty_check is %q", step.ddl, def)
		}
		if tr := tableReport(t, runJSON(t, cfg, 0), "public.items"); tr.Mode != "delta" {
			t.Errorf("the run after the drift: mode %s (%s), want delta", tr.Mode, tr.Reason)
		}
	}
}

// TestFaithfulTwinPrefix: with target_schema_prefix, the faithful twin of
// testdata/faithful/schema.sql dumps as the source does with every schema
// reference renamed (tables, sequences, a nextval default, foreign keys to
// other tables, views and the partitions), but for what docs/twin.md says
// differs; inserts without an id work there too.
func TestFaithfulTwinPrefix(t *testing.T) {
	prodDSN, twinDSN, _, twin := faithfulDatabases(t)
	cfg := writeConfig(t, strings.Replace(faithfulYAML(prodDSN, twinDSN, ""), "        tables:", "        target_schema_prefix: copy_\n        tables:", 1))
	rep := runJSON(t, cfg, 0)
	for _, tr := range rep.Tables {
		if tr.Target != "copy_"+tr.Table || len(tr.Schema) > 0 {
			t.Errorf("%s: target %s, schema notes %q; want copy_%[1]s and none", tr.Table, tr.Target, tr.Schema)
		}
	}
	qualifier := regexp.MustCompile(`\bapp\.`)
	var src []string
	for _, s := range schemaDumpOf(t, prodDSN, "app") {
		src = append(src, qualifier.ReplaceAllString(s, "copy_app."))
	}
	if extra, missing := diffStatements(src, schemaDumpOf(t, twinDSN, "copy_app")); len(extra)+len(missing) > 0 {
		t.Errorf("the prefixed twin's schema differs from the source's\nonly in the source:\n  %s\nonly in the twin:\n  %s",
			strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
	}
	mustExec(t, twin, "INSERT INTO copy_app.orders (user_id, total) VALUES (1, 5)")
	if inv := queryInt(t, twin, "SELECT invoice FROM copy_app.orders WHERE id = 201"); inv < 1000 {
		t.Errorf("invoice from the prefixed standalone sequence = %d", inv)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"); n != 0 {
		t.Errorf("the prefixed twin has a schema app too")
	}
}

// TestFaithfulTwinDataOnly: schema: data_only gives the twin the columns
// and source_primary_key alone (no keys, indexes, constraints, views or
// sequences of the source; generated columns as plain ones, which then
// need rules), every row, and a second run's full copies swapped in
// together as a faithful twin's are.
func TestFaithfulTwinDataOnly(t *testing.T) {
	prodDSN, twinDSN, prod, twin := faithfulDatabases(t)
	cfg := writeConfig(t, faithfulYAML(prodDSN, twinDSN, "\n              email_lower: { rule: destroy }")+"        schema: data_only\n")
	for run := 1; run <= 2; run++ {
		rep := runJSON(t, cfg, 0)
		for _, tr := range rep.Tables {
			if tr.Error != "" || len(tr.Schema) > 0 {
				t.Errorf("run %d: %s: error %q, schema notes %q", run, tr.Table, tr.Error, tr.Schema)
			}
		}
	}
	for _, table := range []string{"users", "orders", "order_lines", "line_notes", "events"} {
		q := "SELECT count(*) FROM app." + table
		if got, want := queryInt(t, twin, q), queryInt(t, prod, q); got != want {
			t.Errorf("app.%s: %d rows in the twin, want %d", table, got, want)
		}
	}
	dump := strings.Join(schemaDumpOf(t, twinDSN, "app"), "\n")
	for _, absent := range []string{"PRIMARY KEY", "FOREIGN KEY", "CHECK", "EXCLUDE", "CREATE INDEX", "CREATE VIEW", "CREATE MATERIALIZED VIEW", "CREATE SEQUENCE", "GENERATED", "PARTITION", "COMMENT"} {
		if strings.Contains(dump, absent) {
			t.Errorf("a data-only twin has %s:\n%s", absent, dump)
		}
	}
	if n := queryInt(t, twin, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'app'`); n != 5 {
		t.Errorf("a data-only twin has %d indexes, want 5: each table's on source_primary_key", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM app.users WHERE email_lower IS NOT NULL"); n != 0 {
		t.Errorf("%d rows of the data-only twin hold a value for email_lower, whose rule is destroy", n)
	}
}

// schemaDumpOf is pg_dump --schema-only of one schema, as statements
// (normalise).
func schemaDumpOf(t *testing.T, dsn, schema string) []string {
	t.Helper()
	bin := filepath.Join(os.Getenv("NOPII_PG_BIN"), "pg_dump")
	out, err := exec.Command(bin, "--schema-only", "--no-owner", "--no-privileges", "--schema", schema, "--dbname", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return normalise(string(out))
}
