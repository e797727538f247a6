package cmd

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nopii/nopii/internal/dsntest"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestSecretsNeverPrinted runs every command, with debug logs, on a
// workflow whose DSNs carry passwords (the test clusters trust any) and
// whose hmac_key is recognisable, including failing inputs, and checks
// that no secret appears in any output.
func TestSecretsNeverPrinted(t *testing.T) {
	prodDSN, twinDSN := demoDatabases(t)
	const pw, key = "pw-Secret-7f3a9", "hmac-Secret-Key-0123456789abcdef-0123456789"
	withPW := func(dsn string) string { return strings.Replace(dsn, "postgres@", "postgres:"+pw+"@", 1) }
	t.Setenv("PROD_DATABASE_URL", withPW(prodDSN))
	t.Setenv("TWIN_DATABASE_URL", withPW(twinDSN))
	t.Setenv("NOPII_HMAC_KEY", key)
	bad := writeConfig(t, `
version: 1
hmac_key: `+key+`
workflows:
  - name: w
    inputs:
      - name: down
        dsn: postgres://app:`+pw+`@127.0.0.1:1/x?connect_timeout=1
        tables:
          - name: public.t
    feeds:
      - type: twin
        dsn: `+withPW(twinDSN)+`
`)
	short := writeConfig(t, `
version: 1
hmac_key: `+pw+`
workflows:
  - name: w
    inputs:
      - name: p
        dsn: postgres://app:`+pw+`@h/x
        tables:
          - name: public.t
            columns:
              x: { rule: hash }
    feeds:
      - type: twin
        dsn: postgres://app:`+pw+`@h/y
`)
	demo := "../testdata/demo/nopii.yaml"
	runs := [][]string{
		{"run", "--config", demo, "--log-level", "debug"},
		{"run", "--config", demo, "--log-level", "debug", "--log-format", "text", "--format", "json"},
		{"plan", "--config", demo, "--log-level", "debug"},
		{"validate", "--config", demo, "--connect", "--log-level", "debug"},
		{"run", "--config", bad, "--log-level", "debug"},
		{"validate", "--config", bad, "--connect"},
		{"validate", "--config", short},
		{"run", "--help"}, {"plan", "--help"}, {"validate", "--help"}, {"--help"},
	}
	for _, args := range runs {
		code, out, errOut := runCLI(t, args...)
		for _, secret := range []string{pw, key} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("nopii %s (exit %d) printed a secret:\n%s\n%s", strings.Join(args, " "), code, out, errOut)
			}
		}
	}
}

// TestDSNSecretsNeverPrinted: every DSN shape (keyword/value with and
// without spaces around '=', quoted, URL, URL with the password in the
// query, URL with an unencoded '@') with every failure kind (bad sslmode,
// unknown host, refused port, wrong password, bad URL escape, unterminated
// quote), as an input, a twin feed and the dashboard's database: no
// command prints the password, on stdout, stderr or in its debug logs.
func TestDSNSecretsNeverPrinted(t *testing.T) {
	c := pgtest.MustCluster(t)
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.t (id int PRIMARY KEY)`)
	t.Setenv("NOPII_DASHBOARD_ADMIN_TOKEN", "admin-token-0123456789abcdef")
	cases := dsntest.Cases(dsntest.Server{Host: "127.0.0.1", Port: c.Port, Database: "postgres", WrongUser: pgtest.PasswordUser})
	type command struct {
		name string
		args func(dsn string) []string
	}
	// A workflow of its own per case: the cases run at once, and one
	// workflow's runs would find each other's run lock on the twin.
	var seq atomic.Int64
	workflow := func(input, feed string) string {
		return writeConfig(t, fmt.Sprintf(`
version: 1
workflows:
  - name: w%d
    inputs:
      - name: prod
        dsn: %q
        tables:
          - name: public.t
    feeds:
      - type: twin
        dsn: %q
`, seq.Add(1), input, feed))
	}
	commands := []command{
		{"run input", func(dsn string) []string {
			return []string{"run", "--config", workflow(dsn, twinDSN), "--log-level", "debug"}
		}},
		{"run twin", func(dsn string) []string {
			return []string{"run", "--config", workflow(prodDSN, dsn), "--log-level", "debug", "--format", "json"}
		}},
		{"validate --connect", func(dsn string) []string {
			return []string{"validate", "--config", workflow(dsn, twinDSN), "--connect", "--log-level", "debug"}
		}},
		{"dashboard --dsn", func(dsn string) []string {
			return []string{"dashboard", "--dsn", dsn, "--listen", freeAddr(t), "--log-level", "debug"}
		}},
		{"dashboard token create --dsn", func(dsn string) []string {
			return []string{"dashboard", "token", "create", "edge", "--dsn", dsn}
		}},
	}
	// In-process and all at once: the refused and unknown hosts spend
	// most of their time waiting between connection attempts.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, cmd := range commands {
		for _, tc := range cases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				args := cmd.args(tc.DSN)
				code, out, errOut := runCLI(t, args...)
				if code == 0 {
					t.Errorf("%s, %s: exit 0", cmd.name, tc.Name)
				}
				if leaked := dsntest.Leaked(out + errOut); len(leaked) > 0 {
					t.Errorf("%s, %s (exit %d) printed %q:\n%s\n%s", cmd.name, tc.Name, code, leaked, out, errOut)
				}
				if !strings.Contains(out+errOut, "xxxxx") && !strings.Contains(out+errOut, "not shown") && !strings.Contains(out+errOut, "connect to") {
					t.Errorf("%s, %s (exit %d) does not say what failed:\n%s\n%s", cmd.name, tc.Name, code, out, errOut)
				}
			}()
		}
	}
	wg.Wait()
}
