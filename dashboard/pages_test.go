package dashboard_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// seed posts two agents (one healthy, one silent), jobs and a scan.
func seed(t *testing.T, e *env) {
	t.Helper()
	eu, us := e.token("prod-eu-1"), e.token("prod-us-1")
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", us, heartbeat("prod-us-1", 30))
	e.clock.Add(10 * time.Minute)
	e.mustStatus(http.StatusOK, "POST", "/api/v1/heartbeat", eu, heartbeat("prod-eu-1", 30))
	t0 := e.clock.Now().Add(-time.Hour)
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", eu, jobReport("prod-eu-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000001", "ml-experimentation", "success", t0,
		tableReport("public.customer", "full", 1234567, ""), tableReport("public.orders", "delta", 250, "")))
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", eu, jobReport("prod-eu-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000002", "ml-experimentation", "running", t0.Add(50*time.Minute),
		tableReport("public.payment", "full", 4321, "")))
	e.mustStatus(http.StatusOK, "POST", "/api/v1/jobs", us, jobReport("prod-us-1", "6f1c2d3e-4b5a-4c7d-8e9f-000000000003", "bi", "failed", t0,
		tableReport("public.staff", "full", 0, "copy table public.staff: permission denied")))
	e.mustStatus(http.StatusOK, "POST", "/api/v1/scans", eu, scanBody())
}

// page gets an HTML page with the admin bearer token.
func (e *env) page(path string) string {
	e.t.Helper()
	out := e.mustStatus(http.StatusOK, "GET", path, adminToken, nil)
	if !strings.Contains(out, "<!doctype html>") {
		e.t.Fatalf("GET %s is not a page: %.200s", path, out)
	}
	return out
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t)
	seed(t, e)

	agents := e.page("/")
	eu := section(t, agents, `id="agent-prod-eu-1"`)
	us := section(t, agents, `id="agent-prod-us-1"`)
	mustContain(t, "healthy agent", eu, "✓", "healthy", "v1.2.3", "ml-experimentation", "0 0 * * *")
	if strings.Contains(eu, "✗") {
		t.Errorf("healthy agent shows ✗")
	}
	mustContain(t, "silent agent", us, "✗", "last seen 10m ago")
	if strings.Contains(us, "✓") {
		t.Errorf("silent agent shows ✓")
	}

	jobs := e.page("/jobs")
	mustContain(t, "jobs page", jobs, "Workflow ml-experimentation", "Workflow bi",
		"public.customer", "1,234,567", "public.orders", "250", "delta", "full",
		"public.payment", "tables done so far", "4,321",
		"copy table public.staff: permission denied", `class="status failed"`, `class="status success"`, `class="status running"`)
	// Newest first within a workflow: the running job (started later) before the finished one.
	if strings.Index(jobs, "000000000002") > strings.Index(jobs, "000000000001") {
		t.Errorf("jobs page: older run listed first")
	}
	if f := e.page("/jobs?workflow=bi"); strings.Contains(f, "public.customer") || !strings.Contains(f, "public.staff") {
		t.Errorf("jobs page ?workflow=bi shows other workflows")
	}

	scans := e.page("/scans")
	mustContain(t, "scans page", scans, "prod-eu-1", "public.customer.email", "95%",
		"- name: public.customer", "email: { rule: redact_email }", "phone: { rule: fake, kind: phone }",
		"card_number: { rule: mask, keep_last: 4 }")

	// Empty pages render too.
	e2 := newEnv(t)
	mustContain(t, "empty agents page", e2.page("/"), "No agent has sent a heartbeat yet")
	mustContain(t, "empty jobs page", e2.page("/jobs"), "No job reported yet")
	mustContain(t, "empty scans page", e2.page("/scans"), "No scan reported yet")
}

// section returns the HTML from the element carrying marker to its </section>.
func section(t *testing.T, html, marker string) string {
	t.Helper()
	i := strings.Index(html, marker)
	if i < 0 {
		t.Fatalf("page lacks %s", marker)
	}
	j := strings.Index(html[i:], "</section>")
	return html[i : i+j]
}

func TestSecureHeaders(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/", "/login", "/jobs", "/api/v1/agents", "/healthz", "/static/style.css", "/nothing"} {
		for _, tok := range []string{"", adminToken} {
			req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := noRedirect(nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" ||
				!strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("GET %s (token %v): headers %v", path, tok != "", h)
			}
		}
	}
	// No page pulls anything from elsewhere, and there is no inline script.
	seed(t, e)
	for _, path := range []string{"/", "/jobs", "/scans"} {
		body := e.page(path)
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "<script") || strings.Contains(body, "style=") {
			t.Errorf("%s references outside resources or inline code", path)
		}
	}
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	seed(t, e)
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := c.PostForm(e.srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Without a session, pages send to the login form; a wrong bearer gets 401.
	if resp, _ := get("/jobs"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET /jobs without login: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := e.do("GET", "/", "wrong", nil); code != http.StatusUnauthorized {
		t.Errorf("GET / with a wrong bearer: %d, want 401", code)
	}

	resp, body := get("/login")
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("login form: %d, csrf field %v", resp.StatusCode, m)
	}
	csrf := m[1]

	// Missing or wrong CSRF token: 403 even with the right admin token.
	for _, bad := range []url.Values{
		{"token": {adminToken}},
		{"token": {adminToken}, "csrf": {"AAAA" + csrf[4:]}},
	} {
		if resp, body := post("/login", bad); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error"`) {
			t.Errorf("login with csrf %q: %d %s, want 403", bad.Get("csrf"), resp.StatusCode, body)
		}
	}
	// The right CSRF token from another browser (no cookie): 403.
	if resp, err := noRedirect(nil).PostForm(e.srv.URL+"/login", url.Values{"token": {adminToken}, "csrf": {csrf}}); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with a csrf token but not its cookie: %v %v, want 403", resp.StatusCode, err)
	}
	// Wrong admin token: 401, the form again.
	if resp, body := post("/login", url.Values{"token": {"nope"}, "csrf": {csrf}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong admin token") {
		t.Errorf("login with a wrong token: %d", resp.StatusCode)
	}
	if resp, _ := get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after failed logins, GET / = %d, want 303", resp.StatusCode)
	}

	resp, _ = post("/login", url.Values{"token": {adminToken}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "nopii_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("session cookie = %+v, want HttpOnly SameSite=Strict, not Secure over plain HTTP", session)
	}
	if strings.Contains(session.Value, adminToken) {
		t.Errorf("session cookie holds the admin token")
	}
	resp, body = get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "prod-eu-1") || !strings.Contains(body, "Sign out") {
		t.Errorf("GET / after login: %d", resp.StatusCode)
	}
	if resp, body := get("/jobs"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "public.customer") {
		t.Errorf("GET /jobs after login: %d", resp.StatusCode)
	}

	// A forged session cookie does not pass.
	forged := noRedirect(nil)
	req, _ := http.NewRequest("GET", e.srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "nopii_session", Value: "99999999999.AAAA"})
	if resp, err := forged.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("forged session: %v %v, want 303", resp.StatusCode, err)
	}

	// Sessions expire.
	e.clock.Add(13 * time.Hour)
	if resp, _ := get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / 13h after login = %d, want 303", resp.StatusCode)
	}
	e.clock.Add(-13 * time.Hour)

	// Logout needs the CSRF token too, then ends the session.
	_, body = get("/")
	m = csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf field in the logout form")
	}
	if resp, _ := post("/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without csrf: %d, want 403", resp.StatusCode)
	}
	if resp, _ := post("/logout", url.Values{"csrf": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d, want 303", resp.StatusCode)
	}
	if resp, _ := get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after logout = %d, want 303", resp.StatusCode)
	}
}
