package cmd

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/pgtest"
)

func TestDashboardCommands(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	const admin = "cmd-test-admin-token-0123456789"
	t.Setenv(envAdminToken, admin)
	t.Setenv(envDashboardDSN, "")

	code, out, errOut := runCLI(t, "dashboard", "token", "create", "prod-eu-1", "--dsn", dsn)
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tok := lines[len(lines)-1]
	if len(tok) != 43 || strings.ContainsAny(tok, "+/= ") {
		t.Fatalf("token create: last line %q is not 32 bytes of base64url", tok)
	}

	// Serve on a free port until the context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- Execute(ctx, []string{"dashboard", "--dsn", dsn, "--listen", addr, "--log-format", "json"}, io.Discard, &stderr)
	}()
	post := func(tok string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/heartbeat",
			strings.NewReader(`{"agent":"prod-eu-1","version":"v1","interval_seconds":30,"workflows":[]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for post(tok) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("dashboard did not accept the heartbeat; log:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/agents", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"healthy": true`) {
		t.Errorf("GET /api/v1/agents: %d %s", resp.StatusCode, body)
	}

	// Revoke: the token stops working at once.
	code, out, errOut = runCLI(t, "dashboard", "token", "revoke", "prod-eu-1", "--dsn", dsn)
	if code != 0 || !strings.Contains(out, "Revoked 1 token") {
		t.Fatalf("token revoke: exit %d: %s %s", code, out, errOut)
	}
	if got := post(tok); got != http.StatusUnauthorized {
		t.Errorf("heartbeat with a revoked token: %d, want 401", got)
	}
	if code, _, errOut := runCLI(t, "dashboard", "token", "revoke", "prod-eu-1", "--dsn", dsn); code != 1 || !strings.Contains(errOut, "no active token") {
		t.Errorf("revoking again: exit %d: %s", code, errOut)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dashboard exited %d after its context ended, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dashboard did not shut down")
	}
	if log := stderr.String(); strings.Contains(log, tok) || strings.Contains(log, admin) {
		t.Errorf("the log holds a token:\n%s", log)
	}
	if !strings.Contains(stderr.String(), "dashboard listening") {
		t.Errorf("no start line in the log:\n%s", stderr.String())
	}
}

func TestDashboardUsage(t *testing.T) {
	t.Setenv(envDashboardDSN, "")
	t.Setenv(envAdminToken, "")
	if code, _, errOut := runCLI(t, "dashboard"); code != 1 || !strings.Contains(errOut, "--dsn is required") {
		t.Errorf("no --dsn: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "dashboard", "--dsn", "postgres://localhost/x"); code != 1 || !strings.Contains(errOut, envAdminToken) {
		t.Errorf("no admin token: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"dashboard", "--help"}, {"dashboard", "token", "create", "--help"}, {"dashboard", "token", "revoke", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "--dsn") {
			t.Errorf("%v: exit %d: %s", args, code, out)
		}
	}
}

// TestDashboardWebhooks: --webhook takes [json=|slack=]URL and is
// repeatable, $NOPII_DASHBOARD_WEBHOOKS stands in for it, and a bad URL's
// error never prints the URL (a Slack URL is a secret).
func TestDashboardWebhooks(t *testing.T) {
	t.Setenv(envDashboardWebhooks, "slack=https://hooks.slack.com/services/T0/B0/SECRET https://alerts.example/hook")
	for _, c := range []struct {
		flags  []string
		format string
		want   string
	}{
		{nil, "json", "slack https://hooks.slack.com,json https://alerts.example"},
		{[]string{"https://a.example/SECRET"}, "slack", "slack https://a.example"},
		{[]string{"json=https://a.example/x", "https://b.example/y"}, "slack", "json https://a.example,slack https://b.example"},
	} {
		hooks, err := dashboardWebhooks(c.flags, c.format)
		if err != nil {
			t.Fatalf("%v: %v", c.flags, err)
		}
		var got []string
		for _, h := range hooks {
			got = append(got, h.String())
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%v --webhook-format %s: %v, want %s", c.flags, c.format, got, c.want)
		}
	}
	for _, bad := range [][]string{{"hooks.slack.com/services/SECRET"}, {"ftp://x/SECRET"}} {
		if _, err := dashboardWebhooks(bad, "json"); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%v: error %v, want one without the URL", bad, err)
		}
	}
	if _, err := dashboardWebhooks([]string{"https://x.example/"}, "xml"); err == nil {
		t.Errorf("--webhook-format xml: no error")
	}
}
