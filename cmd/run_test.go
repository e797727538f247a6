package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/agent"
)

// TestRunDemo runs the demo workflow end to end and checks the twin the way
// a user would: every table there, row counts equal, untouched columns
// identical, redacted columns holding no source value, keys right.
func TestRunDemo(t *testing.T) {
	prodDSN, twinDSN := demoDatabases(t)
	code, out, errOut := runCLI(t, "run", "--config", "../testdata/demo/nopii.yaml", "--format", "json")
	if code != 0 {
		t.Fatalf("nopii run exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var rep agent.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	var tables []string
	for _, tr := range rep.Tables {
		tables = append(tables, tr.Table)
		if tr.Error != "" {
			t.Errorf("%s: %s", tr.Table, tr.Error)
		}
	}
	want := []string{"public.customer", "public.event", "public.newsletter_signup", "public.orders", "public.payment", "public.staff"}
	if fmt.Sprint(tables) != fmt.Sprint(want) {
		t.Fatalf("tables copied = %v, want %v (partitions, views and excluded tables left out)", tables, want)
	}
	if rep.Status != "success" {
		t.Fatalf("status = %q", rep.Status)
	}

	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	redacted := map[string][]string{
		"customer":          {"email", "first_name", "last_name", "phone", "ssn", "date_of_birth", "address", "lifetime_value"},
		"orders":            {"email"},
		"payment":           {"card_number", "iban"},
		"staff":             {"password", "picture", "username"},
		"event":             {"ip"},
		"newsletter_signup": {"email"},
	}
	keys := map[string]string{
		"customer": "customer_id", "orders": "order_id", "payment": "order_id, line", "staff": "staff_id",
		"event": "event_id, at", "newsletter_signup": "email",
	}
	for table, red := range redacted {
		t.Run(table, func(t *testing.T) {
			q := "SELECT count(*) FROM public." + table
			if s, w := queryInt(t, prod, q), queryInt(t, twin, q); s != w {
				t.Fatalf("rows: source %d, twin %d", s, w)
			}
			for _, col := range columnsOf(t, prod, table) {
				isRedacted := contains(red, col)
				agg := fmt.Sprintf("SELECT md5(string_agg(%q::text, '|' ORDER BY %s)) FROM public.%s", col, keys[table], table)
				if table == "newsletter_signup" {
					agg = fmt.Sprintf("SELECT md5(string_agg(%q::text, '|' ORDER BY signed_up)) FROM public.%s", col, table)
				}
				same := queryString(t, prod, agg) == queryString(t, twin, agg)
				if !isRedacted && !same {
					t.Errorf("column %s differs from the source but has no rule", col)
				}
				switch {
				case isRedacted && (col == "date_of_birth" || col == "lifetime_value"):
					// shift_date and noise move a value within its domain: it
					// may land on another row's value, never on its own.
					assertChangedPerRow(t, prod, twin, table, col, keys[table])
				case isRedacted:
					assertNoLeak(t, prod, twin, table, col)
				}
			}
		})
	}

	// source_primary_key: the key itself, a JSON array for composite keys,
	// a hash where the key column is redacted.
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE source_primary_key <> customer_id::text"); n != 0 {
		t.Errorf("%d customer rows with source_primary_key <> customer_id", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.payment WHERE source_primary_key <> json_build_array(order_id, line)::text"); n != 0 {
		t.Errorf("%d payment rows with source_primary_key not the JSON array of the key", n)
	}
	if got := queryString(t, twin, "SELECT source_primary_key FROM public.payment ORDER BY order_id, line LIMIT 1"); got != "[1, 0]" {
		t.Errorf("payment source_primary_key = %q, want [1, 0]", got)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.newsletter_signup WHERE source_primary_key LIKE '%@%' OR source_primary_key !~ '^[0-9a-f]{64}$'"); n != 0 {
		t.Errorf("%d newsletter rows whose source_primary_key is not a hash of the redacted key", n)
	}
	for table := range redacted {
		nn := queryString(t, twin, "SELECT is_nullable FROM information_schema.columns WHERE table_schema='public' AND table_name=$1 AND column_name='source_primary_key'", table)
		if nn != "NO" {
			t.Errorf("%s.source_primary_key is nullable", table)
		}
		uniq := queryInt(t, twin, `SELECT count(*) FROM pg_constraint WHERE conrelid = ('public.'||$1)::regclass AND contype = 'u'
			AND conkey[1] = (SELECT attnum FROM pg_attribute WHERE attrelid = ('public.'||$1)::regclass AND attname = 'source_primary_key')`, table)
		if uniq != 1 {
			t.Errorf("%s: no UNIQUE constraint on source_primary_key", table)
		}
	}

	// Joins survive redaction: orders.email and customer.email redact alike.
	if n := queryInt(t, twin, "SELECT count(*) FROM public.orders o JOIN public.customer c USING (customer_id) WHERE o.email <> c.email::text"); n != 0 {
		t.Errorf("%d orders whose redacted email no longer matches their customer's", n)
	}
	// A UNIQUE source column stays unique (redact_email is injective).
	if n := queryInt(t, twin, "SELECT count(*) - count(DISTINCT email) FROM public.customer"); n != 0 {
		t.Errorf("redacted emails collide: %d duplicates", n)
	}
	// Types: enum and domain created in the twin; varchar(40) kept; arrays kept.
	if got := queryString(t, twin, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.customer'::regclass AND attname = 'first_name'"); got != "character varying(40)" {
		t.Errorf("first_name type = %s", got)
	}
	if got := queryString(t, twin, "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'public.customer_status'::regtype"); got != "prospect,active,churned" {
		t.Errorf("enum labels in twin = %q", got)
	}
	if got := queryString(t, twin, "SELECT typtype::text FROM pg_type WHERE oid = 'public.email_address'::regtype"); got != "d" {
		t.Errorf("email_address is not a domain in the twin: %q", got)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.customer WHERE email::text NOT LIKE 'u%@example.com'"); n != 0 {
		t.Errorf("%d redacted emails not of the form u<hash>@example.com", n)
	}
	// Partitioned table: partitioned in the twin too (a faithful twin), its
	// partitions never copied as tables of their own.
	if n := queryInt(t, twin, "SELECT count(*) FROM pg_class WHERE relname LIKE 'event_20%' AND relkind = 'r' AND NOT relispartition"); n != 0 {
		t.Errorf("partitions copied on their own: %d", n)
	}
	parts := "SELECT string_agg(c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid), '; ' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.event'::regclass"
	if got, want := queryString(t, twin, parts), queryString(t, prod, parts); got != want {
		t.Errorf("event's partitions in the twin: %q, want %q as in the source", got, want)
	}
	// destroy on NOT NULL bytea gives the empty value, not NULL.
	if n := queryInt(t, twin, "SELECT count(*) FROM public.staff WHERE password <> ''::bytea OR picture IS NOT NULL"); n != 0 {
		t.Errorf("destroy left %d staff rows with data", n)
	}
	// No shadow tables, nor objects under temporary names, left behind.
	if got := queryString(t, twin, "SELECT coalesce(string_agg(relname, ', '), '') FROM pg_class WHERE relname LIKE '\\_nopii\\_new\\_%'"); got != "" {
		t.Errorf("left behind under temporary names: %s", got)
	}

	// Determinism across runs: a second run yields the very same twin.
	before := tableDigest(t, twin, "public.customer", "customer_id")
	if code, out, errOut := runCLI(t, "run", "--config", "../testdata/demo/nopii.yaml"); code != 0 {
		t.Fatalf("second run exited %d\n%s\n%s", code, out, errOut)
	} else if !strings.Contains(out, "workflow demo: success") || !strings.Contains(out, "public.customer") {
		t.Errorf("text report lacks the summary or the table:\n%s", out)
	}
	if after := tableDigest(t, twin, "public.customer", "customer_id"); after != before {
		t.Errorf("second run changed redacted values: digest %s → %s", before, after)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func columnsOf(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT attname FROM pg_attribute WHERE attrelid = ('public.'||$1)::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// assertNoLeak checks that no non-empty source value of the column appears
// anywhere in the twin's column.
func assertNoLeak(t *testing.T, prod, twin *pgx.Conn, table, col string) {
	t.Helper()
	q := fmt.Sprintf("SELECT DISTINCT %q::text FROM public.%s WHERE %q IS NOT NULL", col, table, col)
	values := func(conn *pgx.Conn) map[string]bool {
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	src, dst := values(prod), values(twin)
	var leaked []string
	for v := range dst {
		if src[v] && v != "" && v != `\x` {
			leaked = append(leaked, v)
		}
	}
	sort.Strings(leaked)
	if len(leaked) > 0 {
		t.Errorf("column %s.%s: %d source values appear in the twin, e.g. %.40q", table, col, len(leaked), leaked[0])
	}
}

// assertChangedPerRow checks that no row kept its own non-NULL value.
func assertChangedPerRow(t *testing.T, prod, twin *pgx.Conn, table, col, key string) {
	t.Helper()
	q := fmt.Sprintf("SELECT %s::text, %q::text FROM public.%s ORDER BY %s", nopiiKeyExpr(key), col, table, key)
	read := func(conn *pgx.Conn) map[string]*string {
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*string{}
		for rows.Next() {
			var k string
			var v *string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			m[k] = v
		}
		return m
	}
	src, dst := read(prod), read(twin)
	same := 0
	for k, v := range src {
		if v != nil && dst[k] != nil && *dst[k] == *v {
			same++
		}
		if (v == nil) != (dst[k] == nil) {
			t.Errorf("%s.%s key %s: NULL-ness changed", table, col, k)
		}
	}
	if same > 0 {
		t.Errorf("%s.%s: %d rows kept their own value", table, col, same)
	}
}

func nopiiKeyExpr(key string) string {
	if strings.Contains(key, ",") {
		return "json_build_array(" + key + ")"
	}
	return key
}

func tableDigest(t *testing.T, conn *pgx.Conn, table, order string) string {
	t.Helper()
	return queryString(t, conn, fmt.Sprintf("SELECT md5(string_agg(x::text, '|' ORDER BY x.%s)) FROM %s x", order, table))
}
