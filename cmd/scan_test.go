package cmd

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/dashboard"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/scanner"
)

// TestScan scans the demo shop: the PII columns are found with a rule to
// add, ordinary columns are not, no value appears in the evidence, and with
// --config only what the workflow misses remains.
func TestScan(t *testing.T) {
	prodDSN, _ := demoDatabases(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.contact_log (note text, reached text);
		INSERT INTO public.contact_log SELECT 'call ' || i, 'p' || i || '@people.example' FROM generate_series(1, 50) i`)
	code, out, errOut := runCLI(t, "scan", "--dsn", prodDSN, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var findings []scanner.ColumnFinding
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("not one JSON array: %v\n%s", err, out)
	}
	got := map[string]scanner.ColumnFinding{}
	for _, f := range findings {
		got[f.Table+"."+f.Column] = f
		if strings.Contains(f.Evidence, "@") {
			t.Errorf("evidence shows values: %q", f.Evidence)
		}
	}
	for col, kind := range map[string]string{"customer.email": "email", "customer.phone": "phone", "customer.ssn": "ssn",
		"customer.first_name": "first_name", "customer.date_of_birth": "birth_date", "orders.email": "email", "event.ip": "ip",
		"payment.card_number": "card", "staff.password": "password", "contact_log.reached": "email"} {
		if f, ok := got[col]; !ok || f.Kind != kind || f.Rule["rule"] == nil {
			t.Errorf("%s: got %+v, want kind %s with a rule", col, f, kind)
		}
	}
	if f := got["contact_log.reached"]; f.Evidence != "100% of 50 sampled values pass the email syntax check" {
		t.Errorf("value-based evidence = %q", f.Evidence)
	}
	for _, col := range []string{"customer.customer_id", "orders.total", "customer.status", "event.user_agent"} {
		if _, ok := got[col]; ok {
			t.Errorf("%s judged PII", col)
		}
	}

	// --config: what the demo workflow already redacts is left out.
	code, out, _ = runCLI(t, "scan", "--dsn", prodDSN, "--config", "../testdata/demo/nopii.yaml", "--format", "yaml")
	if code != 0 || strings.Contains(out, "email: { rule: redact_email }    # email, column name\n          - name: public.orders") ||
		!strings.Contains(out, "- name: public.contact_log") || !strings.Contains(out, "reached: { rule: redact_email }") {
		t.Fatalf("scan --config --format yaml: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "public.customer\n") {
		t.Errorf("customer's columns all have rules, yet it is listed:\n%s", out)
	}
	// The YAML is what a user pastes: it parses as table entries with rules.
	paste := strings.Replace(string(mustRead(t, "../testdata/demo/nopii.yaml")), "          - name: public.film_text", strings.TrimPrefix(out, "# nopii scan: rules to add under the input's tables\n")+"          - name: public.film_text", 1)
	if _, err := config.Parse("pasted.yaml", []byte(paste), config.Options{Getenv: func(v string) (string, bool) {
		return map[string]string{"NOPII_HMAC_KEY": testKey, "PROD_DATABASE_URL": "postgres://p/x", "TWIN_DATABASE_URL": "postgres://t/y"}[v], true
	}}); err != nil {
		t.Fatalf("the printed rules do not paste into the workflow file: %v\n%s", err, out)
	}
}

// TestScanProse: a free-text column with a phone number in one row of ten
// (issue 17's orders.notes) is flagged with the share as evidence and a
// rule for prose to paste; its neighbour, whose numbers are order numbers,
// tracking codes, timestamps and amounts, is not.
func TestScanProse(t *testing.T) {
	prodDSN := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.orders (id int PRIMARY KEY, notes text, shipping text);
		INSERT INTO public.orders SELECT i,
		  CASE WHEN i % 10 = 0 THEN 'Please call me at 555-867-' || lpad(i::text, 4, '0') || ' before delivery'
		       ELSE 'Leave it at the door' END,
		  'Order #' || (100000 + i) || ' shipped via UPS 1Z999AA1' || lpad((i * 7919)::text, 8, '0') || ' at 2024-03-01 10:22, total ' || i || '.99 USD'
		FROM generate_series(1, 200) i`)
	code, out, errOut := runCLI(t, "scan", "--dsn", prodDSN, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var findings []scanner.ColumnFinding
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("not one JSON array: %v\n%s", err, out)
	}
	if len(findings) != 1 {
		t.Fatalf("findings %+v, want orders.notes alone", findings)
	}
	f := findings[0]
	if f.Table != "orders" || f.Column != "notes" || f.Kind != "free_text" ||
		f.Evidence != "inside prose: phone numbers in 10% of 200 sampled values" ||
		fmt.Sprint(f.Rule) != "map[kind:sentence rule:fake]" {
		t.Fatalf("finding %+v", f)
	}
	code, out, _ = runCLI(t, "scan", "--dsn", prodDSN, "--format", "yaml")
	if code != 0 || !strings.Contains(out, "- name: public.orders\n            columns:\n              notes: { rule: fake, kind: sentence }    # free_text, inside prose: phone numbers in 10% of 200 sampled values\n") {
		t.Fatalf("scan --format yaml: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "555-867") {
		t.Fatalf("the output quotes a value:\n%s", out)
	}
}

// TestScanToDashboard: with a dashboard in --config, nopii scan posts what
// the workflow does not cover yet (a keep rule covers a column) to the
// scanner page, json paths and their rule included.
func TestScanToDashboard(t *testing.T) {
	dashDSN, prodDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.person (id int PRIMARY KEY, email text, nickname text, profile jsonb);
		INSERT INTO public.person SELECT i, 'p' || i || '@people.example', 'n' || i,
		  jsonb_build_object('contact', jsonb_build_object('email', 'c' || i || '@x.org'), 'size', i) FROM generate_series(1, 30) i`)
	ctx := t.Context()
	store, err := dashboard.Open(ctx, dashDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	token, err := store.CreateToken(ctx, "scanner-host")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dashboard.NewServer(store, dashboard.Options{AdminToken: "admin-token-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	// Scan opens no feed: the twin's DSN is never dialled.
	cfg := writeConfig(t, oneInputYAML(prodDSN, "postgres://unused/twin", `
          - name: public.person
            columns:
              email: { rule: redact_email }
              nickname: { rule: keep }`)+`
dashboard:
  url: `+hs.URL+`
  token: `+token+`
agent:
  name: scanner-host
`)
	code, out, errOut := runCLI(t, "scan", "--dsn", prodDSN, "--config", cfg, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	scans, err := store.Scans(ctx, 10)
	if err != nil || len(scans) != 1 || scans[0].Agent != "scanner-host" {
		t.Fatalf("scans %+v %v", scans, err)
	}
	got := map[string]string{}
	for _, f := range scans[0].Findings {
		got[f.Table+"."+f.Column] = f.Kind + " " + fmt.Sprint(f.Rule)
	}
	if want := `json map[paths:map[$.contact.email:map[rule:redact_email]] rule:json]`; got["person.profile"] != want || len(got) != 1 {
		t.Fatalf("posted findings %v, want only person.profile: %s", got, want)
	}
}

// TestScanConfigInputs: nopii scan --config, without --dsn, scans each
// database the file's inputs read (its DSN from the file, so from the
// environment), once, against the rules of the inputs that read it.
func TestScanConfigInputs(t *testing.T) {
	prodDSN, crmDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, prodDSN), `CREATE TABLE public.customer (id int PRIMARY KEY, email text, phone text);
		INSERT INTO public.customer SELECT i, 'c' || i || '@shop.example', '+4915112345' || lpad(i::text, 3, '0') FROM generate_series(1, 50) i`)
	mustExec(t, mustConnect(t, crmDSN), `CREATE TABLE public.contact (id int PRIMARY KEY, mail text);
		INSERT INTO public.contact SELECT i, 'k' || i || '@crm.example' FROM generate_series(1, 50) i`)
	t.Setenv("SCAN_PROD_URL", prodDSN)
	t.Setenv("SCAN_CRM_URL", crmDSN)
	cfg := writeConfig(t, workflowYAML("shop", "${SCAN_PROD_URL}", `          - name: public.customer
            columns:
              email: { rule: redact_email }
`, `      - name: crm
        dsn: ${SCAN_CRM_URL}
        tables:
          - name: public.contact
    feeds:
      - type: twin
        dsn: `+twinDSN+`
  - name: phones
    inputs:
      - name: prod_again
        dsn: ${SCAN_PROD_URL}
        tables:
          - name: public.customer
            columns:
              phone: { rule: mask }
    feeds:
      - type: twin
        dsn: `+twinDSN+`
`))
	for _, tc := range []struct {
		format string
		want   []string // in this order
		not    []string
	}{
		{"table", []string{"# workflow shop, input prod\n", "0 columns look like personal data\n", "\n# workflow shop, input crm\n", "contact  mail", "1 column looks like personal data\n"},
			[]string{"customer  email", "customer  phone", "prod_again"}},
		{"yaml", []string{"# workflow shop, input prod\n", "# workflow shop, input crm\n", "# public.contact has an entry already: add to its columns:\n", "mail: { rule: redact_email }"},
			[]string{"email: {", "phone: {"}},
		{"json", []string{`"table": "contact"`, `"column": "mail"`}, []string{"# workflow", `"column": "email"`, `"column": "phone"`}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			code, out, errOut := runCLI(t, "scan", "--config", cfg, "--format", tc.format, "--log-level", "warn")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("lacks %q (in this order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("has %q:\n%s", n, out)
				}
			}
		})
	}
	code, _, errOut := runCLI(t, "scan")
	if want := "Error: --dsn or --config is required\n"; code != 1 || !strings.HasPrefix(errOut, want) {
		t.Errorf("scan without a database: exit %d, stderr %q, want 1 and %q", code, errOut, want)
	}
}
