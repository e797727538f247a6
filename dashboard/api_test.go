package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/dashboard"
	"github.com/nopii/nopii/internal/wire"
)

func TestHeartbeatAndHealth(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", tok, heartbeat("prod-eu-1", 1))

	agents := decodeJSON[[]dashboard.Agent](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil))
	if len(agents) != 1 {
		t.Fatalf("agents = %+v, want one", agents)
	}
	a := agents[0]
	if a.Name != "prod-eu-1" || a.Version != "v1.2.3" || !a.Healthy || a.IntervalSeconds != 1 {
		t.Errorf("agent = %+v, want prod-eu-1 v1.2.3 healthy every 1s", a)
	}
	if !a.LastSeen.Equal(e.clock.Now()) {
		t.Errorf("last_seen = %v, want %v", a.LastSeen, e.clock.Now())
	}
	if len(a.Workflows) != 1 || a.Workflows[0].Name != "ml-experimentation" || a.Workflows[0].LastResult != "success" ||
		a.Workflows[0].NextRun == nil || !a.Workflows[0].NextRun.Equal(time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("workflows = %+v", a.Workflows)
	}

	// Just under two intervals: healthy. Past two: not.
	e.clock.Add(1900 * time.Millisecond)
	if a := decodeJSON[[]dashboard.Agent](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil))[0]; !a.Healthy {
		t.Errorf("1.9s after a heartbeat every 1s: healthy = false, want true")
	}
	e.clock.Add(200 * time.Millisecond)
	if a := decodeJSON[[]dashboard.Agent](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil))[0]; a.Healthy {
		t.Errorf("2.1s after a heartbeat every 1s: healthy = true, want false")
	}
	// The raw JSON carries the contract's field names.
	raw := e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil)
	for _, k := range []string{`"name"`, `"version"`, `"last_seen"`, `"healthy": false`, `"workflows"`} {
		if !strings.Contains(raw, k) {
			t.Errorf("GET /api/v1/agents lacks %s: %s", k, raw)
		}
	}
	// A new heartbeat makes it healthy again, and updates in place.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", tok, heartbeat("prod-eu-1", 1))
	if a := decodeJSON[[]dashboard.Agent](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/agents", adminToken, nil))[0]; !a.Healthy {
		t.Errorf("after a fresh heartbeat: healthy = false")
	}
	if n := e.count("agents"); n != 1 {
		t.Errorf("agents rows = %d, want 1", n)
	}
}

func TestAgentAuth(t *testing.T) {
	e := newEnv(t)
	good := e.token("prod-eu-1")
	revoked := e.token("old-agent")
	if n, err := e.store.RevokeTokens(context.Background(), "old-agent"); err != nil || n != 1 {
		t.Fatalf("revoke = %d, %v", n, err)
	}
	if _, err := e.store.RevokeTokens(context.Background(), "old-agent"); err == nil {
		t.Errorf("revoking again: no error")
	}
	started := e.clock.Now()
	bodies := map[string]any{
		"/api/v1/heartbeat": heartbeat("prod-eu-1", 30),
		"/api/v1/jobs":      jobReport("prod-eu-1", "0b7f7c1e-3a52-4c1b-9a51-5c8d3c4c2f10", "wf", "success", started),
		"/api/v1/scans":     map[string]any{"agent": "prod-eu-1", "findings": []any{}},
	}
	for path, body := range bodies {
		for name, tok := range map[string]string{"missing": "", "wrong": good + "x", "revoked": revoked, "admin": adminToken} {
			t.Run(strings.TrimPrefix(path, "/api/v1/")+"/"+name, func(t *testing.T) {
				code, out := e.do("POST", path, tok, body)
				if code != http.StatusUnauthorized {
					t.Errorf("status %d, want 401; body %s", code, out)
				}
				if !strings.Contains(out, `"error"`) {
					t.Errorf("body %s is not a JSON error", out)
				}
			})
		}
	}
	// A revoked token stays revoked for its own agent name too.
	e.mustStatus(http.StatusUnauthorized, "POST", "/api/v1/heartbeat", revoked, heartbeat("old-agent", 30))
	for _, table := range []string{"agents", "jobs", "scans"} {
		if n := e.count(table); n != 0 {
			t.Errorf("after rejected posts, %s holds %d rows", table, n)
		}
	}

	// Another agent's name in the body: 403, nothing stored.
	e.mustStatus(http.StatusForbidden, "POST", "/api/v1/heartbeat", good, heartbeat("prod-us-1", 30))
	e.mustStatus(http.StatusForbidden, "POST", "/api/v1/jobs", good,
		jobReport("prod-us-1", "0b7f7c1e-3a52-4c1b-9a51-5c8d3c4c2f10", "wf", "success", started))
	e.mustStatus(http.StatusForbidden, "POST", "/api/v1/scans", good, map[string]any{"agent": "prod-us-1"})
	for _, table := range []string{"agents", "jobs", "scans"} {
		if n := e.count(table); n != 0 {
			t.Errorf("after 403s, %s holds %d rows", table, n)
		}
	}

	// Oversize body: 413.
	big := `{"agent":"prod-eu-1","version":"` + strings.Repeat("x", dashboard.MaxBody) + `"}`
	if code, out := e.do("POST", "/api/v1/heartbeat", good, big); code != http.StatusRequestEntityTooLarge || !strings.Contains(out, `"error"`) {
		t.Errorf("oversize heartbeat: %d %s, want 413 with a JSON error", code, out)
	}
	// Bad JSON and bad reports: 400.
	e.mustStatus(http.StatusBadRequest, "POST", "/api/v1/heartbeat", good, "{not json")
	e.mustStatus(http.StatusBadRequest, "POST", "/api/v1/jobs", good, jobReport("prod-eu-1", "not-a-uuid", "wf", "success", started))
	e.mustStatus(http.StatusBadRequest, "POST", "/api/v1/jobs", good, jobReport("prod-eu-1", "0b7f7c1e-3a52-4c1b-9a51-5c8d3c4c2f10", "wf", "done", started))
	if n := e.count("agents") + e.count("jobs"); n != 0 {
		t.Errorf("after 413/400s, %d rows stored", n)
	}

	// Admin endpoints: without or with a wrong admin token, or with an agent token: 401.
	for _, path := range []string{"/api/v1/agents", "/api/v1/jobs"} {
		for _, tok := range []string{"", "wrong", good, adminToken + "x"} {
			if code, out := e.do("GET", path, tok, nil); code != http.StatusUnauthorized || !strings.Contains(out, `"error"`) {
				t.Errorf("GET %s with %q: %d %s, want 401", path, tok, code, out)
			}
		}
	}
	// The good token works.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", good, heartbeat("prod-eu-1", 30))
	if n := e.count("agents"); n != 1 {
		t.Errorf("agents rows = %d, want 1", n)
	}
	// Tokens are stored as digests only.
	var stored int64
	if err := e.conn.QueryRow(context.Background(), `SELECT count(*) FROM nopii_dashboard.tokens WHERE position($1::bytea in sha256) > 0 OR encode(sha256, 'escape') LIKE '%' || $2 || '%'`,
		[]byte(good), good).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("a token is stored in the clear")
	}
}

func TestJobsUpsertAndOrder(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	other := e.token("prod-us-1")
	t0 := e.clock.Now().Add(-time.Hour)
	const id = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"

	// Running, with one table so far; then success with two.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", id, "ml", "running", t0,
		tableReport("public.customer", "full", 1000, "")))
	jobs := decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs", adminToken, nil))
	if len(jobs) != 1 || jobs[0].Status != "running" || !jobs[0].FinishedAt.IsZero() || len(jobs[0].Tables) != 1 {
		t.Fatalf("after running post: %+v", jobs)
	}
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", id, "ml", "success", t0,
		tableReport("public.customer", "full", 1000, ""), tableReport("public.orders", "delta", 250, "")))
	// A late duplicate "running" post does not undo the final status.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", id, "ml", "running", t0))
	// Another agent cannot overwrite it.
	e.mustStatus(http.StatusForbidden, "POST", "/api/v1/jobs", other, jobReport("prod-us-1", id, "ml", "failed", t0))

	if n := e.count("jobs"); n != 1 {
		t.Fatalf("jobs rows = %d, want 1", n)
	}
	jobs = decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs", adminToken, nil))
	j := jobs[0]
	if j.JobID != id || j.Agent != "prod-eu-1" || j.Workflow != "ml" || j.Status != "success" {
		t.Errorf("job = %+v", j)
	}
	if !j.StartedAt.Equal(t0) || j.FinishedAt.IsZero() || !j.FinishedAt.Equal(t0.Add(90*time.Second)) {
		t.Errorf("job times = %v – %v, want %v – +90s", j.StartedAt, j.FinishedAt, t0)
	}
	if len(j.Tables) != 2 || j.Tables[0].Table != "public.customer" || j.Tables[0].Rows != 1000 || j.Tables[0].Mode != "full" ||
		j.Tables[1].Table != "public.orders" || j.Tables[1].Rows != 250 || j.Tables[1].Mode != "delta" ||
		j.Tables[1].Bytes != 25000 || len(j.Tables[1].Redacted) != 1 {
		t.Errorf("tables = %+v", j.Tables)
	}

	// More jobs: newest first, filters, limit.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000002", "ml", "failed", t0.Add(30*time.Minute),
		tableReport("public.customer", "delta", 3, "copy table public.customer: boom")))
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", other, jobReport("prod-us-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000003", "bi", "success", t0.Add(10*time.Minute)))
	jobs = decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs", adminToken, nil))
	var got []string
	for _, j := range jobs {
		got = append(got, j.JobID[len(j.JobID)-1:])
	}
	if strings.Join(got, "") != "23f" {
		t.Errorf("order = %v, want newest first: 2, 3, f", got)
	}
	if jobs[0].Status != "failed" || jobs[0].Tables[0].Error == "" {
		t.Errorf("failed job = %+v", jobs[0])
	}
	for q, want := range map[string]int{"?agent=prod-us-1": 1, "?workflow=ml": 2, "?limit=1": 1, "?agent=prod-eu-1&workflow=bi": 0} {
		if n := len(decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs"+q, adminToken, nil))); n != want {
			t.Errorf("GET /api/v1/jobs%s: %d jobs, want %d", q, n, want)
		}
	}
	e.mustStatus(http.StatusBadRequest, "GET", "/api/v1/jobs?limit=x", adminToken, nil)
}

func TestScans(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	e.mustStatus(http.StatusOK, "POST", "/api/v1/scans", tok, scanBody())
	scans, err := e.store.Scans(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(scans) != 1 || scans[0].Agent != "prod-eu-1" || len(scans[0].Findings) != 3 {
		t.Fatalf("scans = %+v", scans)
	}
	want := "- name: public.customer\n  columns:\n    email: { rule: redact_email }\n    phone: { rule: fake, kind: phone }\n" +
		"- name: public.staff\n  columns:\n    card_number: { rule: mask, keep_last: 4 }\n"
	if got := dashboard.RulesYAML(scans[0].Findings); got != want {
		t.Errorf("RulesYAML =\n%s\nwant\n%s", got, want)
	}
	// The history is kept.
	for range 25 {
		e.clock.Add(time.Second)
		e.mustStatus(http.StatusOK, "POST", "/api/v1/scans", tok, scanBody())
	}
	if n := e.count("scans"); n != 26 {
		t.Errorf("scans rows = %d, want 26", n)
	}
}

func scanBody() map[string]any {
	return map[string]any{"agent": "prod-eu-1", "findings": []map[string]any{
		{"schema": "public", "table": "customer", "column": "email", "kind": "email", "confidence": 0.95, "evidence": "name matches email; 98% of 100 sampled values look like email", "rule": map[string]any{"rule": "redact_email"}},
		{"schema": "public", "table": "customer", "column": "phone", "kind": "phone", "confidence": 0.8, "evidence": "name matches phone", "rule": map[string]any{"rule": "fake", "kind": "phone"}},
		{"schema": "public", "table": "staff", "column": "card_number", "kind": "card", "confidence": 0.7, "evidence": "name matches card", "rule": map[string]any{"rule": "mask", "keep_last": 4}},
	}}
}

func TestMigrateIdempotent(t *testing.T) {
	e := newEnv(t)
	before := e.count("schema_migrations")
	s2, err := dashboard.Open(context.Background(), e.dsn)
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	s2.Close()
	if n := e.count("schema_migrations"); n != before || n < 2 {
		t.Errorf("schema_migrations rows = %d after a second open, want %d (at least 2)", n, before)
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	if out := e.mustStatus(http.StatusOK, "GET", "/healthz", "", nil); !strings.Contains(out, "ok") {
		t.Errorf("healthz = %s", out)
	}
	if code, out := e.do("GET", "/api/v1/nothing", adminToken, nil); code != http.StatusNotFound || !strings.Contains(out, `"error"`) {
		t.Errorf("unknown API path: %d %s", code, out)
	}
}

// TestJobsPaging walks GET /api/v1/jobs page by page: each page but the
// last says it was cut (X-Nopii-Next-Cursor and a Link rel="next"), the
// pages together hold every job once, newest first, and a limit above the
// maximum is refused rather than cut silently.
func TestJobsPaging(t *testing.T) {
	e := newEnv(t)
	tok := e.token("prod-eu-1")
	t0 := e.clock.Now().Add(-time.Hour)
	const n = 23
	for i := range n {
		// Two jobs share each start time: the job id breaks the tie.
		id := fmt.Sprintf("6f1c2d3e-4b5a-4c7d-8e9f-%012d", i)
		status := "success"
		if i%5 == 0 {
			status = "failed"
		}
		e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", id, "ml", status, t0.Add(time.Duration(i/2)*time.Minute)))
	}
	var seen []string
	path := "/api/v1/jobs?limit=5&workflow=ml"
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		jobs := decodeJSON[[]wire.Job](t, string(body))
		if got := resp.Header.Get(dashboard.HeaderLimit); got != "5" {
			t.Errorf("%s = %q, want 5", dashboard.HeaderLimit, got)
		}
		for _, j := range jobs {
			seen = append(seen, j.JobID)
		}
		next := resp.Header.Get(dashboard.HeaderNextCursor)
		if next == "" {
			if len(seen) < n && len(jobs) == 5 {
				t.Fatalf("a full page without a next cursor after %d jobs", len(seen))
			}
			if resp.Header.Get("Link") != "" {
				t.Errorf("last page has a Link: %s", resp.Header.Get("Link"))
			}
			break
		}
		if len(jobs) != 5 || next != jobs[4].JobID {
			t.Fatalf("cut page: %d jobs, cursor %s, want 5 ending at the cursor", len(jobs), next)
		}
		link := resp.Header.Get("Link")
		if !strings.HasPrefix(link, "</api/v1/jobs?") || !strings.HasSuffix(link, `>; rel="next"`) || !strings.Contains(link, "before="+next) || !strings.Contains(link, "workflow=ml") {
			t.Fatalf("Link = %s", link)
		}
		path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	}
	if len(seen) != n {
		t.Fatalf("pages held %d jobs, want %d", len(seen), n)
	}
	for i, id := range seen {
		if want := fmt.Sprintf("6f1c2d3e-4b5a-4c7d-8e9f-%012d", n-1-i); id != want {
			t.Fatalf("job %d of the pages = %s, want %s (newest first, ties by id)", i, id, want)
		}
	}

	// The status filter pages too.
	failed := decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs?status=failed", adminToken, nil))
	if len(failed) != 5 {
		t.Errorf("status=failed: %d jobs, want 5", len(failed))
	}
	for _, bad := range []string{"?limit=1001", "?limit=5000", "?limit=0", "?status=done", "?before=x", "?before=6f1c2d3e-4b5a-4c7d-8e9f-999999999999"} {
		code, out := e.do("GET", "/api/v1/jobs"+bad, adminToken, nil)
		if code != http.StatusBadRequest || !strings.Contains(out, `"error"`) {
			t.Errorf("GET /api/v1/jobs%s: %d %s, want 400", bad, code, out)
		}
	}
	if _, out := e.do("GET", "/api/v1/jobs?limit=5000", adminToken, nil); !strings.Contains(out, "at most 1000") {
		t.Errorf("limit=5000: %s, want the maximum named", out)
	}
	if got := len(decodeJSON[[]wire.Job](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/jobs?limit=1000", adminToken, nil))); got != n {
		t.Errorf("limit=1000: %d jobs, want %d", got, n)
	}
}
