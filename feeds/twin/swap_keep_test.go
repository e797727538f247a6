package twin_test

import (
	"slices"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// README: "views built on its tables are recreated and grants carried over".
// The swap recreates views with CREATE VIEW name AS def, as the loading role,
// and copies table-level grants only.
func TestSwapKeepsViewOptionsOwnerAndColumnGrants(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	f := mustOpen(t, dsn, 0)
	tg := target(notesTable("notes"))
	mustPrepare(t, f, tg)
	mustLoad(t, f, tg, noteRows(1, 3, "old"))
	mustExec(t, db,
		`DO $$ BEGIN CREATE ROLE analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
		`DO $$ BEGIN CREATE ROLE view_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
		`CREATE VIEW anon_public.visible WITH (security_barrier) AS SELECT id, body FROM anon_public.notes WHERE id > 1 WITH CHECK OPTION`,
		`ALTER VIEW anon_public.visible OWNER TO view_owner`,
		`GRANT SELECT (id) ON anon_public.notes TO analyst`,
		`CREATE MATERIALIZED VIEW anon_public.ids AS SELECT id FROM anon_public.notes`,
		`CREATE UNIQUE INDEX ids_id ON anon_public.ids (id)`)

	mustLoad(t, f, tg, noteRows(1, 5, "new"))

	for _, c := range []struct{ what, sql, want string }{
		{"view options", `SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class WHERE oid = 'anon_public.visible'::regclass`, "security_barrier=true,check_option=cascaded"},
		{"view owner", `SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'anon_public.visible'::regclass`, "view_owner"},
		{"column grant", `SELECT has_column_privilege('analyst', 'anon_public.notes', 'id', 'SELECT')::text`, "true"},
		{"materialized view index", `SELECT count(*)::text FROM pg_indexes WHERE schemaname = 'anon_public' AND indexname = 'ids_id'`, "1"},
	} {
		if got := queryStrings(t, db, c.sql); !slices.Equal(got, []string{c.want}) {
			t.Errorf("after a full copy, %s = %q, want %q as before", c.what, got, c.want)
		}
	}
}
