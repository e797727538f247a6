package dashboard_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/dashboard"
)

// TestAgentStates tells healthy, failing and silent agents apart, in the
// API and on the page: a fresh heartbeat whose workflow's last run failed
// (or whose configuration does not load) is failing, never a green ✓.
func TestAgentStates(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		agent  string
		mutate func(hb map[string]any)
	}{
		{"ok-1", nil},
		{"runs-fail", func(hb map[string]any) { hb["workflows"].([]map[string]any)[0]["last_result"] = "failed" }},
		{"bad-config", func(hb map[string]any) { hb["config_error"] = "nopii.yaml:3:1: unknown key" }},
		{"gone-quiet", nil},
	} {
		hb := heartbeat(c.agent, 30)
		if c.mutate != nil {
			c.mutate(hb)
		}
		e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", e.token(c.agent), hb)
	}
	// gone-quiet's heartbeat is 5 minutes old: silent.
	if _, err := e.conn.Exec(t.Context(), `UPDATE nopii_dashboard.agents SET last_seen = last_seen - interval '5 minutes' WHERE name = 'gone-quiet'`); err != nil {
		t.Fatal(err)
	}
	want := map[string]dashboard.AgentState{"ok-1": dashboard.AgentHealthy, "runs-fail": dashboard.AgentFailing,
		"bad-config": dashboard.AgentFailing, "gone-quiet": dashboard.AgentSilent}
	for _, a := range decodeJSON[[]dashboard.Agent](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil)) {
		if a.State != want[a.Name] || a.Healthy != (want[a.Name] == dashboard.AgentHealthy) {
			t.Errorf("agent %s: state %s healthy %v, want %s", a.Name, a.State, a.Healthy, want[a.Name])
		}
	}
	page := e.page("/")
	mustContain(t, "healthy agent", section(t, page, `id="agent-ok-1"`), `data-state="healthy"`, "✓", "healthy, last heartbeat")
	mustContain(t, "failing agent", section(t, page, `id="agent-runs-fail"`), `data-state="failing"`, `aria-label="failing"`, "last run of ml-experimentation failed")
	mustContain(t, "failing config", section(t, page, `id="agent-bad-config"`), `data-state="failing"`, "configuration does not load", "unknown key")
	mustContain(t, "silent agent", section(t, page, `id="agent-gone-quiet"`), `data-state="silent"`, "✗", "silent: last seen")
	for _, a := range []string{"runs-fail", "bad-config", "gone-quiet"} {
		if strings.Contains(section(t, page, `id="agent-`+a+`"`), "✓") {
			t.Errorf("agent %s shows a green ✓", a)
		}
	}
}

// TestFindingsAcrossScans keeps every scan and follows each finding from
// scan to scan: first and last seen, open until a job report lists the
// column among its table's redacted columns or a later `nopii scan` of its
// schema no longer reports it; the guard's partial scans cover nothing; a
// column reported again is open again.
func TestFindingsAcrossScans(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	scan := func(source string, schemas []string, cols ...string) {
		t.Helper()
		var fs []map[string]any
		for _, c := range cols {
			table, col, _ := strings.Cut(c, ".")
			fs = append(fs, map[string]any{"schema": "public", "table": table, "column": col, "kind": "email", "confidence": 0.9,
				"evidence": "name matches", "rule": map[string]any{"rule": "redact_email"}})
		}
		e.mustStatus(http.StatusOK, "POST", "/api/v1/scans", tok, map[string]any{"agent": "prod-eu-1", "findings": fs, "source": source, "schemas": schemas})
		e.clock.Add(time.Minute)
	}
	open := func() map[string]dashboard.Finding {
		t.Helper()
		out := map[string]dashboard.Finding{}
		for _, f := range decodeJSON[[]dashboard.Finding](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/findings", adminToken, nil)) {
			out[f.Table+"."+f.Column] = f
		}
		return out
	}
	keys := func(m map[string]dashboard.Finding) string {
		var k []string
		for c := range m {
			k = append(k, c)
		}
		return strings.Join(slices.Sorted(slices.Values(k)), " ")
	}
	t0 := e.clock.Now()
	scan("scan", nil, "customer.email", "customer.phone", "staff.card")
	scan("guard", nil, "staff.ssn") // the guard's scan of a run: one new column
	if got := keys(open()); got != "customer.email customer.phone staff.card staff.ssn" {
		t.Fatalf("open after a scan and a guard scan: %s", got)
	}
	// A rule for customer.email, as a job report shows it.
	const jobID = "6f1c2d3e-4b5a-4c7d-8e9f-0000000000aa"
	tr := tableReport("public.customer", "delta", 10, "")
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", jobID, "ml", "success", e.clock.Now(), tr))
	e.clock.Add(time.Minute)
	if got := keys(open()); got != "customer.phone staff.card staff.ssn" {
		t.Fatalf("open after a job redacting customer.email: %s", got)
	}
	// A scan of another schema covers nothing; one of public that no longer
	// reports staff.card covers it (and staff.ssn).
	scan("scan", []string{"crm"})
	if got := keys(open()); got != "customer.phone staff.card staff.ssn" {
		t.Fatalf("open after a scan of schema crm: %s", got)
	}
	scan("scan", []string{"pub*"}, "customer.phone")
	o := open()
	if got := keys(o); got != "customer.phone" {
		t.Fatalf("open after a scan of public reporting only customer.phone: %s", got)
	}
	if f := o["customer.phone"]; !f.FirstSeen.Equal(t0) || !f.LastSeen.Equal(t0.Add(4*time.Minute)) || f.Seen != 2 {
		t.Errorf("customer.phone: first %v last %v seen %d, want %v, %v, 2", f.FirstSeen, f.LastSeen, f.Seen, t0, t0.Add(4*time.Minute))
	}
	all := map[string]dashboard.Finding{}
	for _, f := range decodeJSON[[]dashboard.Finding](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/findings?covered=true", adminToken, nil)) {
		all[f.Table+"."+f.Column] = f
	}
	if f := all["customer.email"]; f.CoveredBy != dashboard.CoveredByRule || f.CoveredJob != jobID || f.CoveredAt == nil {
		t.Errorf("customer.email = %+v, want covered by the job's rule", f)
	}
	if f := all["staff.card"]; f.CoveredBy != dashboard.CoveredByScan || f.CoveredAt == nil {
		t.Errorf("staff.card = %+v, want covered by the scan", f)
	}
	mustContain(t, "scans page, covered by a rule", e.page("/scans"), `a rule redacts it (<a href="/jobs/`+jobID+`">run</a>)`)
	// Reported again: open again.
	scan("guard", nil, "customer.email")
	if got := keys(open()); got != "customer.email customer.phone" {
		t.Fatalf("open after customer.email was reported again: %s", got)
	}
	if n := e.count("scans"); n != 5 {
		t.Errorf("scans kept: %d, want 5", n)
	}

	page := e.page("/scans")
	mustContain(t, "scans page", page, `id="scan-prod-eu-1"`, "public.customer.email", "public.customer.phone", "(2 scans)",
		"- name: public.customer", "Covered since", "no longer reported by a scan",
		"Scan history", "nopii scan (pub*)", "the guard of a run")
	open1 := section(t, page, `id="scan-prod-eu-1"`)
	if strings.Contains(open1, "staff.card") {
		t.Errorf("the open findings list a covered column")
	}
}

// TestUnruledColumns lists what runs copied without a rule: the guard's
// findings of tables that did not fail (on_unclassified: warn), with their
// warnings, first and last run; never a table the guard stopped.
func TestUnruledColumns(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	t0 := e.clock.Now().Add(-3 * time.Hour)
	warned := func(id string, started time.Time) {
		tr := tableReport("public.customer", "delta", 10, "")
		tr["unclassified"] = []map[string]any{{"schema": "public", "table": "customer", "column": "nickname", "kind": "person_name",
			"confidence": 0.8, "rule": map[string]any{"rule": "fake", "kind": "first_name"}}}
		tr["warnings"] = []string{"new column nickname looks like person_name and has no rule: copied as it is (on_unclassified: warn); add { rule: fake, kind: first_name }"}
		e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", id, "ml", "success", started, tr))
	}
	warned("6f1c2d3e-4b5a-4c7d-8e9f-000000000001", t0)
	warned("6f1c2d3e-4b5a-4c7d-8e9f-000000000002", t0.Add(time.Hour))
	stopped := tableReport("public.staff", "full", 0, "guard: new column ssn looks like national_id and has no rule")
	stopped["unclassified"] = []map[string]any{{"schema": "public", "table": "staff", "column": "ssn", "kind": "national_id", "confidence": 0.9}}
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000003", "ml", "failed", t0.Add(2*time.Hour), stopped))

	u := decodeJSON[[]dashboard.Unruled](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/unruled", adminToken, nil))
	if len(u) != 1 {
		t.Fatalf("unruled = %+v, want customer.nickname only", u)
	}
	c := u[0]
	if c.Table != "public.customer" || c.Column != "nickname" || c.Kind != "person_name" || c.Runs != 2 || c.Workflow != "ml" || c.Input != "prod" ||
		!c.FirstSeen.Equal(t0) || !c.LastSeen.Equal(t0.Add(time.Hour)) || c.LastJob != "6f1c2d3e-4b5a-4c7d-8e9f-000000000002" || len(c.Warnings) != 1 {
		t.Errorf("unruled column = %+v", c)
	}
	page := e.page("/unruled")
	mustContain(t, "unruled page", page, "public.customer.nickname", "person_name", "{ rule: fake, kind: first_name }",
		"on_unclassified: warn", `href="/jobs/6f1c2d3e-4b5a-4c7d-8e9f-000000000002"`)
	if strings.Contains(page, "ssn") {
		t.Errorf("the unruled page lists a column the guard stopped")
	}
	mustContain(t, "empty unruled page", newEnv(t).page("/unruled"), "No column was copied without a rule")
}

// TestJobPages: the Jobs page filters by agent, workflow and status and
// pages with Older/Newest links; a job's page shows its tables with rows
// upserted and deleted, and the workflow's runs as two SVG bar charts
// drawn on the server, this run marked.
func TestJobPages(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	other := e.token("prod-us-1")
	t0 := e.clock.Now().Add(-24 * time.Hour)
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("6f1c2d3e-4b5a-4c7d-8e9f-%012d", i+1)
		ids = append(ids, id)
		status := "success"
		if i == 5 {
			status = "failed"
		}
		tr := tableReport("public.orders", "delta", int64(100*(i+1)), "")
		tr["upserted"], tr["deleted"] = 90*(i+1), 10*(i+1)
		tr["schema"] = []string{"foreign key orders_user_fkey NOT VALID: public.users is windowed"}
		e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", id, "ml", status, t0.Add(time.Duration(i)*time.Hour), tr))
	}
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", other, jobReport("prod-us-1", "6f1c2d3e-4b5a-4c7d-8e9f-0000000000ff", "bi", "success", t0))

	jobs := e.page("/jobs")
	mustContain(t, "jobs page", jobs, `<select name="agent">`, `<option>prod-us-1</option>`, `<select name="status">`, `href="/jobs/`+ids[7]+`"`)
	f := e.page("/jobs?status=failed")
	mustContain(t, "jobs page, failed only", f, "job-"+ids[5], `<option selected>failed</option>`)
	if strings.Contains(f, "job-"+ids[4]) || strings.Contains(f, "Workflow bi") {
		t.Errorf("status=failed shows other jobs")
	}
	if f := e.page("/jobs?agent=prod-us-1"); strings.Contains(f, "Workflow ml") || !strings.Contains(f, "Workflow bi") {
		t.Errorf("agent=prod-us-1 shows another agent's jobs")
	}
	mustContain(t, "jobs page, no match", e.page("/jobs?agent=prod-us-1&status=failed"), "No job matches these filters")
	// Paging: 3 a page, Older → the next 3, and a link back to the newest.
	p1 := e.page("/jobs?limit=3&workflow=ml")
	older := regexp.MustCompile(`<a href="([^"]+)" rel="next">Older`).FindStringSubmatch(p1)
	if older == nil || strings.Contains(p1, "← Newest") {
		t.Fatalf("first page: no Older link, or a Newest link")
	}
	p2 := e.page(strings.ReplaceAll(older[1], "&amp;", "&"))
	mustContain(t, "second page", p2, "job-"+ids[4], "job-"+ids[3], "job-"+ids[2], "← Newest")
	if strings.Contains(p2, "job-"+ids[5]) || strings.Contains(p2, "job-"+ids[1]) {
		t.Errorf("second page holds jobs of other pages")
	}

	job := e.page("/jobs/" + ids[6])
	mustContain(t, "job page", job, "public.orders", `data-label="Upserted" class="num">630<`, `data-label="Deleted" class="num">70<`,
		"schema: foreign key orders_user_fkey NOT VALID: public.users is windowed",
		"The last 7 runs of this workflow, up to this one", `<svg class="chart"`, "Rows per run", "Seconds per run", `class="bar cur"`, `class="bar failed"`)
	if n := strings.Count(job, "<rect "); n != 14 {
		t.Errorf("job page charts %d bars, want 2 × 7 runs (up to this one)", n)
	}
	if n := strings.Count(job, `class="bar cur"`); n != 2 {
		t.Errorf("job page marks %d bars as this run, want 2", n)
	}
	// The tallest bar is the run with the most rows.
	if !strings.Contains(job, "max 700 rows") {
		t.Errorf("rows chart lacks its maximum")
	}
	code, out := e.do("GET", "/jobs/6f1c2d3e-4b5a-4c7d-8e9f-999999999999", adminToken, nil)
	if code != http.StatusNotFound || !strings.Contains(out, "No job has this id") {
		t.Errorf("unknown job page: %d", code)
	}
	if code, _ := e.do("GET", "/api/v1/jobs/nope", adminToken, nil); code != http.StatusNotFound {
		t.Errorf("GET /api/v1/jobs/nope: %d, want 404", code)
	}
}
