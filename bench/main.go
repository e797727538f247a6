// Command bench measures nopii against the plain binary COPY pipe, in the
// same run, on the same private PostgreSQL cluster:
//
//	psql -c "COPY (SELECT …) TO STDOUT (FORMAT binary)" | psql -c "COPY … FROM STDIN (FORMAT binary)"
//
// versus `nopii run` with 4 of the table's 8 columns redacted. The raw pipe
// loads into a table without indexes (its best case); nopii also builds the
// unique index on source_primary_key and swaps the table in atomically. It
// prints rows/s of both, their ratio, and nopii's peak RSS; then the lake
// feeds; then, -runs times, a full copy of the table with an updated_at
// cursor followed by a delta run after 1% of the rows changed, and the
// delta's share of the full-copy time (bench/delta.go).
//
//	go run ./bench -rows 1000000 -runs 3
//	go run ./bench -delta -recent -deletes   # the delta runs alone, and their variants
//	go run ./bench -subset                   # 10% of 1M users and their orders against the full copy (bench/subset.go)
//	go run ./bench -subset -cdc              # a stream keeping that subset current against one streaming the whole tables
//	go run ./bench -faithful -rows 1000000   # a faithful twin against pg_dump and pg_restore (bench/faithful.go)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/s3test"
)

var (
	cpuProfile string
	noRules    bool
)

const key = "bench-hmac-key-0123456789abcdef-0123456789"

func main() {
	rows := flag.Int("rows", 1_000_000, "rows in the benchmark table")
	runs := flag.Int("runs", 3, "runs of each pipeline (the median is reported)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write nopii's CPU profile of the last run to this file")
	copyOnly := flag.Bool("copy", false, "benchmark only the full copy: raw COPY pipe, pg_dump | psql, nopii (1 stream and page ranges)")
	cdc := flag.Bool("cdc", false, "benchmark mode cdc instead: sustained apply and lag at a fixed change rate")
	changes := flag.Int("changes", 200_000, "-cdc: changed rows the catch-up applies")
	rate := flag.Int("rate", 5000, "-cdc: changes a second while the lag is measured")
	lagFor := flag.Duration("lag-for", 20*time.Second, "-cdc: how long the lag is measured")
	deltaOnly := flag.Bool("delta", false, "benchmark only the delta runs (full copy, then 1% updated and a delta)")
	deletes := flag.Bool("deletes", false, "-delta: also with detect_deletes, without deletes and with 0.01% of the rows deleted before each delta")
	flag.BoolVar(&noRules, "norules", false, "nopii without column rules (every column as it is): the pipeline's cost apart from the redaction's")
	recent := flag.Bool("recent", false, "-delta: also with the newest 1% of the rows changed instead of every 100th")
	subset := flag.Bool("subset", false, "benchmark a referential subset: 10% of -rows users with their orders (twice as many rows) against the full copy")
	faithful := flag.Bool("faithful", false, "benchmark a faithful twin instead: users (-rows) and orders (twice as many, a foreign key, 3 indexes) by pg_dump | psql, pg_dump -Fd -j2 + pg_restore -j2, and nopii (schema: full and data_only)")
	flag.Parse()
	if *subset && *cdc {
		if err := subsetCDCBench(context.Background(), *rows, *changes); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *subset {
		if err := subsetBench(context.Background(), *rows, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *faithful {
		if err := faithfulBench(context.Background(), *rows, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *deltaOnly {
		if err := deltaBench(context.Background(), *rows, *runs, *deletes, *recent); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *cdc {
		if err := cdcBench(context.Background(), min(*rows, 200_000), *changes, *rate, *lagFor); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *copyOnly {
		if err := copyBench(context.Background(), *rows, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), *rows, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rows, runs int) error {
	e, err := prepare(ctx, benchCluster(), "src", "raw", "twin")
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl, src, raw, twin := e.tmp, e.bin, e.cl, e.dbs["src"], e.dbs["raw"], e.dbs["twin"]
	fmt.Printf("loading %d rows …\n", rows)
	if err := loadBench(ctx, src, rows); err != nil {
		return err
	}
	var size string
	if err := queryRow(ctx, src, "SELECT pg_size_pretty(pg_table_size('bench')) || ', ' || (pg_table_size('bench') / count(*)) || ' B/row' FROM bench", &size); err != nil {
		return err
	}
	fmt.Printf("table: %s\n", size)
	cfg := filepath.Join(tmp, "bench.yaml")
	if err := writeWorkflow(cfg, "bench", src, false, fmt.Sprintf("      - type: twin\n        dsn: %s\n", twin)); err != nil {
		return err
	}
	psql := "psql"
	if p, err := exec.LookPath("psql"); err == nil {
		psql = p
	}
	var rawT, nopiiT []time.Duration
	var rss []int64
	for i := 0; i < runs; i++ {
		if err := execSQL(ctx, raw, `DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint NOT NULL, email text NOT NULL, full_name text, phone text, ssn text,
		                    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, payload jsonb); CHECKPOINT`); err != nil {
			return err
		}
		pipe := fmt.Sprintf(`%s -X -q -v ON_ERROR_STOP=1 -c "COPY (SELECT * FROM bench) TO STDOUT (FORMAT binary)" '%s' | %s -X -q -v ON_ERROR_STOP=1 -c "COPY bench FROM STDIN (FORMAT binary)" '%s'`, psql, src, psql, raw)
		d, _, err := timed(exec.Command("bash", "-o", "pipefail", "-c", pipe))
		if err != nil {
			return fmt.Errorf("raw pipe: %w", err)
		}
		rawT = append(rawT, d)
		if err := execSQL(ctx, twin, "CHECKPOINT"); err != nil {
			return err
		}
		args := []string{"run", "--config", cfg, "--log-level", "warn"}
		if cpuProfile != "" && i == runs-1 {
			args = append(args, "--cpuprofile", cpuProfile)
		}
		d, maxrss, err := timed(exec.Command(bin, args...))
		if err != nil {
			return fmt.Errorf("nopii run: %w", err)
		}
		nopiiT = append(nopiiT, d)
		rss = append(rss, maxrss)
		fmt.Printf("run %d: raw pipe %.2fs, nopii %.2fs, nopii peak RSS %d MB\n", i+1, rawT[i].Seconds(), d.Seconds(), maxrss/1024)
	}
	// The same full copy with a suppression list: one subject forgotten, so
	// every row's key is hashed and looked up (SPEC §7).
	forgetD, _, err := timed(exec.Command(bin, "subject", "forget", "--config", cfg, "--match", "email=user1@example.org", "--log-level", "warn", "--format", "json"))
	if err != nil {
		return fmt.Errorf("nopii subject forget: %w", err)
	}
	var forgotT []time.Duration
	for i := 0; i < runs; i++ {
		if err := execSQL(ctx, twin, "CHECKPOINT"); err != nil {
			return err
		}
		d, _, err := timed(exec.Command(bin, "run", "--config", cfg, "--log-level", "warn"))
		if err != nil {
			return fmt.Errorf("nopii run after forget: %w", err)
		}
		forgotT = append(forgotT, d)
	}
	// Delta: the same table with a cursor (bench/delta.go).
	if err := execSQL(ctx, src, "CREATE INDEX bench_updated_at ON bench (updated_at)"); err != nil {
		return err
	}
	dr, err := deltaRuns(ctx, cl, bin, tmp, src, rows, runs, deltaOpts{})
	if err != nil {
		return err
	}
	// The lake feeds: the same table and rules into a local folder in
	// Parquet and into a real S3 server (versitygw on loopback).
	lakeTimes, err := lakeRuns(ctx, bin, tmp, src)
	if err != nil {
		return err
	}

	var n int64
	if err := queryRow(ctx, twin, "SELECT count(*) FROM bench", &n); err != nil {
		return err
	}
	if n != int64(rows)-1 {
		return fmt.Errorf("twin has %d rows, want %d (one forgotten)", n, rows-1)
	}
	r, m := median(rawT), median(nopiiT)
	sort.Slice(rss, func(a, b int) bool { return rss[a] < rss[b] })
	fmt.Printf("\n%-28s %12s %10s\n", "pipeline", "rows/s", "seconds")
	fmt.Printf("%-28s %12.0f %10.2f\n", "raw COPY | COPY (binary)", float64(rows)/r.Seconds(), r.Seconds())
	fmt.Printf("%-28s %12.0f %10.2f\n", "nopii run (4/8 redacted)", float64(rows)/m.Seconds(), m.Seconds())
	fmt.Printf("%-28s %12.0f %10.2f\n", "nopii run (1 key forgotten)", float64(rows)/median(forgotT).Seconds(), median(forgotT).Seconds())
	fmt.Printf("ratio nopii/raw: %.2fx   nopii peak RSS: %d MB (max of %d runs)\n", r.Seconds()/m.Seconds(), rss[len(rss)-1]/1024, runs)
	fmt.Printf("subject forget (find + delete one subject in the twin): %.2fs\n", forgetD.Seconds())
	for _, lt := range lakeTimes {
		fmt.Printf("%-28s %12.0f %10.2f\n", lt.name, float64(rows)/lt.d.Seconds(), lt.d.Seconds())
	}
	dr.print()
	return nil
}

func timed(c *exec.Cmd) (time.Duration, int64, error) {
	c.Stderr = os.Stderr
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	var maxrss int64
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxrss = ru.Maxrss
		}
	}
	return d, maxrss, err
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[len(s)/2]
}

func execSQL(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func queryRow(ctx context.Context, dsn, sql string, dst ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dst...)
}

type lakeTime struct {
	name string
	d    time.Duration
}

// lakeRuns times nopii into a files feed (Parquet, zstd) and an S3 feed.
func lakeRuns(ctx context.Context, bin, tmp, src string) ([]lakeTime, error) {
	srv, err := s3test.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	if err := srv.CreateBucket(ctx, "bench"); err != nil {
		return nil, err
	}
	feeds := []struct{ name, feed string }{
		{"nopii → files (parquet)", fmt.Sprintf("      - type: files\n        path: %s\n        format: parquet\n        compression: zstd\n", filepath.Join(tmp, "lake"))},
		{"nopii → s3 (parquet)", fmt.Sprintf("      - type: s3\n        bucket: bench\n        region: %s\n        endpoint: %s\n        access_key_id: %s\n        secret_access_key: %s\n        format: parquet\n        compression: zstd\n",
			srv.Region, srv.Endpoint(), srv.AccessKey, srv.SecretKey)},
	}
	var out []lakeTime
	for i, f := range feeds {
		cfg := filepath.Join(tmp, fmt.Sprintf("lake%d.yaml", i))
		if err := writeWorkflow(cfg, "bench_lake", src, false, f.feed); err != nil {
			return nil, err
		}
		d, _, err := timed(exec.Command(bin, "run", "--config", cfg, "--log-level", "warn"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		out = append(out, lakeTime{f.name, d})
	}
	return out, nil
}

// writeWorkflow writes the benchmark's workflow: the bench table with 4 of
// its 8 columns redacted, optionally with its updated_at cursor (delta),
// into the feed given as YAML list items.
func writeWorkflow(path, name, src string, cursor bool, feeds string) error {
	cur := ""
	if cursor {
		cur = "\n            updated_at: updated_at"
	}
	return writeWorkflowEntry(path, name, src, cur, feeds)
}

// writeWorkflowEntry is writeWorkflow with extra lines for the table entry.
func writeWorkflowEntry(path, name, src, cur, feeds string) error {
	rules := `            identifies: [email]
            columns:
              email:     { rule: redact_email }
              full_name: { rule: fake, kind: full_name }
              phone:     { rule: mask, keep_last: 2 }
              ssn:       { rule: hash }
`
	if noRules {
		rules = ""
	}
	body := fmt.Sprintf(`version: 1
hmac_key: %s
workflows:
  - name: %s
    parallelism: 1
    inputs:
      - name: src
        dsn: %s
        tables:
          - name: public.bench%s
%s    feeds:
%s`, key, name, src, cur, rules, feeds)
	return os.WriteFile(path, []byte(body), 0o600)
}

// loadBench creates the benchmark table in src with rows rows.
func loadBench(ctx context.Context, src string, rows int) error {
	if err := execSQL(ctx, src, fmt.Sprintf(`
		CREATE TABLE bench (id bigint PRIMARY KEY, email text NOT NULL, full_name text, phone text, ssn text,
		                    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, payload jsonb);
		INSERT INTO bench SELECT i, 'user' || i || '@example.org', 'First' || (i %% 1000) || ' Last' || (i %% 777),
		       '+1 555 ' || lpad((i %% 10000000)::text, 7, '0'), lpad((i %% 1000000000)::text, 9, '0'),
		       timestamptz '2024-01-01' + i * interval '1 second', timestamptz '2025-01-01' + i * interval '1 second',
		       jsonb_build_object('plan', 'pro', 'seats', i %% 50, 'features', jsonb_build_array('sso', 'audit', 'api'),
		                          'note', repeat('n', 120), 'ref', md5(i::text))
		FROM generate_series(1, %d) i`, rows)); err != nil {
		return err
	}
	return execSQL(ctx, src, "VACUUM ANALYZE bench")
}
