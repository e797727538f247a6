package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
)

// cdcBench measures mode cdc, against the raw binary COPY pipe of as many
// rows in the same run:
//
//   - sustained apply: changes made while nothing streams, then timed
//     `nopii run` catching up (process start included), in changed rows/s;
//   - lag: `nopii agent` streaming while a writer makes rate changes a
//     second for d, once the agent has caught up, in transactions of 10
//     (synchronous_commit on, PostgreSQL's default) that each stamp a tick
//     row with their sequence number; every 10ms the twin's newest
//     sequence number is read: a transaction's lag is from its COMMIT
//     returning on the source to the first sample that sees it in the twin
//     (so up to 10ms of sampling), p50/p99/max over the transactions after
//     a 3s warm-up.
//
// CPU seconds are reported next to wall time: nopii's (the process) and
// the cluster's (every PostgreSQL process: the source's and the twin's
// backends, WAL sender, background writers). With NOPII_BENCH_LOG=debug
// nopii logs each batch; with NOPII_BENCH_PGLOG=FILE the cluster logs every
// statement with its duration (log_min_duration_statement=0) and the log
// is copied to FILE.
func cdcBench(ctx context.Context, rows, changes, rate int, d time.Duration) error {
	settings := map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}
	pglog := os.Getenv("NOPII_BENCH_PGLOG")
	if pglog != "" {
		settings["log_min_duration_statement"] = "0"
		settings["log_line_prefix"] = "'%m [%p] %d %a: '"
	}
	e, err := prepare(ctx, pgtest.Options{Logical: true, Settings: settings})
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl := e.tmp, e.bin, e.cl
	if pglog != "" {
		defer func() {
			if b, err := os.ReadFile(cl.LogPath()); err == nil {
				os.WriteFile(pglog, b, 0o600)
			}
		}()
	}
	pgCPU := func() time.Duration { d, _ := clusterCPU(cl.DataDir()); return d }
	dsn := map[string]string{}
	for _, db := range []string{"src", "twin", "raw"} {
		if dsn[db], err = cl.CreateDatabase(ctx, db); err != nil {
			return err
		}
	}
	fmt.Printf("loading %d rows …\n", rows)
	if err := loadBench(ctx, dsn["src"], rows); err != nil {
		return err
	}
	cfg := filepath.Join(tmp, "cdc.yaml")
	if err := writeWorkflowEntry(cfg, "bench_cdc", dsn["src"], "\n            mode: cdc", fmt.Sprintf("      - type: twin\n        dsn: %s\n", dsn["twin"])); err != nil {
		return err
	}
	// tick: one row per writer transaction slot, stamped with the clock;
	// the twin's newest stamp says how far behind the stream is.
	if err := execSQL(ctx, dsn["src"], `CREATE TABLE tick (id int PRIMARY KEY, seq bigint NOT NULL);
		INSERT INTO tick SELECT i, -1 FROM generate_series(0, 99) i`); err != nil {
		return err
	}
	body, err := os.ReadFile(cfg)
	if err != nil {
		return err
	}
	body = []byte(strings.Replace(string(body), "        tables:\n", "        tables:\n          - name: public.tick\n            mode: cdc\n", 1))
	if err := os.WriteFile(cfg, body, 0o600); err != nil {
		return err
	}
	if _, _, err := timed(exec.Command(bin, "run", "--config", cfg, "--log-level", "warn")); err != nil {
		return fmt.Errorf("nopii run (first copy): %w", err)
	}

	// Sustained apply.
	fmt.Printf("changing %d rows …\n", changes)
	for done := 0; done < changes; done += 1000 {
		if err := execSQL(ctx, dsn["src"], fmt.Sprintf(`UPDATE bench SET full_name = full_name || '.', updated_at = clock_timestamp()
			WHERE id > %d AND id <= %d`, done%rows, done%rows+min(1000, changes-done))); err != nil {
			return err
		}
	}
	logLevel := os.Getenv("NOPII_BENCH_LOG")
	if logLevel == "" {
		logLevel = "warn"
	}
	args := []string{"run", "--config", cfg, "--log-level", logLevel}
	if cpuProfile != "" {
		args = append(args, "--cpuprofile", cpuProfile)
	}
	pg0 := pgCPU()
	catchUp := exec.Command(bin, args...)
	applyD, _, err := timed(catchUp)
	if err != nil {
		return fmt.Errorf("nopii run (catch-up): %w", err)
	}
	time.Sleep(200 * time.Millisecond) // its backends exit
	applyCPU, applyPG := catchUp.ProcessState.UserTime()+catchUp.ProcessState.SystemTime(), pgCPU()-pg0
	if err := execSQL(ctx, dsn["raw"], `CREATE TABLE bench (id bigint NOT NULL, email text NOT NULL, full_name text, phone text, ssn text,
		created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, payload jsonb)`); err != nil {
		return err
	}
	pipe := fmt.Sprintf(`psql -X -q -v ON_ERROR_STOP=1 -c "COPY (SELECT * FROM bench LIMIT %d) TO STDOUT (FORMAT binary)" '%s' | psql -X -q -v ON_ERROR_STOP=1 -c "COPY bench FROM STDIN (FORMAT binary)" '%s'`,
		changes, dsn["src"], dsn["raw"])
	rawD, _, err := timed(exec.Command("bash", "-o", "pipefail", "-c", pipe))
	if err != nil {
		return fmt.Errorf("raw pipe: %w", err)
	}

	// Lag at a fixed change rate.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	listen := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(cfg, append([]byte("agent:\n  listen: "+listen+"\n"), body...), 0o600); err != nil {
		return err
	}
	agent := exec.Command(bin, "agent", "--config", cfg, "--log-level", logLevel)
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { agent.Process.Signal(syscall.SIGTERM); agent.Wait() }()
	time.Sleep(time.Second) // the agent connects
	fmt.Printf("writing %d changes/s for %s while the agent streams …\n", rate, d)
	agent0, pg0 := procCPU(agent.Process.Pid, false), pgCPU()
	lags, written, err := measureLag(ctx, dsn["src"], dsn["twin"], rows, rate, d)
	if err != nil {
		return err
	}
	lagAgent, lagPG := procCPU(agent.Process.Pid, false)-agent0, pgCPU()-pg0
	sort.Float64s(lags)
	pct := func(p float64) float64 { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }

	fmt.Printf("\n%-40s %12s %10s %10s %10s\n", "cdc", "rows/s", "seconds", "nopii cpu", "pg cpu")
	fmt.Printf("%-40s %12.0f %10.2f\n", fmt.Sprintf("raw COPY | COPY of %d rows", changes), float64(changes)/rawD.Seconds(), rawD.Seconds())
	fmt.Printf("%-40s %12.0f %10.2f %10.2f %10.2f\n", fmt.Sprintf("nopii run catching up %d changes", changes), float64(changes)/applyD.Seconds(), applyD.Seconds(),
		applyCPU.Seconds(), applyPG.Seconds())
	fmt.Printf("lag at %d changes/s (%d written in %s, %d transactions after warm-up): p50 %.3fs  p99 %.3fs  max %.3fs; cpu while measuring (catch-up wait, %s of writing, drain): nopii agent %.2fs, cluster %.2fs\n",
		rate, written, d, len(lags), pct(0.50), pct(0.99), lags[len(lags)-1], d, lagAgent.Seconds(), lagPG.Seconds())
	return nil
}

// measureLag writes single-row updates at rate a second for d, in
// transactions of 10 that each stamp a tick row with the transaction's
// sequence number, and returns each transaction's lag (seconds from its
// COMMIT returning to the first 10ms sample that sees its number in the
// twin), for those that committed after a warm-up.
func measureLag(ctx context.Context, src, twin string, rows, rate int, d time.Duration) ([]float64, int, error) {
	w, err := pgx.Connect(ctx, src)
	if err != nil {
		return nil, 0, err
	}
	defer w.Close(ctx)
	r, err := pgx.Connect(ctx, twin)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close(ctx)
	// Commits flushed to the WAL, as PostgreSQL's default has it (pgtest
	// turns synchronous_commit off): logical decoding sends a transaction
	// only once its commit record is flushed, which asynchronous commit
	// leaves to the WAL writer, up to wal_writer_delay (200ms) later.
	if _, err := w.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return nil, 0, err
	}
	// The agent has caught up (a restarted stream first decodes the WAL
	// its slot retained) when a stamp written now reaches the twin.
	if _, err := w.Exec(ctx, "UPDATE tick SET seq = -2 WHERE id = 0"); err != nil {
		return nil, 0, err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := r.QueryRow(ctx, "SELECT count(*) FROM tick WHERE seq = -2").Scan(&n); err != nil {
			return nil, 0, err
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("the agent did not catch up in 2 minutes")
		}
	}
	// The first seconds of writing are the stream settling in.
	const warmUp = 3 * time.Second
	var mu sync.Mutex
	var committed []time.Time // by sequence number
	var lags []float64
	seen := int64(-1) // the newest sequence number the twin showed
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- nil
				return
			case <-tick.C:
				var last int64
				if err := r.QueryRow(ctx, "SELECT max(seq) FROM tick").Scan(&last); err != nil {
					sampled <- err
					return
				}
				now := time.Now()
				mu.Lock()
				for seq := seen + 1; seq <= last && seq < int64(len(committed)); seq++ {
					if committed[seq].Sub(committed[0]) >= warmUp {
						lags = append(lags, now.Sub(committed[seq]).Seconds())
					}
				}
				seen = max(seen, last)
				mu.Unlock()
			}
		}
	}()
	const perTx = 10
	start := time.Now()
	written := 0
	next := 0
	for seq := 0; time.Since(start) < d; seq++ {
		if ahead := time.Duration(written)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		for range perTx {
			next = next%rows + 1
			b.Queue("UPDATE bench SET full_name = full_name || '+', updated_at = clock_timestamp() WHERE id = $1", next)
		}
		b.Queue("UPDATE tick SET seq = $1 WHERE id = $2", seq, seq%100)
		b.Queue("COMMIT")
		err := w.SendBatch(ctx, b).Close()
		mu.Lock()
		committed = append(committed, time.Now())
		mu.Unlock()
		if err != nil {
			close(stop)
			<-sampled
			return nil, written, err
		}
		written += perTx
	}
	time.Sleep(3 * time.Second) // the tail drains
	close(stop)
	if err := <-sampled; err != nil {
		return nil, written, err
	}
	// Transactions the twin never showed count with their lag so far.
	for seq := seen + 1; seq < int64(len(committed)); seq++ {
		if committed[seq].Sub(committed[0]) >= warmUp {
			lags = append(lags, time.Since(committed[seq]).Seconds())
		}
	}
	if len(lags) == 0 {
		return nil, written, fmt.Errorf("no transaction reached the twin")
	}
	return lags, written, nil
}
