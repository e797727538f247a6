package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/rulesets"
)

// runJSON runs `nopii run --format json` and returns the report.
func runJSON(t *testing.T, cfgPath string, wantCode int) agent.Report {
	t.Helper()
	code, out, errOut := runCLI(t, "run", "--config", cfgPath, "--format", "json")
	if code != wantCode {
		t.Fatalf("nopii run exited %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out, errOut)
	}
	var rep agent.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	return rep
}

func tableReport(t *testing.T, rep agent.Report, table string) agent.TableReport {
	t.Helper()
	for _, tr := range rep.Tables {
		if tr.Table == table {
			return tr
		}
	}
	t.Fatalf("no report for %s in %+v", table, rep)
	return agent.TableReport{}
}

// TestDeltaUpdates: inserts, updates and deletes between runs land in the
// twin; deletes only with detect_deletes; plan says what the run will do.
func TestDeltaUpdates(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	for _, tbl := range []string{"keep_deleted", "sync_deleted"} {
		mustExec(t, prod, fmt.Sprintf(`CREATE TABLE public.%[1]s (id bigint PRIMARY KEY, email text NOT NULL, name text,
			updated_at timestamptz NOT NULL);
			CREATE INDEX ON public.%[1]s (updated_at);
			INSERT INTO public.%[1]s SELECT i, 'u' || i || '@x.org', 'n' || i, now() - interval '1 day' - i * interval '1 hour' FROM generate_series(1, 1000) i`, tbl))
	}
	mustExec(t, prod, `CREATE TABLE public.noindex (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.keep_deleted
            updated_at: updated_at
            columns:
              email: { rule: redact_email }
          - name: public.sync_deleted
            updated_at: updated_at
            detect_deletes: true
            columns:
              email: { rule: redact_email }
          - name: public.noindex
            updated_at: updated_at`)
	rep := runJSON(t, cfgPath, 0)
	if tr := tableReport(t, rep, "public.keep_deleted"); tr.Mode != "full" || tr.Reason != "first run" || tr.Rows != 1000 {
		t.Fatalf("first run: %+v", tr)
	}
	for _, tbl := range []string{"keep_deleted", "sync_deleted"} {
		mustExec(t, prod, fmt.Sprintf(`UPDATE public.%[1]s SET name = 'changed', email = 'new' || id || '@x.org', updated_at = now() WHERE id <= 10;
			INSERT INTO public.%[1]s SELECT i, 'u' || i || '@x.org', 'fresh', now() FROM generate_series(1001, 1005) i;
			DELETE FROM public.%[1]s WHERE id BETWEEN 500 AND 502`, tbl))
	}

	code, out, _ := runCLI(t, "plan", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "delta from cursor updated_at > ") || !strings.Contains(out, "no index on public.noindex.updated_at") {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "no index on public.keep_deleted") {
		t.Fatalf("plan warns about a cursor column that has an index:\n%s", out)
	}

	rep = runJSON(t, cfgPath, 0)
	for _, tc := range []struct {
		table            string
		wantRows, wantDl int64
	}{{"keep_deleted", 1005, 0}, {"sync_deleted", 1002, 3}} {
		tr := tableReport(t, rep, "public."+tc.table)
		if tr.Mode != "delta" || tr.Upserted != 15 || tr.Deleted != tc.wantDl || tr.Rows != 15 {
			t.Errorf("%s: mode %s rows %d upserted %d deleted %d, want delta 15/15/%d", tc.table, tr.Mode, tr.Rows, tr.Upserted, tr.Deleted, tc.wantDl)
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM public."+tc.table); n != tc.wantRows {
			t.Errorf("%s: twin has %d rows, want %d", tc.table, n, tc.wantRows)
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM public."+tc.table+" WHERE name = 'changed'"); n != 10 {
			t.Errorf("%s: %d updated rows in the twin, want 10", tc.table, n)
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM public."+tc.table+" WHERE email LIKE '%x.org'"); n != 0 {
			t.Errorf("%s: %d raw emails reached the twin through the delta", tc.table, n)
		}
		// The twin's delta rows redact exactly as a full copy would.
		if got, want := queryString(t, twin, "SELECT email FROM public."+tc.table+" WHERE id = 1003"),
			queryString(t, twin, "SELECT email FROM public.keep_deleted WHERE id = 1003"); got != want {
			t.Errorf("delta-redacted emails differ between tables: %s vs %s", got, want)
		}
	}
	// A run with nothing changed reads again only the rows inside the
	// overlap behind the cursor (the 15 just written), and changes nothing.
	before := tableDigest(t, twin, "public.keep_deleted", "id")
	rep = runJSON(t, cfgPath, 0)
	if tr := tableReport(t, rep, "public.keep_deleted"); tr.Mode != "delta" || tr.Rows > 15 {
		t.Errorf("idle delta read more than the overlap: %+v", tr)
	}
	if after := tableDigest(t, twin, "public.keep_deleted", "id"); after != before {
		t.Error("an idle delta changed the twin")
	}
}

// TestDeltaInFlightWriter: a row stamped by a transaction that began before
// the run's snapshot and committed after it is not lost.
func TestDeltaInFlightWriter(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.acct (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
		INSERT INTO public.acct SELECT i, 'n' || i, now() - interval '1 hour' - i * interval '1 hour' FROM generate_series(1, 100) i`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.acct
            updated_at: updated_at`)
	runJSON(t, cfgPath, 0)

	writer := mustConnect(t, prodDSN)
	mustExec(t, writer, "BEGIN")
	mustExec(t, writer, "UPDATE public.acct SET name = 'slow writer', updated_at = now() WHERE id = 1")
	time.Sleep(20 * time.Millisecond)
	mustExec(t, prod, "UPDATE public.acct SET name = 'fast writer', updated_at = now() WHERE id = 2")
	rep := runJSON(t, cfgPath, 0)
	// Row 1 is read again (inside the overlap, as the snapshot has it:
	// unchanged, so not rewritten); row 2 changed.
	if tr := tableReport(t, rep, "public.acct"); tr.Mode != "delta" || tr.Rows != 2 || tr.Upserted != 1 {
		t.Fatalf("delta while a writer is in flight: %+v", tr)
	}
	// The saved cursor must not pass the in-flight writer's stamp.
	var stamp time.Time
	if err := writer.QueryRow(context.Background(), "SELECT updated_at FROM public.acct WHERE id = 1").Scan(&stamp); err != nil {
		t.Fatal(err)
	}
	var st struct{ Cursors map[string]string }
	if err := json.Unmarshal([]byte(queryString(t, twin, "SELECT state::text FROM nopii.table_state WHERE source_table = 'public.acct'")), &st); err != nil {
		t.Fatal(err)
	}
	cur, err := time.Parse("2006-01-02 15:04:05.999999-07", st.Cursors["updated_at"])
	if err != nil {
		t.Fatalf("cursor %q: %v", st.Cursors["updated_at"], err)
	}
	if cur.After(stamp) {
		t.Fatalf("cursor %s passed the in-flight writer's stamp %s", cur, stamp)
	}
	mustExec(t, writer, "COMMIT")
	runJSON(t, cfgPath, 0)
	if got := queryString(t, twin, "SELECT name FROM public.acct WHERE id = 1"); got != "slow writer" {
		t.Fatalf("the in-flight writer's row was lost: name = %q", got)
	}
}

// TestWindow: only rows inside the window are copied; rows that age out
// leave the twin on the next run.
func TestWindow(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.ev (id int PRIMARY KEY, created_at timestamptz NOT NULL);
		INSERT INTO public.ev SELECT i, now() - i * interval '1 day' + interval '1 hour' FROM generate_series(1, 20) i`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.ev
            created_at: created_at
            window: 7d
            window_by: created_at`)
	runJSON(t, cfgPath, 0)
	if n := queryInt(t, twin, "SELECT count(*) FROM public.ev"); n != 7 {
		t.Fatalf("first run copied %d rows, want the 7 inside the window", n)
	}
	// Rows 1–3 age out (as if days passed); a new row arrives.
	mustExec(t, prod, `UPDATE public.ev SET created_at = created_at - interval '30 days' WHERE id <= 3;
		INSERT INTO public.ev VALUES (100, now())`)
	rep := runJSON(t, cfgPath, 0)
	tr := tableReport(t, rep, "public.ev")
	if tr.Mode != "delta" || tr.Deleted != 3 || tr.Upserted != 1 {
		t.Fatalf("window delta: %+v", tr)
	}
	if got := queryString(t, twin, "SELECT string_agg(id::text, ',' ORDER BY id) FROM public.ev"); got != "4,5,6,7,100" {
		t.Fatalf("twin ids after ageing = %s, want 4,5,6,7,100", got)
	}
}

// TestSchemaDrift: every kind of drift forces a full copy with the new
// schema, and the report says what changed; a new column that looks like
// PII and has no rule fails closed, leaving the twin untouched.
func TestSchemaDrift(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.person (id int PRIMARY KEY, email text, score int, note text, updated_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO public.person SELECT i, 'p' || i || '@x.org', i, 'note', now() - interval '1 day' FROM generate_series(1, 50) i`)
	tables := `
          - name: public.person
            updated_at: updated_at
            columns:
              email: { rule: redact_email }`
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, tables)
	runJSON(t, cfgPath, 0)
	steps := []struct {
		ddl, reason, twinCheck string
	}{
		{"ALTER TABLE public.person ADD COLUMN nickname text DEFAULT 'nick'", "added column nickname",
			"SELECT count(*) FROM public.person WHERE nickname = 'nick'"},
		{"ALTER TABLE public.person DROP COLUMN note", "dropped column note",
			"SELECT count(*) FROM public.person WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'person' AND column_name = 'note')"},
		{"ALTER TABLE public.person RENAME COLUMN score TO points", "added column points, dropped column score",
			"SELECT count(*) FROM public.person WHERE points = id"},
		{"ALTER TABLE public.person ALTER COLUMN points TYPE bigint", "type of points integer → bigint",
			"SELECT count(*) FROM public.person WHERE pg_typeof(points) = 'bigint'::regtype"},
		{"ALTER TABLE public.person ALTER COLUMN nickname SET NOT NULL", "nickname became NOT NULL",
			"SELECT count(*) FROM public.person WHERE nickname IS NOT NULL"},
	}
	for _, s := range steps {
		mustExec(t, prod, s.ddl)
		tr := tableReport(t, runJSON(t, cfgPath, 0), "public.person")
		if tr.Mode != "full" || !tr.DriftForced || !strings.Contains(tr.Reason, "full copy: schema changed ("+s.reason) {
			t.Fatalf("after %q: mode %s drift %v reason %q", s.ddl, tr.Mode, tr.DriftForced, tr.Reason)
		}
		if n := queryInt(t, twin, s.twinCheck); n != 50 {
			t.Fatalf("after %q the twin fails %q (%d rows)", s.ddl, s.twinCheck, n)
		}
		// And the run after that is a plain delta again.
		if tr := tableReport(t, runJSON(t, cfgPath, 0), "public.person"); tr.Mode != "delta" {
			t.Fatalf("after drift, next run: %+v", tr)
		}
	}

	// A new PII-looking column without a rule: fail closed.
	before := tableDigest(t, twin, "public.person", "id")
	mustExec(t, prod, "ALTER TABLE public.person ADD COLUMN backup_contact text; UPDATE public.person SET backup_contact = 'b' || id || '@mail.org'")
	code, out, _ := runCLI(t, "plan", "--config", cfgPath)
	if code != 1 || !strings.Contains(out, "backup_contact: email → add { rule: redact_email }") {
		t.Fatalf("plan should flag the unclassified column: exit %d\n%s", code, out)
	}
	rep := runJSON(t, cfgPath, 1)
	tr := tableReport(t, rep, "public.person")
	if !strings.Contains(tr.Error, "backup_contact: { rule: redact_email }") || !strings.Contains(tr.Error, "nothing was written") {
		t.Fatalf("error should name the column and the rule to add: %q", tr.Error)
	}
	if after := tableDigest(t, twin, "public.person", "id"); after != before {
		t.Fatal("the twin changed although the table failed closed")
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'person' AND column_name = 'backup_contact'"); n != 0 {
		t.Fatal("the unclassified column reached the twin")
	}
	// With the rule added, it goes through redacted.
	cfgPath = oneInputConfig(t, prodDSN, twinDSN, tables+`
              backup_contact: { rule: redact_email }`)
	if tr := tableReport(t, runJSON(t, cfgPath, 0), "public.person"); !tr.DriftForced {
		t.Fatalf("%+v", tr)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.person WHERE backup_contact LIKE 'u%@example.com'"); n != 50 {
		t.Fatalf("backup_contact not redacted: %d", n)
	}
}

// TestCancelMidDelta: an interrupted delta moves neither rows nor cursor;
// the next run converges.
func TestCancelMidDelta(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.big (id int PRIMARY KEY, v int NOT NULL, updated_at timestamptz NOT NULL);
		INSERT INTO public.big SELECT i, 0, now() - interval '1 day' - i * interval '1 second' FROM generate_series(1, 60000) i`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.big
            updated_at: updated_at`)
	runJSON(t, cfgPath, 0)
	state := func() string {
		return queryString(t, twin, "SELECT state->>'cursors' FROM nopii.table_state WHERE source_table = 'public.big'")
	}
	cursorBefore := state()
	mustExec(t, prod, "UPDATE public.big SET v = 1, updated_at = now() WHERE id <= 40000")

	cfg, err := config.Load(cfgPath, config.Options{CheckRule: rulesets.Check, RuleNeedsKey: rulesets.NeedsKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := newRunner(slog.New(slog.NewTextHandler(io.Discard, nil)), &cancelOnProgress{cancel: cancel}).Run(ctx, cfg, &cfg.Workflows[0])
	if !rep.Failed() || rep.Tables[0].Mode != "delta" {
		t.Fatalf("the delta should have been cancelled: %+v", rep.Tables)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big WHERE v = 1"); n != 0 {
		t.Fatalf("%d rows of the cancelled delta reached the twin", n)
	}
	if got := state(); got != cursorBefore {
		t.Fatalf("cursor moved by a cancelled run: %s → %s", cursorBefore, got)
	}
	tr := tableReport(t, runJSON(t, cfgPath, 0), "public.big")
	if tr.Mode != "delta" || tr.Upserted != 40000 {
		t.Fatalf("converging run: %+v", tr)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big WHERE v = 1"); n != 40000 {
		t.Fatalf("after convergence %d rows updated, want 40000", n)
	}
}

var _ = pgx.ErrNoRows
