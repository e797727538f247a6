package cmd

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

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

// TestValidateConnectAllProblems: validate --connect reports every mistake
// of a table in one round, each at its file:line:column, with the name
// probably meant; a table without a primary key gets the unique index it
// has as the key to name, or hears that it has none.
func TestValidateConnectAllProblems(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `
		CREATE TABLE public.orders (id int PRIMARY KEY, email text, total numeric(10,2), placed_at timestamptz);
		CREATE TABLE public.signup (email text NOT NULL, code text NOT NULL, note text);
		CREATE UNIQUE INDEX signup_email_code ON public.signup (email, code);
		CREATE UNIQUE INDEX signup_note ON public.signup (note);
		CREATE TABLE public.log (at timestamptz, line text);`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.orders
            updated_at: placed
            columns:
              emial: { rule: redact_email }
              total: { rule: redact_email }
          - name: public.ordres
          - name: public.signup
          - name: public.log`)
	code, out, errOut := runCLI(t, "validate", "--config", cfg, "--connect")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		cfg + `:11:25: updated_at column "placed": not found in table public.orders; did you mean "placed_at"?`,
		cfg + `:13:15: column "emial": not found in table public.orders; did you mean "email"? (columns: id, email, total, placed_at)`,
		cfg + `:14:30: public.orders.total: rule redact_email: needs a text column, got numeric(10,2)`, // at the rule
		cfg + `:15:13: table public.ordres: not found in source prod`,
		"did you mean public.orders?",
		cfg + `:16:13: describe public.signup: table has no primary key: set primary_key in the config (unique index signup_email_code is over NOT NULL columns: primary_key: [email, code])`,
		"  ✗ " + cfg + ":17:13: describe public.log: table has no primary key: set primary_key in the config (no unique index over NOT NULL columns either",
		"6 problems\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate --connect lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[id]") {
		t.Errorf("the no-key hint suggests a column the table lacks:\n%s", out)
	}
	if n := strings.Count(out, "✗"); n != 6 {
		t.Errorf("%d problems listed, want 6 (one line each):\n%s", n, out)
	}
}

// TestValidateDidYouMeanRule: a misspelt rule or fake kind gets the name
// meant, as a misspelt key does.
func TestValidateDidYouMeanRule(t *testing.T) {
	cfg := writeConfig(t, workflowYAML("w", "postgres://localhost/prod", `          - name: public.users
            columns:
              email: { rule: redact_mail }
              name: { rule: fake, kind: firstname }
`, `    feeds:
      - type: twin
        dsn: postgres://localhost/twin
`))
	code, _, errOut := runCLI(t, "validate", "--config", cfg)
	for _, want := range []string{`unknown rule "redact_mail"`, `did you mean "redact_email"?`, `unknown fake kind "firstname"`, `did you mean "first_name"?`} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("validate: exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
}

// TestPlanExplains: plan says why a table is copied in full every run and
// how to make it a delta (the cursor columns its names suggest), and warns
// when deletes cascading from another table would leave rows behind in a
// delta without detect_deletes.
func TestPlanExplains(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `
		CREATE TABLE public.customer (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int REFERENCES public.customer ON DELETE CASCADE,
			updated_at timestamptz NOT NULL DEFAULT now());
		CREATE INDEX ON public.orders (updated_at);
		CREATE INDEX ON public.customer (updated_at);
		CREATE TABLE public.note (id int PRIMARY KEY, created timestamptz, body text);
		CREATE TABLE public.tag (id int PRIMARY KEY, name text);
		CREATE TABLE public.person (id int PRIMARY KEY, opened date, created_on timestamptz, last_modified timestamptz);
		CREATE TABLE public.visit (id int PRIMARY KEY, opened date, at timestamptz);
		INSERT INTO public.customer VALUES (1); INSERT INTO public.orders VALUES (1, 1);`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.customer
            updated_at: updated_at
            detect_deletes: true
          - name: public.orders
            updated_at: updated_at
          - name: public.note
          - name: public.tag
          - name: public.person
          - name: public.visit`)
	if code, out, errOut := runCLI(t, "run", "--config", cfg); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "plan", "--config", cfg)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, tc := range []struct{ table, want string }{
		{"public.note", "full copy every run: no updated_at or created_at is set; for a delta of new rows, set created_at: created (rows changed later need an updated_at column that every write sets)"},
		{"public.tag", "full copy every run: no updated_at or created_at is set; the table has no date or timestamp column to set them to"},
		{"public.person", "full copy every run: no updated_at or created_at is set; for a delta, set updated_at: last_modified and created_at: created_on"},
		{"public.visit", "full copy every run: no updated_at or created_at is set; for a delta, set updated_at to a column that every write of a row sets (and created_at to one set on insert), if one of opened, at is"},
		{"public.orders", "warning: prod public.orders: rows that ON DELETE CASCADE removes when a public.customer row is deleted change no timestamp a delta sees: without detect_deletes they stay in the feeds; set detect_deletes: true under table public.orders"},
	} {
		if !regexp.MustCompile(`(?m)^(prod\s+` + regexp.QuoteMeta(tc.table) + `\s+full\s+)?` + regexp.QuoteMeta(tc.want)).MatchString(out) {
			t.Errorf("%s: plan lacks %q:\n%s", tc.table, tc.want, out)
		}
	}
	if strings.Contains(out, "public.customer row is deleted") && strings.Count(out, "ON DELETE CASCADE") != 1 {
		t.Errorf("the cascade warning should name public.orders only:\n%s", out)
	}
}

// TestVerifyLakeCountsVersions: a files feed holds the snapshot and the
// deltas after it, and verify checks every version, so FEED VALUES
// exceeds SOURCE after a delta (20 rows, then 3 changed and row 20 read
// again by the cursor's 2-minute overlap: 24); the report says why.
func TestVerifyLakeCountsVersions(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.users (id int PRIMARY KEY, email text, updated_at timestamptz NOT NULL);
		INSERT INTO public.users SELECT i, 'u' || i || '@x.org', '2024-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 20) i;
		CREATE INDEX ON public.users (updated_at)`)
	dir := t.TempDir()
	cfg := writeConfig(t, workflowYAML("w", prodDSN, `          - name: public.users
            updated_at: updated_at
            columns:
              email: { rule: redact_email }
`, `    feeds:
      - type: twin
        dsn: `+twinDSN+`
      - type: files
        path: `+dir+`
        format: csv
`))
	for i := 0; i < 2; i++ {
		if code, out, errOut := runCLI(t, "run", "--config", cfg); code != 0 {
			t.Fatalf("run %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
		mustExec(t, prod, "UPDATE public.users SET updated_at = now() WHERE id <= 3")
	}
	code, out, errOut := runCLI(t, "verify", "--config", cfg)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^prod\s+public\.users\s+email\s+redact_email\s+files\s+values\s+20\s+24\s+0`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^prod\s+public\.users\s+email\s+redact_email\s+twin\s+values\s+20\s+20\s+0`).MatchString(out) ||
		!strings.Contains(out, "FEED VALUES of an s3 or files feed count every version of a row the lake holds") {
		t.Errorf("verify does not count or explain the lake's versions:\n%s", out)
	}
}

// TestCDCReportOneRowPerTable: a cdc table is one row of a run's report,
// its first copy folded in (rows copied, then changes streamed), and the
// header counts each table once.
func TestCDCReportOneRowPerTable(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.orders (id int PRIMARY KEY, email text, total int);
		INSERT INTO public.orders SELECT i, 'u' || i || '@x.org', i FROM generate_series(1, 40) i;
		CREATE TABLE public.tag (id int PRIMARY KEY, name text);
		INSERT INTO public.tag SELECT i, 't' || i FROM generate_series(1, 5) i;`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.orders
            mode: cdc
            columns:
              email: { rule: redact_email }
          - name: public.tag`)
	for _, tc := range []struct {
		name    string
		changes string
		want    []string // regexps, each matching one line
	}{
		{"first run", "", []string{
			`^workflow w: success in [0-9.]+s — 2 tables, 45 rows, `,
			`^prod\s+public\.orders\s+public\.orders\s+cdc\s+40\s+0\s+0\s`,
			`^prod\s+public\.tag\s+public\.tag\s+full\s+5\s+-\s+-\s`,
			`^prod public\.orders: first copy, from the new replication slot's snapshot; 40 rows copied, then 0 changes streamed to [0-9A-F]+/[0-9A-F]+$`,
		}},
		{"changes streamed", "UPDATE public.orders SET total = 0 WHERE id <= 3; DELETE FROM public.orders WHERE id = 40", []string{
			`^workflow w: success in [0-9.]+s — 2 tables, 9 rows, `,
			`^prod\s+public\.orders\s+public\.orders\s+cdc\s+4\s+3\s+1\s`,
			`^prod public\.orders: 4 changes streamed to [0-9A-F]+/[0-9A-F]+$`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.changes != "" {
				mustExec(t, prod, tc.changes)
			}
			code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-level", "error")
			if code != 0 {
				t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
			}
			for _, want := range tc.want {
				if n := len(regexp.MustCompile("(?m)"+want).FindAllString(out, -1)); n != 1 {
					t.Errorf("%d lines match %q, want 1:\n%s", n, want, out)
				}
			}
			if n := strings.Count(out, "\nprod   public.orders "); n != 1 {
				t.Errorf("public.orders is listed %d times, want once:\n%s", n, out)
			}
		})
	}
}

// TestValidateConnectKeysAndPatterns: validate --connect checks a table
// whose key is missing or misnamed as far as a table with a key (every
// problem in one round, each at its place, primary_key and identifies
// items at their own column), and says which patterns choose no table.
func TestValidateConnectKeysAndPatterns(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `
		CREATE TABLE public.signup (email text NOT NULL, code text NOT NULL, note text);
		CREATE TABLE public.log (at timestamptz, line text);`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.signup
            primary_key: [emial, code]
            identifies: [email, mail]
            updated_at: note
            columns:
              note: { rule: noise }
          - name: public.log
            columns:
              line: { rule: noise }
          - name: pubilc.*
          - name: other.*
          - name: public.sign*`)
	code, out, errOut := runCLI(t, "validate", "--config", cfg, "--connect")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	rest := out
	for _, tc := range []struct{ what, want string }{
		{"a primary_key item, at itself", `✗ ` + cfg + `:11:27: primary_key column "emial": not found in table public.signup; did you mean "email"?`},
		{"an identifies item, at itself", `✗ ` + cfg + `:12:33: identifies column "mail": not found in table public.signup; did you mean "email"?`},
		{"a cursor of the keyless table", `✗ ` + cfg + `:13:25: updated_at column "note" of public.signup is text`},
		{"a rule of the keyless table", `✗ ` + cfg + `:15:29: public.signup.note: rule noise: needs an integer`},
		{"no key", `✗ ` + cfg + `:16:13: describe public.log: table has no primary key`},
		{"a rule of a table without a key", `✗ ` + cfg + `:18:29: public.log.line: rule noise: needs an integer`},
		{"a misspelt schema", `! ` + cfg + `:19:13: pattern pubilc.* chooses no table in source prod; did you mean schema public?`},
		{"a schema the source lacks", `! ` + cfg + `:20:13: pattern other.* chooses no table in source prod (no schema matches other)`},
		{"the count, warnings apart", "\n6 problems\n"},
	} {
		// In the order of the file, as a compiler lists its errors.
		i := strings.Index(rest, tc.want)
		if i < 0 {
			t.Fatalf("%s: validate --connect lacks %q (after the lines before it):\n%s", tc.what, tc.want, out)
		}
		rest = rest[i+len(tc.want):]
	}
	if strings.Contains(out, "public.sign*") || strings.Contains(out, `"code"`) {
		t.Errorf("a pattern that chooses a table, or a key column that exists, is reported:\n%s", out)
	}
	// A run and a plan warn of the patterns too.
	for _, cmd := range []string{"run", "plan"} {
		_, _, errOut := runCLI(t, cmd, "--config", cfg, "--log-format", "text")
		if want := `detail="` + cfg + `:19:13: pattern pubilc.* chooses no table in source prod; did you mean schema public?"`; !strings.Contains(errOut, `level=WARN msg="pattern chooses no table"`) || !strings.Contains(errOut, want) {
			t.Errorf("%s does not warn %q:\n%s", cmd, want, errOut)
		}
	}
}

// TestLogDurations: JSON logs write durations as the text logs do ("30s"),
// not as nanoseconds.
func TestLogDurations(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"json", `"grace":"30s","wait":"500ms"`},
		{"text", `grace=30s wait=500ms`},
	} {
		var stderr strings.Builder
		g := &globals{stderr: &stderr, logFormat: tc.format}
		log, err := g.logger(false)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("stopping", "grace", 30*time.Second, "wait", 500*time.Millisecond)
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("--log-format %s: %q lacks %q", tc.format, stderr.String(), tc.want)
		}
	}
}

// TestRunLogsNameWorkflow: with several workflows in one nopii run, every
// log line about a table says which workflow it belongs to, once.
func TestRunLogsNameWorkflow(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.tag (id int PRIMARY KEY, name text); INSERT INTO public.tag VALUES (1, 'a')`)
	feeds := "    feeds:\n      - type: twin\n        dsn: " + twinDSN + "\n"
	// beta's tables go under b_public in the twin, apart from alpha's.
	cfg := writeConfig(t, workflowYAML("alpha", prodDSN, "          - name: public.tag\n", feeds)+`  - name: beta
    inputs:
      - name: prod
        dsn: `+prodDSN+`
        target_schema_prefix: b_
        tables: [{ name: public.tag }]
`+feeds)
	code, out, errOut := runCLI(t, "run", "--config", cfg, "--log-format", "json", "--log-level", "info")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if dup := duplicateKeys(line); len(dup) > 0 {
			t.Errorf("keys %v repeated: %s", dup, line)
		}
		if _, ok := rec["table"]; ok {
			wf, _ := rec["workflow"].(string)
			seen[rec["msg"].(string)+" "+wf]++
			if wf == "" {
				t.Errorf("a table's line without its workflow: %s", line)
			}
		}
	}
	for _, want := range []string{"copying table alpha", "table copied alpha", "copying table beta", "table copied beta"} {
		if seen[want] != 1 {
			t.Errorf("%q logged %d times, want once (%v)", want, seen[want], seen)
		}
	}
}

// TestValidateConnectCDC: for tables in mode cdc, validate --connect also
// finds what would stop their stream: wal_level, a role without
// REPLICATION, a table whose changes cannot be applied (each at its mode:).
func TestValidateConnectCDC(t *testing.T) {
	const schema = `CREATE TABLE public.gen (id int PRIMARY KEY, a text, b text GENERATED ALWAYS AS (upper(a)) STORED);
		CREATE TABLE public.uniq (x int NOT NULL, y text); CREATE UNIQUE INDEX ON public.uniq (x);
		CREATE TABLE public.tag (id int PRIMARY KEY, name text);`
	const tables = `
          - name: public.gen
            mode: cdc
          - name: public.uniq
            mode: cdc
            primary_key: [x]
          - name: public.tag
            mode: cdc`
	replica := pgtest.MustNewClusterOptions(t, pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
	for _, tc := range []struct {
		name string
		prod func(t *testing.T) string // the source's DSN, schema loaded
		want []string
		not  []string
	}{
		{"tables", func(t *testing.T) string { return pgtest.MustDatabase(t) }, []string{
			"✓ input prod: public.tag (0 rules)",
			":11:19: mode cdc: table public.gen: generated column b is not carried by logical replication: use mode full or delta for this table",
			":13:19: mode cdc: table public.uniq: key column x is not in the table's replica identity",
			"\n2 problems\n",
		}, nil},
		{"wal_level", func(t *testing.T) string {
			dsn, err := replica.CreateDatabase(t.Context(), "prod")
			if err != nil {
				t.Fatal(err)
			}
			return dsn
		}, []string{
			"✗ input prod: source prod: mode cdc needs wal_level = logical, and the server has replica: ALTER SYSTEM SET wal_level = logical (or set it in postgresql.conf) and restart PostgreSQL",
		}, []string{"mode cdc: table"}},
		{"role without REPLICATION", func(t *testing.T) string {
			dsn := pgtest.MustDatabase(t)
			mustExec(t, mustConnect(t, dsn), "CREATE ROLE nopii_norepl LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO nopii_norepl")
			return strings.Replace(dsn, "postgres@", "nopii_norepl@", 1)
		}, []string{"✗ input prod: source prod: replication connection (mode cdc needs a role with the REPLICATION attribute: ALTER ROLE … REPLICATION)"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prodDSN := tc.prod(t)
			if !strings.Contains(prodDSN, "nopii_norepl") {
				mustExec(t, mustConnect(t, prodDSN), schema)
			}
			cfg := oneInputConfig(t, prodDSN, pgtest.MustDatabase(t), tables)
			code, out, errOut := runCLI(t, "validate", "--config", cfg, "--connect")
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("has %q:\n%s", n, out)
				}
			}
		})
	}
}
