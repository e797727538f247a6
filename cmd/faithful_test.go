package cmd

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestFaithfulTwin: a schema with every kind of object the faithful twin
// recreates (identity, serial and standalone sequences, defaults, a
// generated column, expression, partial, INCLUDE and GIN indexes, an
// exclusion constraint, CHECKs, a partitioned table, a foreign key chain, a
// composite key and a self-reference, a view, a materialized view with an
// index, comments) dumps the same from source and twin, but for what
// docs/twin.md says differs; inserts without an id work, the planner uses
// the indexes, every foreign key is validated, and an index made in the
// twin survives two full copies.
func TestFaithfulTwin(t *testing.T) {
	prodDSN, twinDSN, prod, twin := faithfulDatabases(t)
	cfg := writeConfig(t, faithfulYAML(prodDSN, twinDSN, ""))
	rep := runJSON(t, cfg, 0)
	for _, tr := range rep.Tables {
		if len(tr.Schema) > 0 {
			t.Errorf("%s: schema notes %q, want none", tr.Table, tr.Schema)
		}
	}

	src, dst := schemaDump(t, prodDSN), schemaDump(t, twinDSN)
	if extra, missing := diffStatements(src, dst); len(extra)+len(missing) > 0 {
		t.Errorf("twin schema differs from the source's\nonly in the source:\n  %s\nonly in the twin:\n  %s",
			strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
	}

	// The generated column is computed from the redacted email.
	if n := queryInt(t, twin, "SELECT count(*) FROM app.users WHERE email_lower <> lower(email) OR email_lower LIKE 'user%@example.org'"); n != 0 {
		t.Errorf("%d rows whose email_lower is not lower(redacted email)", n)
	}
	// Inserts without an id draw from the sequences, past the data.
	mustExec(t, twin, "INSERT INTO app.orders (user_id, total) VALUES (1, 5)")
	mustExec(t, twin, "INSERT INTO app.users (email) VALUES ('new@example.com')")
	if id := queryInt(t, twin, "SELECT max(id) FROM app.orders"); id != 201 {
		t.Errorf("new order id = %d, want 201", id)
	}
	if inv := queryInt(t, twin, "SELECT invoice FROM app.orders WHERE id = 201"); inv < 1000 {
		t.Errorf("invoice from the standalone sequence = %d", inv)
	}
	mustExec(t, twin, "DELETE FROM app.orders WHERE id = 201; DELETE FROM app.users WHERE email = 'new@example.com'")
	// The planner uses the indexes.
	mustExec(t, twin, "SET enable_seqscan = off")
	rows, err := twin.Query(context.Background(), "EXPLAIN SELECT * FROM app.orders WHERE user_id = 3")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, twin, "RESET enable_seqscan")
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "orders_user") {
		t.Errorf("EXPLAIN does not use orders_user: %s", plan)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated AND connamespace = 'app'::regnamespace"); n != 4 {
		t.Errorf("%d validated foreign keys in the twin, want 4", n)
	}

	// An index made in the twin survives two full copies; the materialized
	// view follows the source.
	mustExec(t, twin, "CREATE INDEX twin_made ON app.orders (total); COMMENT ON TABLE app.orders IS 'twin note'")
	mustExec(t, prod, "INSERT INTO app.orders (user_id, total) VALUES (2, 1000)")
	for range 2 {
		rep := runJSON(t, cfg, 0)
		if tr := tableReport(t, rep, "app.orders"); tr.Mode != "full" {
			t.Fatalf("app.orders mode = %s, want full", tr.Mode)
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'app' AND indexname = 'twin_made'"); n != 1 {
			t.Fatalf("the index made in the twin did not survive the full copy: %q", tableReport(t, rep, "app.orders").Schema)
		}
	}
	if got := queryString(t, twin, "SELECT obj_description('app.orders'::regclass, 'pg_class')"); got != "twin note" {
		t.Errorf("twin-made comment = %q", got)
	}
	if n := queryInt(t, twin, "SELECT total FROM app.order_totals WHERE user_id = 2"); n != queryInt(t, prod, "SELECT sum(total) FROM app.orders WHERE user_id = 2") {
		t.Errorf("materialized view not refreshed after the load: %d", n)
	}
	if src, dst := schemaDump(t, prodDSN), schemaDump(t, twinDSN); true {
		extra, missing := diffStatements(src, dst)
		if len(missing) > 0 || !slices.Equal(extra, []string{"COMMENT ON TABLE app.orders IS 'twin note';", "CREATE INDEX twin_made ON app.orders USING btree (total);"}) {
			t.Errorf("after two more runs, twin schema differs from the source's\nonly in the source:\n  %s\nonly in the twin:\n  %s",
				strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
		}
	}
}

// faithfulDatabases makes a source with testdata/faithful/schema.sql and
// an empty twin.
func faithfulDatabases(t *testing.T) (prodDSN, twinDSN string, prod, twin *pgx.Conn) {
	t.Helper()
	prodDSN, twinDSN = pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin = mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, string(mustRead(t, "testdata/faithful/schema.sql")))
	return prodDSN, twinDSN, prod, twin
}

// faithfulYAML is the workflow of the faithful tests: every table of app,
// rules for the users' personal columns (and more, rules), the unruled
// columns warned about.
func faithfulYAML(prodDSN, twinDSN, rules string) string {
	return strings.Replace(oneInputYAML(prodDSN, twinDSN, `
          - name: app.*
          - name: app.users
            columns:
              email: { rule: redact_email }
              name: { rule: fake, kind: first_name }`+rules+`
          - name: app.line_notes
            columns:
              note: { rule: keep }`), "    inputs:", "    on_unclassified: warn\n    inputs:", 1)
}

// schemaDump is pg_dump --schema-only of schema app, as statements.
func schemaDump(t *testing.T, dsn string) []string {
	t.Helper()
	return schemaDumpOf(t, dsn, "app")
}

var (
	spaces     = regexp.MustCompile(`\s+`)
	spkColumn  = regexp.MustCompile(`,? source_primary_key text (DEFAULT .*?)?NOT NULL COLLATE pg_catalog\."C"`)
	trailComma = regexp.MustCompile(`,\s*\)`)
)

// normalise cuts a dump into statements without comments and settings,
// whitespace collapsed, and takes out what docs/twin.md says a faithful
// twin adds: the source_primary_key column, its unique constraint and
// index; and what it changes: identity columns are BY DEFAULT.
func normalise(dump string) []string {
	var lines []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "--") || strings.HasPrefix(l, `\`) {
			continue
		}
		lines = append(lines, l)
	}
	var out []string
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";\n") {
		s = strings.TrimSpace(spaces.ReplaceAllString(s, " "))
		if s == "" || strings.HasPrefix(s, "SET ") || strings.HasPrefix(s, "SELECT pg_catalog.set_config") || strings.HasPrefix(s, "CREATE SCHEMA") {
			continue
		}
		s = spkColumn.ReplaceAllString(s, "")
		s = trailComma.ReplaceAllString(s, " )")
		s = strings.ReplaceAll(s, "GENERATED ALWAYS AS IDENTITY", "GENERATED BY DEFAULT AS IDENTITY")
		if strings.Contains(s, "source_primary_key") {
			continue
		}
		out = append(out, strings.TrimSuffix(s, ";")+";")
	}
	slices.Sort(out)
	return out
}

// diffStatements returns the statements only in twin and only in source.
func diffStatements(source, twin []string) (extra, missing []string) {
	for _, s := range twin {
		if !slices.Contains(source, s) {
			extra = append(extra, s)
		}
	}
	for _, s := range source {
		if !slices.Contains(twin, s) {
			missing = append(missing, s)
		}
	}
	return extra, missing
}
