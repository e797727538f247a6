package dashboard

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nopii/nopii/internal/human"
	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/rulesets"
	"github.com/nopii/nopii/scanner"
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
	"rows":     jobRows,
	"failed":   failedTables,
	"guarded":  guarded,
	"over": func(in wire.InputStatus) bool {
		return in.SlotWALWarnBytes > 0 && in.SlotRetainedBytes > in.SlotWALWarnBytes
	},
}

// parseTemplates builds one template set per page, each with the layout.
func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"agents", "jobs", "job", "scans", "unruled", "alerts", "login"} {
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
	Jobs     []wire.Job
}

// jobsPage is the Jobs page: the filter's form, a page of runs grouped by
// workflow, and the link to the next page.
type jobsPage struct {
	Filter    JobFilter
	Agents    []string
	Workflows []string
	Statuses  []wire.Status
	Groups    []*workflowJobs
	Next      string // the next page's URL, "" on the last
	Paged     bool   // not the first page: offer the newest
}

func (p *pages) jobs(w http.ResponseWriter, r *http.Request) {
	f, err := jobFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.Limit == 0 {
		f.Limit = jobsPerPage
	}
	jobs, next, err := p.s.store.Jobs(r.Context(), f)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusBadRequest, "before names no job")
		return
	}
	if err != nil {
		p.fail(w, "list jobs", err)
		return
	}
	d := jobsPage{Filter: f, Statuses: []wire.Status{wire.StatusRunning, wire.StatusSuccess, wire.StatusFailed}, Paged: f.Before != ""}
	if d.Agents, d.Workflows, err = p.s.store.Names(r.Context()); err != nil {
		p.fail(w, "list names", err)
		return
	}
	if next != "" {
		d.Next = nextURL(r, next)
	}
	// Group by workflow, keeping newest-first order inside and between groups.
	idx := map[string]*workflowJobs{}
	for _, j := range jobs {
		g := idx[j.Workflow]
		if g == nil {
			g = &workflowJobs{Workflow: j.Workflow}
			idx[j.Workflow] = g
			d.Groups = append(d.Groups, g)
		}
		g.Jobs = append(g.Jobs, j)
	}
	p.render(w, r, http.StatusOK, "jobs", pageData{Title: "Jobs", Data: d})
}

// jobsPerPage is the Jobs page's page size.
const jobsPerPage = 50

// chartRuns is how many runs of its workflow a job's page charts.
const chartRuns = 30

// jobPage is one job's page.
type jobPage struct {
	Job          wire.Job
	Runs         int
	RowsChart    template.HTML
	SecondsChart template.HTML
}

func (p *pages) job(w http.ResponseWriter, r *http.Request) {
	j, err := p.s.store.Job(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		p.render(w, r, http.StatusNotFound, "job", pageData{Title: "No such job", Error: "No job has this id."})
		return
	}
	if err != nil {
		p.fail(w, "read job", err)
		return
	}
	// The workflow's runs on this agent up to this one: the job in its history.
	runs, err := p.s.store.Runs(r.Context(), j.Agent, j.Workflow, j.StartedAt, chartRuns)
	if err != nil {
		p.fail(w, "list runs", err)
		return
	}
	d := jobPage{Job: j, Runs: len(runs)}
	d.RowsChart, d.SecondsChart = runCharts(runs, j.JobID)
	p.render(w, r, http.StatusOK, "job", pageData{Title: "Run of " + j.Workflow, Data: d})
}

// agentFindings is one agent's open findings on the Scans page.
type agentFindings struct {
	Agent    string
	Findings []Finding
	YAML     string
}

// scansPage is the Scans page: open findings per agent, then the recently
// covered ones, then the scan history.
type scansPage struct {
	Open    []*agentFindings
	Covered []Finding
	History []Scan
}

// scansShown bounds the scan history and the covered findings listed.
const scansShown = 50

func (p *pages) scans(w http.ResponseWriter, r *http.Request) {
	all, err := p.s.store.Findings(r.Context(), true)
	if err != nil {
		p.fail(w, "list findings", err)
		return
	}
	var d scansPage
	idx := map[string]*agentFindings{}
	for _, f := range all {
		if f.CoveredAt != nil {
			d.Covered = append(d.Covered, f)
			continue
		}
		a := idx[f.Agent]
		if a == nil {
			a = &agentFindings{Agent: f.Agent}
			idx[f.Agent] = a
			d.Open = append(d.Open, a)
		}
		a.Findings = append(a.Findings, f)
	}
	for _, a := range d.Open {
		cols := make([]scanner.ColumnFinding, len(a.Findings))
		for i, f := range a.Findings {
			cols[i] = f.ColumnFinding
		}
		a.YAML = RulesYAML(cols)
	}
	sort.SliceStable(d.Covered, func(i, k int) bool { return d.Covered[i].CoveredAt.After(*d.Covered[k].CoveredAt) })
	if len(d.Covered) > scansShown {
		d.Covered = d.Covered[:scansShown]
	}
	if d.History, err = p.s.store.Scans(r.Context(), scansShown); err != nil {
		p.fail(w, "list scans", err)
		return
	}
	p.render(w, r, http.StatusOK, "scans", pageData{Title: "PII scanner", Data: d})
}

func (p *pages) unruled(w http.ResponseWriter, r *http.Request) {
	u, err := p.s.store.Unruled(r.Context(), p.s.opts.Now().Add(-unruledDays*24*time.Hour))
	if err != nil {
		p.fail(w, "list unruled columns", err)
		return
	}
	p.render(w, r, http.StatusOK, "unruled", pageData{Title: "Copied without a rule", Data: u})
}

// alertsPage lists the alerts and where the webhooks are.
type alertsPage struct {
	Alerts   []Alert
	Webhooks []string
}

func (p *pages) alerts(w http.ResponseWriter, r *http.Request) {
	a, err := p.s.store.Alerts(r.Context(), alertsListed)
	if err != nil {
		p.fail(w, "list alerts", err)
		return
	}
	d := alertsPage{Alerts: a}
	for _, h := range p.s.opts.Webhooks {
		d.Webhooks = append(d.Webhooks, h.String())
	}
	p.render(w, r, http.StatusOK, "alerts", pageData{Title: "Alerts", Data: d})
}

// RulesYAML renders findings as the tables entries to paste into a
// workflow's input (SPEC §1), one entry per table, in order of appearance.
func RulesYAML(findings []scanner.ColumnFinding) string {
	var order []string
	byTable := map[string][]scanner.ColumnFinding{}
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
func ruleYAML(rule map[string]any) string {
	if len(rule) == 0 {
		return "{ rule: keep }  # no rule suggested: review"
	}
	return rulesets.FlowYAML(rule)
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
