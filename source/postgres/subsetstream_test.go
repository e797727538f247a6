package postgres_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/source/postgres"
)

// TestSubsetMembersByIndex: a stream's check of a few keys against a
// subset reads them through indexes — a customer, in the subset when in
// the share or when an order in the share references her (up), and an
// order, in it when its customer brings her children (down) — where a
// copy's conditions would hash every order; and both forms select the
// same rows.
func TestSubsetMembersByIndex(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	conn := mustConnect(t, dsn)
	mustExec(t, conn, `
CREATE TABLE customer (id int PRIMARY KEY, vip bool NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customer, gift_for int REFERENCES customer);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (gift_for);
INSERT INTO customer SELECT i, i % 97 = 0 FROM generate_series(1, 200000) i;
INSERT INTO orders SELECT i, 1 + i % 200000, CASE WHEN i % 5 = 0 THEN 1 + (i * 7) % 200000 END FROM generate_series(1, 400000) i;
ANALYZE customer; ANALYZE orders;`)
	src := mustOpen(t, dsn, 1)
	customer, orders := mustDescribe(t, src, "public", "customer"), mustDescribe(t, src, "public", "orders")
	refs, err := src.References(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	sub := nopii.NewSubset([]*nopii.SubsetTable{
		{Table: customer, Root: &nopii.SubsetRoot{Where: "NOT vip", Percent: 20, Seed: 7, WithChildren: true}},
		{Table: orders},
	}, refs)
	keys := func(n int, from int) []string {
		var out []string
		for i := range n {
			out = append(out, strconv.Itoa(from+i*131))
		}
		return out
	}
	for _, tc := range []struct {
		table *nopii.Table
		keys  []string
	}{{customer, keys(100, 1)}, {orders, keys(100, 3)}} {
		fast := postgres.MembersQuery(sub, tc.table, true)
		plan := explain(t, conn, fast, tc.keys)
		if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "hashed SubPlan") {
			t.Errorf("%s: the stream's check reads whole tables:\n%s", tc.table.Name, plan)
		}
		got, want := memberKeys(t, conn, fast, tc.keys), memberKeys(t, conn, postgres.MembersQuery(sub, tc.table, false), tc.keys)
		if !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s: the correlated check selects %v, the copy's conditions %v (want the same, some)", tc.table.Name, got, want)
		}
	}
}

func explain(t *testing.T, conn *pgx.Conn, q string, keys []string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "EXPLAIN "+q, keys)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func memberKeys(t *testing.T, conn *pgx.Conn, q string, keys []string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, keys) // every column, then the key text
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vals[len(vals)-1].(string))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
