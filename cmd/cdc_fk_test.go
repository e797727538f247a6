package cmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestCDCForeignKeys: a faithful twin's foreign keys among streamed tables
// are there and validated after the first copy, and the stream applies
// each source transaction's changes so that they hold: a customer and her
// first order inserted together, an order moved to a new customer, a
// customer deleted with her orders, a manager deleted after her reports
// moved (a self-reference, in one table). A key between a streamed table
// and one that runs refresh is left out and said; a view over streamed
// tables is created; a table copied again after a schema change gets its
// keys back.
func TestCDCForeignKeys(t *testing.T) {
	prodDSN := pgtest.MustDatabase(t)
	twinDSN := pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `
CREATE TABLE public.customer (id int PRIMARY KEY, email text NOT NULL);
CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES public.customer, total int NOT NULL);
CREATE TABLE public.line (order_id int REFERENCES public.orders ON DELETE CASCADE, n int, qty int, PRIMARY KEY (order_id, n));
CREATE TABLE public.staff (id int PRIMARY KEY, manager_id int REFERENCES public.staff);
CREATE TABLE public.memo (id int PRIMARY KEY, customer_id int REFERENCES public.customer, body text);
CREATE VIEW public.big_orders AS SELECT o.id, o.total FROM public.orders o WHERE o.total > 100;
INSERT INTO public.customer SELECT i, 'c' || i || '@x.org' FROM generate_series(1, 100) i;
INSERT INTO public.orders SELECT i, 1 + i % 100, i FROM generate_series(1, 300) i;
INSERT INTO public.line SELECT o, n, n FROM generate_series(1, 300) o, generate_series(1, 3) n;
INSERT INTO public.staff SELECT i, CASE WHEN i > 10 THEN 1 + i % 10 END FROM generate_series(1, 100) i;
INSERT INTO public.memo SELECT i, i, 'memo' FROM generate_series(1, 10) i;`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.customer
            mode: cdc
            columns:
              email: { rule: redact_email }
          - name: public.orders
            mode: cdc
          - name: public.line
            mode: cdc
          - name: public.staff
            mode: cdc
          - name: public.memo
            columns:
              body: { rule: keep }`)
	code, out, errOut := runCLI(t, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errOut)
	}
	twin := mustConnect(t, twinDSN)
	validated := `SELECT string_agg(conname, ', ' ORDER BY conname) FROM pg_constraint WHERE contype = 'f' AND convalidated AND condeferrable`
	const want = "line_order_id_fkey, orders_customer_id_fkey, staff_manager_id_fkey"
	if got := queryString(t, twin, validated); got != want {
		t.Fatalf("validated deferrable foreign keys after the first copy: %q, want %q\n%s", got, want, out)
	}
	if !strings.Contains(out, "foreign key memo_customer_id_fkey left out: its parent public.customer is streamed (mode cdc) and this table is not") {
		t.Errorf("the report does not say why memo's key to a streamed table is left out:\n%s", out)
	}
	if n := queryString(t, twin, `SELECT count(*) FROM public.big_orders`); n != queryString(t, prod, `SELECT count(*) FROM public.big_orders`) {
		t.Errorf("the view over a streamed table has %s rows in the twin", n)
	}
	for round := range 4 {
		mustExec(t, prod, fmt.Sprintf(`BEGIN;
INSERT INTO public.customer VALUES (1000 + %[1]d, 'new@x.org');
INSERT INTO public.orders VALUES (1000 + %[1]d, 1000 + %[1]d, 5);
INSERT INTO public.line VALUES (1000 + %[1]d, 1, 1);
UPDATE public.orders SET customer_id = 1000 + %[1]d WHERE id = 10 + %[1]d;
COMMIT`, round))
		mustExec(t, prod, fmt.Sprintf(`BEGIN;
DELETE FROM public.orders WHERE customer_id = 50 + %[1]d;
DELETE FROM public.customer WHERE id = 50 + %[1]d;
COMMIT`, round))
		// The manager's row is deleted after her reports move: in the
		// twin's one load of staff, the delete comes before the upserts.
		mustExec(t, prod, fmt.Sprintf(`BEGIN;
UPDATE public.staff SET manager_id = NULL WHERE manager_id = %[1]d + 1;
DELETE FROM public.staff WHERE id = %[1]d + 1;
COMMIT`, round))
		if round == 2 {
			mustExec(t, prod, `ALTER TABLE public.orders ADD COLUMN note text`)
			mustExec(t, prod, `UPDATE public.orders SET note = 'n' WHERE id = 1`)
		}
		if code, out, errOut := runCLI(t, "run", "--config", cfg); code != 0 {
			t.Fatalf("round %d: exit %d\n%s\n%s", round, code, out, errOut)
		}
	}
	for _, q := range []string{
		`SELECT count(*) FROM public.orders o WHERE NOT EXISTS (SELECT FROM public.customer c WHERE c.id = o.customer_id)`,
		`SELECT count(*) FROM public.line l WHERE NOT EXISTS (SELECT FROM public.orders o WHERE o.id = l.order_id)`,
		`SELECT count(*) FROM public.staff s WHERE s.manager_id IS NOT NULL AND NOT EXISTS (SELECT FROM public.staff m WHERE m.id = s.manager_id)`,
	} {
		if n := queryString(t, twin, q); n != "0" {
			t.Errorf("%s rows without their parent in the twin: %s", n, q)
		}
	}
	for _, tb := range []string{"customer", "orders", "line", "staff"} {
		if got, want := queryString(t, twin, "SELECT count(*) FROM public."+tb), queryString(t, prod, "SELECT count(*) FROM public."+tb); got != want {
			t.Errorf("%s: %s rows in the twin, %s in the source", tb, got, want)
		}
	}
	if got := queryString(t, twin, validated); got != want {
		t.Errorf("validated deferrable foreign keys after the stream and a copy of orders for its new column: %q, want %q", got, want)
	}
	if n := queryString(t, twin, `SELECT count(*) FROM public.orders WHERE note = 'n'`); n != "1" {
		t.Errorf("the twin's orders has %s rows with the new column's value, want 1", n)
	}
}

// TestCDCReferencesToForgotten: after a subject request forgets a customer
// of a faithful twin in mode cdc, the stream treats rows that reference her
// as a copy does: a new order of hers (customer_id NOT NULL) stays out, and
// an order naming her as its gift's recipient (nullable) comes with the
// reference set to NULL; the stream's foreign keys hold throughout.
func TestCDCReferencesToForgotten(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `
CREATE TABLE public.customer (id int PRIMARY KEY, email text NOT NULL);
CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES public.customer, gift_for int REFERENCES public.customer);
INSERT INTO public.customer SELECT i, 'u' || i || '@x.org' FROM generate_series(1, 200) i;
INSERT INTO public.orders SELECT i, 1 + i % 200, NULL FROM generate_series(1, 400) i;`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.customer
            mode: cdc
            identifies: [email]
            columns:
              email: { rule: redact_email }
          - name: public.orders
            mode: cdc`)
	run := func(args ...string) {
		t.Helper()
		if code, out, errOut := runCLI(t, append(args, "--config", cfg, "--log-level", "error")...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	run("run")
	run("subject", "forget", "--match", "email=u7@x.org")
	mustExec(t, prod, `INSERT INTO public.orders VALUES (1000, 7, NULL), (1001, 8, 7), (1002, 9, NULL)`)
	run("run")
	for q, want := range map[string]string{
		"SELECT count(*) FROM public.orders WHERE source_primary_key = '1000'":                         "0",
		"SELECT coalesce(gift_for::text, 'null') FROM public.orders WHERE source_primary_key = '1001'": "null",
		"SELECT count(*) FROM public.orders WHERE source_primary_key = '1002'":                         "1",
		"SELECT count(*) FROM public.customer WHERE source_primary_key = '7'":                          "0",
		`SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated`:                      "2",
	} {
		if got := queryString(t, twin, q); got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}
}
