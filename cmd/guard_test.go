package cmd

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/internal/pgtest"
)

// guardSource fills a source with a reviewed table (users, with rules), a
// copy of it that nobody reviewed (users_backup, reached only by the
// public.* pattern) and a table without personal data (products).
func guardSource(t *testing.T, prod *pgx.Conn) {
	t.Helper()
	mustExec(t, prod, `
CREATE TABLE public.users (id int PRIMARY KEY, email text NOT NULL, phone text, full_name text, ssn text);
INSERT INTO public.users
SELECT i, format('mary.smith%s@yahoo.com', i), format('+1 (201) 555-%s', lpad(i::text, 4, '0')),
       (ARRAY['Mary Smith','John Miller','Anna Garcia','Wei Chen','Olga Ivanova'])[1 + i % 5],
       format('101-11-%s', lpad((1000 + i)::text, 4, '0'))
FROM generate_series(1, 60) i;
CREATE TABLE public.users_backup AS SELECT id, email, phone, full_name, ssn FROM public.users;
ALTER TABLE public.users_backup ADD PRIMARY KEY (id);
CREATE TABLE public.products (id int PRIMARY KEY, sku text, price numeric(10,2), in_stock boolean);
INSERT INTO public.products SELECT i, format('SKU-%s', 1000 + i), i * 1.5, i % 2 = 0 FROM generate_series(1, 60) i;`)
}

const guardUsersRules = `          - name: public.users
            columns:
              email: { rule: redact_email }
              phone: { rule: fake, kind: phone }
              full_name: { rule: fake, kind: full_name }
              ssn: { rule: destroy }
          - name: public.*
`

// rawUsers matches any raw value of users' personal columns.
var rawUsers = regexp.MustCompile(`mary\.smith\d+@yahoo\.com|555-00\d\d|101-11-1\d\d\d`)

// TestGuardFailsClosed: a table that a pattern newly matches and that
// holds personal data without rules is judged before it is copied. With
// the default on_unclassified (fail) nothing of it reaches the twin, the
// S3 lake or the files feed; the error, the report and plan give the
// rules to add, paste-ready; the reviewed table and the table without
// personal data are copied. With warn it is copied and the report warns;
// verify then exits 1 naming the columns copied without a rule.
func TestGuardFailsClosed(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	guardSource(t, prod)
	srv, bucket, dir, feeds := lakeFeeds(t, twinDSN, "parquet", "csv")
	cfg := writeConfig(t, workflowYAML("w", prodDSN, guardUsersRules, feeds))

	// plan says what the guard will do with each column without a rule.
	code, out, errOut := runCLI(t, "plan", "--config", cfg)
	if code != 1 {
		t.Fatalf("plan exited %d, want 1 (a table would fail)\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"columns without a rule in prod public.users_backup:",
		"email (text): fails the table (on_unclassified: fail): looks like email; add { rule: redact_email }",
		"ssn (text): fails the table",
		"columns without a rule in prod public.products:",
		"sku (text): copied as it is: judged not personal data",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s\n%s", want, out, errOut)
		}
	}

	rep := runJSON(t, cfg, 1)
	tr := tableReport(t, rep, "public.users_backup")
	if tr.Outcome != agent.OutcomeGuarded || tr.Rows != 0 {
		t.Fatalf("users_backup: outcome %q, rows %d, want guarded and 0: %+v", tr.Outcome, tr.Rows, tr)
	}
	for _, want := range []string{
		"look like PII have no rule, so nothing was written",
		"\n  - name: public.users_backup\n    columns:",
		"\n      email: { rule: redact_email }",
		"\n      phone: { rule: fake, kind: phone }",
		"\n      ssn: ",
		"or `rule: keep`",
	} {
		if !strings.Contains(tr.Error, want) {
			t.Errorf("guard error lacks %q:\n%s", want, tr.Error)
		}
	}
	if rawUsers.MatchString(tr.Error) {
		t.Errorf("guard error holds a raw value:\n%s", tr.Error)
	}
	kinds := map[string]bool{}
	for _, f := range tr.Unclassified {
		kinds[f.Column] = true
	}
	for _, c := range []string{"email", "phone", "full_name", "ssn"} {
		if !kinds[c] {
			t.Errorf("findings lack %s: %+v", c, tr.Unclassified)
		}
	}
	for _, name := range []string{"public.users", "public.products"} {
		if tr := tableReport(t, rep, name); tr.Outcome != agent.OutcomeCopied || tr.Rows != 60 {
			t.Errorf("%s: outcome %q rows %d, want copied 60 (%s)", name, tr.Outcome, tr.Rows, tr.Error)
		}
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM pg_class WHERE relname LIKE 'users_backup%'"); n != 0 {
		t.Errorf("the twin has %d relations named users_backup*", n)
	}
	s3keys, err := mustS3Store(t, srv, bucket).List(t.Context(), "w/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range s3keys {
		if strings.Contains(k, "users_backup") {
			t.Errorf("the S3 lake holds %s", k)
		}
	}
	assertNoRawValues(t, dir, rawUsers)
	if rawUsers.MatchString(fmt.Sprint(columnText(t, twin, "users", "email"), columnText(t, twin, "users", "phone"))) {
		t.Error("the twin's users holds raw values")
	}

	// warn: copied, with a warning naming the rule; verify then finds it.
	warnCfg := writeConfig(t, strings.Replace(workflowYAML("w", prodDSN, guardUsersRules, feeds),
		"  - name: w\n", "  - name: w\n    on_unclassified: warn\n", 1))
	rep = runJSON(t, warnCfg, 0)
	tr = tableReport(t, rep, "public.users_backup")
	if tr.Outcome != agent.OutcomeCopied || tr.Rows != 60 || len(tr.Warnings) < 4 {
		t.Fatalf("warn: %+v", tr)
	}
	if !strings.Contains(strings.Join(tr.Warnings, "\n"), "column email looks like email and has no rule: copied as it is (on_unclassified: warn); add { rule: redact_email }") {
		t.Errorf("warn: warnings %q", tr.Warnings)
	}
	code, out, errOut = runCLI(t, "verify", "--config", warnCfg)
	if code != 1 {
		t.Fatalf("verify exited %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, feed := range []string{"twin", "s3", "files"} {
		want := "LEAK: prod public.users_backup.email was copied without a rule into the " + feed + " feed and looks like email: add email: { rule: redact_email }"
		if !strings.Contains(out, want) {
			t.Errorf("verify lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "users_backup.id ") || strings.Contains(out, "public.products.") || rawUsers.MatchString(out) {
		t.Errorf("verify flags clean columns or prints values:\n%s", out)
	}
	// The next run holds the columns already: the guard does not judge
	// them again, and the default (fail) copies the table on.
	rep = runJSON(t, cfg, 0)
	if tr := tableReport(t, rep, "public.users_backup"); tr.Outcome != agent.OutcomeCopied || len(tr.Unclassified) != 0 {
		t.Errorf("a table the feeds hold: %+v", tr)
	}
}

// TestGuardStrict: on_unclassified: strict needs a rule (keep included) for
// every column of every copied table, personal or not.
func TestGuardStrict(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	guardSource(t, prod)
	mustExec(t, prod, "DROP TABLE public.users_backup")
	for _, tc := range []struct {
		name     string
		tables   string
		products agent.Outcome
		users    agent.Outcome
	}{
		{"unruled", `          - name: public.users
            columns:
              email: { rule: redact_email }
          - name: public.products
`, agent.OutcomeGuarded, agent.OutcomeGuarded},
		{"every column ruled", `          - name: public.users
            columns:
              id: { rule: keep }
              email: { rule: redact_email }
              phone: { rule: fake, kind: phone }
              full_name: { rule: fake, kind: full_name }
              ssn: { rule: destroy }
          - name: public.products
            columns:
              id: { rule: keep }
              sku: { rule: keep }
              price: { rule: keep }
              in_stock: { rule: keep }
`, agent.OutcomeCopied, agent.OutcomeCopied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(oneInputYAML(prodDSN, twinDSN, tc.tables), "  - name: w\n", "  - name: w\n    on_unclassified: strict\n", 1)
			code := 0
			if tc.users != agent.OutcomeCopied {
				code = 1
			}
			rep := runJSON(t, writeConfig(t, y), code)
			p, u := tableReport(t, rep, "public.products"), tableReport(t, rep, "public.users")
			if p.Outcome != tc.products || u.Outcome != tc.users {
				t.Fatalf("products %q, users %q; want %q, %q\n%s\n%s", p.Outcome, u.Outcome, tc.products, tc.users, p.Error, u.Error)
			}
			if tc.users == agent.OutcomeGuarded {
				for _, want := range []string{"on_unclassified: strict", "\n    sku: { rule: keep }", "\n    in_stock: { rule: keep }"} {
					if !strings.Contains(p.Error, want) {
						t.Errorf("products error lacks %q:\n%s", want, p.Error)
					}
				}
				if !strings.Contains(u.Error, "\n    phone: { rule: fake, kind: phone }") || strings.Contains(u.Error, "email:") {
					t.Errorf("users error:\n%s", u.Error)
				}
				if n := queryInt(t, twin, "SELECT count(*) FROM pg_class WHERE relname IN ('users', 'products')"); n != 0 {
					t.Errorf("strict wrote %d tables", n)
				}
			}
		})
	}
}

// TestForgottenStayOutOfNewTables: a subject forgotten before a table
// existed does not come back through it: the new table's identifies
// columns keep the subject's rows out, in the twin and the lakes, on its
// first copy and on the copies after.
func TestForgottenStayOutOfNewTables(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	guardSource(t, prod)
	mustExec(t, prod, "DROP TABLE public.users_backup")
	_, _, _, feeds := lakeFeeds(t, twinDSN, "parquet", "csv")
	users := `          - name: public.users
            identifies: [email]
            columns:
              email: { rule: redact_email }
              phone: { rule: fake, kind: phone }
              full_name: { rule: fake, kind: full_name }
              ssn: { rule: destroy }
`
	cfg := writeConfig(t, workflowYAML("w", prodDSN, users, feeds))
	runJSON(t, cfg, 0)
	if code, out, errOut := runCLI(t, "subject", "forget", "--config", cfg, "--match", "email=mary.smith7@yahoo.com", "--max-matching-proportion", "0.5"); code != 0 {
		t.Fatalf("forget exited %d\n%s\n%s", code, out, errOut)
	}
	mustExec(t, prod, `CREATE TABLE public.users_backup AS SELECT id, email, phone, full_name, ssn FROM public.users;
		ALTER TABLE public.users_backup ADD PRIMARY KEY (id)`)
	cfg = writeConfig(t, workflowYAML("w", prodDSN, users+strings.ReplaceAll(users, "public.users\n", "public.users_backup\n"), feeds))
	for run := 1; run <= 2; run++ {
		rep := runJSON(t, cfg, 0)
		tr := tableReport(t, rep, "public.users_backup")
		if tr.Outcome != agent.OutcomeCopied || tr.Forgotten != 1 || tr.Rows != 60 {
			t.Fatalf("run %d: users_backup %+v, want copied with 1 of 60 rows forgotten", run, tr)
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM public.users_backup"); n != 59 {
			t.Errorf("run %d: the twin's users_backup has %d rows, want 59", run, n)
		}
		if n := queryInt(t, twin, "SELECT count(*) FROM public.users_backup WHERE id = 7"); n != 0 {
			t.Errorf("run %d: the forgotten subject is back in users_backup", run)
		}
	}
}

// TestGuardProse: a free-text column with phone numbers in one row of ten
// stops a new table, and the error suggests its rule; order numbers and
// tracking codes in prose do not.
func TestGuardProse(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `
CREATE TABLE public.orders (id int PRIMARY KEY, notes text);
INSERT INTO public.orders SELECT i,
  CASE WHEN i % 10 = 0 THEN 'Please call me at 555-867-' || lpad(i::text, 4, '0') || ' before delivery'
       ELSE 'Order #' || (100000 + i) || ' shipped via UPS 1Z999AA1012345678' || (i % 10) || ' at 2024-03-01 10:22' END
FROM generate_series(1, 300) i;
CREATE TABLE public.shipments (id int PRIMARY KEY, notes text);
INSERT INTO public.shipments SELECT i, 'Order #' || (100000 + i) || ' shipped via UPS 1Z999AA1012345678' || (i % 10) || ', v2.' || (i % 7) || '.1, total 49.90'
FROM generate_series(1, 300) i;`)
	rep := runJSON(t, oneInputConfig(t, prodDSN, twinDSN, "          - name: public.*"), 1)
	o := tableReport(t, rep, "public.orders")
	if o.Outcome != agent.OutcomeGuarded || !strings.Contains(o.Error, "\n      notes: { rule: fake, kind: sentence }    # free_text, inside prose: phone numbers in 10% of") {
		t.Fatalf("orders: %q\n%q", o.Outcome, o.Error)
	}
	if strings.Contains(o.Error, "555-867") {
		t.Errorf("the error quotes a value:\n%s", o.Error)
	}
	if s := tableReport(t, rep, "public.shipments"); s.Outcome != agent.OutcomeCopied {
		t.Errorf("shipments (no personal data in its prose): %q %s", s.Outcome, s.Error)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM pg_class WHERE relname = 'orders'"); n != 0 {
		t.Error("orders reached the twin")
	}
}
