package postgres_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/source/postgres"
)

func subjectSource(t *testing.T) (string, *postgres.Source) {
	t.Helper()
	dsn := pgtest.MustDatabase(t)
	schema, err := os.ReadFile("../../testdata/subject/prod.sql")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, mustConnect(t, dsn), string(schema))
	return dsn, mustOpen(t, dsn, 1)
}

func emailQuery(t *testing.T, src *postgres.Source, column string, values ...string) nopii.SubjectQuery {
	customer := mustDescribe(t, src, "public", "customer")
	return nopii.SubjectQuery{Seeds: []nopii.SubjectSeed{{Table: customer, Column: column}}, Values: values,
		Tables: []*nopii.Table{customer, mustDescribe(t, src, "public", "rental")}}
}

func keysByTable(rows []nopii.SubjectRows) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		out[r.Table.String()] = strings.Join(r.Keys, " ")
	}
	return out
}

// The subject's rows: the seed table by its identifying column, then by
// foreign keys: composite (rental → payment), two paths (note), a cycle
// (account ↔ card), and a self-reference that is not followed (customer 2
// was referred by customer 1 and is someone else).
func TestSubjectRowsFollowForeignKeys(t *testing.T) {
	_, src := subjectSource(t)
	rows, err := src.SubjectRows(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "email", "customer1@example.org")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"public.customer": "1",
		"public.rental":   "[1, 3] [2, 1] [3, 2]",
		"public.payment":  "1 2 3",
		"public.note":     "1 1001",
		"public.account":  "1",
		"public.card":     "1",
	}
	if got := keysByTable(rows); !maps.Equal(got, want) {
		t.Errorf("keys: got %v, want %v", got, want)
	}
	for _, r := range rows {
		if r.Rows != int64(len(r.Keys)) || r.TableRows < 1000 {
			t.Errorf("%s: rows %d of %d, keys %v", r.Table, r.Rows, r.TableRows, r.Keys)
		}
	}
	var payment nopii.SubjectRows
	for _, r := range rows {
		if r.Table.Name == "payment" {
			payment = r
		}
	}
	if !slices.Contains(payment.Via, "public.payment(store_id, rental_id) → public.rental(customer_id) → public.customer(email)") {
		t.Errorf("payment via %q", payment.Via)
	}

	// Several values are OR'ed; a value that matches nothing finds nothing.
	rows, err = src.SubjectRows(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "email", "customer1@example.org", "customer7@example.org", "nobody@example.org")})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysByTable(rows)["public.customer"]; got != "1 7" {
		t.Errorf("two subjects: customers %q", got)
	}
	// A varchar(60) column is not cut to a prefix that would match.
	rows, err = src.SubjectRows(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "email", "customer1@example.org"+strings.Repeat("x", 70))})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysByTable(rows)["public.customer"]; got != "" {
		t.Errorf("overlong value matched %q", got)
	}
	// A value the column's type cannot hold: an error that does not repeat it.
	_, err = src.SubjectRows(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "customer_id", "secret-not-a-number")})
	if err == nil || strings.Contains(err.Error(), "secret-not-a-number") {
		t.Errorf("bad value: %v", err)
	}
}

func TestSubjectJSON(t *testing.T) {
	_, src := subjectSource(t)
	got := map[string][]map[string]any{}
	err := src.SubjectJSON(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "email", "customer1@example.org")}, func(tn nopii.TableName, js []byte) error {
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return err
		}
		got[tn.String()] = append(got[tn.String()], m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := got["public.customer"]; len(c) != 1 || c[0]["email"] != "customer1@example.org" || c[0]["name"] != "Bob" {
		t.Errorf("customer rows: %v", c)
	}
	if p := got["public.payment"]; len(p) != 3 || p[0]["payment_id"] != float64(1) {
		t.Errorf("payment rows: %v", p)
	}
}

func TestDeleteSubject(t *testing.T) {
	dsn, src := subjectSource(t)
	conn := mustConnect(t, dsn)
	before := map[string]int64{}
	tables := []string{"customer", "rental", "payment", "note", "account", "card"}
	for _, tb := range tables {
		before[tb] = queryInt(t, conn, "SELECT count(*) FROM public."+tb)
	}

	// Over-wide: a name shared by an eighth of the customers. Nothing goes.
	_, err := src.DeleteSubject(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "name", "Alice")}, 0.01)
	if !errors.Is(err, postgres.ErrTooWide) || !strings.Contains(err.Error(), "public.customer") || strings.Contains(err.Error(), "Alice") {
		t.Fatalf("over-wide delete: %v", err)
	}
	for _, tb := range tables {
		if n := queryInt(t, conn, "SELECT count(*) FROM public."+tb); n != before[tb] {
			t.Errorf("%s: %d rows after a refused delete, want %d", tb, n, before[tb])
		}
	}

	deleted, err := src.DeleteSubject(testContext(t), []nopii.SubjectQuery{emailQuery(t, src, "email", "customer1@example.org")}, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"customer": 1, "rental": 3, "payment": 3, "note": 2, "account": 1, "card": 1}
	for _, r := range deleted {
		if r.Rows != want[r.Table.Name] {
			t.Errorf("%s: deleted %d, want %d", r.Table, r.Rows, want[r.Table.Name])
		}
	}
	for _, tb := range tables {
		if n := queryInt(t, conn, "SELECT count(*) FROM public."+tb); n != before[tb]-want[tb] {
			t.Errorf("%s: %d rows after delete, want %d", tb, n, before[tb]-want[tb])
		}
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM public.customer WHERE customer_id = 2"); n != 1 {
		t.Errorf("customer 2, referred by the subject, was deleted")
	}
}
