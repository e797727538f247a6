package cmd

import (
	"strings"
	"testing"
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
