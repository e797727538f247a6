package dashboard

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nopii/nopii/internal/human"
	"github.com/nopii/nopii/rulesets"
)

//go:embed assets
var assets embed.FS

func staticFS() fs.FS {
	sub, err := fs.Sub(assets, "assets/static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

const (
	sessionCookie = "nopii_session"
	csrfCookie    = "nopii_csrf"
	csrfField     = "csrf"
)

var funcs = template.FuncMap{
	"ago":      ago,
	"utc":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"secs":     func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "s" },
	"num":      thousands,
	"bytes":    human.Bytes,
	"join":     strings.Join,
	"pct":      func(f float64) string { return strconv.Itoa(int(f*100+0.5)) + "%" },
	"ruleYAML": ruleYAML,
}

// parseTemplates builds one template set per page, each with the layout.
func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"agents", "jobs", "scans", "login"} {
		t, err := template.Must(base.Clone()).ParseFS(assets, "assets/templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		out[page] = t
	}
	return out, nil
}

type pages struct {
	s *Server
	t map[string]*template.Template
}

// pageData is what every page's template gets.
type pageData struct {
	Title    string
	Nav      string
	LoggedIn bool // by session: show the logout form
	CSRF     string
	Now      time.Time
	Error    string
	Data     any
}

func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, page string, d pageData) {
	d.Now = p.s.opts.Now()
	d.Nav = page
	if p.s.validSession(r) {
		d.LoggedIn = true
		d.CSRF = p.csrfToken(w, r)
	}
	var buf bytes.Buffer
	if err := p.t[page].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		p.s.log.Error("render page", "page", page, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) secureCookies(r *http.Request) bool { return s.opts.SecureCookies || r.TLS != nil }

// csrfToken returns the form token bound to the browser's CSRF cookie,
// setting the cookie when there is none.
func (p *pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(csrfCookie)
	val := ""
	if err == nil && len(c.Value) >= 32 {
		val = c.Value
	} else {
		b := make([]byte, 32)
		rand.Read(b)
		val = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: val, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: p.s.secureCookies(r)})
	}
	return base64.RawURLEncoding.EncodeToString(p.s.sign("csrf|" + val))
}

// checkCSRF answers 403 unless the form's token matches the cookie.
func (p *pages) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	got, derr := base64.RawURLEncoding.DecodeString(r.PostFormValue(csrfField))
	if err != nil || derr != nil || len(got) == 0 || !hmac.Equal(got, p.s.sign("csrf|"+c.Value)) {
		writeError(w, http.StatusForbidden, "missing or wrong CSRF token: reload the form and try again")
		return false
	}
	return true
}

// session is "<expiry unix>.<HMAC>": it proves a login without holding
// the admin token.
func (s *Server) newSession() (string, time.Time) {
	exp := s.opts.Now().Add(s.opts.SessionTTL)
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + base64.RawURLEncoding.EncodeToString(s.sign("session|"+e)), exp
}

func (s *Server) validSession(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	e, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, s.sign("session|"+e)) {
		return false
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	return err == nil && s.opts.Now().Unix() < exp
}

func (p *pages) loginForm(w http.ResponseWriter, r *http.Request) {
	if p.s.validSession(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "login", pageData{Title: "Sign in", CSRF: p.csrfToken(w, r)})
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	if !p.checkCSRF(w, r) {
		return
	}
	if !p.s.isAdminToken(r.PostFormValue("token")) {
		p.s.log.Warn("failed dashboard login", "remote", r.RemoteAddr)
		p.render(w, r, http.StatusUnauthorized, "login", pageData{Title: "Sign in", CSRF: p.csrfToken(w, r), Error: "Wrong admin token."})
		return
	}
	val, exp := p.s.newSession()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: val, Path: "/", Expires: exp, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: p.s.secureCookies(r)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (p *pages) logout(w http.ResponseWriter, r *http.Request) {
	if !p.checkCSRF(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: p.s.secureCookies(r)})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (p *pages) fail(w http.ResponseWriter, what string, err error) {
	p.s.log.Error(what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func (p *pages) agents(w http.ResponseWriter, r *http.Request) {
	agents, err := p.s.store.Agents(r.Context(), p.s.opts.Now())
	if err != nil {
		p.fail(w, "list agents", err)
		return
	}
	p.render(w, r, http.StatusOK, "agents", pageData{Title: "Agents", Data: agents})
}

// workflowJobs is one workflow's runs on the Jobs page.
type workflowJobs struct {
	Workflow string
	Jobs     []Job
}

func (p *pages) jobs(w http.ResponseWriter, r *http.Request) {
	f, err := jobFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	jobs, _, err := p.s.store.Jobs(r.Context(), f)
	if err != nil {
		p.fail(w, "list jobs", err)
		return
	}
	// Group by workflow, keeping newest-first order inside and between groups.
	var groups []*workflowJobs
	idx := map[string]*workflowJobs{}
	for _, j := range jobs {
		g := idx[j.Workflow]
		if g == nil {
			g = &workflowJobs{Workflow: j.Workflow}
			idx[j.Workflow] = g
			groups = append(groups, g)
		}
		g.Jobs = append(g.Jobs, j)
	}
	p.render(w, r, http.StatusOK, "jobs", pageData{Title: "Jobs", Data: groups})
}

// agentScan is one agent's latest scan on the Scans page.
type agentScan struct {
	Scan
	YAML string
}

func (p *pages) scans(w http.ResponseWriter, r *http.Request) {
	scans, err := p.s.store.LatestScans(r.Context())
	if err != nil {
		p.fail(w, "list scans", err)
		return
	}
	out := make([]agentScan, len(scans))
	for i, sc := range scans {
		out[i] = agentScan{Scan: sc, YAML: RulesYAML(sc.Findings)}
	}
	p.render(w, r, http.StatusOK, "scans", pageData{Title: "PII scanner", Data: out})
}

// RulesYAML renders findings as the tables entries to paste into a
// workflow's input (SPEC §1), one entry per table, in order of appearance.
func RulesYAML(findings []Finding) string {
	var order []string
	byTable := map[string][]Finding{}
	for _, f := range findings {
		t := f.Schema + "." + f.Table
		if _, ok := byTable[t]; !ok {
			order = append(order, t)
		}
		byTable[t] = append(byTable[t], f)
	}
	var b strings.Builder
	for _, t := range order {
		fmt.Fprintf(&b, "- name: %s\n  columns:\n", rulesets.ScalarYAML(t))
		for _, f := range byTable[t] {
			fmt.Fprintf(&b, "    %s: %s\n", rulesets.ScalarYAML(f.Column), ruleYAML(f.Rule))
		}
	}
	return b.String()
}

// ruleYAML renders a finding's rule as a YAML flow mapping, rule first:
// { rule: fake, kind: phone }.
func ruleYAML(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return "{ rule: keep }  # no rule suggested: review"
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		if strings.HasPrefix(strings.TrimSpace(str), "{") {
			return str // already YAML flow, as the scanner prints it
		}
		return "{ rule: " + rulesets.ScalarYAML(str) + " }"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "{ rule: keep }  # unreadable rule: review"
	}
	return rulesets.FlowYAML(m)
}

// ago says how long before now t was, coarsely.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "never"
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// thousands writes n with thin separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
