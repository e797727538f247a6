package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nopii/nopii/config"
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
		"customer.first_name": "name", "customer.date_of_birth": "birth_date", "orders.email": "email", "event.ip": "ip",
		"payment.card_number": "card", "staff.password": "password", "contact_log.reached": "email"} {
		if f, ok := got[col]; !ok || f.Kind != kind || f.Rule["rule"] == nil {
			t.Errorf("%s: got %+v, want kind %s with a rule", col, f, kind)
		}
	}
	if f := got["contact_log.reached"]; f.Evidence != "100% of 50 sampled values" {
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
