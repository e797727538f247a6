package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/nopii/nopii/internal/pgtest"
)

// deltaBench runs only the delta part of the benchmark on a cluster of its
// own (-delta).
func deltaBench(ctx context.Context, rows, runs int, deletes, recent bool) error {
	e, err := prepare(ctx, benchCluster(), "src")
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl, src := e.tmp, e.bin, e.cl, e.dbs["src"]
	fmt.Printf("loading %d rows …\n", rows)
	if err := loadBench(ctx, src, rows); err != nil {
		return err
	}
	if err := execSQL(ctx, src, "CREATE INDEX bench_updated_at ON bench (updated_at)"); err != nil {
		return err
	}
	variants := []deltaOpts{{}}
	if recent {
		variants = append(variants, deltaOpts{recent: true})
	}
	if deletes {
		variants = append(variants, deltaOpts{deletes: true, keep: true}, deltaOpts{deletes: true})
	}
	var out []*deltaResult
	for _, o := range variants {
		r, err := deltaRuns(ctx, cl, bin, tmp, src, rows, runs, o)
		if err != nil {
			return err
		}
		out = append(out, r)
	}
	for _, r := range out {
		r.print()
	}
	return nil
}

// deltaResult is what deltaRuns measured: per pair, the full copy's and
// the delta's wall time, and the CPU of nopii and of the servers' backends.
type deltaResult struct {
	rows, runs int
	deltaOpts
	changed, deleted int64
	full, delta      []time.Duration
	fullCPU, dCPU    []cpu
	ratios           []float64
}

// cpu is the CPU time of one nopii run: the process's own, and the
// cluster's backends that served it (they end with its connections).
type cpu struct {
	nopii, server time.Duration
	rss           int64 // nopii's peak RSS, KiB
}

// deltaOpts choose a variant of the delta runs.
type deltaOpts struct {
	deletes bool // detect_deletes on, and 0.01% of the rows deleted
	recent  bool // the 1% changed are the newest rows (highest ids), not every 100th
	keep    bool // with deletes: no row deleted
}

// deltaRuns times, runs times, a full copy of the bench table with its
// updated_at cursor into a new twin, then 1% of the rows updated (every
// 100th id, or with recent the newest 1%; with deletes detect_deletes on,
// and unless keep every 10007th row deleted) and a delta run. Before each pair the source goes back
// to the same rows in the same physical order (the previous pair's changes
// undone, CLUSTER, VACUUM ANALYZE), so that every pair's full copy lays the
// twin out alike and the changed rows lie on the same pages; after the
// full copy the twin is VACUUM ANALYZEd, as autovacuum would have done in
// a deployment, so that neither timed run competes with autovacuum; and a
// CHECKPOINT precedes each timed run.
func deltaRuns(ctx context.Context, cl *pgtest.Cluster, bin, tmp, src string, rows, runs int, o deltaOpts) (*deltaResult, error) {
	res := &deltaResult{rows: rows, runs: runs, deltaOpts: o}
	name, extra := "bench_delta", "\n            updated_at: updated_at"
	if o.deletes {
		name, extra = "bench_deletes", extra+"\n            detect_deletes: true"
		if o.keep {
			name = "bench_deletes_none"
		}
	}
	changed := "id % 100 = 0"
	if o.recent {
		name, changed = "bench_recent", fmt.Sprintf("id > %d", rows-rows/100)
	}
	if err := execSQL(ctx, src, "CREATE TABLE IF NOT EXISTS bench_gone (LIKE bench)"); err != nil {
		return nil, err
	}
	for i := 0; i < runs; i++ {
		db := fmt.Sprintf("twin_%s%d", name, i)
		twin, err := cl.CreateDatabase(ctx, db)
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(tmp, db+".yaml")
		if err := writeWorkflowEntry(cfg, name, src, extra, fmt.Sprintf("      - type: twin\n        dsn: %s\n", twin)); err != nil {
			return nil, err
		}
		// The previous pair's changes undone: every pair reads the same 1%
		// (plus the overlap) from the same layout.
		for _, q := range []string{
			"UPDATE bench SET full_name = left(full_name, -3), updated_at = timestamptz '2025-01-01' + id * interval '1 second' WHERE updated_at > '2025-02-01'",
			"INSERT INTO bench SELECT * FROM bench_gone", "TRUNCATE bench_gone",
			"CLUSTER bench USING bench_pkey", "VACUUM ANALYZE bench", "CHECKPOINT",
		} {
			if err := execSQL(ctx, src, q); err != nil {
				return nil, err
			}
		}
		fullD, fullC, err := timedRun(cl, bin, cfg)
		if err != nil {
			return nil, fmt.Errorf("nopii run (%s, first full copy): %w", name, err)
		}
		if err := execSQL(ctx, twin, "VACUUM ANALYZE bench"); err != nil {
			return nil, err
		}
		change := "UPDATE bench SET full_name = full_name || ' Jr', updated_at = now() WHERE " + changed
		if o.deletes && !o.keep {
			change += "; WITH d AS (DELETE FROM bench WHERE id % 10007 = 3 RETURNING *) INSERT INTO bench_gone SELECT * FROM d"
		}
		if err := execSQL(ctx, src, change); err != nil {
			return nil, err
		}
		if err := execSQL(ctx, twin, "CHECKPOINT"); err != nil {
			return nil, err
		}
		deltaD, deltaC, err := timedRun(cl, bin, cfg)
		if err != nil {
			return nil, fmt.Errorf("nopii run (%s, delta): %w", name, err)
		}
		if err := queryRow(ctx, twin, "SELECT count(*) FROM bench WHERE updated_at > '2025-02-01' AND "+changed, &res.changed); err != nil {
			return nil, err
		}
		var n, want, wantChanged int64
		if err := queryRow(ctx, twin, "SELECT count(*) FROM bench", &n); err != nil {
			return nil, err
		}
		if err := queryRow(ctx, src, "SELECT count(*), count(*) FILTER (WHERE updated_at > '2025-02-01' AND "+changed+") FROM bench", &want, &wantChanged); err != nil {
			return nil, err
		}
		res.deleted = int64(rows) - want
		if n != want || res.changed != wantChanged {
			return nil, fmt.Errorf("%s run %d: the twin has %d rows (%d changed), the source %d", name, i+1, n, res.changed, want)
		}
		res.full, res.delta = append(res.full, fullD), append(res.delta, deltaD)
		res.fullCPU, res.dCPU = append(res.fullCPU, fullC), append(res.dCPU, deltaC)
		res.ratios = append(res.ratios, 100*deltaD.Seconds()/fullD.Seconds())
		fmt.Printf("%s run %d: full copy %.2fs (CPU nopii %.2fs, servers %.2fs), delta %.2fs (CPU nopii %.2fs, servers %.2fs): %.1f%%\n",
			name, i+1, fullD.Seconds(), fullC.nopii.Seconds(), fullC.server.Seconds(), deltaD.Seconds(), deltaC.nopii.Seconds(), deltaC.server.Seconds(), res.ratios[i])
	}
	return res, nil
}

// timedRun runs `nopii run` and returns its wall time and CPU.
func timedRun(cl *pgtest.Cluster, bin, cfg string) (time.Duration, cpu, error) {
	before, err := clusterCPU(cl.DataDir())
	if err != nil {
		return 0, cpu{}, err
	}
	level := cmp.Or(os.Getenv("NOPII_BENCH_LOG"), "warn") // debug: every phase of every run
	c := exec.Command(bin, "run", "--config", cfg, "--log-level", level)
	d, _, err := timed(c)
	if err != nil {
		return d, cpu{}, err
	}
	var used cpu
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		used.nopii = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		used.rss = ru.Maxrss
	}
	// The run's backends end as its connections close; the postmaster
	// reaps them a moment later.
	time.Sleep(200 * time.Millisecond)
	after, err := clusterCPU(cl.DataDir())
	used.server = after - before
	return d, used, err
}

func (r *deltaResult) print() {
	sorted := append([]float64(nil), r.ratios...)
	sort.Float64s(sorted)
	what := "delta after updating 1% of the rows (every 100th)"
	if r.recent {
		what = "delta after updating the newest 1% of the rows"
	}
	if r.deletes {
		what = fmt.Sprintf("delta with detect_deletes after updating 1%% and deleting %d rows", r.deleted)
	}
	if r.keep {
		what = "delta with detect_deletes after updating 1% and deleting none"
	}
	med := func(cs []cpu) (n, s time.Duration) {
		var ns, ss []time.Duration
		for _, c := range cs {
			ns, ss = append(ns, c.nopii), append(ss, c.server)
		}
		return median(ns), median(ss)
	}
	fn, fs := med(r.fullCPU)
	dn, ds := med(r.dCPU)
	fmt.Printf("\n%s (%d): %.2fs vs full copy %.2fs: %.1f%% of the full-copy time (median of %d; %.1f–%.1f%%)\n",
		what, r.changed, median(r.delta).Seconds(), median(r.full).Seconds(), sorted[len(sorted)/2], r.runs, sorted[0], sorted[len(sorted)-1])
	fmt.Printf("  CPU (medians): delta nopii %.2fs + servers %.2fs, full copy nopii %.2fs + servers %.2fs: %.1f%% of the full copy's CPU\n",
		dn.Seconds(), ds.Seconds(), fn.Seconds(), fs.Seconds(), 100*(dn+ds).Seconds()/(fn+fs).Seconds())
}
