package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nopii/nopii/internal/pgtest"
)

// pgBin is where the PostgreSQL client tools the pipes run live; PATH
// when it is not there.
const pgBin = "/usr/lib/postgresql/15/bin"

// pipeRun is one timed run of a pipeline: wall time, the CPU of the
// client processes (psql, pg_dump or nopii, with their children) and of the
// cluster (every backend, the checkpointer, the WAL writer), and the
// clients' peak RSS.
type pipeRun struct {
	wall       time.Duration
	clientCPU  time.Duration
	clusterCPU time.Duration
	rssKB      int64
}

// copyBench times, -runs times each and in the same run on one cluster,
// the ways of copying the benchmark table: the raw binary COPY pipe (into
// a table without indexes, its best case), pg_dump | psql (schema, data as
// text COPY, primary key), nopii into a twin as one stream (parallelism 1)
// and nopii with parallelism 2 (the table read as two page ranges). Each copy is dropped before the next is made, so that -rows
// 10000000 needs about three copies' worth of disk.
func copyBench(ctx context.Context, rows, runs int) error {
	e, err := prepare(ctx, benchCluster(), "src", "raw", "dump", "twin")
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl, dbs := e.tmp, e.bin, e.cl, e.dbs
	if err := autovacuumOff(ctx, cl); err != nil {
		return err
	}
	src := dbs["src"]
	fmt.Printf("loading %d rows …\n", rows)
	t0 := time.Now()
	if err := loadBench(ctx, src, rows); err != nil {
		return err
	}
	var tableBytes int64
	if err := queryRow(ctx, src, "SELECT pg_table_size('bench')", &tableBytes); err != nil {
		return err
	}
	fmt.Printf("table: %d MB, %d B/row (loaded in %.0fs)\n", tableBytes>>20, tableBytes/int64(rows), time.Since(t0).Seconds())

	psql, pgDump := clientTool("psql"), clientTool("pg_dump")
	quiet := psql + " -X -q -v ON_ERROR_STOP=1"
	twinFeed := fmt.Sprintf("      - type: twin\n        dsn: %s\n", dbs["twin"])
	one, par := filepath.Join(tmp, "one.yaml"), filepath.Join(tmp, "par.yaml")
	if err := writeWorkflow(one, "bench", src, false, twinFeed); err != nil {
		return err
	}
	if err := writeWorkflow(par, "bench_par", src, false, twinFeed); err != nil {
		return err
	}
	if err := setParallelism(par, 2); err != nil {
		return err
	}
	type pipeline struct {
		name  string
		setup string // SQL on its target database before each run
		db    string
		cmd   func(last bool) *exec.Cmd
	}
	sh := func(s string) *exec.Cmd { return exec.Command("bash", "-o", "pipefail", "-c", s) }
	nopii := func(cfg string) func(bool) *exec.Cmd {
		return func(last bool) *exec.Cmd {
			// NOPII_BENCH_LOG=debug: where the time goes, the phases of
			// the copy, the index build and the swap (it costs CPU: keep
			// it out of the runs whose numbers you keep).
			args := []string{"run", "--config", cfg, "--log-level", cmp.Or(os.Getenv("NOPII_BENCH_LOG"), "warn")}
			if last && cfg == one && cpuProfile != "" {
				args = append(args, "--cpuprofile", cpuProfile)
			}
			return exec.Command(bin, args...)
		}
	}
	pipes := []pipeline{
		{"raw COPY | COPY (binary)", `CREATE TABLE bench (id bigint NOT NULL, email text NOT NULL, full_name text, phone text, ssn text,
			created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, payload jsonb)`, "raw", func(bool) *exec.Cmd {
			return sh(fmt.Sprintf(`%s -c "COPY (SELECT * FROM bench) TO STDOUT (FORMAT binary)" '%s' | %s -c "COPY bench FROM STDIN (FORMAT binary)" '%s'`,
				quiet, src, quiet, dbs["raw"]))
		}},
		{"pg_dump -t bench | psql", "", "dump", func(bool) *exec.Cmd {
			return sh(fmt.Sprintf(`%s -t bench '%s' | %s '%s'`, pgDump, src, quiet, dbs["dump"]))
		}},
		{"nopii → twin, 1 stream", "", "twin", nopii(one)},
		{"nopii → twin, 2 page ranges", "", "twin", nopii(par)},
	}
	results := make([][]pipeRun, len(pipes))
	for i := 0; i < runs; i++ {
		for k, p := range pipes {
			// Each target starts empty and checkpointed; the previous
			// pipeline's copy is gone (disk, and dirty buffers).
			for _, db := range []string{"raw", "dump"} {
				if err := execSQL(ctx, dbs[db], "DROP TABLE IF EXISTS bench"); err != nil {
					return err
				}
			}
			if p.setup != "" {
				if err := execSQL(ctx, dbs[p.db], p.setup); err != nil {
					return err
				}
			}
			if err := execSQL(ctx, dbs[p.db], "CHECKPOINT"); err != nil {
				return err
			}
			r, err := measured(p.cmd(i == runs-1), cl.DataDir())
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			var n int64
			if err := queryRow(ctx, dbs[p.db], "SELECT count(*) FROM bench", &n); err != nil {
				return err
			}
			if n != int64(rows) {
				return fmt.Errorf("%s: %d rows arrived, want %d", p.name, n, rows)
			}
			results[k] = append(results[k], r)
			fmt.Printf("run %d: %-34s %6.2fs  cpu: clients %5.2fs, cluster %5.2fs  peak RSS %4d MB\n",
				i+1, p.name, r.wall.Seconds(), r.clientCPU.Seconds(), r.clusterCPU.Seconds(), r.rssKB/1024)
		}
	}
	if err := execSQL(ctx, dbs["twin"], "DROP TABLE IF EXISTS bench"); err != nil {
		return err
	}
	fmt.Printf("\n%d rows, %d MB; medians of %d runs (CPU: of the median-time run)\n", rows, tableBytes>>20, runs)
	fmt.Printf("%-34s %10s %8s %8s %9s %9s %8s %6s\n", "pipeline", "rows/s", "MB/s", "seconds", "cpu cli", "cpu pg", "RSS MB", "×raw")
	raw := medianRun(results[0])
	for k, p := range pipes {
		m := medianRun(results[k])
		s := m.wall.Seconds()
		fmt.Printf("%-34s %10.0f %8.1f %8.2f %9.2f %9.2f %8d %6.2f\n", p.name, float64(rows)/s, float64(tableBytes)/(1<<20)/s, s,
			m.clientCPU.Seconds(), m.clusterCPU.Seconds(), maxRSS(results[k])/1024, raw.wall.Seconds()/s)
	}
	return nil
}

// autovacuumOff switches autovacuum off in the cluster: it would bill its
// work on one pipeline's tables to the next.
func autovacuumOff(ctx context.Context, cl *pgtest.Cluster) error {
	for _, q := range []string{"ALTER SYSTEM SET autovacuum = off", "SELECT pg_reload_conf()"} {
		if err := execSQL(ctx, cl.DSN("postgres"), q); err != nil {
			return err
		}
	}
	return nil
}

// prepare makes a temporary folder, builds nopii into it and starts the
// benchmark cluster; the caller removes the one and stops the other.
// benchCluster is the cluster of the copy and delta benchmarks: room for
// the table in shared buffers, no checkpoint in the middle of a run.
func benchCluster() pgtest.Options {
	return pgtest.Options{Settings: map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}}
}

// benchEnv is one benchmark's world: nopii built into a temporary
// directory, a cluster, and the databases made in it by name.
type benchEnv struct {
	tmp, bin string
	cl       *pgtest.Cluster
	dbs      map[string]string // name → DSN
}

// prepare builds nopii into a temporary directory, starts a cluster and
// creates the databases named; close undoes it all.
func prepare(ctx context.Context, o pgtest.Options, dbs ...string) (*benchEnv, error) {
	tmp, err := os.MkdirTemp("", "nopii-bench-")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{tmp: tmp, bin: filepath.Join(tmp, "nopii"), dbs: map[string]string{}}
	fmt.Println("building nopii …")
	if out, err := exec.Command("go", "build", "-o", e.bin, "./cmd/nopii").CombinedOutput(); err != nil {
		e.close()
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	if e.cl, err = pgtest.Start(ctx, o); err != nil {
		e.close()
		return nil, err
	}
	for _, name := range dbs {
		if e.dbs[name], err = e.cl.CreateDatabase(ctx, name); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *benchEnv) close() {
	if e.cl != nil {
		e.cl.Stop()
	}
	os.RemoveAll(e.tmp)
}

// clientTool returns the PostgreSQL 15 client tool, else the one on PATH.
func clientTool(name string) string {
	if p := filepath.Join(pgBin, name); fileExists(p) {
		return p
	}
	return name
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// setParallelism rewrites a workflow file's parallelism; 0 removes it (the
// agent's default, which reads a table as one stream on 2 cores).
func setParallelism(path string, n int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	repl := ""
	if n > 0 {
		repl = fmt.Sprintf("    parallelism: %d\n", n)
	}
	return os.WriteFile(path, []byte(strings.Replace(string(b), "    parallelism: 1\n", repl, 1)), 0o600)
}

// measured runs c and returns its wall time, its CPU and peak RSS (with
// its children: the shell's pipe), and the CPU the cluster spent meanwhile.
func measured(c *exec.Cmd, dataDir string) (pipeRun, error) {
	c.Stderr = os.Stderr
	before, err := clusterCPU(dataDir)
	if err != nil {
		return pipeRun{}, err
	}
	start := time.Now()
	if err := c.Run(); err != nil {
		return pipeRun{}, err
	}
	r := pipeRun{wall: time.Since(start)}
	// The pipeline's backends end as its clients do; their CPU counts once
	// the postmaster has reaped them.
	time.Sleep(time.Second)
	after, err := clusterCPU(dataDir)
	if err != nil {
		return pipeRun{}, err
	}
	r.clusterCPU = after - before
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.clientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.rssKB = ru.Maxrss
	}
	return r, nil
}

func medianRun(rs []pipeRun) pipeRun {
	s := append([]pipeRun(nil), rs...)
	sort.Slice(s, func(a, b int) bool { return s[a].wall < s[b].wall })
	return s[len(s)/2]
}

func maxRSS(rs []pipeRun) int64 {
	var m int64
	for _, r := range rs {
		m = max(m, r.rssKB)
	}
	return m
}
