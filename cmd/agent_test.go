package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/pgtest"
)

// fakeDashboard records what agents post, checking the bearer token.
type fakeDashboard struct {
	mu         sync.Mutex
	heartbeats []map[string]any
	jobs       []map[string]any
	rejected   int
}

func (f *fakeDashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer agent-token-123" {
		f.mu.Lock()
		f.rejected++
		f.mu.Unlock()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var v map[string]any
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/v1/heartbeat":
		f.heartbeats = append(f.heartbeats, v)
	case "/api/v1/jobs":
		f.jobs = append(f.jobs, v)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeDashboard) finishedJobs() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, j := range f.jobs {
		if j["status"] != "running" {
			out = append(out, j)
		}
	}
	return out
}

func (f *fakeDashboard) lastHeartbeat() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.heartbeats) == 0 {
		return nil
	}
	return f.heartbeats[len(f.heartbeats)-1]
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %s", within, what)
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// syncBuf is a goroutine-safe buffer for a child's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAgentProcess runs the real `nopii agent` binary against real
// PostgreSQL and a recording dashboard.
func TestAgentProcess(t *testing.T) {
	bin := buildNopii(t)
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.a (id int PRIMARY KEY, email text);
		INSERT INTO public.a SELECT i, 'a' || i || '@x.org' FROM generate_series(1, 50) i;
		CREATE TABLE public.b (id int PRIMARY KEY);
		INSERT INTO public.b SELECT generate_series(1, 7);
		CREATE VIEW public.slow AS SELECT g AS id FROM generate_series(1, 2) g, pg_sleep(2.5)`)
	dash := &fakeDashboard{}
	ds := httptest.NewServer(dash)
	defer ds.Close()
	listen := freeAddr(t)
	const secretPW = "agent-Secret-pw-91"
	prodWithPW := strings.Replace(prodDSN, "postgres@", "postgres:"+secretPW+"@", 1)
	config := func(tables string) string {
		return `
version: 1
hmac_key: ` + testKey + `
dashboard:
  url: ` + ds.URL + `
  token: agent-token-123
  heartbeat_interval: 1s
agent:
  name: test-agent
  listen: ` + listen + `
workflows:
  - name: w
    schedule: "@every 2s"
    inputs:
      - name: prod
        dsn: ` + prodWithPW + `
        tables:
` + tables + `
    feeds:
      - type: twin
        dsn: ` + twinDSN + `
  - name: slowflow
    schedule: "@every 1s"
    inputs:
      - name: prod
        dsn: ` + prodDSN + `
        tables:
          - name: public.slow
            primary_key: [id]
    feeds:
      - type: twin
        dsn: ` + twinDSN + `
`
	}
	tableA := `          - name: public.a
            columns:
              email: { rule: redact_email }`
	cfgPath := writeConfig(t, config(tableA))
	var out syncBuf
	cmd := exec.Command(bin, "agent", "--config", cfgPath, "--reload-every", "200ms", "--grace", "20s", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("agent output:\n%s", out.String())
		}
	}()

	base := "http://" + listen
	eventually(t, 10*time.Second, "/healthz answers", func() bool { c, _ := httpGet(base + "/healthz"); return c == 200 })
	eventually(t, 15*time.Second, "/readyz is ready", func() bool { c, _ := httpGet(base + "/readyz"); return c == 200 })

	// The schedule fires: the twin gets public.a, redacted; the dashboard a report.
	eventually(t, 15*time.Second, "a scheduled run copied public.a", func() bool {
		var n int64
		err := twin.QueryRow(t.Context(), "SELECT count(*) FROM public.a WHERE email LIKE 'u%@example.com'").Scan(&n)
		return err == nil && n == 50
	})
	eventually(t, 10*time.Second, "a finished job report with per-table rows reached the dashboard", func() bool {
		for _, j := range dash.finishedJobs() {
			if j["workflow"] == "w" && j["status"] == "success" && j["agent"] == "test-agent" && j["job_id"] != "" {
				if tables, _ := j["tables"].([]any); len(tables) == 1 && tables[0].(map[string]any)["rows"] == float64(50) {
					return true
				}
			}
		}
		return false
	})
	eventually(t, 10*time.Second, "a running job was re-posted with the tables done so far", func() bool {
		dash.mu.Lock()
		defer dash.mu.Unlock()
		for _, j := range dash.jobs {
			if tables, _ := j["tables"].([]any); j["status"] == "running" && len(tables) > 0 {
				return true
			}
		}
		return false
	})
	eventually(t, 5*time.Second, "a heartbeat names the workflows with their next run", func() bool {
		h := dash.lastHeartbeat()
		wfs, _ := h["workflows"].([]any)
		return h != nil && h["agent"] == "test-agent" && len(wfs) == 2 && wfs[0].(map[string]any)["next_run"] != nil
	})

	// Overlap: slowflow takes 2.5s on a 1s schedule, so ticks are skipped.
	eventually(t, 15*time.Second, "overlapping ticks are skipped and logged", func() bool {
		return strings.Contains(out.String(), "scheduled run skipped: the previous run is still going")
	})

	// Reload: a new table is picked up without a restart.
	if err := os.WriteFile(cfgPath, []byte(strings.TrimLeft(config(tableA+"\n          - name: public.b"), "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the reloaded configuration copied public.b", func() bool {
		var n int64
		err := twin.QueryRow(t.Context(), "SELECT count(*) FROM public.b").Scan(&n)
		return err == nil && n == 7
	})

	// A broken file is rejected; the previous configuration stays in force.
	jobsBefore := len(dash.finishedJobs())
	if err := os.WriteFile(cfgPath, []byte("version: 1\nworkflows: [ {name: oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the broken configuration is rejected and reported", func() bool {
		h := dash.lastHeartbeat()
		return strings.Contains(out.String(), "configuration change rejected") && h != nil && h["config_error"] != nil && h["config_error"] != ""
	})
	eventually(t, 10*time.Second, "runs go on under the previous configuration", func() bool { return len(dash.finishedJobs()) > jobsBefore+1 })

	_, metrics := httpGet(base + "/metrics")
	for _, want := range []string{`nopii_runs_total{status="success",workflow="w"}`, `nopii_config_valid 0`, `nopii_runs_skipped_total{workflow="slowflow"}`, `nopii_rows_copied_total{table="public.a",workflow="w"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, ready := httpGet(base + "/readyz")
	for _, secret := range []string{secretPW, "agent-token-123", testKey} {
		if strings.Contains(metrics+ready+out.String(), secret) {
			t.Errorf("a secret appears in /metrics, /readyz or the logs")
		}
	}
	if dash.rejected != 0 {
		t.Errorf("%d posts were rejected by the dashboard", dash.rejected)
	}

	// SIGTERM: stop scheduling, finish or cancel, exit 0; the twin is whole.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("agent exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not exit within the grace period after SIGTERM")
	}
	if n := queryInt(t, twin, `SELECT count(*) FROM pg_class WHERE relname LIKE '\_nopii\_new\_%'`); n != 0 {
		t.Errorf("%d shadow tables after SIGTERM", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.a"); n != 50 {
		t.Errorf("public.a has %d rows after SIGTERM", n)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if dup := duplicateKeys(line); len(dup) > 0 {
			t.Errorf("a log line repeats %v: %s", dup, line)
		}
	}
	fmt.Fprint(io.Discard, out.String())
}

// duplicateKeys returns the keys that a JSON object line holds twice (a
// logger given With(key) twice writes both), nil for any other line.
func duplicateKeys(line string) []string {
	if !strings.HasPrefix(line, "{") {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	seen := map[string]bool{}
	var dup []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dup
		}
		key, _ := tok.(string)
		if seen[key] {
			dup = append(dup, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return dup
		}
	}
	return dup
}

// TestAgentFollowsEveryInput: the agent streams the cdc tables of every
// input of a workflow at once (one stream per input), and posts each
// stream's job to the dashboard: running with its first copy once it
// streams, finished with the changes it applied when the agent stops.
func TestAgentFollowsEveryInput(t *testing.T) {
	bin := buildNopii(t)
	shopDSN, crmDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	shop, crm, twin := mustConnect(t, shopDSN), mustConnect(t, crmDSN), mustConnect(t, twinDSN)
	mustExec(t, shop, `CREATE TABLE public.orders (id int PRIMARY KEY, total int); INSERT INTO public.orders SELECT i, i FROM generate_series(1, 30) i`)
	mustExec(t, crm, `CREATE TABLE public.contact (id int PRIMARY KEY, email text); INSERT INTO public.contact SELECT i, 'c' || i || '@x.org' FROM generate_series(1, 20) i`)
	dash := &fakeDashboard{}
	ds := httptest.NewServer(dash)
	defer ds.Close()
	cfg := writeConfig(t, `
version: 1
hmac_key: `+testKey+`
dashboard:
  url: `+ds.URL+`
  token: agent-token-123
  heartbeat_interval: 1s
agent:
  name: follow-agent
  listen: `+freeAddr(t)+`
workflows:
  - name: w
    inputs:
      - name: shop
        dsn: `+shopDSN+`
        tables:
          - name: public.orders
            mode: cdc
      - name: crm
        dsn: `+crmDSN+`
        tables:
          - name: public.contact
            mode: cdc
            columns:
              email: { rule: redact_email }
    feeds:
      - type: twin
        dsn: `+twinDSN+`
`)
	var out syncBuf
	stop := startAgent(t, bin, cfg, &out)
	defer func() {
		stop(true)
		if t.Failed() {
			t.Logf("agent:\n%s", out.String())
		}
	}()
	count := func(table string) int {
		var n int
		if err := twin.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	eventually(t, 30*time.Second, "both inputs' first copies", func() bool { return count("public.orders") == 30 && count("public.contact") == 20 })
	mustExec(t, shop, "INSERT INTO public.orders VALUES (31, 31)")
	mustExec(t, crm, "DELETE FROM public.contact WHERE id <= 2")
	eventually(t, 30*time.Second, "both inputs' changes streamed", func() bool { return count("public.orders") == 31 && count("public.contact") == 18 })
	// One running job per input, with its first copy.
	running := map[string]float64{}
	dash.mu.Lock()
	for _, j := range dash.jobs {
		if j["status"] != "running" {
			continue
		}
		tables, _ := j["tables"].([]any)
		for _, tb := range tables {
			tr := tb.(map[string]any)
			running[tr["input"].(string)+" "+tr["table"].(string)] = tr["rows"].(float64)
		}
	}
	dash.mu.Unlock()
	if running["shop public.orders"] != 30 || running["crm public.contact"] != 20 {
		t.Errorf("running jobs' first copies = %v, want shop public.orders 30 and crm public.contact 20", running)
	}
	stop(false)
	// When the agent stops, each stream's job ends: success, one row a
	// table, its first copy and the changes streamed after it.
	finished := map[string]map[string]any{}
	for _, j := range dash.finishedJobs() {
		tables, _ := j["tables"].([]any)
		for _, tb := range tables {
			tr := tb.(map[string]any)
			finished[tr["input"].(string)+" "+tr["table"].(string)] = map[string]any{"status": j["status"], "mode": tr["mode"], "rows": tr["rows"], "error": tr["error"]}
		}
	}
	for key, want := range map[string]float64{"shop public.orders": 31, "crm public.contact": 22} {
		f := finished[key]
		if f == nil || f["status"] != "success" || f["mode"] != "cdc" || f["rows"] != want || f["error"] != nil {
			t.Errorf("%s: finished job %v, want success, mode cdc, %v rows (copy and changes), no error", key, f, want)
		}
	}
}
