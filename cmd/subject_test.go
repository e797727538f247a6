package cmd

import (
	"archive/zip"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/internal/s3test"
)

// subjectReport runs a subject command with --format json.
func subjectReport(t *testing.T, wantCode int, args ...string) agent.SubjectReport {
	t.Helper()
	code, out, errOut := runCLI(t, append(args, "--format", "json")...)
	if code != wantCode {
		t.Fatalf("nopii %s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args[:2], " "), code, wantCode, out, errOut)
	}
	var rep agent.SubjectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	return rep
}

func subjectTable(t *testing.T, rep agent.SubjectReport, input, table string) agent.SubjectTable {
	t.Helper()
	for _, st := range rep.Tables {
		if st.Input == input && st.Table == table {
			return st
		}
	}
	t.Fatalf("no %s %s in %+v", input, table, rep.Tables)
	return agent.SubjectTable{}
}

// TestSubjectRequests: find, export and forget one person across two
// inputs and three feeds (twin, S3, files), following foreign keys; the
// safeguard refuses an over-wide match with nothing deleted; dry run;
// audit without the identifier; lake objects rewritten with every other
// row intact; the subject stays forgotten through delta and full runs;
// --requests with --include-sources deletes from the sources.
func TestSubjectRequests(t *testing.T) {
	prodDSN, crmDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), string(mustRead(t, "../testdata/subject/prod.sql")))
	mustExec(t, mustConnect(t, crmDSN), string(mustRead(t, "../testdata/subject/crm.sql")))
	srv := s3test.MustServer(t)
	bucket := s3test.MustBucket(t)
	dir := t.TempDir()
	cfg := writeConfig(t, `
version: 1
hmac_key: `+testKey+`
workflows:
  - name: shop
    inputs:
      - name: prod
        dsn: `+prodDSN+`
        tables:
          - name: public.customer
            updated_at: updated_at
            identifies: [email, name]
            columns:
              email: { rule: redact_email }
              name: { rule: fake, kind: first_name }
          - name: public.rental
          - name: public.payment
          - name: public.note
          - name: public.account
            columns:
              primary_card: { rule: hash }
          - name: public.card
      - name: crm
        dsn: `+crmDSN+`
        tables:
          - name: public.contact
            identifies: [email]
            columns:
              email: { rule: redact_email }
              phone: { rule: mask }
          - name: public.ticket
          - name: public.subscriber
            identifies: [email]
            columns:
              email: { rule: redact_email }
    feeds:
      - type: twin
        dsn: `+twinDSN+`
      - type: s3
        bucket: `+bucket+`
        prefix: lake/
        region: `+srv.Region+`
        endpoint: `+srv.Endpoint()+`
        access_key_id: `+srv.AccessKey+`
        secret_access_key: `+srv.SecretKey+`
        format: parquet
      - type: files
        path: `+dir+`
        format: csv
        compression: gzip
`)
	rep := runJSON(t, cfg, 0)
	if rep.Status != "success" {
		t.Fatalf("first run: %+v", rep)
	}
	twin, prod := mustConnect(t, twinDSN), mustConnect(t, prodDSN)
	lakes := map[string]*laketest.Reader{"s3": laketest.NewReader(mustS3Store(t, srv, bucket), lake.Options{Workflow: "shop", Format: "parquet"})}
	fstore, err := files.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	lakes["files"] = laketest.NewReader(fstore, lake.Options{Workflow: "shop", Format: "csv", Compression: "gzip"})
	subject := []string{"--config", cfg, "--match", "email=customer1@example.org"}

	// A column the config does not declare identifying is refused, naming those that are.
	code, _, errOut := runCLI(t, "subject", "find", "--config", cfg, "--match", "phone=+1 555 0000001")
	if code != 1 || !strings.Contains(errOut, `column "phone" is not declared identifying`) || !strings.Contains(errOut, "email, name") || strings.Contains(errOut, "555") {
		t.Errorf("find on phone: exit %d\n%s", code, errOut)
	}

	// find: per input, table and feed, the subject's rows.
	want := map[string]int64{"prod public.customer": 1, "prod public.rental": 3, "prod public.payment": 3, "prod public.note": 2,
		"prod public.account": 1, "prod public.card": 1, "crm public.contact": 1, "crm public.ticket": 2, "crm public.subscriber": 1}
	found := subjectReport(t, 0, append([]string{"subject", "find"}, subject...)...)
	if len(found.Tables) != len(want) {
		t.Errorf("find: %d tables, want %d: %+v", len(found.Tables), len(want), found.Tables)
	}
	for _, st := range found.Tables {
		if st.SourceRows != want[st.Input+" "+st.Table] {
			t.Errorf("find %s %s: %d source rows, want %d", st.Input, st.Table, st.SourceRows, want[st.Input+" "+st.Table])
		}
		if len(st.Feeds) != 3 {
			t.Errorf("find %s: feeds %+v", st.Table, st.Feeds)
		}
		for _, f := range st.Feeds {
			if f.Rows != st.SourceRows {
				t.Errorf("find %s %s in %s: %d rows, want %d", st.Input, st.Table, f.Feed, f.Rows, st.SourceRows)
			}
		}
	}
	if via := subjectTable(t, found, "prod", "public.payment").Via; !slices.Contains(via, "public.payment(store_id, rental_id) → public.rental(customer_id) → public.customer(email)") {
		t.Errorf("payment found via %v", via)
	}
	code, out, _ := runCLI(t, append([]string{"subject", "find"}, subject...)...)
	if code != 0 || !strings.Contains(out, "public.payment") || !strings.Contains(out, "TWIN") {
		t.Errorf("find as a table: exit %d\n%s", code, out)
	}

	// export: a zip, mode 0600, one JSON file per table, manifest, README.
	zipPath := filepath.Join(t.TempDir(), "subject.zip")
	subjectReport(t, 0, append([]string{"subject", "export", "--out", zipPath}, subject...)...)
	if fi, err := os.Stat(zipPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v, %v", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(zipPath), ".*tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	entries := map[string][]map[string]any{}
	var manifest agent.ExportManifest
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Name == "manifest.json":
			err = json.NewDecoder(rc).Decode(&manifest)
		case strings.HasSuffix(f.Name, ".json"):
			var rows []map[string]any
			err = json.NewDecoder(rc).Decode(&rows)
			entries[f.Name] = rows
		}
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
	}
	if !slices.Contains(names, "README.txt") || len(manifest.Files) != len(want) {
		t.Errorf("zip holds %v; manifest files %d, want %d", names, len(manifest.Files), len(want))
	}
	if c := entries["prod/public.customer.json"]; len(c) != 1 || c[0]["email"] != "customer1@example.org" || c[0]["name"] != "Bob" {
		t.Errorf("exported customer (unredacted): %v", c)
	}
	if tk := entries["crm/public.ticket.json"]; len(tk) != 2 {
		t.Errorf("exported tickets: %v", tk)
	}

	count := func(table string) int64 { return queryInt(t, twin, "SELECT count(*) FROM "+table) }
	twinBefore := map[string]int64{}
	for k := range want {
		_, table, _ := strings.Cut(k, " ")
		twinBefore[table] = count(table)
	}
	rowsOf := func() map[string]map[string][]string {
		out := map[string]map[string][]string{}
		for name, r := range lakes {
			for _, tb := range []string{"customer", "rental", "payment", "subscriber", "ticket"} {
				out[name+" "+tb] = r.Rows(t, nopii.TableName{Schema: "public", Name: tb})
			}
		}
		return out
	}
	lakeBefore := rowsOf()

	// The safeguard: a name shared by an eighth of the customers is
	// refused, naming the table and share; nothing is deleted anywhere.
	refused := subjectReport(t, 1, "subject", "forget", "--config", cfg, "--match", "name=Alice")
	if !strings.Contains(refused.Error, "public.customer") || !strings.Contains(refused.Error, "0.1250") || !strings.Contains(refused.Error, "nothing was deleted") {
		t.Errorf("over-wide forget: %q", refused.Error)
	}
	// Dry run: the counts, nothing deleted.
	dry := subjectReport(t, 0, append([]string{"subject", "forget", "--dry-run"}, subject...)...)
	if !dry.DryRun || subjectTable(t, dry, "prod", "public.rental").Feeds[0].Rows != 3 {
		t.Errorf("dry run: %+v", dry)
	}
	for table, n := range twinBefore {
		if got := count(table); got != n {
			t.Errorf("twin %s: %d rows after a refused request and a dry run, want %d", table, got, n)
		}
	}
	if got := rowsOf(); !equalRows(got, lakeBefore) {
		t.Errorf("lake rows changed by a refused request or a dry run")
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM nopii.forgotten_keys"); n != 0 {
		t.Errorf("a refused request or dry run put %d keys on the suppression list", n)
	}
	// The refusal is audited (no rows, the reason), the dry run is not.
	audit := queryString(t, twin, "SELECT string_agg(target || ':' || status || ':' || rows_deleted, ' ' ORDER BY target) FROM nopii.subject_requests")
	if audit != "files:refused:0 s3:refused:0 twin:refused:0" || refused.RequestID == "" {
		t.Errorf("audit of the refused request %q: %s", refused.RequestID, audit)
	}

	// forget: gone from the twin and both lakes, every other row intact.
	done := subjectReport(t, 0, append([]string{"subject", "forget"}, subject...)...)
	if done.RequestID == "" || done.Status != "success" {
		t.Fatalf("forget: %+v", done)
	}
	for k, n := range want {
		_, table, _ := strings.Cut(k, " ")
		if got := count(table); got != twinBefore[table]-n {
			t.Errorf("twin %s: %d rows after forget, want %d", table, got, twinBefore[table]-n)
		}
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE source_primary_key = '1'"); n != 0 {
		t.Errorf("twin still has customer 1")
	}
	if n := queryInt(t, prod, "SELECT count(*) FROM public.customer WHERE customer_id = 1"); n != 1 {
		t.Errorf("source lost customer 1 without --include-sources")
	}
	subjectKeys := map[string][]string{"customer": {"1"}, "rental": {"[1, 3]", "[2, 1]", "[3, 2]"}, "payment": {"1", "2", "3"}, "ticket": {"1", "2"}}
	lakeAfter := rowsOf()
	for k, rows := range lakeBefore {
		feed, tb, _ := strings.Cut(k, " ")
		wantRows := maps.Clone(rows)
		for _, key := range subjectKeys[tb] {
			if _, ok := wantRows[key]; !ok {
				t.Errorf("%s: the subject's key %s was not there before", k, key)
			}
			delete(wantRows, key)
		}
		if tb == "subscriber" {
			if len(lakeAfter[k]) != len(rows)-1 {
				t.Errorf("%s %s: %d rows after forget, want %d", feed, tb, len(lakeAfter[k]), len(rows)-1)
			}
			continue // its key is a hash
		}
		if !maps.EqualFunc(lakeAfter[k], wantRows, slices.Equal) {
			t.Errorf("%s: rows after forget differ from the rows before without the subject's (%d rows, want %d)", k, len(lakeAfter[k]), len(wantRows))
		}
	}
	// Audit: one record per target, a keyed hash, no identifier anywhere.
	audit = queryString(t, twin, "SELECT string_agg(target || ':' || status || ':' || rows_deleted, ' ' ORDER BY target) FROM nopii.subject_requests WHERE request_id = $1", done.RequestID)
	if audit != "files:done:15 s3:done:15 twin:done:15" {
		t.Errorf("audit rows: %s", audit)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM nopii.subject_requests r WHERE r::text LIKE '%customer1@%' OR length(subject_hmac) <> 64"); n != 0 {
		t.Errorf("audit rows hold the identifier or no 64-digit hash")
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM nopii.forgotten_keys WHERE workflow = 'shop'"); n != 15 {
		t.Errorf("forgotten keys: %d, want 15", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop/_nopii/subject_requests", done.RequestID+".json")); err != nil {
		t.Errorf("files feed audit record: %v", err)
	}
	assertNoRawValues(t, filepath.Join(dir, "shop/_nopii"), regexp.MustCompile(`customer1@example\.org`))

	// Stays forgotten: the source row changes (a delta picks it up),
	// rental and payment are copied in full; neither brings it back.
	mustExec(t, prod, "UPDATE public.customer SET name = 'Changed', updated_at = now() WHERE customer_id IN (1, 5)")
	rep = runJSON(t, cfg, 0)
	if tr := tableReport(t, rep, "public.customer"); tr.Mode != "delta" || tr.Forgotten != 1 {
		t.Errorf("delta after forget: %+v", tr)
	}
	if tr := tableReport(t, rep, "public.rental"); tr.Mode != "full" || tr.Forgotten != 3 {
		t.Errorf("full copy after forget: %+v", tr)
	}
	for k, n := range want {
		_, table, _ := strings.Cut(k, " ")
		if got := count(table); got != twinBefore[table]-n {
			t.Errorf("twin %s after the next run: %d rows, want %d", table, got, twinBefore[table]-n)
		}
	}
	// The text report says why ROWS (read) is more than the twin holds.
	if code, out, errOut := runCLI(t, "run", "--config", cfg); code != 0 ||
		!regexp.MustCompile(`public\.rental: 3 of the \d+ rows read left out of the feeds: their keys are on the suppression list`).MatchString(out) {
		t.Errorf("run: exit %d, the report does not say which rows were left out:\n%s\n%s", code, out, errOut)
	}
	for name, r := range lakes {
		for tb, keys := range subjectKeys {
			rows := r.Rows(t, nopii.TableName{Schema: "public", Name: tb})
			for _, key := range keys {
				if _, ok := rows[key]; ok {
					t.Errorf("%s %s: the forgotten key %s came back", name, tb, key)
				}
			}
		}
		if got := r.Rows(t, nopii.TableName{Schema: "public", Name: "customer"})["5"]; len(got) < 3 || got[2] == lakeBefore[name+" customer"]["5"][2] {
			t.Errorf("%s: customer 5's change did not arrive: %v", name, got)
		}
	}

	// And a full copy of the same table (the config without its cursor).
	fullCfg := writeConfig(t, strings.Replace(string(mustRead(t, cfg)), "            updated_at: updated_at\n", "", 1))
	rep = runJSON(t, fullCfg, 0)
	if tr := tableReport(t, rep, "public.customer"); tr.Mode != "full" || tr.Forgotten != 1 {
		t.Errorf("full copy of customer after forget: %+v", tr)
	}
	if n := count("public.customer"); n != twinBefore["public.customer"]-1 {
		t.Errorf("twin customer after a full copy: %d rows, want %d", n, twinBefore["public.customer"]-1)
	}
	for name, r := range lakes {
		if _, ok := r.Rows(t, nopii.TableName{Schema: "public", Name: "customer"})["1"]; ok {
			t.Errorf("%s: customer 1 came back with a full copy", name)
		}
	}

	// --requests, in one pass, with --include-sources.
	reqFile := filepath.Join(t.TempDir(), "requests.txt")
	if err := os.WriteFile(reqFile, []byte("# erasures\nemail=customer1@example.org\n\nemail=customer3@example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prodBefore := queryInt(t, prod, "SELECT count(*) FROM public.rental")
	both := subjectReport(t, 0, "subject", "forget", "--config", cfg, "--requests", reqFile, "--include-sources")
	if len(both.Subjects) != 2 || subjectTable(t, both, "prod", "public.rental").SourceDeleted != 6 {
		t.Errorf("two requests with sources: %+v", both)
	}
	if got := queryInt(t, prod, "SELECT count(*) FROM public.rental"); got != prodBefore-6 {
		t.Errorf("source rental: %d rows, want %d", got, prodBefore-6)
	}
	if n := queryInt(t, mustConnect(t, crmDSN), "SELECT count(*) FROM public.contact WHERE email IN ('customer1@example.org', 'customer3@example.org')"); n != 0 {
		t.Errorf("crm contacts left: %d", n)
	}
	audit = queryString(t, twin, "SELECT string_agg(DISTINCT target, ' ' ORDER BY target) FROM nopii.subject_requests WHERE request_id = $1", both.RequestID)
	if audit != "files s3 source crm source prod twin" {
		t.Errorf("audit targets with sources: %s", audit)
	}
	if n := queryInt(t, twin, "SELECT count(DISTINCT subject_hmac) FROM nopii.subject_requests WHERE request_id = $1", both.RequestID); n != 2 {
		t.Errorf("audit subjects: %d, want 2", n)
	}
}

func equalRows(a, b map[string]map[string][]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string][]string) bool { return maps.EqualFunc(x, y, slices.Equal) })
}

// TestSubjectUsage: --help on each subcommand, and mistakes in the command
// line caught before anything is opened, without echoing the value.
func TestSubjectUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"subject", "--help"}, "forget"},
		{[]string{"subject", "find", "--help"}, "--match"},
		{[]string{"subject", "export", "--help"}, "--out"},
		{[]string{"subject", "forget", "--help"}, "--max-matching-proportion"},
	} {
		code, out, _ := runCLI(t, tc.args...)
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, code, out)
		}
	}
	cfg := oneInputConfig(t, "postgres://127.0.0.1:1/x", "postgres://127.0.0.1:1/y", `
          - name: public.customer
            identifies: [email]
`)
	reqFile := filepath.Join(t.TempDir(), "r.txt")
	os.WriteFile(reqFile, []byte("email=a@b.c\nsecret-value-without-column\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"subject", "find", "--config", cfg}, "no request"},
		{[]string{"subject", "find", "--config", cfg, "--match", "secret-value"}, "--match: want column=value"},
		{[]string{"subject", "find", "--config", cfg, "--requests", reqFile}, "r.txt:2: want column=value"},
		{[]string{"subject", "export", "--config", cfg, "--match", "email=a@b.c"}, "--out is required"},
		{[]string{"subject", "forget", "--config", cfg, "--match", "email=a@b.c", "--max-matching-proportion", "2"}, "--max-matching-proportion 2"},
		{[]string{"subject", "forget", "--config", cfg, "--match", "phone=secret-555"}, `column "phone" is not declared identifying in workflow w; identifying columns: email`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "secret-") {
			t.Errorf("%v: exit %d: %s", tc.args[1:], code, errOut)
		}
	}
}
