package cmd

import (
	"strings"
	"testing"
)

// TestLeastPrivileges: a full and a delta run work with a source role that
// may only SELECT and a twin role that is not a superuser and owns nothing
// but what it creates (docs/privileges.md).
func TestLeastPrivileges(t *testing.T) {
	prodDSN, twinDSN := demoDatabases(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	prodDB := queryString(t, prod, "SELECT current_database()")
	twinDB := queryString(t, twin, "SELECT current_database()")
	mustExec(t, prod, `DO $$ BEGIN CREATE ROLE nopii_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
		GRANT USAGE ON SCHEMA public TO nopii_reader;
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO nopii_reader`)
	mustExec(t, twin, `DO $$ BEGIN CREATE ROLE nopii_loader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
		GRANT CREATE ON DATABASE `+twinDB+` TO nopii_loader;
		GRANT CREATE, USAGE ON SCHEMA public TO nopii_loader`)
	as := func(dsn, role string) string { return strings.Replace(dsn, "postgres@", role+"@", 1) }
	if n := queryInt(t, prod, "SELECT count(*) FROM pg_roles WHERE rolname IN ('nopii_reader', 'nopii_loader') AND (rolsuper OR rolreplication OR rolcreaterole OR rolcreatedb)"); n != 0 {
		t.Fatal("the test roles must have no special attributes")
	}
	t.Setenv("PROD_DATABASE_URL", as(prodDSN, "nopii_reader"))
	t.Setenv("TWIN_DATABASE_URL", as(twinDSN, "nopii_loader"))
	code, out, errOut := runCLI(t, "run", "--config", "../testdata/demo/nopii.yaml")
	if code != 0 {
		t.Fatalf("run with least privileges (source %s as nopii_reader): exit %d\n%s\n%s", prodDB, code, out, errOut)
	}
	if got := queryString(t, twin, "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'public.customer'::regclass"); got != "nopii_loader" {
		t.Errorf("twin table owned by %s", got)
	}
	// And again: the swap replaces tables that role owns.
	if code, out, errOut := runCLI(t, "run", "--config", "../testdata/demo/nopii.yaml"); code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
}
