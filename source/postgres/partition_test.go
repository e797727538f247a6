package postgres_test

import (
	"slices"
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestDescribePartitionColumns: the columns every level's partition key
// reads, plain or in an expression, are named, so that a rule on one of
// them can leave the partitioning out of a faithful twin.
func TestDescribePartitionColumns(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	mustExec(t, mustConnect(t, dsn),
		`CREATE TABLE visits (id int8, day date, email text, region text, n int) PARTITION BY RANGE (day)`,
		`CREATE TABLE visits_2024 PARTITION OF visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (lower(email))`,
		`CREATE TABLE visits_2024_a PARTITION OF visits_2024 FOR VALUES IN ('a@example.com')`,
		`CREATE TABLE plain_list (id int8, region text, n int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`,
		`CREATE TABLE plain_list_eu PARTITION OF plain_list FOR VALUES IN ('eu')`)
	src := mustOpen(t, dsn, 1)
	for name, want := range map[string][]string{"visits": {"day", "email"}, "plain_list": {"region"}} {
		tbl, err := src.Describe(testContext(t), rel("public", name), []string{"id"})
		if err != nil {
			t.Fatal(err)
		}
		if tbl.Schema == nil || !slices.Equal(tbl.Schema.PartitionColumns, want) {
			t.Errorf("%s: partition columns %v, want %v", name, tbl.Schema, want)
		}
	}
}
