package cmd

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/internal/subsetref"
)

// subsetYAML is the workflow of the subset tests: customer is the root
// (10% by keyed hash, and not "gone"), with two virtual foreign keys
// (customer.referrer_id, events.user_id); page_views.customer_id is left
// without one. address has a window (30 days by updated_at), which limits
// the addresses that customers bring as children but not those that
// included customers name as default (setupSubset makes a third of them
// older).
func subsetYAML(prodDSN, twinDSN string) string {
	return `
version: 1
hmac_key: ` + testKey + `
workflows:
  - name: sub
    on_unclassified: warn
    inputs:
      - name: prod
        dsn: ` + prodDSN + `
        tables:
          - name: public.customer
            updated_at: updated_at
            identifies: [email]
            subset: { where: "email NOT LIKE 'gone%'", percent: 10 }
            references:
              - { columns: [referrer_id], table: public.customer, to: [id] }
            columns:
              email: { rule: redact_email }
          - name: public.address
            updated_at: updated_at
            window: 30d
            window_by: updated_at
          - name: public.orders
            updated_at: updated_at
          - name: public.order_item
            updated_at: updated_at
          - name: public.events
            references:
              - { columns: [user_id], table: public.customer }
          - name: public.region
          - name: public.staff
          - name: public.product
          - name: public.page_views
          - name: public.review
    feeds:
      - type: twin
        dsn: ` + twinDSN + `
`
}

// subsetRefTables is the workflow above for subsetref.
func subsetRefTables(t *testing.T, prod string) ([]subsetref.Table, []subsetref.Ref) {
	t.Helper()
	conn := mustConnect(t, prod)
	// The share is the source's keyed hash: plan tells which customers it
	// holds; subsetref checks everything that follows from them.
	tables := []subsetref.Table{
		{Name: "public.region", Key: []string{"id"}},
		{Name: "public.customer", Key: []string{"id"}, WithChildren: true},
		{Name: "public.address", Key: []string{"id"}, Window: "updated_at >= now() - interval '30 days'"},
		{Name: "public.staff", Key: []string{"id"}},
		{Name: "public.orders", Key: []string{"id"}},
		{Name: "public.product", Key: []string{"sku", "variant"}},
		{Name: "public.order_item", Key: []string{"order_id", "line"}},
		{Name: "public.events", Key: []string{"id"}},
	}
	refs := []subsetref.Ref{
		{From: "public.customer", Cols: []string{"referrer_id"}, To: "public.customer", ToCols: []string{"id"}},
		{From: "public.events", Cols: []string{"user_id"}, To: "public.customer", ToCols: []string{"id"}},
	}
	rows, err := conn.Query(context.Background(), `
		SELECT cn.nspname || '.' || cc.relname, pn.nspname || '.' || pc.relname,
		       (SELECT array_agg(a.attname::text ORDER BY k.o) FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
		       (SELECT array_agg(a.attname::text ORDER BY k.o) FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n)
		FROM pg_constraint c JOIN pg_class cc ON cc.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
		JOIN pg_class pc ON pc.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE c.contype = 'f'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r subsetref.Ref
		if err := rows.Scan(&r.From, &r.To, &r.Cols, &r.ToCols); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	return tables, refs
}

// setupSubset makes the source of testdata/subset (a third of the
// addresses outside address's window, and a table of reviews of products
// that the subset does not reach), an empty twin, and the workflow.
func setupSubset(t *testing.T) (prod, twin, cfg string) {
	t.Helper()
	prod, twin = pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	db := mustConnect(t, prod)
	mustExec(t, db, string(mustRead(t, "../testdata/subset/prod.sql")))
	mustExec(t, db, `UPDATE address SET updated_at = now() - interval '60 days' WHERE id % 3 = 0;
		CREATE TABLE review (id int PRIMARY KEY, sku text NOT NULL, variant int NOT NULL, stars int NOT NULL,
			CONSTRAINT review_product_fkey FOREIGN KEY (sku, variant) REFERENCES product);
		INSERT INTO review SELECT row_number() OVER (), sku, variant, i % 5 + 1 FROM product, generate_series(1, 2) i;
		ANALYZE review`)
	return prod, twin, writeConfig(t, subsetYAML(prod, twin))
}

// subsetForeignKeys is the number of the source's foreign keys among
// tables of the subset.
const subsetForeignKeys = 8

// checkKeysValid checks that the twin has every foreign key of the source
// among the subset's tables, validated (a subset's parents hold every row
// its tables reference, windowed or not), and that no report line of them
// says one was made NOT VALID or left out. review, which the subset does
// not reach, references the subset's products: its key is NOT VALID, and
// its report line says why.
func checkKeysValid(t *testing.T, twin string, rep *agent.Report, when string) {
	t.Helper()
	rows, err := mustConnect(t, twin).Query(context.Background(), `SELECT conrelid::regclass::text || ' ' || conname || ' ' || convalidated::text
		FROM pg_constraint WHERE contype = 'f' AND conrelid <> 'review'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	valid := 0
	for _, k := range keys {
		if strings.HasSuffix(k, " true") {
			valid++
		}
	}
	if len(keys) != subsetForeignKeys || valid != len(keys) {
		t.Errorf("%s: the twin's foreign keys (table, name, validated): %v; want all %d validated", when, keys, subsetForeignKeys)
	}
	if rep == nil {
		return
	}
	for _, tr := range rep.Tables {
		for _, n := range tr.Schema {
			if strings.Contains(n, "foreign key") && tr.Table != "public.review" {
				t.Errorf("%s: %s: schema note %q", when, tr.Table, n)
			}
		}
	}
	want := "foreign key review_product_fkey is NOT VALID: its parent public.product is in a referential subset: the twin holds only the rows the subset's tables need"
	if tr := tableReport(t, *rep, "public.review"); !slices.Contains(tr.Schema, want) {
		t.Errorf("%s: review's schema notes %q, want %q", when, tr.Schema, want)
	}
	if v := queryString(t, mustConnect(t, twin), "SELECT convalidated::text FROM pg_constraint WHERE conname = 'review_product_fkey'"); v != "false" {
		t.Errorf("%s: review_product_fkey validated: %s, want false", when, v)
	}
}

// twinKeys is the twin table's source_primary_key values, sorted.
func twinKeys(t *testing.T, twin string, table string) []string {
	t.Helper()
	rows, err := mustConnect(t, twin).Query(context.Background(), `SELECT source_primary_key FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkClosure compares the twin with the closure subsetref computes on
// prod, from the root customers that the twin's root set holds.
func checkClosure(t *testing.T, prod, twin string, roots []string) {
	t.Helper()
	checkClosureOf(t, prod, twin, roots, true, "")
}

// checkClosureOf is checkClosure, address windowed or not, its errors
// prefixed by when.
func checkClosureOf(t *testing.T, prod, twin string, roots []string, window bool, when string) {
	t.Helper()
	tables, refs := subsetRefTables(t, prod)
	tables[1].Root = "id IN (" + strings.Join(append(roots, "-1"), ", ") + ")"
	if !window {
		tables[2].Window = ""
	}
	want, err := subsetref.Closure(context.Background(), mustConnect(t, prod), tables, refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		got := twinKeys(t, twin, tb.Name)
		if w := want[tb.Name]; !slices.Equal(got, w) {
			t.Errorf("%stwin %s: %d rows, want the closure's %d\n got %v\nwant %v", when, tb.Name, len(got), len(w), got, w)
		}
	}
}

// rootCustomers are the customers the root selects now, by the share's
// documented formula (docs/subsets.md) and the where.
func rootCustomers(t *testing.T, prod string) []string {
	t.Helper()
	seed := agent.SubsetSeed([]byte(testKey), nopii.TableName{Schema: "public", Name: "customer"})
	rows, err := mustConnect(t, prod).Query(context.Background(), `SELECT id::text FROM customer
		WHERE email NOT LIKE 'gone%' AND ((hashint8extended(id, $1) % 1000000 + 1000000) % 1000000) < 100000`, seed)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSubsetRunAndDelta: 10% of the customers (a keyed share) and a
// predicate as the root; the twin holds exactly the closure that
// subsetref computes from every row (FK chains, the composite product
// key, staff's self-reference, the customer ↔ address cycle, two virtual
// foreign keys); tables the subset does not reach are copied whole; a
// delta after inserts, updates (some invisible to the cursors) and
// deletes keeps it exact.
func TestSubsetRunAndDelta(t *testing.T) {
	prod, twin, cfg := setupSubset(t)
	code, out, errOut := runCLI(t, "plan", "--config", cfg, "--format", "json")
	var plan struct{ Tables []agent.TablePlan }
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil {
		t.Fatalf("plan exited %d\n%s\n%s", code, out, errOut)
	}
	rep := runJSON(t, cfg, 0)
	for _, p := range plan.Tables {
		switch {
		case (p.Table == "public.page_views" || p.Table == "public.review") && p.Subset != nil:
			t.Errorf("plan: %s in the subset: %+v", p.Table, p.Subset)
		case p.Table == "public.page_views" || p.Table == "public.review":
		case p.Subset == nil:
			t.Errorf("plan: %s not in the subset", p.Table)
		default:
			if n := int64(len(twinKeys(t, twin, p.Table))); p.Subset.Rows != n {
				t.Errorf("plan: %s subset rows %d, the run copied %d", p.Table, p.Subset.Rows, n)
			}
		}
	}
	for table, via := range map[string]string{
		"public.customer":   "root: where email NOT LIKE 'gone%' and 10% by keyed hash",
		"public.order_item": "children: public.order_item(order_id) → public.orders(id)",
		"public.events":     "children: public.events(user_id) → public.customer(id)",
		"public.product":    "referenced: public.order_item(sku, variant) → public.product(sku, variant)",
		"public.staff":      "referenced: public.staff(manager_id) → public.staff(id)",
	} {
		for _, p := range plan.Tables {
			if p.Table == table && (p.Subset == nil || !slices.Contains(p.Subset.Via, via)) {
				t.Errorf("plan: %s not brought by %q: %+v", table, via, p.Subset)
			}
		}
	}
	if !strings.Contains(runText(t, "plan", "--config", cfg), "subset of prod public.orders: ") {
		t.Errorf("plan's text has no subset line for orders")
	}
	for _, tr := range rep.Tables {
		if tr.Outcome != agent.OutcomeCopied {
			t.Fatalf("%s: %s %s", tr.Table, tr.Outcome, tr.Error)
		}
	}
	roots := rootCustomers(t, prod)
	if len(roots) < 10 || len(roots) > 35 {
		t.Fatalf("%d root customers of 200, want about 10%%", len(roots))
	}
	checkClosure(t, prod, twin, roots)
	checkKeysValid(t, twin, &rep, "full run")
	if n := queryInt(t, mustConnect(t, twin), "SELECT count(*) FROM address"); n >= 300 {
		t.Errorf("address holds %d rows: its window left none out", n)
	}
	if n := queryInt(t, mustConnect(t, twin), "SELECT count(*) FROM address WHERE updated_at < now() - interval '30 days'"); n == 0 {
		t.Errorf("the twin holds no address outside its window: the test needs default addresses that are old")
	}
	if n := queryInt(t, mustConnect(t, twin), "SELECT count(*) FROM page_views"); n != 300 {
		t.Errorf("page_views, which the subset does not reach, has %d rows in the twin, want all 300", n)
	}

	// Changes, several of which no cursor sees: a root customer leaves
	// the predicate; new customers, some in the share, whose default
	// addresses are old rows; an old order moves to a root customer
	// without a new updated_at; a new order of a root customer needs a
	// staff member and a product the twin lacks; an included item is
	// deleted.
	db := mustConnect(t, prod)
	inTwin := func(table string) string { return strings.Join(append(twinKeys(t, twin, table), "-1"), ", ") }
	staff := queryString(t, db, "SELECT min(id)::text FROM staff WHERE id NOT IN ("+inTwin("public.staff")+")")
	order := queryString(t, db, "SELECT min(id)::text FROM orders WHERE id NOT IN ("+inTwin("public.orders")+")")
	mustExec(t, db, "UPDATE customer SET email = 'gone-' || email, updated_at = now() WHERE id = "+roots[0])
	mustExec(t, db, "INSERT INTO customer (id, email, region_id, default_address_id) SELECT i, 'n' || i || '@example.org', 1, i FROM generate_series(201, 300) i")
	mustExec(t, db, "UPDATE orders SET customer_id = "+roots[1]+" WHERE id = "+order)
	mustExec(t, db, "INSERT INTO orders (id, customer_id, staff_id) VALUES (1000, "+roots[2]+", "+staff+")")
	mustExec(t, db, "INSERT INTO order_item (order_id, line, sku, variant, quantity) VALUES (1000, 1, 'sku-7', 2, 1)")
	mustExec(t, db, "DELETE FROM order_item WHERE (order_id, line) = (SELECT order_id, line FROM order_item WHERE order_id IN (SELECT id FROM orders WHERE customer_id = "+roots[3]+") ORDER BY 1, 2 LIMIT 1)")
	if staff == "NULL" || order == "NULL" {
		t.Fatalf("the first copy holds every staff member (%s) or order (%s): the test needs one outside", staff, order)
	}
	rep = runJSON(t, cfg, 0)
	if tr := tableReport(t, rep, "public.orders"); tr.Mode != agent.ModeDelta {
		t.Errorf("orders: mode %s (%s), want delta", tr.Mode, tr.Reason)
	}
	roots = rootCustomers(t, prod)
	checkClosure(t, prod, twin, roots)
	checkKeysValid(t, twin, &rep, "delta")
	if t.Failed() {
		for _, tr := range rep.Tables {
			t.Logf("%s: %s %s rows %d upserted %d deleted %d; %s %s", tr.Table, tr.Mode, tr.Reason, tr.Rows, tr.Upserted, tr.Deleted, tr.Note, tr.Error)
		}
	}
}

// TestSubsetSubject: subject requests follow a virtual foreign key
// (events.user_id) as they follow foreign keys, in the subset's twin; a
// user_id-like column without one (page_views.customer_id) is named by
// find and forget --dry-run with the references: entry to add.
func TestSubsetSubject(t *testing.T) {
	prod, twin, cfg := setupSubset(t)
	runJSON(t, cfg, 0)
	tw := mustConnect(t, twin)
	// A subject whose address another customer of the twin names as its
	// default: forget must not leave that reference dangling.
	id := queryString(t, tw, `SELECT min(c.id)::text FROM customer c JOIN address a ON a.customer_id = c.id
		JOIN customer o ON o.default_address_id = a.id AND o.id <> c.id WHERE c.id IN (SELECT user_id FROM events)`)
	if id == "NULL" {
		t.Fatal("no customer of the twin has events and an address that another customer names as default")
	}
	other := queryString(t, tw, "SELECT min(o.id)::text FROM customer o JOIN address a ON a.id = o.default_address_id WHERE a.customer_id = "+id+" AND o.id <> "+id)
	email := queryString(t, mustConnect(t, prod), "SELECT email FROM customer WHERE id = "+id)
	events := queryInt(t, tw, "SELECT count(*) FROM events WHERE user_id = "+id)
	if events == 0 {
		t.Fatal("the twin holds no events of a customer in the subset")
	}

	rep := subjectReport(t, 0, "subject", "find", "--config", cfg, "--match", "email="+email)
	ev := subjectTable(t, rep, "prod", "public.events")
	if ev.SourceRows != events || len(ev.Feeds) != 1 || ev.Feeds[0].Rows != events {
		t.Errorf("find: events %+v, want %d rows in source and twin", ev, events)
	}
	if want := "public.events(user_id) → public.customer(email)"; !slices.Contains(ev.Via, want) {
		t.Errorf("find: events via %v, want %q", ev.Via, want)
	}
	wantUnfollowed := []agent.UnfollowedColumn{{Input: "prod", Table: "public.page_views", Column: "customer_id", Type: "integer",
		References: "public.customer", Add: "references:\n  - { columns: [customer_id], table: public.customer, to: [id] }"}}
	if !slices.Equal(rep.Unfollowed, wantUnfollowed) {
		t.Errorf("find: unfollowed %+v\nwant %+v", rep.Unfollowed, wantUnfollowed)
	}
	for _, args := range [][]string{{"find"}, {"forget", "--dry-run"}} {
		code, out, errOut := runCLI(t, append([]string{"subject"}, append(args, "--config", cfg, "--match", "email="+email)...)...)
		want := "not followed: prod public.page_views.customer_id (integer) looks like a reference to public.customer but has no foreign key; to follow it, add under table public.page_views:\n" +
			"    references:\n      - { columns: [customer_id], table: public.customer, to: [id] }\n"
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("subject %s exited %d, want 0 and\n%s\ngot:\n%s\n%s", strings.Join(args, " "), code, want, out, errOut)
		}
	}

	rep = subjectReport(t, 0, "subject", "forget", "--config", cfg, "--match", "email="+email)
	if ev := subjectTable(t, rep, "prod", "public.events"); ev.Feeds[0].Deleted != events {
		t.Errorf("forget: events %+v, want %d deleted from the twin", ev, events)
	}
	if n := queryInt(t, tw, "SELECT count(*) FROM events WHERE user_id = "+id); n != 0 {
		t.Errorf("forget left %d events of the subject in the twin", n)
	}
	checkKeysValid(t, twin, nil, "forget")
	if v := queryString(t, tw, "SELECT default_address_id::text FROM customer WHERE id = "+other); v != "NULL" {
		t.Errorf("forget: customer %s, not the subject, still names the subject's address %s as default", other, v)
	}

	// The next run copies the subset again (the source still has the
	// subject, who is still in the share, and the other customer's
	// reference to her address), with a new order of hers: the subject and
	// the order stay out, the other customer's reference stays NULL, and
	// every foreign key still validates.
	db := mustConnect(t, prod)
	mustExec(t, db, "INSERT INTO orders (id, customer_id) VALUES (2000, "+id+")")
	mustExec(t, db, "UPDATE customer SET updated_at = now() WHERE id = "+other)
	run := runJSON(t, cfg, 0)
	checkKeysValid(t, twin, &run, "run after forget")
	for q, want := range map[string]string{
		"SELECT count(*)::text FROM customer WHERE id = " + id:              "0",
		"SELECT count(*)::text FROM orders WHERE customer_id = " + id:       "0",
		"SELECT count(*)::text FROM address WHERE customer_id = " + id:      "0",
		"SELECT default_address_id::text FROM customer WHERE id = " + other: "NULL",
		"SELECT count(*)::text FROM customer WHERE id = " + other:           "1",
	} {
		if got := queryString(t, tw, q); got != want {
			t.Errorf("run after forget: %s = %s, want %s", q, got, want)
		}
	}
	if tr := tableReport(t, run, "public.customer"); !strings.Contains(tr.Note, "named rows forgotten by subject requests: those references are NULL") {
		t.Errorf("run after forget: customer's note %q says nothing of the references it set to NULL", tr.Note)
	}
}

// runText runs a command that must succeed and returns its stdout.
func runText(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("nopii %s exited %d\n%s\n%s", args[0], code, out, errOut)
	}
	return out
}

// TestSubsetRefusesCDC: a table in mode cdc that the subset reaches, when
// others it reaches are not in mode cdc, is not copied, and plan and run
// say why and what to set; the subset's other tables are copied
// (TestSubsetCDC streams a subset whose tables are all in mode cdc).
func TestSubsetRefusesCDC(t *testing.T) {
	prod, twin, _ := setupSubset(t)
	cfg := writeConfig(t, strings.Replace(subsetYAML(prod, twin), `          - name: public.orders
            updated_at: updated_at
`, `          - name: public.orders
            mode: cdc
            updated_at: updated_at
`, 1))
	want := "the subset reaches public.orders in mode cdc and public.customer, public.address, public.events, public.order_item, public.region, public.product, public.staff in other modes: " +
		"whether a row belongs to a subset depends on the rows of its other tables, so a stream keeps it current only when it streams them all"
	code, out, errOut := runCLI(t, "plan", "--config", cfg, "--format", "json")
	var plan struct{ Tables []agent.TablePlan }
	if json.Unmarshal([]byte(out), &plan) != nil {
		t.Fatalf("plan exited %d\n%s\n%s", code, out, errOut)
	}
	for _, p := range plan.Tables {
		if p.Table == "public.orders" && !strings.Contains(p.Error, want) {
			t.Errorf("plan: orders error %q, want it to hold %q", p.Error, want)
		}
	}
	rep := runJSON(t, cfg, 1)
	for _, tr := range rep.Tables {
		switch {
		case tr.Table == "public.orders" && !strings.Contains(tr.Error, want):
			t.Errorf("run: orders error %q, want it to hold %q", tr.Error, want)
		case tr.Table == "public.customer" && tr.Outcome != agent.OutcomeCopied:
			t.Errorf("run: customer %s %s, want copied", tr.Outcome, tr.Error)
		}
	}
}
