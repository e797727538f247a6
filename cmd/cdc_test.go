package cmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
)

// cdcTables are the source tables of the cdc tests: every kind of key whose
// text the stream renders (integer, text, uuid, composite, and a timestamp,
// which the source renders), and a redacted key, which is hashed.
const cdcSchema = `
CREATE TABLE public.customer (id int PRIMARY KEY, email text NOT NULL, name text, n int NOT NULL DEFAULT 0);
CREATE TABLE public.tagged (tag text PRIMARY KEY, note text);
CREATE TABLE public.device (id uuid PRIMARY KEY, owner int);
CREATE TABLE public.pair (a int, b text, v int, PRIMARY KEY (a, b));
CREATE TABLE public.event (at timestamptz PRIMARY KEY, what text);
CREATE TABLE public.secret (email text PRIMARY KEY, score int);
INSERT INTO public.customer SELECT i, 'u' || i || '@x.org', 'name ' || i FROM generate_series(1, 2000) i;
INSERT INTO public.tagged SELECT 'tag "' || i || E'"\\\t', 'n' FROM generate_series(1, 50) i;
INSERT INTO public.device SELECT md5(i::text)::uuid, i FROM generate_series(1, 50) i;
INSERT INTO public.pair SELECT i % 7, 'b"' || i, i FROM generate_series(1, 100) i;
INSERT INTO public.event SELECT '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 minute 1.5 seconds', 'e' FROM generate_series(1, 50) i;
INSERT INTO public.secret SELECT 's' || i || '@x.org', i FROM generate_series(1, 50) i;
`

// cdcEntries are the table entries of a workflow over cdcSchema, in a mode.
func cdcEntries(mode string) string {
	var b strings.Builder
	for _, t := range []string{"customer", "tagged", "device", "pair", "event", "secret"} {
		fmt.Fprintf(&b, "          - name: public.%s\n            mode: %s\n", t, mode)
		switch t {
		case "customer":
			b.WriteString("            columns:\n              email: { rule: redact_email }\n              name: { rule: fake, kind: full_name }\n")
		case "secret":
			b.WriteString("            columns:\n              email: { rule: redact_email }\n")
		}
	}
	return b.String()
}

// cdcChanges applies a round of mixed changes to every table of cdcSchema.
func cdcChanges(t *testing.T, prod *pgx.Conn, round int) {
	t.Helper()
	mustExec(t, prod, `UPDATE public.customer SET n = n + 1, name = 'r' || $1::int WHERE id % 5 = $1::int % 5`, round)
	mustExec(t, prod, `DELETE FROM public.customer WHERE id % 97 = $1::int % 97`, round)
	mustExec(t, prod, `INSERT INTO public.customer SELECT 100000 * $1::int + i, 'new' || i || '@y.org', NULL FROM generate_series(1, 50) i`, round)
	// A key change: the old key must leave the twin.
	mustExec(t, prod, `UPDATE public.customer SET id = id + 1000000 WHERE id % 113 = $1::int % 113 AND id < 1000000`, round)
	mustExec(t, prod, `UPDATE public.tagged SET note = 'r' || $1::int WHERE tag LIKE '%1%'`, round)
	mustExec(t, prod, `INSERT INTO public.tagged VALUES ('new' || $1::int || E'\n', 'x')`, round)
	mustExec(t, prod, `DELETE FROM public.device WHERE owner % 10 = $1::int % 10`, round)
	mustExec(t, prod, `INSERT INTO public.device SELECT md5('r' || $1::int || i)::uuid, i FROM generate_series(1, 5) i`, round)
	mustExec(t, prod, `UPDATE public.pair SET v = v + 1, b = b || 'x' WHERE v % 9 = $1::int % 9`, round)
	mustExec(t, prod, `INSERT INTO public.event VALUES ('2030-01-01 00:00:00+00'::timestamptz + $1::int * interval '1.25 seconds', 'r')`, round)
	mustExec(t, prod, `UPDATE public.secret SET score = score + 1, email = email || 'x' WHERE score % 4 = $1::int % 4`, round)
	mustExec(t, prod, `DELETE FROM public.secret WHERE score % 11 = $1::int % 11`, round)
}

// twinChecksums returns a digest of every row of each cdcSchema table in a
// twin, keyed by source_primary_key: equal digests, equal tables.
func twinChecksums(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range []string{"customer", "tagged", "device", "pair", "event", "secret"} {
		out[tb] = queryString(t, conn, fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY source_primary_key)), '')
			FROM public.%s t`, tb))
	}
	return out
}

// mustMatchFullCopy copies the source afresh into another twin (mode full)
// and checks that the cdc twin holds exactly the same rows.
func mustMatchFullCopy(t *testing.T, prodDSN string, cdcTwin *pgx.Conn, when string) {
	t.Helper()
	refDSN := pgtest.MustDatabase(t)
	cfg := oneInputConfig(t, prodDSN, refDSN, cdcEntries("full"))
	if code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-level", "error"); code != 0 {
		t.Fatalf("reference full copy: exit %d\n%s\n%s", code, out, errOut)
	}
	ref := mustConnect(t, refDSN)
	got, want := twinChecksums(t, cdcTwin), twinChecksums(t, ref)
	for tb, w := range want {
		if got[tb] != w {
			t.Errorf("%s: table %s: cdc twin %s, full copy %s; rows that differ (source_primary_key: row in the cdc twin | in the copy):\n%s",
				when, tb, got[tb], w, rowDiff(t, cdcTwin, ref, tb))
		}
	}
}

func TestCDCFirstRunCatchUpResume(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, cdcSchema)
	cfg := oneInputConfig(t, prodDSN, twinDSN, cdcEntries("cdc"))
	run := func(when string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-level", "error", "--format", "json")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", when, code, out, errOut)
		}
		return out
	}
	out := run("first run")
	if !strings.Contains(out, "first copy, from the new replication slot") {
		t.Errorf("first run does not report the slot's snapshot copy:\n%s", out)
	}
	if n := queryInt(t, prod, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'nopii_w_prod'"); n != 1 {
		t.Fatalf("slot nopii_w_prod: %d", n)
	}
	mustMatchFullCopy(t, prodDSN, twin, "after the first run")
	for round := 1; round <= 3; round++ {
		cdcChanges(t, prod, round)
		out := run(fmt.Sprintf("round %d", round))
		if strings.Contains(out, "first copy") || strings.Contains(out, "full copy") {
			t.Errorf("round %d copied a table again instead of streaming:\n%s", round, out)
		}
		mustMatchFullCopy(t, prodDSN, twin, fmt.Sprintf("round %d", round))
		t.Logf("round %d: %v\n%s", round, twinChecksums(t, twin), out)
	}
	// The state remembers where the stream stands; the slot confirmed it.
	lsn := queryString(t, twin, "SELECT min(state->>'lsn') FROM nopii.table_state WHERE source_table = 'public.customer'")
	if lsn == "NULL" || lsn == "" {
		t.Fatal("no LSN in the state")
	}
	if n := queryInt(t, prod, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'nopii_w_prod' AND confirmed_flush_lsn >= $1::pg_lsn", lsn); n != 1 {
		t.Errorf("the slot did not confirm the state's LSN %s", lsn)
	}
	// Redaction: no source email in the twin, the secret key hashed.
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE email LIKE '%@x.org' OR email LIKE '%@y.org'"); n != 0 {
		t.Errorf("%d source emails in the twin", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.secret WHERE source_primary_key LIKE '%@%'"); n != 0 {
		t.Errorf("%d secret keys not hashed", n)
	}
	// nopii cdc drop removes slot and publication.
	if code, out, errOut := runCLI(t, "cdc", "drop", "--config", cfg); code != 0 {
		t.Fatalf("cdc drop: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := queryInt(t, prod, "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)"); n != 0 {
		t.Errorf("cdc drop left %d slots and publications", n)
	}
}

// rowDiff lists the rows of a table that differ between two twins.
func rowDiff(t *testing.T, a, b *pgx.Conn, table string) string {
	t.Helper()
	rows := func(c *pgx.Conn) map[string]string {
		r, err := c.Query(t.Context(), "SELECT source_primary_key, t::text FROM public."+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		m, err := pgx.CollectRows(r, pgx.RowTo[[2]string])
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, kv := range m {
			out[kv[0]] = kv[1]
		}
		return out
	}
	ra, rb := rows(a), rows(b)
	var diff []string
	for k, v := range ra {
		if rb[k] != v {
			diff = append(diff, k+": "+v+" | "+rb[k])
		}
	}
	for k, v := range rb {
		if _, ok := ra[k]; !ok {
			diff = append(diff, k+":  | "+v)
		}
	}
	return strings.Join(diff, "\n")
}

// TestCDCForgottenStaysOut: a subject forgotten while a table streams does
// not come back with its next changes (SPEC §7).
func TestCDCForgottenStaysOut(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.customer (id int PRIMARY KEY, email text NOT NULL, n int NOT NULL DEFAULT 0);
		INSERT INTO public.customer SELECT i, 'u' || i || '@x.org' FROM generate_series(1, 500) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.customer
            mode: cdc
            identifies: [email]
            columns:
              email: { rule: redact_email }`)
	run := func(args ...string) {
		t.Helper()
		if code, out, errOut := runCLI(t, append(args, "--config", cfg, "--log-level", "error")...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	run("run")
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE source_primary_key = '7'"); n != 1 {
		t.Fatalf("first copy: subject rows %d, want 1", n)
	}
	run("subject", "forget", "--match", "email=u7@x.org")
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE source_primary_key = '7'"); n != 0 {
		t.Fatalf("forget left %d rows", n)
	}
	// The subject's row changes in the source, with others; the stream
	// brings the others and leaves the subject out.
	mustExec(t, prod, "UPDATE public.customer SET n = n + 1 WHERE id IN (7, 8, 9)")
	mustExec(t, prod, "INSERT INTO public.customer VALUES (501, 'u501@x.org', 0)")
	run("run")
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE source_primary_key = '7'"); n != 0 {
		t.Errorf("the forgotten subject came back with the stream: %d rows", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE source_primary_key IN ('8', '9') AND n = 1"); n != 2 {
		t.Errorf("the other changed rows did not stream: %d of 2", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer"); n != 500 {
		t.Errorf("twin has %d rows, want 500 (501 in the source, one forgotten)", n)
	}
}
