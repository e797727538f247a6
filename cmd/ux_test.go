package cmd

import (
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// The tests of this file check what a newcomer sees on the way in: the
// version, counts in their number, syntax errors on their line.

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || out != "nopii "+version+"\n" {
			t.Errorf("nopii %s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(args, " "), code, out, errOut, "nopii "+version+"\n")
		}
	}
	if _, out, _ := runCLI(t, "--help"); !strings.Contains(out, "--version") {
		t.Errorf("--help does not list --version:\n%s", out)
	}
}

func TestValidateSingular(t *testing.T) {
	cfg := writeConfig(t, workflowYAML("w", "postgres://localhost/prod", `          - name: public.users
`, `    feeds:
      - type: twin
        dsn: postgres://localhost/twin
`))
	code, out, errOut := runCLI(t, "validate", "--config", cfg)
	if want := cfg + ": ok (1 workflow)\n"; code != 0 || out != want {
		t.Errorf("validate: exit %d, stdout %q (stderr %q), want %q", code, out, errOut, want)
	}
}

// TestValidateMisIndented: yaml.v3 names the line before the list that
// holds a mis-indented key (line 8 here); the user needs line 14.
func TestValidateMisIndented(t *testing.T) {
	cfg := writeConfig(t, `
version: 1
hmac_key: `+testKey+`
workflows:
  - name: devtwin
    inputs:
      - name: prod
        dsn: postgres://localhost/prod
        tables:
          - name: public.users
            columns:
              email: { rule: redact_email }
              phone: { rule: mask }
          - name: public.orders
           updated_at: updated_at
    feeds:
      - type: twin
        dsn: postgres://localhost/twin
`)
	code, _, errOut := runCLI(t, "validate", "--config", cfg)
	if want := "Error: " + cfg + ":14:12: invalid YAML: did not find expected '-' indicator\n"; code != 1 || errOut != want {
		t.Errorf("validate: exit %d, stderr %q, want 1 and %q", code, errOut, want)
	}
}

// TestDashboardDSNFromEnvironment: the dashboard's commands take the
// database from NOPII_DASHBOARD_DSN, so that no password shows in ps, and
// their help says to prefer it.
func TestDashboardDSNFromEnvironment(t *testing.T) {
	t.Setenv(envDashboardDSN, pgtest.MustDatabase(t))
	code, out, errOut := runCLI(t, "dashboard", "token", "create", "env-agent")
	if code != 0 || !strings.Contains(out, "Token for agent env-agent") {
		t.Fatalf("token create without --dsn: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "dashboard", "token", "revoke", "env-agent")
	if want := "Revoked 1 token of agent env-agent.\n"; code != 0 || out != want {
		t.Errorf("token revoke: exit %d, stdout %q (stderr %q), want %q", code, out, errOut, want)
	}
	for _, args := range [][]string{{"dashboard", "--help"}, {"dashboard", "token", "create", "--help"}} {
		_, out, _ := runCLI(t, args...)
		if !strings.Contains(out, "prefer $"+envDashboardDSN) || strings.Contains(out, "--dsn postgres") {
			t.Errorf("%v: the help should prefer $%s and show no DSN on a command line:\n%s", args, envDashboardDSN, out)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
	}{
		{`{"msg":"x","workflow":"devtwin","workflow":"devtwin"}`, "workflow"},
		{`{"msg":"x","workflow":"devtwin","nested":{"workflow":1}}`, ""},
		{`plain text`, ""},
	} {
		if got := strings.Join(duplicateKeys(tc.line), ","); got != tc.want {
			t.Errorf("duplicateKeys(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
}
