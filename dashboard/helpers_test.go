package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/dashboard"
	"github.com/nopii/nopii/internal/pgtest"
)

const adminToken = "admin-token-for-tests-0123456789"

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t       *testing.T
	dsn     string
	store   *dashboard.Store
	srv     *httptest.Server
	handler *dashboard.Server
	clock   *clock
	conn    *pgx.Conn
}

// newEnv starts a dashboard over a fresh database.
func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith starts a dashboard with options set by opt, which may be nil.
func newEnvWith(t *testing.T, opt func(*dashboard.Options)) *env {
	t.Helper()
	dsn := pgtest.MustDatabase(t)
	ctx := context.Background()
	store, err := dashboard.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	opts := dashboard.Options{AdminToken: adminToken, Now: clk.Now}
	if opt != nil {
		opt(&opts)
	}
	s, err := dashboard.NewServer(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &env{t: t, dsn: dsn, store: store, srv: srv, handler: s, clock: clk, conn: conn}
}

func (e *env) token(name string) string {
	e.t.Helper()
	tok, err := e.store.CreateToken(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request with an optional bearer token and JSON body; it
// returns the status and body.
func (e *env) do(method, path, token string, body any) (int, string) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

// mustStatus fails unless the request answers want.
func (e *env) mustStatus(want int, method, path, token string, body any) string {
	e.t.Helper()
	got, out := e.do(method, path, token, body)
	if got != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, want, out)
	}
	return out
}

func (e *env) count(table string) int64 {
	e.t.Helper()
	var n int64
	if err := e.conn.QueryRow(context.Background(), "SELECT count(*) FROM nopii_dashboard."+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func heartbeat(agent string, interval float64) map[string]any {
	return map[string]any{
		"agent": agent, "version": "v1.2.3", "interval_seconds": interval,
		"workflows": []map[string]any{{
			"name": "ml-experimentation", "schedule": "0 0 * * *",
			"next_run": "2030-01-02T00:00:00Z", "last_result": "success", "last_run": "2029-12-31T00:00:00Z",
		}},
	}
}

// jobReport is the JSON an agent posts: agent.Report plus agent and job_id.
func jobReport(agent, id, workflow, status string, started time.Time, tables ...map[string]any) map[string]any {
	if tables == nil {
		tables = []map[string]any{}
	}
	finished := time.Time{}
	if status != "running" {
		finished = started.Add(90 * time.Second)
	}
	return map[string]any{
		"agent": agent, "job_id": id, "workflow": workflow, "status": status,
		"started_at": started, "finished_at": finished, "seconds": 90.0, "tables": tables,
	}
}

func tableReport(table, mode string, rows int64, errMsg string) map[string]any {
	return map[string]any{
		"input": "prod", "table": table, "target": table, "mode": mode, "reason": "first run",
		"rows": rows, "upserted": 0, "deleted": 0, "bytes": rows * 100, "seconds": 1.5,
		"rows_per_sec": float64(rows) / 1.5, "redacted_columns": []string{"email"}, "feeds": []string{"twin"},
		"error": errMsg,
	}
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}
