package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nopii/nopii/internal/wire"
)

// MaxBody bounds every request body.
const MaxBody = 1 << 20

// Log keys.
const (
	LogKeyAgent  = "agent"
	LogKeyPath   = "path"
	LogKeyStatus = "status"
)

// Options configure a Server.
type Options struct {
	// AdminToken guards the pages and the read API. Required.
	AdminToken string
	Logger     *slog.Logger
	// SecureCookies marks cookies Secure even on plain HTTP, for a
	// dashboard behind a TLS-terminating proxy. Over TLS they always are.
	SecureCookies bool
	// SessionTTL is how long a login lasts; default 12h.
	SessionTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	// Webhooks get every alert (docs/dashboard.md); none: alerts are only
	// listed on /alerts.
	Webhooks []Webhook
	// AlertAttempts bounds the tries of one delivery; default 6.
	AlertAttempts int
	// AlertBackoff is the wait after a delivery's first failed attempt,
	// doubled after each next one up to 10 minutes; default 10s.
	AlertBackoff time.Duration
	// AlertPoll is how often RunAlerts looks for silent agents and due
	// deliveries; default 5s.
	AlertPoll time.Duration
}

// Server serves the API and the pages.
type Server struct {
	store   *Store
	opts    Options
	log     *slog.Logger
	secret  []byte // random per process: signs sessions and CSRF tokens
	mux     *http.ServeMux
	wake    chan struct{} // a new alert: deliver now
	hooks   *http.Client
	started time.Time
}

// NewServer builds a server over the store.
func NewServer(store *Store, opts Options) (*Server, error) {
	if opts.AdminToken == "" {
		return nil, errors.New("admin token is empty")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AlertAttempts <= 0 {
		opts.AlertAttempts = defaultAlertAttempts
	}
	if opts.AlertBackoff <= 0 {
		opts.AlertBackoff = defaultAlertBackoff
	}
	if opts.AlertPoll <= 0 {
		opts.AlertPoll = defaultAlertPoll
	}
	s := &Server{store: store, opts: opts, log: opts.Logger, secret: make([]byte, 32), mux: http.NewServeMux(),
		wake: make(chan struct{}, 1), hooks: &http.Client{Timeout: 10 * time.Second}, started: opts.Now()}
	if _, err := rand.Read(s.secret); err != nil {
		return nil, err
	}
	if err := s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) routes() error {
	t, err := parseTemplates()
	if err != nil {
		return err
	}
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))

	m.HandleFunc("POST "+wire.HeartbeatPath, s.agentAuth(s.postHeartbeat))
	m.HandleFunc("POST "+wire.JobsPath, s.agentAuth(s.postJob))
	m.HandleFunc("POST "+wire.ScansPath, s.agentAuth(s.postScan))
	m.HandleFunc("GET /api/v1/agents", s.adminAPI(s.getAgents))
	m.HandleFunc("GET /api/v1/jobs", s.adminAPI(s.getJobs))
	m.HandleFunc("GET /api/v1/jobs/{id}", s.adminAPI(s.getJob))
	m.HandleFunc("GET /api/v1/scans", s.adminAPI(s.getScans))
	m.HandleFunc("GET /api/v1/findings", s.adminAPI(s.getFindings))
	m.HandleFunc("GET /api/v1/unruled", s.adminAPI(s.getUnruled))
	m.HandleFunc("GET /api/v1/alerts", s.adminAPI(s.getAlerts))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})

	p := &pages{s: s, t: t}
	m.HandleFunc("GET /login", p.loginForm)
	m.HandleFunc("POST /login", p.login)
	m.HandleFunc("POST /logout", p.logout)
	m.HandleFunc("GET /{$}", s.adminPage(p.agents))
	m.HandleFunc("GET /jobs", s.adminPage(p.jobs))
	m.HandleFunc("GET /jobs/{id}", s.adminPage(p.job))
	m.HandleFunc("GET /scans", s.adminPage(p.scans))
	m.HandleFunc("GET /unruled", s.adminPage(p.unruled))
	m.HandleFunc("GET /alerts", s.adminPage(p.alerts))
	return nil
}

// ServeHTTP sets the security headers and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	s.mux.ServeHTTP(w, r)
}

// Serve serves on ln until ctx is done, then shuts down gracefully,
// giving requests in flight up to 10 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	alertCtx, stopAlerts := context.WithCancel(ctx)
	alertsDone := make(chan struct{})
	go func() { defer close(alertsDone); s.RunAlerts(alertCtx) }()
	defer func() { stopAlerts(); <-alertsDone }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("dashboard shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unreachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// bearer returns the request's bearer token, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
		return strings.TrimSpace(h[len(p):])
	}
	return ""
}

// agentAuth resolves the agent token before the body is read: a missing,
// unknown or revoked token gets 401 and nothing is stored.
func (s *Server) agentAuth(next func(w http.ResponseWriter, r *http.Request, agent string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nopii"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		name, ok, err := s.store.TokenAgent(r.Context(), tok)
		if err != nil {
			s.log.Error("look up agent token", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		if !ok {
			s.log.Warn("rejected agent token", LogKeyPath, r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="nopii", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid or revoked token")
			return
		}
		next(w, r, name)
	}
}

// isAdminToken compares in constant time (of the token's length, which is
// not secret enough to matter: hashing first makes both sides 32 bytes).
func (s *Server) isAdminToken(tok string) bool {
	a := sha256.Sum256([]byte(tok))
	b := sha256.Sum256([]byte(s.opts.AdminToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (s *Server) adminAPI(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.isAdminToken(bearer(r)) && !s.validSession(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nopii-admin"`)
			writeError(w, http.StatusUnauthorized, "admin token required")
			return
		}
		next(w, r)
	}
}

// adminPage lets in the admin bearer token or a login session, and sends
// others to the login form.
func (s *Server) adminPage(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tok := bearer(r); tok != "" {
			if !s.isAdminToken(tok) {
				writeError(w, http.StatusUnauthorized, "wrong admin token")
				return
			}
		} else if !s.validSession(r) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		next(w, r)
	}
}

// decode reads the JSON body into v, answering 413 or 400 itself.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(r.Body).Decode(v)
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", MaxBody))
		return false
	}
	writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
	return false
}

// sameAgent answers 403 when the body names another agent than the token.
func sameAgent(w http.ResponseWriter, body, token string) bool {
	if body == token {
		return true
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("this token belongs to agent %q, not %q", token, body))
	return false
}

func (s *Server) postHeartbeat(w http.ResponseWriter, r *http.Request, agent string) {
	var hb wire.Heartbeat
	if !decode(w, r, &hb) || !sameAgent(w, hb.Agent, agent) {
		return
	}
	if hb.IntervalSeconds <= 0 {
		hb.IntervalSeconds = 30
	}
	if err := s.store.PutHeartbeat(r.Context(), hb, s.opts.Now().UTC()); err != nil {
		s.log.Error("store heartbeat", LogKeyAgent, agent, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if err := s.walAlerts(r.Context(), hb); err != nil {
		s.log.Error("slot alerts", LogKeyAgent, agent, "err", err)
	}
	s.log.Debug("heartbeat", LogKeyAgent, agent)
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (s *Server) postJob(w http.ResponseWriter, r *http.Request, agent string) {
	var j wire.Job
	if !decode(w, r, &j) || !sameAgent(w, j.Agent, agent) {
		return
	}
	switch {
	case !uuidRE.MatchString(j.JobID):
		writeError(w, http.StatusBadRequest, "job_id must be a UUID")
		return
	case j.Workflow == "":
		writeError(w, http.StatusBadRequest, "workflow is required")
		return
	case j.Status != wire.StatusRunning && j.Status != wire.StatusSuccess && j.Status != wire.StatusFailed:
		writeError(w, http.StatusBadRequest, "status must be running, success or failed")
		return
	}
	now := s.opts.Now().UTC()
	if j.StartedAt.IsZero() {
		j.StartedAt = now
	}
	if j.Status == wire.StatusRunning {
		j.FinishedAt = time.Time{} // zero: not finished
	}
	err := s.store.PutJob(r.Context(), j, now)
	if errors.Is(err, ErrJobOwner) {
		writeError(w, http.StatusForbidden, "job_id belongs to another agent")
		return
	}
	if err != nil {
		s.log.Error("store job", LogKeyAgent, agent, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if err := s.jobAlerts(r.Context(), j); err != nil {
		s.log.Error("job alerts", LogKeyAgent, agent, "err", err)
	}
	s.log.Info("job report", LogKeyAgent, agent, "workflow", j.Workflow, LogKeyStatus, string(j.Status), "tables", len(j.Tables))
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) postScan(w http.ResponseWriter, r *http.Request, agent string) {
	var sc wire.ScanReport
	if !decode(w, r, &sc) || !sameAgent(w, sc.Agent, agent) {
		return
	}
	if err := s.store.PutScan(r.Context(), sc, s.opts.Now().UTC()); err != nil {
		s.log.Error("store scan", LogKeyAgent, agent, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.log.Info("scan report", LogKeyAgent, agent, "findings", len(sc.Findings))
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) getAgents(w http.ResponseWriter, r *http.Request) {
	agents, err := s.store.Agents(r.Context(), s.opts.Now())
	if err != nil {
		s.log.Error("list agents", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, agents)
}

// Headers of a page of GET /api/v1/jobs.
const (
	// HeaderNextCursor carries the next page's cursor (a job id, for
	// before=) when the page was cut at its limit; absent on the last page.
	HeaderNextCursor = "X-Nopii-Next-Cursor"
	// HeaderLimit carries the limit the page was cut at.
	HeaderLimit = "X-Nopii-Limit"
)

func jobFilter(r *http.Request) (JobFilter, error) {
	q := r.URL.Query()
	f := JobFilter{Agent: q.Get("agent"), Workflow: q.Get("workflow"), Status: wire.Status(q.Get("status")), Before: q.Get("before")}
	switch f.Status {
	case "", wire.StatusRunning, wire.StatusSuccess, wire.StatusFailed:
	default:
		return f, errors.New("status must be running, success or failed")
	}
	if f.Before != "" && !uuidRE.MatchString(f.Before) {
		return f, errors.New("before must be a job_id (the " + HeaderNextCursor + " of the previous page)")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return f, errors.New("limit must be a positive integer")
		}
		if n > MaxJobsLimit {
			return f, fmt.Errorf("limit must be at most %d: page through more with before=<%s>", MaxJobsLimit, HeaderNextCursor)
		}
		f.Limit = n
	}
	return f, nil
}

// nextURL is the request's URL with before=cursor.
func nextURL(r *http.Request, cursor string) string {
	q := r.URL.Query()
	q.Set("before", cursor)
	return r.URL.Path + "?" + q.Encode()
}

func (s *Server) getJobs(w http.ResponseWriter, r *http.Request) {
	f, err := jobFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	jobs, next, err := s.store.Jobs(r.Context(), f)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusBadRequest, "before names no job")
		return
	}
	if err != nil {
		s.log.Error("list jobs", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultJobsLimit
	}
	w.Header().Set(HeaderLimit, strconv.Itoa(limit))
	if next != "" {
		w.Header().Set(HeaderNextCursor, next)
		w.Header().Set("Link", "<"+nextURL(r, next)+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, jobs)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.store.Job(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such job")
		return
	}
	if err != nil {
		s.log.Error("read job", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// listed answers a read-API list, or 500.
func listed[T any](s *Server, w http.ResponseWriter, what string, v T, err error) {
	if err != nil {
		s.log.Error(what, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// Read-API bounds of the lists without paging.
const (
	scansListed  = 200
	alertsListed = 200
	// unruledDays is how far back /unruled looks.
	unruledDays = 30
)

func (s *Server) getScans(w http.ResponseWriter, r *http.Request) {
	scans, err := s.store.Scans(r.Context(), scansListed)
	listed(s, w, "list scans", scans, err)
}

// getFindings lists the open findings, ?covered=true all of them.
func (s *Server) getFindings(w http.ResponseWriter, r *http.Request) {
	f, err := s.store.Findings(r.Context(), r.URL.Query().Get("covered") == "true")
	listed(s, w, "list findings", f, err)
}

func (s *Server) getUnruled(w http.ResponseWriter, r *http.Request) {
	u, err := s.store.Unruled(r.Context(), s.opts.Now().Add(-unruledDays*24*time.Hour))
	listed(s, w, "list unruled columns", u, err)
}

func (s *Server) getAlerts(w http.ResponseWriter, r *http.Request) {
	a, err := s.store.Alerts(r.Context(), alertsListed)
	listed(s, w, "list alerts", a, err)
}

// sign is an HMAC of msg under the server secret.
func (s *Server) sign(msg string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
