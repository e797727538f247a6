package scanner_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/scanner"
	"github.com/nopii/nopii/source/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// mustLoad creates a database from a SQL file and returns its DSN.
func mustLoad(tb testing.TB, sqlFile string) string {
	tb.Helper()
	sql, err := os.ReadFile(sqlFile)
	if err != nil {
		tb.Fatal(err)
	}
	return mustLoadSQL(tb, string(sql))
}

// mustLoadSQL creates a database, runs sql in it and returns its DSN.
func mustLoadSQL(tb testing.TB, sql string) string {
	tb.Helper()
	dsn := pgtest.MustDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("load: %v", err)
	}
	return dsn
}

func mustScan(tb testing.TB, dsn string, o scanner.Options) []scanner.ColumnFinding {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, err := postgres.Open(ctx, dsn, postgres.Options{Name: "corpus", Readers: 4, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	findings, err := scanner.Scan(ctx, src, o)
	if err != nil {
		tb.Fatal(err)
	}
	return findings
}

// TestCorpus scans the labelled corpus in a real cluster and measures
// precision (findings that are PII of the labelled kind) and recall
// (labelled columns found with their kind); both must reach 0.9.
func TestCorpus(t *testing.T) {
	dsn := mustLoad(t, "testdata/corpus.sql")
	labels := map[string][]string{}
	f, err := os.Open("testdata/labels.txt")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.Fields(sc.Text()); len(l) == 2 && !strings.HasPrefix(l[0], "#") {
			labels[l[0]] = strings.Split(l[1], "|")
		}
	}
	f.Close()

	findings := mustScan(t, dsn, scanner.Options{Schemas: []string{"public"}})
	tp, fp := 0, 0
	found := map[string]bool{}
	for _, f := range findings {
		col := f.Table + "." + f.Column
		want, pii := labels[col]
		ok := pii && contains(want, f.Kind)
		switch {
		case ok:
			tp++
			found[col] = true
		case pii:
			fp++
			t.Logf("wrong kind: %s judged %s (%s), labelled %v", col, f.Kind, f.Evidence, want)
		default:
			fp++
			t.Logf("false positive: %s judged %s (%s)", col, f.Kind, f.Evidence)
		}
		if f.Rule["rule"] == nil || f.Confidence <= 0 || f.Confidence > 1 {
			t.Errorf("%s: finding without a rule or with confidence %v", col, f.Confidence)
		}
	}
	var missed []string
	for col := range labels {
		if !found[col] {
			missed = append(missed, col)
		}
	}
	sort.Strings(missed)
	for _, col := range missed {
		t.Logf("missed: %s (%v)", col, labels[col])
	}
	precision := float64(tp) / float64(max(tp+fp, 1))
	recall := float64(tp) / float64(len(labels))
	t.Logf("precision %.3f (%d of %d findings), recall %.3f (%d of %d PII columns)", precision, tp, tp+fp, recall, tp, len(labels))
	fmt.Printf("scanner corpus: precision %.3f, recall %.3f\n", precision, recall)
	if precision < 0.9 || recall < 0.9 {
		t.Fatalf("precision %.3f and recall %.3f must both reach 0.9", precision, recall)
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
