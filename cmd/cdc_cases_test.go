package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/internal/pgtest"
)

// cdcRun runs `nopii run` on a cdc workflow and returns its JSON report.
func cdcRun(t *testing.T, cfg, when string, wantCode int) string {
	t.Helper()
	code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-level", "error", "--format", "json")
	if code != wantCode {
		t.Fatalf("%s: exit %d, want %d\n%s\n%s", when, code, wantCode, out, errOut)
	}
	return out
}

// TestCDCTruncateAndSchemaChange: a TRUNCATE empties the twin's table
// (rows inserted after it in the same transaction stay); a column added
// mid-stream makes the run copy the table again and stream on, exactly.
func TestCDCTruncateAndSchemaChange(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, cdcSchema)
	cfg := oneInputConfig(t, prodDSN, twinDSN, cdcEntries("cdc"))
	cdcRun(t, cfg, "first run", 0)

	cdcChanges(t, prod, 1)
	mustExec(t, prod, `BEGIN; UPDATE public.pair SET v = -1; TRUNCATE public.pair; INSERT INTO public.pair VALUES (1, 'after', 1); COMMIT`)
	mustExec(t, prod, `TRUNCATE public.tagged`)
	cdcRun(t, cfg, "truncate", 0)
	if n := queryInt(t, twin, "SELECT count(*) FROM public.pair"); n != 1 {
		t.Errorf("pair after TRUNCATE and one insert: %d rows, want 1", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.tagged"); n != 0 {
		t.Errorf("tagged after TRUNCATE: %d rows", n)
	}
	mustMatchFullCopy(t, prodDSN, twin, "after TRUNCATE")

	// Changes before, during and after an ALTER TABLE, in one stream.
	mustExec(t, prod, `UPDATE public.customer SET n = n + 10 WHERE id < 100`)
	mustExec(t, prod, `ALTER TABLE public.customer ADD COLUMN plan text NOT NULL DEFAULT 'free', ADD COLUMN tmp int`)
	mustExec(t, prod, `UPDATE public.customer SET plan = 'pro' WHERE id % 3 = 0`)
	mustExec(t, prod, `BEGIN; DELETE FROM public.customer WHERE id % 10 = 1; ALTER TABLE public.customer DROP COLUMN tmp; INSERT INTO public.customer (id, email, plan) VALUES (-1, 'z@x.org', 'x'); COMMIT`)
	cdcChanges(t, prod, 2)
	out := cdcRun(t, cfg, "schema change", 0)
	// The run sees the new columns when it starts: one copy, and the older
	// changes (with the older columns) skipped as the copy holds them. The
	// copy is in the table's one row of the report, which says why.
	if !strings.Contains(out, "schema changed") || strings.Count(out, `"drift_forced_full_copy": true`) != 1 || strings.Count(out, `"mode": "full"`) != 0 {
		t.Errorf("the report does not show one copy for the schema change:\n%s", out)
	}
	if got := queryString(t, twin, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'customer'"); got != "id,email,name,n,plan,source_primary_key" {
		t.Errorf("twin customer columns: %s", got)
	}
	mustMatchFullCopy(t, prodDSN, twin, "after the schema change")
	cdcChanges(t, prod, 3)
	out = cdcRun(t, cfg, "after the schema change", 0)
	if strings.Contains(out, "full copy") {
		t.Errorf("the run after the schema change copied again:\n%s", out)
	}
	mustMatchFullCopy(t, prodDSN, twin, "streaming after the schema change")
}

// TestCDCTableWithoutKey: a table without a primary key is refused with
// the fix in the message; with primary_key set but no replica identity on
// it, the message says REPLICA IDENTITY FULL; with that, it streams.
func TestCDCTableWithoutKey(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.log (id int NOT NULL, msg text);
		INSERT INTO public.log SELECT i, 'm' || i FROM generate_series(1, 20) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, "          - name: public.log\n            mode: cdc\n")
	out := cdcRun(t, cfg, "no key", 1)
	if !strings.Contains(out, "public.log") || !strings.Contains(out, "primary_key") {
		t.Errorf("the error does not name the table and the fix:\n%s", out)
	}
	cfg = oneInputConfig(t, prodDSN, twinDSN, "          - name: public.log\n            mode: cdc\n            primary_key: [id]\n")
	out = cdcRun(t, cfg, "key without replica identity", 1)
	if !strings.Contains(out, `ALTER TABLE \"public\".\"log\" REPLICA IDENTITY FULL`) {
		t.Errorf("the error does not give the fix:\n%s", out)
	}
	mustExec(t, prod, `ALTER TABLE public.log REPLICA IDENTITY FULL`)
	cdcRun(t, cfg, "replica identity full", 0)
	mustExec(t, prod, `UPDATE public.log SET msg = 'x' WHERE id < 5; DELETE FROM public.log WHERE id > 15; UPDATE public.log SET id = 100 WHERE id = 10`)
	cdcRun(t, cfg, "changes", 0)
	if got := queryString(t, twin, "SELECT string_agg(source_primary_key || '=' || msg, ',' ORDER BY id) FROM public.log WHERE id < 5 OR id > 9"); got != "1=x,2=x,3=x,4=x,11=m11,12=m12,13=m13,14=m14,15=m15,100=m10" {
		t.Errorf("twin after changes: %s", got)
	}
}

// TestCDCSourceRestart: the agent streams; the source restarts (the slot
// survives); the agent reconnects and the changes made meanwhile arrive.
// Then a column is added while the agent streams: it copies the table
// again mid-stream and goes on.
func TestCDCSourceRestart(t *testing.T) {
	bin := buildNopii(t)
	cluster := pgtest.MustNewCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	prodDSN, err := cluster.CreateDatabase(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	twinDSN := pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, cdcSchema)
	listen := freeAddr(t)
	cfg := cdcAgentConfig(t, prodDSN, twinDSN, listen)
	var out syncBuf
	agent := startAgent(t, bin, cfg, &out)
	defer func() {
		agent(true)
		if t.Failed() {
			t.Logf("agent output:\n%s", out.String())
		}
	}()
	eventually(t, 60*time.Second, "the first copy", func() bool {
		var n int64
		return twin.QueryRow(t.Context(), "SELECT count(*) FROM nopii.table_state WHERE state->>'lsn' <> ''").Scan(&n) == nil && n == 6
	})
	cdcChanges(t, prod, 1)
	prod.Close(ctx)
	if err := cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	prod = mustConnect(t, prodDSN)
	cdcChanges(t, prod, 2)
	end := queryString(t, prod, "SELECT pg_current_wal_insert_lsn()::text")
	eventually(t, 120*time.Second, "the agent caught up after the restart", func() bool {
		var ok bool
		err := prod.QueryRow(t.Context(), "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = 'nopii_w_prod'", end).Scan(&ok)
		return err == nil && ok
	})
	mustMatchFullCopy(t, prodDSN, twin, "after the source restart")

	mustExec(t, prod, `UPDATE public.customer SET n = n + 10 WHERE id < 100`)
	mustExec(t, prod, `ALTER TABLE public.customer ADD COLUMN plan text NOT NULL DEFAULT 'free'`)
	mustExec(t, prod, `UPDATE public.customer SET plan = 'pro' WHERE id % 3 = 0`)
	cdcChanges(t, prod, 3)
	end = queryString(t, prod, "SELECT pg_current_wal_insert_lsn()::text")
	eventually(t, 120*time.Second, "the agent copied customer again and caught up", func() bool {
		var ok bool
		err := prod.QueryRow(t.Context(), "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = 'nopii_w_prod'", end).Scan(&ok)
		return err == nil && ok
	})
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE plan = 'pro'"); n == 0 {
		t.Error("the twin has no rows with the new column's values")
	}
	mustMatchFullCopy(t, prodDSN, twin, "after the schema change mid-stream")
}

// lakeKeys rebuilds a table from a files feed's JSONL objects and returns
// its source_primary_key values (lakeRows).
func lakeKeys(t *testing.T, dir string, table nopii.TableName) (keys map[string]bool, deltas, deletes int64) {
	t.Helper()
	rows, deltas, deletes := lakeRows(t, dir, table)
	keys = map[string]bool{}
	for k := range rows {
		keys[k] = true
	}
	return keys, deltas, deletes
}

// lakeRows rebuilds a table from a files feed's JSONL objects — the
// snapshot, then each delta's upserts and deletes in order — and returns
// its rows by source_primary_key.
func lakeRows(t *testing.T, dir string, table nopii.TableName) (rows map[string]map[string]any, deltas, deletes int64) {
	t.Helper()
	tdir := filepath.Join(dir, lake.TableDir("w", table))
	var m lake.Manifest
	if err := json.Unmarshal(mustRead(t, filepath.Join(tdir, lake.ManifestName)), &m); err != nil {
		t.Fatal(err)
	}
	rows = map[string]map[string]any{}
	apply := func(parts []lake.Part) {
		for _, p := range parts {
			for _, line := range strings.Split(strings.TrimSpace(string(mustRead(t, filepath.Join(tdir, p.Path)))), "\n") {
				if line == "" {
					continue
				}
				var row map[string]any
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatalf("%s: %v", p.Path, err)
				}
				k := row[nopii.SourcePrimaryKeyColumn].(string)
				if row[lake.OpColumn] == lake.OpDelete {
					delete(rows, k)
				} else {
					rows[k] = row
				}
			}
		}
	}
	apply(m.Snapshot.Parts)
	for _, d := range m.Deltas {
		apply(d.Parts)
		deletes += d.Deletes
	}
	return rows, int64(len(m.Deltas)), deletes
}

// TestCDCUnchangedToast: under REPLICA IDENTITY DEFAULT an UPDATE that
// leaves a large (TOASTed) value unchanged does not send it; the stream
// reads it again (or takes it from the batch's last row of the key), and
// twin and files feed hold the redacted source exactly, redacted and
// unredacted large columns alike.
func TestCDCUnchangedToast(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	// STORAGE EXTERNAL: no compression, so 3 kB values are stored out of
	// line, and unchanged ones are not in the WAL of an UPDATE.
	mustExec(t, prod, `CREATE TABLE public.doc (id int PRIMARY KEY, n int NOT NULL, body text, secret text);
		ALTER TABLE public.doc ALTER body SET STORAGE EXTERNAL, ALTER secret SET STORAGE EXTERNAL;
		INSERT INTO public.doc SELECT i, 0, repeat('body ' || i || ' ', 400), repeat('secret ' || i || ' ', 400) FROM generate_series(1, 20) i`)
	if n := queryInt(t, prod, "SELECT count(*) FROM public.doc WHERE pg_column_size(body) > 2000 AND pg_column_size(secret) > 2000"); n != 20 {
		t.Fatalf("%d rows with large values", n)
	}
	dir := t.TempDir()
	entries := "          - name: public.doc\n            mode: %s\n            columns:\n              secret: { rule: hash }\n"
	cfg := oneInputConfig(t, prodDSN, twinDSN, fmt.Sprintf(entries, "cdc"))
	body := strings.Replace(string(mustRead(t, cfg)), "    feeds:\n", "    feeds:\n      - type: files\n        path: "+dir+"\n        format: jsonl\n        compression: none\n", 1)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cdcRun(t, cfg, "first run", 0)
	mustExec(t, prod, `UPDATE public.doc SET n = n + 1 WHERE id <= 10`) // read again from the source
	mustExec(t, prod, `BEGIN; INSERT INTO public.doc VALUES (100, 0, repeat('new ', 900), repeat('hidden ', 900));
		UPDATE public.doc SET n = 5 WHERE id = 100; COMMIT`) // from the batch's row of the key
	mustExec(t, prod, `UPDATE public.doc SET id = 1005 WHERE id = 5`)                                  // a key change
	mustExec(t, prod, `UPDATE public.doc SET n = 7 WHERE id = 6; DELETE FROM public.doc WHERE id = 6`) // gone when read again
	mustExec(t, prod, `UPDATE public.doc SET body = repeat('changed ', 500) WHERE id = 8; UPDATE public.doc SET n = 9 WHERE id = 8`)
	out := cdcRun(t, cfg, "updates that leave large values unchanged", 0)
	var rep struct {
		Tables []struct{ Refetched int64 }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Tables) != 1 || rep.Tables[0].Refetched < 8 {
		t.Errorf("the report does not count the rows read again (at least ids 1-10 but 6 and 8): %v\n%s", err, out)
	}
	// The same rows as a fresh full copy.
	refDSN := pgtest.MustDatabase(t)
	if code, o, e := runCLI(t, "run", "--config", oneInputConfig(t, prodDSN, refDSN, fmt.Sprintf(entries, "full")), "--log-level", "error"); code != 0 {
		t.Fatalf("reference full copy: exit %d\n%s\n%s", code, o, e)
	}
	ref := mustConnect(t, refDSN)
	sum := `SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY source_primary_key)) FROM public.doc t`
	if got, want := queryString(t, twin, sum), queryString(t, ref, sum); got != want {
		t.Errorf("cdc twin %s, full copy %s; rows that differ:\n%s", got, want, rowDiff(t, twin, ref, "doc"))
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.doc WHERE secret LIKE '%secret%' OR secret LIKE '%hidden%'"); n != 0 {
		t.Errorf("%d source values of the redacted column in the twin", n)
	}
	rows, _, _ := lakeRows(t, dir, nopii.TableName{Schema: "public", Name: "doc"})
	r, err := ref.Query(t.Context(), "SELECT source_primary_key, n, body, secret FROM public.doc")
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(r, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) {
		t.Errorf("the files feed holds %d rows, the full copy %d", len(rows), len(want))
	}
	for _, w := range want {
		k := w[nopii.SourcePrimaryKeyColumn].(string)
		got := rows[k]
		if got == nil || got["body"] != w["body"] || got["secret"] != w["secret"] || fmt.Sprint(got["n"]) != fmt.Sprint(w["n"]) {
			t.Errorf("key %s: the files feed's row differs from the full copy's", k)
		}
	}
}

// TestCDCFilesFeed streams into a twin and a files feed at once: the lake's
// snapshot plus its delta folders hold the twin's keys, TRUNCATE included.
func TestCDCFilesFeed(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, cdcSchema)
	dir := t.TempDir()
	cfg := oneInputConfig(t, prodDSN, twinDSN, cdcEntries("cdc"))
	body := strings.Replace(string(mustRead(t, cfg)), "    feeds:\n", "    feeds:\n      - type: files\n        path: "+dir+"\n        format: jsonl\n        compression: none\n", 1)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cdcRun(t, cfg, "first run", 0)
	for round := 1; round <= 2; round++ {
		cdcChanges(t, prod, round)
		mustExec(t, prod, `TRUNCATE public.device; INSERT INTO public.device VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1)`)
		cdcRun(t, cfg, "changes", 0)
	}
	mustMatchFullCopy(t, prodDSN, twin, "twin next to a files feed")
	for _, name := range []string{"customer", "pair", "secret", "device", "tagged"} {
		tn := nopii.TableName{Schema: "public", Name: name}
		got, deltas, deletes := lakeKeys(t, dir, tn)
		if deltas < 2 || (name == "device" && deletes < 50) {
			t.Errorf("%s: %d delta folders with %d deletes; want one per run, and the truncates' deletes", name, deltas, deletes)
		}
		rows, err := twin.Query(t.Context(), "SELECT source_primary_key FROM public."+name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: the files feed holds %d keys, the twin %d", name, len(got), len(want))
		}
		for _, k := range want {
			if !got[k] {
				t.Errorf("%s: key %q in the twin, not in the files feed", name, k)
				break
			}
		}
	}
}

// TestCDCLeastPrivileges: mode cdc with the smallest source role
// (docs/cdc.md#privileges-source): SELECT on the tables, the REPLICATION
// attribute, and a publication created by an owner. Each missing piece
// fails the run with a message that gives the fix.
func TestCDCLeastPrivileges(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.customer (id int PRIMARY KEY, email text NOT NULL, n int NOT NULL DEFAULT 0);
		CREATE TABLE public.other (id int PRIMARY KEY);
		INSERT INTO public.customer SELECT i, 'u' || i || '@x.org' FROM generate_series(1, 100) i;
		DO $$ BEGIN CREATE ROLE nopii_streamer LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
		ALTER ROLE nopii_streamer NOREPLICATION;
		GRANT USAGE ON SCHEMA public TO nopii_streamer;
		GRANT SELECT ON public.customer, public.other TO nopii_streamer`)
	if n := queryInt(t, prod, "SELECT count(*) FROM pg_roles WHERE rolname = 'nopii_streamer' AND (rolsuper OR rolreplication OR rolcreaterole OR rolcreatedb)"); n != 0 {
		t.Fatal("the test role must have no special attributes")
	}
	entries := "          - name: public.customer\n            mode: cdc\n            columns:\n              email: { rule: redact_email }\n"
	cfg := oneInputConfig(t, strings.Replace(prodDSN, "postgres@", "nopii_streamer@", 1), twinDSN, entries)
	mustFail := func(when string, want ...string) {
		t.Helper()
		code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-level", "error")
		if code == 0 {
			t.Fatalf("%s: the run succeeded", when)
		}
		t.Logf("%s: %s%s", when, out, errOut)
		for _, w := range want {
			if !strings.Contains(out+errOut, w) {
				t.Errorf("%s: the error does not say %q:\n%s\n%s", when, w, out, errOut)
			}
		}
	}
	mustFail("without REPLICATION", "REPLICATION")
	mustExec(t, prod, "ALTER ROLE nopii_streamer REPLICATION")
	mustFail("without a publication or ownership", "create publication nopii_w_prod",
		`or have an owner run: CREATE PUBLICATION "nopii_w_prod" FOR TABLE "public"."customer" WITH (publish_via_partition_root = true)`)
	// What the message says, as the owner.
	mustExec(t, prod, `CREATE PUBLICATION "nopii_w_prod" FOR TABLE "public"."customer" WITH (publish_via_partition_root = true)`)
	cdcRun(t, cfg, "with a publication created by the owner", 0)
	mustExec(t, prod, "UPDATE public.customer SET n = n + 1 WHERE id <= 10; DELETE FROM public.customer WHERE id = 100")
	cdcRun(t, cfg, "streaming", 0)
	if got := queryString(t, twin, "SELECT count(*) || ',' || sum(n) FROM public.customer"); got != "99,10" {
		t.Errorf("twin after the stream: rows,sum(n) = %s, want 99,10", got)
	}
	// A new table needs the publication changed, which needs its owner.
	cfg = oneInputConfig(t, strings.Replace(prodDSN, "postgres@", "nopii_streamer@", 1), twinDSN, entries+"          - name: public.other\n            mode: cdc\n")
	mustFail("a table added", `or have an owner run: ALTER PUBLICATION "nopii_w_prod" SET TABLE "public"."customer", "public"."other"`)
	// nopii cdc drop drops the slot and leaves the owner's publication.
	if code, out, errOut := runCLI(t, "cdc", "drop", "--config", cfg); code != 0 || !strings.Contains(out, "dropped replication slot nopii_w_prod") {
		t.Fatalf("cdc drop: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := queryInt(t, prod, "SELECT (SELECT count(*) FROM pg_replication_slots) * 10 + (SELECT count(*) FROM pg_publication)"); n != 1 {
		t.Errorf("after cdc drop: 10×slots + publications = %d, want the publication alone", n)
	}
}

// TestCDCSlotWALWarn: a stream whose slot retains more WAL than the
// input's slot_wal_warn says so in the logs; under the default 1 GiB it
// does not.
func TestCDCSlotWALWarn(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.customer (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
		INSERT INTO public.customer SELECT i FROM generate_series(1, 100) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, "          - name: public.customer\n            mode: cdc\n")
	run := func(when string) string {
		t.Helper()
		mustExec(t, prod, "UPDATE public.customer SET n = n + 1")
		code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-level", "warn")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", when, code, out, errOut)
		}
		return errOut
	}
	run("first run")
	if logs := run("default threshold"); strings.Contains(logs, "retains much WAL") {
		t.Errorf("a warning under the default threshold:\n%s", logs)
	}
	body := strings.Replace(string(mustRead(t, cfg)), "        tables:\n", "        slot_wal_warn: 1kB\n        tables:\n", 1)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := run("slot_wal_warn: 1kB")
	if !strings.Contains(logs, "the replication slot retains much WAL on the source") || !strings.Contains(logs, `"slot_wal_warn":1000`) {
		t.Errorf("no warning with the threshold in it:\n%s", logs)
	}
}
