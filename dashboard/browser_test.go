package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestBrowser renders the pages in headless Chromium: the DOM it builds
// holds the health marks and the report rows, and the screenshots (desktop
// and phone widths) are kept for a human to look at.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	seed(t, e)
	// Chromium's command line cannot send headers: a front adds the admin
	// bearer token, as a proxy with its own authentication would.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+adminToken)
		e.handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	dir := artifacts(t)

	dom := runChromium(t, bin, "--dump-dom", front.URL+"/")
	eu := section(t, dom, `id="agent-prod-eu-1"`)
	us := section(t, dom, `id="agent-prod-us-1"`)
	mustContain(t, "agents DOM, healthy agent", eu, `class="ok"`, "✓")
	mustContain(t, "agents DOM, silent agent", us, `class="bad"`, "✗", "last seen 10m ago")

	dom = runChromium(t, bin, "--dump-dom", front.URL+"/jobs")
	mustContain(t, "jobs DOM", dom, "public.customer", "1,234,567", "public.orders", "public.payment", "tables done so far",
		"copy table public.staff: permission denied")

	dom = runChromium(t, bin, "--dump-dom", front.URL+"/scans")
	mustContain(t, "scans DOM", dom, "email: { rule: redact_email }")

	for _, shot := range []struct{ name, path, size string }{
		{"agents-desktop.png", "/", "1280,800"},
		{"jobs-desktop.png", "/jobs", "1280,1000"},
		{"agents-phone.png", "/", "390,844"},
		{"jobs-phone.png", "/jobs", "390,1400"},
		{"scans-phone.png", "/scans", "390,1000"},
	} {
		p := filepath.Join(dir, shot.name)
		runChromium(t, bin, "--screenshot="+p, "--window-size="+shot.size, front.URL+shot.path)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("screenshot %s: %v", shot.name, err)
		}
		if len(b) < 1000 || string(b[1:4]) != "PNG" {
			t.Errorf("screenshot %s: %d bytes, not a PNG", shot.name, len(b))
		}
	}
	t.Logf("screenshots in %s", dir)
}
