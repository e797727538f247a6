package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nopii/nopii/agent"
)

// TestVerify: after a run, verify finds no leak; a source value planted in
// the twin (in the same row, or in another row) is found, by key, and no
// value is printed.
func TestVerify(t *testing.T) {
	prodDSN, twinDSN := demoDatabases(t)
	if code, out, errOut := runCLI(t, "run", "--config", "../testdata/demo/nopii.yaml"); code != 0 {
		t.Fatalf("run: %d\n%s\n%s", code, out, errOut)
	}
	verify := func(wantCode int) []agent.VerifyResult {
		t.Helper()
		code, out, errOut := runCLI(t, "verify", "--config", "../testdata/demo/nopii.yaml", "--format", "json")
		if code != wantCode {
			t.Fatalf("verify exit %d, want %d\n%s\n%s", code, wantCode, out, errOut)
		}
		var res []agent.VerifyResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return res
	}
	res := verify(0)
	checked := map[string]string{}
	for _, r := range res {
		checked[r.Table+"."+r.Column] = r.Check
		if r.Check != "" && (r.Checked == 0 || r.Source == 0) {
			t.Errorf("%s.%s: checked nothing: %+v", r.Table, r.Column, r)
		}
	}
	for col, check := range map[string]string{"public.customer.email": "values", "public.customer.ssn": "values", "public.customer.phone": "values",
		"public.customer.first_name": "rows", "public.customer.date_of_birth": "rows", "public.customer.lifetime_value": "rows",
		"public.orders.email": "values", "public.payment.card_number": "values", "public.newsletter_signup.email": "values"} {
		if checked[col] != check {
			t.Errorf("%s: check %q, want %q", col, checked[col], check)
		}
	}

	// Plant leaks: another customer's real email, and a row's own birth date.
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	realEmail := queryString(t, prod, "SELECT email::text FROM public.customer WHERE customer_id = 7")
	realDOB := queryString(t, prod, "SELECT date_of_birth::text FROM public.customer WHERE customer_id = 9")
	mustExec(t, twin, "UPDATE public.customer SET email = $1 WHERE customer_id = 8", realEmail)
	mustExec(t, twin, "UPDATE public.customer SET date_of_birth = $1::date WHERE customer_id = 9", realDOB)
	res = verify(1)
	found := map[string][]string{}
	for _, r := range res {
		if r.Leaks > 0 {
			found[r.Column] = r.LeakKeys
		}
	}
	if strings.Join(found["email"], ",") != "8" || strings.Join(found["date_of_birth"], ",") != "9" || len(found) != 2 {
		t.Fatalf("leaks found: %v; want email at key 8 and date_of_birth at key 9", found)
	}
	_, out, errOut := runCLI(t, "verify", "--config", "../testdata/demo/nopii.yaml")
	if strings.Contains(out+errOut, realEmail) || strings.Contains(out+errOut, realDOB) || !strings.Contains(out, "LEAK: 2") {
		t.Fatalf("verify printed a value or no summary:\n%s\n%s", out, errOut)
	}
}
