package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/dsntest"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestAgentWithDashboard: a real agent process reports to a real dashboard
// process: its heartbeat turns it green, its job report with per-table rows
// is listed, and it turns red once stopped.
func TestAgentWithDashboard(t *testing.T) {
	bin := buildNopii(t)
	dashDSN, prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.t (id int PRIMARY KEY, email text);
		INSERT INTO public.t SELECT i, 'x' || i || '@y.org' FROM generate_series(1, 42) i`)
	const admin = dashAdmin
	dashAddr, token, _ := startDashboard(t, bin, dashDSN)

	cfg := writeConfig(t, `
version: 1
hmac_key: `+testKey+`
dashboard:
  url: http://`+dashAddr+`
  token: `+token+`
  heartbeat_interval: 1s
agent:
  name: edge-agent
  listen: `+freeAddr(t)+`
workflows:
  - name: nightly
    schedule: "@every 2s"
    inputs:
      - name: prod
        dsn: `+prodDSN+`
        tables:
          - name: public.t
            columns:
              email: { rule: redact_email }
    feeds:
      - type: twin
        dsn: `+twinDSN+`
`)
	ag := exec.Command(bin, "agent", "--config", cfg)
	var agOut syncBuf
	ag.Stdout, ag.Stderr = &agOut, &agOut
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ag.Process.Kill()
		if t.Failed() {
			t.Logf("agent:\n%s", agOut.String())
		}
	}()

	get := func(path string, v any) bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+dashAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v) == nil
	}
	healthy := func() (bool, bool) {
		var agents []map[string]any
		if !get("/api/v1/agents", &agents) {
			return false, false
		}
		for _, a := range agents {
			if a["name"] == "edge-agent" {
				return true, a["healthy"] == true
			}
		}
		return false, false
	}
	eventually(t, 15*time.Second, "the agent shows healthy on the dashboard", func() bool { seen, ok := healthy(); return seen && ok })
	eventually(t, 20*time.Second, "a successful job with per-table rows is listed", func() bool {
		var jobs []map[string]any
		if !get("/api/v1/jobs?agent=edge-agent", &jobs) {
			return false
		}
		for _, j := range jobs {
			tables, _ := j["tables"].([]any)
			if j["status"] == "success" && j["workflow"] == "nightly" && len(tables) == 1 && tables[0].(map[string]any)["rows"] == float64(42) {
				return true
			}
		}
		return false
	})

	// And the Jobs page shows it to a person.
	req, _ := http.NewRequest(http.MethodGet, "http://"+dashAddr+"/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"nightly", "public.t", "42", "edge-agent"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the Jobs page lacks %q", want)
		}
	}

	// A column that drift adds and that looks like PII, without a rule:
	// the run fails closed, and the agent posts it to the scanner page.
	mustExec(t, mustConnect(t, prodDSN), `ALTER TABLE public.t ADD COLUMN mobile_phone text; UPDATE public.t SET mobile_phone = '+49 151 2345' || lpad(id::text, 3, '0')`)
	eventually(t, 20*time.Second, "the scanner page shows the unclassified column", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+dashAddr+"/scans", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(page), "mobile_phone") && strings.Contains(string(page), "edge-agent")
	})

	ag.Process.Signal(syscall.SIGTERM)
	ag.Wait()
	eventually(t, 10*time.Second, "the stopped agent turns unhealthy", func() bool { seen, ok := healthy(); return seen && !ok })
}

// TestAgentJobsHideDSNSecrets: a real agent runs one workflow per DSN case
// (every shape × failure kind, as the input and as the twin) and reports
// to a real dashboard: no password reaches the dashboard's tables, its
// pages and API, the agent's log, /readyz or /metrics.
func TestAgentJobsHideDSNSecrets(t *testing.T) {
	bin := buildNopii(t)
	c := pgtest.MustCluster(t)
	dashDSN, prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.t (id int PRIMARY KEY)`)
	const admin = dashAdmin
	dashAddr, token, dashOut := startDashboard(t, bin, dashDSN)

	cases := dsntest.Cases(dsntest.Server{Host: "127.0.0.1", Port: c.Port, Database: "postgres", WrongUser: pgtest.PasswordUser})
	agentAddr := freeAddr(t)
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ndashboard:\n  url: http://%s\n  token: %s\n  heartbeat_interval: 1s\nagent:\n  name: edge-agent\n  listen: %s\nworkflows:\n", dashAddr, token, agentAddr)
	var names []string
	for i, tc := range cases {
		for _, as := range []string{"in", "tw"} {
			input, feed := tc.DSN, twinDSN
			if as == "tw" {
				input, feed = prodDSN, tc.DSN
			}
			name := fmt.Sprintf("%s-%02d", as, i)
			names = append(names, name)
			fmt.Fprintf(&b, "  - name: %s\n    schedule: \"@every 3s\"\n    inputs:\n      - name: prod\n        dsn: %q\n        tables:\n          - name: public.t\n    feeds:\n      - type: twin\n        dsn: %q\n", name, input, feed)
		}
	}
	ag := exec.Command(bin, "agent", "--config", writeConfig(t, b.String()), "--log-level", "debug")
	var agOut syncBuf
	ag.Stdout, ag.Stderr = &agOut, &agOut
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ag.Process.Kill()
		ag.Wait()
		if t.Failed() {
			t.Logf("agent:\n%s", agOut.String())
		}
	}()

	get := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+dashAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	eventually(t, 90*time.Second, "every workflow has a failed job", func() bool {
		var jobs []map[string]any
		if json.Unmarshal([]byte(get("/api/v1/jobs?agent=edge-agent&limit=1000")), &jobs) != nil {
			return false
		}
		failed := map[string]bool{}
		for _, j := range jobs {
			if j["status"] == "failed" {
				failed[j["workflow"].(string)] = true
			}
		}
		return len(failed) == len(names)
	})
	_, readyz := httpGet("http://" + agentAddr + "/readyz")
	_, metrics := httpGet("http://" + agentAddr + "/metrics")
	stored := queryString(t, mustConnect(t, dashDSN), `SELECT string_agg(x, E'\n') FROM (
		SELECT j::text AS x FROM nopii_dashboard.jobs j UNION ALL
		SELECT a::text FROM nopii_dashboard.agents a UNION ALL
		SELECT s::text FROM nopii_dashboard.scans s) all_rows`)
	if !strings.Contains(stored, "xxxxx") && !strings.Contains(stored, "connect to") {
		t.Errorf("the stored jobs do not say why they failed:\n%.2000s", stored)
	}
	for what, text := range map[string]string{
		"the dashboard's tables": stored,
		"GET /api/v1/jobs":       get("/api/v1/jobs?limit=1000"),
		"the Jobs page":          get("/jobs"),
		"the Agents page":        get("/"),
		"the agent's /readyz":    readyz,
		"the agent's /metrics":   metrics,
		"the agent's log":        agOut.String(),
		"the dashboard's log":    dashOut.String(),
	} {
		if leaked := dsntest.Leaked(text); len(leaked) > 0 {
			t.Errorf("%s holds %q", what, leaked)
		}
	}
}

const dashAdmin = "admin-token-0123456789abcdef"

// startDashboard creates an agent token for edge-agent and starts a
// dashboard process on dsn with the admin token dashAdmin; it is killed
// when the test ends.
func startDashboard(t *testing.T, bin, dsn string) (addr, token string, out *syncBuf) {
	t.Helper()
	created, err := exec.Command(bin, "dashboard", "token", "create", "edge-agent", "--dsn", dsn).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(created)), "\n")
	token = lines[len(lines)-1]
	addr = freeAddr(t)
	dash := exec.Command(bin, "dashboard", "--dsn", dsn, "--listen", addr)
	dash.Env = append(os.Environ(), "NOPII_DASHBOARD_ADMIN_TOKEN="+dashAdmin)
	out = &syncBuf{}
	dash.Stdout, dash.Stderr = out, out
	if err := dash.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dash.Process.Kill()
		dash.Wait()
		if t.Failed() {
			t.Logf("dashboard:\n%s", out.String())
		}
	})
	eventually(t, 15*time.Second, "the dashboard answers", func() bool { c, _ := httpGet("http://" + addr + "/healthz"); return c == 200 })
	return addr, token, out
}
