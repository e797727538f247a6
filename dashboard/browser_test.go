package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/dashboard"
)

// chromium finds a Chromium binary: $NOPII_CHROMIUM, then PATH. In CI a
// missing browser fails the test (.ci/run installs it); elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NOPII_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	// Like the PostgreSQL and S3 servers: missing means failing, with what
	// to install, never a silent skip.
	t.Fatal("chromium not found: install it (apt-get install -y --no-install-recommends chromium, as .ci/run does) or set NOPII_CHROMIUM")
	return ""
}

// artifacts is where screenshots go: $NOPII_ARTIFACTS, else the test's temp dir.
func artifacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("NOPII_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "dashboard")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// runChromium runs headless Chromium with a fresh profile and returns its stdout.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// Headless Chromium's window is never narrower than 500 px, so a phone's
// 390 px viewport is an iframe of that width in a page the test's front
// serves (/frame/PATH). The framed page (/inner/PATH) gets measureScript
// appended (the pages have no script, and their CSP forbids one): it
// writes the layout's widths, and a copy of the page's body, into the
// framing page, which is what --dump-dom prints.
const measureScript = `<script>var d = parent.document.body;` +
	`d.setAttribute("data-scroll-width", document.documentElement.scrollWidth);` +
	`d.setAttribute("data-client-width", document.documentElement.clientWidth);` +
	`var wide = [];` +
	`document.querySelectorAll("main *:not(pre):not(pre *)").forEach(function (el) {` +
	`  if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX != "visible") wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className); });` +
	`d.setAttribute("data-wide", wide.join(" "));` +
	`d.appendChild(parent.document.importNode(document.body, true));</script>`

const phoneWidth, phoneHeight = 390, 844

var (
	widthRE = regexp.MustCompile(`data-scroll-width="(\d+)" data-client-width="(\d+)"`)
	wideRE  = regexp.MustCompile(`data-wide="([^"]*)"`)
)

// seedBrowser adds to seed what the newer pages show: a failing agent, a
// cdc workflow with its inputs' lag (one slot past its warning), a run the
// guard stopped, a run that copied a column without a rule (with long
// unbreakable names, the phone layout's worst case), a covered finding,
// and the alerts of it all.
func seedBrowser(t *testing.T, e *env) (jobID string) {
	t.Helper()
	eu := e.token("prod-eu-1")
	hb := heartbeat("prod-eu-1", 30)
	hb["workflows"] = append(hb["workflows"].([]map[string]any), map[string]any{"name": "orders-stream", "schedule": "cdc",
		"last_result": "success", "cdc_lag_bytes": 5 << 20, "cdc_lag_seconds": 3.2, "inputs": []map[string]any{
			{"name": "prod", "cdc_lag_bytes": 5 << 20, "cdc_lag_seconds": 3.2, "slot_retained_bytes": 64 << 20, "slot_wal_warn_bytes": 1 << 30},
			{"name": "billing", "cdc_lag_bytes": 1 << 20, "cdc_lag_seconds": 0.4, "slot_retained_bytes": 3 << 30, "slot_wal_warn_bytes": 1 << 30},
		}})
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", eu, hb)
	fail := heartbeat("staging-1", 30)
	fail["workflows"].([]map[string]any)[0]["last_result"] = "failed"
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", e.token("staging-1"), fail)

	long := "public.customer_preferences_and_marketing_consent_history_archive_2025"
	t0 := e.clock.Now().Add(-3 * time.Hour)
	for i := range 6 {
		tr := tableReport(long, "delta", int64(500+i*250), "")
		tr["upserted"], tr["deleted"] = 400+i*200, 100+i*50
		tr["unclassified"] = []map[string]any{{"schema": "public", "table": long[len("public."):], "column": "emergency_contact_phone_number_secondary",
			"kind": "phone", "confidence": 0.85, "rule": map[string]any{"rule": "fake", "kind": "phone"}}}
		tr["warnings"] = []string{"new column emergency_contact_phone_number_secondary looks like phone and has no rule: copied as it is (on_unclassified: warn); add { rule: fake, kind: phone }"}
		id := fmt.Sprintf("6f1c2d3e-4b5a-4c7d-8e9f-0000000001%02d", i)
		e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", eu, jobReport("prod-eu-1", id, "ml-experimentation", "success", t0.Add(time.Duration(i)*20*time.Minute), tr))
		jobID = id
	}
	g := tableReport("public.staff", "full", 0, "guard: new column national_insurance_number looks like national_id and has no rule: add { rule: destroy }")
	g["outcome"] = "guarded"
	g["unclassified"] = []map[string]any{{"schema": "public", "table": "staff", "column": "national_insurance_number", "kind": "national_id", "confidence": 0.9}}
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", eu, jobReport("prod-eu-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000200", "ml-experimentation", "failed", t0.Add(2*time.Hour), g))
	return jobID
}

// TestBrowser renders every page in headless Chromium: the DOM it builds
// holds each page's elements (health marks, report rows, the charts, the
// delivery log); at a phone's 390 px no page is wider than the viewport;
// and the screenshots are PNGs of the window's size with the page drawn
// (the dark header in the corner), kept for a human to look at.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	hook := newReceiver(t, 0, 0)
	w, err := dashboard.ParseWebhook("slack="+hook.srv.URL+"/services/"+hookSecret, dashboard.WebhookJSON)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(o *dashboard.Options) { o.Webhooks, o.AlertPoll = []dashboard.Webhook{w}, 20*time.Millisecond })
	seed(t, e)
	jobID := seedBrowser(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.handler.RunAlerts(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if posts, _ := hook.got(); posts >= 4 { // two failed runs, a slot, a silent agent
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alerts not delivered")
		}
	}
	// Chromium's command line cannot send headers: a front adds the admin
	// bearer token, as a proxy with its own authentication would; it also
	// serves the phone frame.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+adminToken)
		if p, ok := strings.CutPrefix(r.URL.Path, "/frame"); ok {
			src := "/inner" + p
			if r.URL.RawQuery != "" {
				src += "?" + r.URL.RawQuery
			}
			fmt.Fprintf(w, `<!doctype html><html><head><style>body{margin:0;background:#fff}iframe{border:0;display:block}</style></head>`+
				`<body><iframe src="%s" width="%d" height="%d"></iframe></body></html>`, html.EscapeString(src), phoneWidth, phoneHeight)
			return
		}
		if p, ok := strings.CutPrefix(r.URL.Path, "/inner"); ok {
			r.URL.Path = p
			rec := httptest.NewRecorder() // leaves the frame-forbidding headers out
			e.handler.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
			w.WriteHeader(rec.Code)
			w.Write([]byte(strings.Replace(rec.Body.String(), "</body>", measureScript+"</body>", 1)))
			return
		}
		e.handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	dir := artifacts(t)

	for _, pg := range []struct {
		name, path string
		wants      []string
	}{
		{"agents", "/", []string{`id="agent-prod-eu-1"`, `data-state="healthy"`, `data-state="failing"`, `data-state="silent"`,
			"prod: 5.0 MiB, 3.2s behind", "past its warning (1.0 GiB)"}},
		{"jobs", "/jobs", []string{"public.customer", "1,234,567", "public.orders", "public.payment", "tables done so far",
			"copy table public.staff: permission denied", `<select name="workflow">`}},
		{"job", "/jobs/" + jobID, []string{"Upserted", "1,400", `<svg class="chart"`, `class="bar cur"`, "The last 6 runs of this workflow, up to this one"}},
		{"scans", "/scans", []string{"email: { rule: redact_email }", "First seen", "Scan history"}},
		{"unruled", "/unruled", []string{"emergency_contact_phone_number_secondary", "{ rule: fake, kind: phone }"}},
		{"alerts", "/alerts", []string{"guard_failed", "run_failed", "slot_wal", "agent_silent", `class="status delivered"`, "slack " + hook.srv.URL}},
	} {
		path := pg.path
		dom := runChromium(t, bin, "--dump-dom", "--window-size=500,900", front.URL+"/frame"+path)
		mustContain(t, pg.name+" DOM", dom, pg.wants...)
		if strings.Contains(dom, "SECRET") {
			t.Errorf("%s shows a webhook URL's secret", pg.name)
		}
		m := widthRE.FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("%s: the measuring script did not run", pg.name)
		}
		if m[2] != strconv.Itoa(phoneWidth) {
			t.Fatalf("%s: the viewport is %s px wide, want %d", pg.name, m[2], phoneWidth)
		}
		if sw, _ := strconv.Atoi(m[1]); sw > phoneWidth {
			t.Errorf("%s is %d px wide on a %d px phone: it scrolls sideways", pg.name, sw, phoneWidth)
		}
		// Nor does any box scroll sideways inside (the YAML rules excepted).
		if w := wideRE.FindStringSubmatch(dom); w == nil || w[1] != "" {
			t.Errorf("%s: boxes scroll sideways on a %d px phone: %v", pg.name, phoneWidth, w)
		}
		// The phone's screenshot: the frame, cut out of the 500 px window.
		p := filepath.Join(dir, pg.name+"-phone.png")
		runChromium(t, bin, "--screenshot="+p, fmt.Sprintf("--window-size=500,%d", phoneHeight), front.URL+"/frame"+path)
		cropPNG(t, p, phoneWidth, phoneHeight)
		checkScreenshot(t, p, phoneWidth, phoneHeight)
		if pg.name == "agents" || pg.name == "job" {
			p := filepath.Join(dir, pg.name+"-desktop.png")
			runChromium(t, bin, "--screenshot="+p, "--window-size=1280,900", front.URL+pg.path)
			checkScreenshot(t, p, 1280, 900)
		}
	}
	t.Logf("screenshots in %s", dir)
}

// cropPNG cuts the top-left w×h of the PNG at path, in place.
func cropPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	sub, ok := img.(interface {
		SubImage(r image.Rectangle) image.Image
	})
	if !ok {
		t.Fatalf("screenshot %s: %T cannot be cut", path, img)
	}
	var out bytes.Buffer
	if err := png.Encode(&out, sub.SubImage(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkScreenshot decodes a screenshot: a PNG of the window's size whose
// top-left corner is the header's dark bar, and whose page below it is
// drawn (more than one colour).
func checkScreenshot(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot %s is %dx%d, want %dx%d", filepath.Base(path), b.Dx(), b.Dy(), w, h)
	}
	if r, g, b, _ := img.At(2, 2).RGBA(); r>>8 > 0x40 || g>>8 > 0x40 || b>>8 > 0x40 {
		t.Errorf("screenshot %s: the top-left corner is #%02x%02x%02x, not the header's dark bar", filepath.Base(path), r>>8, g>>8, b>>8)
	}
	colours := map[uint32]bool{}
	for y := 60; y < img.Bounds().Dy(); y += 7 {
		for x := 0; x < img.Bounds().Dx(); x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 3 {
		t.Errorf("screenshot %s: the page below the header is blank (%d colours)", filepath.Base(path), len(colours))
	}
}
