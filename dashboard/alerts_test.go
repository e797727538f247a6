package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nopii/nopii/dashboard"
)

// receiver is a webhook endpoint the test runs: it answers fail (a status)
// to the first failures posts of each alert, then 200, and keeps the
// bodies it accepted.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	failures int // posts of an alert to fail; -1: all
	fail     int
	bodies   []map[string]any
	posts    int
	tries    map[string]int // by alert id
}

func newReceiver(t *testing.T, failures, status int) *receiver {
	r := &receiver{failures: failures, fail: status, tries: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.posts++
		var body map[string]any
		raw, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(raw, &body); err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s %s, %v", req.Method, req.Header.Get("Content-Type"), err)
		}
		id := req.Header.Get(dashboard.HeaderAlertID)
		r.tries[id]++
		if r.failures < 0 || r.tries[id] <= r.failures {
			w.WriteHeader(r.fail)
			return
		}
		r.bodies = append(r.bodies, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() (posts int, bodies []map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts, append([]map[string]any(nil), r.bodies...)
}

// syncBuffer is a log sink safe for the alert loop and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The secret part of every webhook URL of the test: it must never show.
const hookSecret = "T0000/B0000/XXXXSECRETXXXX"

// TestAlerts posts a failed run, a run the guard stopped, a silent agent
// and a slot past its WAL warning to three real webhook receivers: one
// that answers at once (generic JSON), one that fails twice then answers
// (Slack format), one that always fails. Each event is alerted once, the
// flaky receiver gets it on the third attempt, the failing one is given up
// after the bounded attempts, the delivery log (API and page) says so, and
// no log line, page or API answer shows a webhook URL's secret path.
func TestAlerts(t *testing.T) {
	ok := newReceiver(t, 0, 0)
	flaky := newReceiver(t, 2, http.StatusInternalServerError)
	down := newReceiver(t, -1, http.StatusServiceUnavailable)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens: a transport error, whose text would carry the URL
	var hooks []dashboard.Webhook
	for _, s := range []string{"json=" + ok.srv.URL + "/" + hookSecret, "slack=" + flaky.srv.URL + "/" + hookSecret,
		down.srv.URL + "/" + hookSecret, closed.URL + "/" + hookSecret} {
		w, err := dashboard.ParseWebhook(s, dashboard.WebhookJSON)
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w)
	}
	logs := &syncBuffer{}
	e := newEnvWith(t, func(o *dashboard.Options) {
		o.Webhooks, o.AlertAttempts, o.AlertBackoff, o.AlertPoll = hooks, 4, 20*time.Millisecond, 20*time.Millisecond
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.handler.RunAlerts(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	tok := e.token("prod-eu-1")
	t0 := e.clock.Now().Add(-time.Hour)
	const failedID, guardID = "6f1c2d3e-4b5a-4c7d-8e9f-00000000000a", "6f1c2d3e-4b5a-4c7d-8e9f-00000000000b"
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", tok, heartbeat("prod-eu-1", 3600))
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", failedID, "ml", "failed", t0,
		tableReport("public.staff", "full", 0, "copy table public.staff: permission denied")))
	// A second post of the same final report is not a second alert.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", failedID, "ml", "failed", t0,
		tableReport("public.staff", "full", 0, "copy table public.staff: permission denied")))
	guardedTable := tableReport("public.customer", "full", 0, "public.customer: new column nickname looks like person_name and has no rule")
	guardedTable["outcome"] = "guarded"
	guardedTable["unclassified"] = []map[string]any{{"schema": "public", "table": "customer", "column": "nickname", "kind": "person_name", "confidence": 0.8}}
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", guardID, "ml", "failed", t0.Add(time.Minute), guardedTable))
	// A successful run raises nothing.
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", tok, jobReport("prod-eu-1", "6f1c2d3e-4b5a-4c7d-8e9f-00000000000c", "ml", "success", t0.Add(2*time.Minute)))

	// A slot past its warning: one alert for two heartbeats, another once
	// it went below and past again.
	wal := func(retained int64) map[string]any {
		hb := heartbeat("prod-eu-1", 3600)
		hb["workflows"] = []map[string]any{{"name": "stream", "schedule": "cdc", "cdc_lag_bytes": 1 << 20, "cdc_lag_seconds": 2.5,
			"inputs": []map[string]any{{"name": "prod", "cdc_lag_bytes": 1 << 20, "cdc_lag_seconds": 2.5,
				"slot_retained_bytes": retained, "slot_wal_warn_bytes": 1 << 30}}}}
		return hb
	}
	for _, retained := range []int64{2 << 30, 3 << 30, 1 << 20, 2 << 30} {
		e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", tok, wal(retained))
	}
	// A silent agent: one alert, however often the loop looks.
	other := e.token("prod-us-1")
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", other, heartbeat("prod-us-1", 30))
	e.clock.Add(2 * time.Minute)
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", tok, wal(2<<30)) // prod-eu-1 stays fresh

	want := map[dashboard.AlertKind]int{dashboard.AlertRunFailed: 1, dashboard.AlertGuardFailed: 1, dashboard.AlertSlotWAL: 2, dashboard.AlertSilent: 1}
	var alerts []dashboard.Alert
	deadline := time.Now().Add(30 * time.Second)
	for {
		alerts = decodeJSON[[]dashboard.Alert](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/alerts", adminToken, nil))
		settled := len(alerts) == 5
		for _, a := range alerts {
			for _, d := range a.Deliveries {
				settled = settled && d.Status != dashboard.DeliveryPending
			}
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts did not settle: %+v", alerts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // ten more loops: still no duplicate
	alerts = decodeJSON[[]dashboard.Alert](t, e.mustStatus(http.StatusOK, "GET", "/api/v1/alerts", adminToken, nil))
	got := map[dashboard.AlertKind]int{}
	for _, a := range alerts {
		got[a.Kind]++
		if len(a.Deliveries) != 4 {
			t.Fatalf("alert %s: %d deliveries, want 4", a.Kind, len(a.Deliveries))
		}
		byHost := map[string]dashboard.Delivery{}
		for _, d := range a.Deliveries {
			byHost[strings.TrimPrefix(strings.TrimPrefix(d.Webhook, "json "), "slack ")] = d
		}
		for _, c := range []struct {
			name     string
			url      string
			status   dashboard.DeliveryStatus
			attempts int
			code     int
		}{
			{"ok", ok.srv.URL, dashboard.DeliveryDelivered, 1, 200},
			{"fails twice", flaky.srv.URL, dashboard.DeliveryDelivered, 3, 200},
			{"always fails", down.srv.URL, dashboard.DeliveryFailed, 4, 503},
			{"nothing listens", closed.URL, dashboard.DeliveryFailed, 4, 0},
		} {
			d := byHost[c.url]
			if d.Status != c.status || d.Attempts != c.attempts || d.LastCode != c.code || len(d.Log) != c.attempts {
				t.Errorf("alert %s to the receiver that %s: %+v, want %s after %d attempts, last code %d", a.Kind, c.name, d, c.status, c.attempts, c.code)
			}
			if c.status == dashboard.DeliveryFailed && d.LastError == "" {
				t.Errorf("alert %s to the receiver that %s: failed without an error", a.Kind, c.name)
			}
		}
		if a.Kind == dashboard.AlertRunFailed && (a.JobID != failedID || !strings.Contains(a.Message, "permission denied")) {
			t.Errorf("run_failed alert = %+v", a)
		}
		if a.Kind == dashboard.AlertGuardFailed && (a.JobID != guardID || !strings.Contains(a.Message, "public.customer.nickname (person_name)")) {
			t.Errorf("guard_failed alert = %+v", a)
		}
		if a.Kind == dashboard.AlertSilent && (a.Agent != "prod-us-1" || !strings.Contains(a.Message, "no heartbeat since")) {
			t.Errorf("agent_silent alert = %+v", a)
		}
		if a.Kind == dashboard.AlertSlotWAL && (a.Workflow != "stream" || !strings.Contains(a.Message, "input prod") || !strings.Contains(a.Message, "slot_wal_warn of 1.0 GiB")) {
			t.Errorf("slot_wal alert = %+v", a)
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s alerts, want %d (all: %v)", got[k], k, n, got)
		}
	}

	// What the receivers got: the JSON fields, and Slack's text only.
	if _, bodies := ok.got(); len(bodies) != 5 {
		t.Errorf("the json receiver got %d alerts, want 5", len(bodies))
	} else {
		for _, b := range bodies {
			for _, k := range []string{"kind", "agent", "message", "created_at", "alert_id"} {
				if b[k] == nil || b[k] == "" {
					t.Errorf("json alert lacks %s: %v", k, b)
				}
			}
		}
	}
	if posts, bodies := flaky.got(); len(bodies) != 5 || posts != 15 {
		t.Errorf("the slack receiver got %d posts, %d accepted; want 15, 5", posts, len(bodies))
	} else {
		for _, b := range bodies {
			text, _ := b["text"].(string)
			if len(b) != 1 || !strings.HasPrefix(text, "nopii ") {
				t.Errorf("slack alert = %v, want {\"text\": \"nopii …\"}", b)
			}
		}
	}
	if posts, _ := down.got(); posts != 20 {
		t.Errorf("the failing receiver got %d posts, want 4 attempts × 5 alerts", posts)
	}

	page := e.page("/alerts")
	mustContain(t, "alerts page", page, "run_failed", "guard_failed", "agent_silent", "slot_wal",
		`class="status delivered"`, `class="status failed"`, "webhook answered 503", "json "+ok.srv.URL, "slack "+flaky.srv.URL)
	api := e.mustStatus(http.StatusOK, "GET", "/api/v1/alerts", adminToken, nil)
	for what, text := range map[string]string{"logs": logs.String(), "alerts page": page, "alerts API": api} {
		if strings.Contains(text, "SECRET") {
			t.Errorf("%s show a webhook URL's secret path", what)
		}
	}
	mustContain(t, "logs", logs.String(), `"msg":"alert delivered"`, `"msg":"alert not delivered: giving up"`, `"msg":"alert delivery failed; will retry"`)
}

func TestParseWebhook(t *testing.T) {
	for _, c := range []struct {
		in      string
		format  dashboard.WebhookFormat
		shown   string
		wantErr bool
	}{
		{"https://hooks.slack.com/services/T0/B0/SECRET", dashboard.WebhookJSON, "json https://hooks.slack.com", false},
		{"slack=https://hooks.slack.com/services/T0/B0/SECRET", dashboard.WebhookSlack, "slack https://hooks.slack.com", false},
		{"json=http://user:SECRET@alerts.example:8080/hook?token=SECRET", dashboard.WebhookJSON, "json http://alerts.example:8080", false},
		{"ftp://host/SECRET", "", "", true},
		{"hooks.slack.com/SECRET", "", "", true},
		{"xml=https://host/SECRET", "", "", true},
	} {
		w, err := dashboard.ParseWebhook(c.in, dashboard.WebhookJSON)
		if c.wantErr {
			if err == nil {
				t.Errorf("ParseWebhook(%q): no error", c.in)
			} else if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("ParseWebhook(%q): error shows the URL: %v", c.in, err)
			}
			continue
		}
		if err != nil || w.Format != c.format || w.String() != c.shown {
			t.Errorf("ParseWebhook(%q) = %v %q, %v; want %s %q", c.in, w.Format, w.String(), err, c.format, c.shown)
		}
	}
}

// TestSilentAfterRestart: a dashboard that starts after an agent's last
// heartbeat waits two of the agent's intervals before it calls the agent
// silent (it could not hear heartbeats while down), then alerts once.
func TestSilentAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", e.token("prod-eu-1"), heartbeat("prod-eu-1", 30))
	clk := &clock{t: e.clock.Now().Add(10 * time.Minute)} // the dashboard restarts 10 minutes later
	s, err := dashboard.NewServer(e.store, dashboard.Options{AdminToken: adminToken, Now: clk.Now, AlertPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.RunAlerts(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(200 * time.Millisecond)
	if n := e.count("alerts"); n != 0 {
		t.Fatalf("%d alerts right after the restart, want none", n)
	}
	clk.Add(61 * time.Second)
	for deadline := time.Now().Add(10 * time.Second); e.count("alerts") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no silent alert two intervals after the restart")
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := e.count("alerts"); n != 1 {
		t.Errorf("%d alerts, want one", n)
	}
}
