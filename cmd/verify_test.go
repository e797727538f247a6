package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
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

// TestVerifyLakes: verify reads back the Parquet objects of a files feed
// and an S3 feed (a real S3 server) as well as the twin, and the values
// at the redacted paths of a json column: clean after a run; then a source
// value planted in a Parquet delta of each lake, and at a redacted path of
// a twin document, is found by key, with no value printed.
func TestVerifyLakes(t *testing.T) {
	prodDSN, twinDSN := demoDatabases(t)
	srv, bucket, dir, feeds := lakeFeeds(t, twinDSN, "parquet", "parquet")
	cfg := writeConfig(t, workflowYAML("shop", prodDSN, `
          - name: public.customer
            columns:
              email: { rule: redact_email }
              first_name: { rule: fake, kind: first_name }
              last_name: { rule: fake, kind: last_name }
              phone: { rule: fake, kind: phone }
              ssn: { rule: hash }
              date_of_birth: { rule: shift_date }
              address:
                rule: json
                paths:
                  "$.contact.email": { rule: redact_email }
                  "$.street": { rule: fake, kind: street }
`, feeds))
	if code, out, errOut := runCLI(t, "run", "--config", cfg); code != 0 {
		t.Fatalf("run: %d\n%s\n%s", code, out, errOut)
	}
	verify := func(wantCode int) map[string]agent.VerifyResult {
		t.Helper()
		code, out, errOut := runCLI(t, "verify", "--config", cfg, "--format", "json")
		if code != wantCode {
			t.Fatalf("verify exit %d, want %d\n%s\n%s", code, wantCode, out, errOut)
		}
		var res []agent.VerifyResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s\n%s", err, out, errOut)
		}
		byKey := map[string]agent.VerifyResult{}
		for _, r := range res {
			byKey[r.Feed+" "+r.Column+r.Path] = r
		}
		return byKey
	}
	res := verify(0)
	for _, feed := range []string{"twin", "s3", "files"} {
		for col, check := range map[string]string{"email": "values", "first_name": "rows", "date_of_birth": "rows",
			"address$.contact.email": "values", "address$.street": "rows"} {
			r := res[feed+" "+col]
			if r.Check != check || r.Source == 0 || r.Checked == 0 || r.Leaks != 0 {
				t.Errorf("%s %s: %+v, want a clean %s check of some values", feed, col, r, check)
			}
		}
	}

	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	email7 := queryString(t, prod, "SELECT email::text FROM public.customer WHERE customer_id = 7")
	contact5 := queryString(t, prod, "SELECT address #>> '{contact,email}' FROM public.customer WHERE customer_id = 5")
	fstore, err := files.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	customer := nopii.TableName{Schema: "public", Name: "customer"}
	plantInParquet(t, fstore, "shop", customer, "8", "email", email7)
	plantInParquet(t, mustS3Store(t, srv, bucket), "shop", customer, "11", "email", email7)
	mustExec(t, twin, `UPDATE public.customer SET address = jsonb_set(address, '{contact,email}', to_jsonb($1::text)) WHERE customer_id = 12`, contact5)
	res = verify(1)
	leaks := map[string]string{}
	for k, r := range res {
		if r.Leaks > 0 {
			leaks[k] = strings.Join(r.LeakKeys, ",")
		}
	}
	want := map[string]string{"files email": "8", "s3 email": "11", "twin address$.contact.email": "12"}
	if fmt.Sprint(leaks) != fmt.Sprint(want) {
		t.Fatalf("leaks %v, want %v", leaks, want)
	}
	_, out, errOut := runCLI(t, "verify", "--config", cfg)
	if strings.Contains(out+errOut, email7) || strings.Contains(out+errOut, contact5) || !strings.Contains(out, "LEAK: 3") {
		t.Fatalf("verify printed a value or no summary:\n%s\n%s", out, errOut)
	}
}

// plantInParquet rewrites the snapshot's Parquet part of a lake table with
// value in column at the row with key, every other value as it was.
func plantInParquet(t *testing.T, st lake.Store, workflow string, table nopii.TableName, key, column, value string) {
	t.Helper()
	ctx := t.Context()
	dir := lake.TableDir(workflow, table)
	m, err := lake.ReadManifest(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	obj := dir + m.Snapshot.Parts[0].Path
	rc, err := st.Get(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	col, _ := f.Schema().Lookup(column)
	keyCol, _ := f.Schema().Lookup(nopii.SourcePrimaryKeyColumn)
	rd := parquet.NewReader(f)
	rows := make([]parquet.Row, f.NumRows())
	n, err := rd.ReadRows(rows)
	if int64(n) != f.NumRows() || err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %d rows, %v", obj, n, err)
	}
	planted := false
	for _, r := range rows {
		for _, v := range r {
			if v.Column() == keyCol.ColumnIndex && string(v.ByteArray()) == key {
				for i, w := range r {
					if w.Column() == col.ColumnIndex {
						r[i] = parquet.ByteArrayValue([]byte(value)).Level(w.RepetitionLevel(), col.MaxDefinitionLevel, col.ColumnIndex)
						planted = true
					}
				}
			}
		}
	}
	if !planted {
		t.Fatalf("%s: no row with key %s", obj, key)
	}
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, f.Schema())
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ow, err := st.Create(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ow.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := ow.Commit(); err != nil {
		t.Fatal(err)
	}
}
