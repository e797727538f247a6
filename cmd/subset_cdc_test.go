package cmd

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/agent"
)

// subsetCDCYAML is subsetYAML with every table the subset reaches in mode
// cdc, and address without its window (a stream does not see rows age).
func subsetCDCYAML(prod, twin string) string {
	y := subsetYAML(prod, twin)
	y = strings.Replace(y, "            window: 30d\n            window_by: updated_at\n", "", 1)
	for _, tb := range []string{"customer", "address", "orders", "order_item", "events", "region", "staff", "product"} {
		y = strings.Replace(y, "          - name: public."+tb+"\n", "          - name: public."+tb+"\n            mode: cdc\n", 1)
	}
	return y
}

// checkCDCClosure compares the twin with the closure subsetref computes on
// prod from the roots, address unwindowed, and checks that every foreign
// key among the subset's tables is validated and deferrable.
func checkCDCClosure(t *testing.T, prod, twin string, roots []string, when string) {
	t.Helper()
	checkClosureOf(t, prod, twin, roots, false, when+": ")
	rows, err := mustConnect(t, twin).Query(context.Background(), `SELECT conrelid::regclass::text || ' ' || conname
		FROM pg_constraint WHERE contype = 'f' AND convalidated AND condeferrable ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != subsetForeignKeys {
		t.Errorf("%s: the twin's validated deferrable foreign keys: %v, want all %d of the subset's", when, keys, subsetForeignKeys)
	}
}

// TestSubsetCDC: a subset whose tables are all in mode cdc is kept
// current by the stream: the first copy holds exactly the closure, and
// after changes that move rows in and out of it (a root customer leaves
// the predicate and comes back, new customers fall in the share, an old
// order moves to a root customer, a new order needs a staff member and a
// product the twin lacks, an item is deleted, a customer's referrer
// changes) each catch-up holds exactly the closure again, with every
// foreign key among the subset's tables validated throughout.
func TestSubsetCDC(t *testing.T) {
	prod, twin, _ := setupSubset(t)
	cfg := writeConfig(t, subsetCDCYAML(prod, twin))
	if code, out, errOut := runCLI(t, "validate", "--connect", "--config", cfg); code != 0 {
		t.Fatalf("validate --connect: exit %d\n%s\n%s", code, out, errOut)
	}
	if out := runText(t, "plan", "--config", cfg); !strings.Contains(out, "subset of prod public.orders: ") {
		t.Errorf("plan's text has no subset line for orders, which the stream keeps:\n%s", out)
	}
	rep := runJSON(t, cfg, 0)
	for _, tr := range rep.Tables {
		if tr.Outcome != agent.OutcomeCopied {
			t.Fatalf("%s: %s %s", tr.Table, tr.Outcome, tr.Error)
		}
	}
	want := "foreign key review_product_fkey left out: its parent public.product is streamed (mode cdc) and this table is not"
	if tr := tableReport(t, rep, "public.review"); !slices.ContainsFunc(tr.Schema, func(n string) bool { return strings.HasPrefix(n, want) }) {
		t.Errorf("review's schema notes %q, want one starting %q", tr.Schema, want)
	}
	roots := rootCustomers(t, prod)
	checkCDCClosure(t, prod, twin, roots, "first copy")

	db := mustConnect(t, prod)
	inTwin := func(table string) string { return strings.Join(append(twinKeys(t, twin, table), "-1"), ", ") }
	staff := queryString(t, db, "SELECT min(id)::text FROM staff WHERE id NOT IN ("+inTwin("public.staff")+")")
	order := queryString(t, db, "SELECT min(id)::text FROM orders WHERE id NOT IN ("+inTwin("public.orders")+")")
	if staff == "NULL" || order == "NULL" {
		t.Fatalf("the first copy holds every staff member (%s) or order (%s): the test needs one outside", staff, order)
	}
	gone := roots[0]
	mustExec(t, db, "UPDATE customer SET email = 'gone-' || email WHERE id = "+gone)
	mustExec(t, db, "INSERT INTO customer (id, email, region_id, default_address_id) SELECT i, 'n' || i || '@example.org', 1, i FROM generate_series(201, 300) i")
	mustExec(t, db, "UPDATE orders SET customer_id = "+roots[1]+" WHERE id = "+order)
	mustExec(t, db, "BEGIN; INSERT INTO orders (id, customer_id, staff_id) VALUES (1000, "+roots[2]+", "+staff+"); "+
		"INSERT INTO order_item (order_id, line, sku, variant, quantity) VALUES (1000, 1, 'sku-7', 2, 1); COMMIT")
	mustExec(t, db, "DELETE FROM order_item WHERE (order_id, line) = (SELECT order_id, line FROM order_item WHERE order_id IN (SELECT id FROM orders WHERE customer_id = "+roots[3]+") ORDER BY 1, 2 LIMIT 1)")
	mustExec(t, db, "UPDATE customer SET referrer_id = (SELECT min(id) FROM customer WHERE id NOT IN ("+inTwin("public.customer")+")) WHERE id = "+roots[4])
	rep = runJSON(t, cfg, 0)
	if tr := tableReport(t, rep, "public.orders"); tr.Mode != agent.ModeCDC || tr.Error != "" {
		t.Errorf("orders: mode %s (%s) %s, want cdc", tr.Mode, tr.Reason, tr.Error)
	}
	ordersOf := func(conn string) string {
		return queryString(t, mustConnect(t, conn), "SELECT count(*) FROM orders WHERE customer_id = "+gone)
	}
	if n := ordersOf(twin); n != "0" {
		t.Errorf("customer %s left the predicate, but %s of her orders are still in the twin", gone, n)
	}
	checkCDCClosure(t, prod, twin, rootCustomers(t, prod), "after changes")

	// The customer comes back, with her orders and their items; an order
	// of another root is deleted with its items in one transaction.
	mustExec(t, db, "UPDATE customer SET email = substr(email, 6) WHERE id = "+gone)
	mustExec(t, db, "BEGIN; DELETE FROM order_item WHERE order_id = (SELECT min(id) FROM orders WHERE customer_id = "+roots[5]+"); "+
		"DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE customer_id = "+roots[5]+"); COMMIT")
	// Order 1000 goes: the staff member only it needed leaves too.
	mustExec(t, db, "BEGIN; DELETE FROM order_item WHERE order_id = 1000; DELETE FROM orders WHERE id = 1000; COMMIT")
	runJSON(t, cfg, 0)
	if slices.Contains(twinKeys(t, twin, "public.staff"), staff) {
		t.Errorf("staff member %s, whom only the deleted order 1000 needed, is still in the twin", staff)
	}
	if got, want := ordersOf(twin), ordersOf(prod); got != want || want == "0" {
		t.Errorf("customer %s matches the predicate again: %s of her orders in the twin, %s in the source (the test needs some)", gone, got, want)
	}
	checkCDCClosure(t, prod, twin, rootCustomers(t, prod), "after the customer came back")
}
