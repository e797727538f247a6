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
//     second for d; every 50ms the twin's newest applied change is
//     compared with the clock (same machine): p50/p99 of that staleness
//     after a 3s warm-up, which includes up to 50ms of sampling and the
//     batching interval.
func cdcBench(ctx context.Context, rows, changes, rate int, d time.Duration) error {
	tmp, err := os.MkdirTemp("", "nopii-bench-cdc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "nopii")
	fmt.Println("building nopii …")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/nopii").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	cl, err := pgtest.Start(ctx, pgtest.Options{Logical: true, Settings: map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}})
	if err != nil {
		return err
	}
	defer cl.Stop()
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
	if err := execSQL(ctx, dsn["src"], `CREATE TABLE tick (id int PRIMARY KEY, at timestamptz NOT NULL);
		INSERT INTO tick SELECT i, '2000-01-01' FROM generate_series(0, 99) i`); err != nil {
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
	args := []string{"run", "--config", cfg, "--log-level", os.Getenv("NOPII_BENCH_LOG")}
	if cpuProfile != "" {
		args = append(args, "--cpuprofile", cpuProfile)
	}
	applyD, _, err := timed(exec.Command(bin, args...))
	if err != nil {
		return fmt.Errorf("nopii run (catch-up): %w", err)
	}
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
	agent := exec.Command(bin, "agent", "--config", cfg, "--log-level", "warn")
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { agent.Process.Signal(syscall.SIGTERM); agent.Wait() }()
	time.Sleep(3 * time.Second) // the agent connects and starts streaming
	fmt.Printf("writing %d changes/s for %s while the agent streams …\n", rate, d)
	lags, written, err := measureLag(ctx, dsn["src"], dsn["twin"], rows, rate, d)
	if err != nil {
		return err
	}
	sort.Float64s(lags)
	pct := func(p float64) float64 { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }

	fmt.Printf("\n%-40s %12s %10s\n", "cdc", "rows/s", "seconds")
	fmt.Printf("%-40s %12.0f %10.2f\n", fmt.Sprintf("raw COPY | COPY of %d rows", changes), float64(changes)/rawD.Seconds(), rawD.Seconds())
	fmt.Printf("%-40s %12.0f %10.2f\n", fmt.Sprintf("nopii run catching up %d changes", changes), float64(changes)/applyD.Seconds(), applyD.Seconds())
	fmt.Printf("lag at %d changes/s (%d written in %s, %d samples): p50 %.3fs  p99 %.3fs  max %.3fs\n",
		rate, written, d, len(lags), pct(0.50), pct(0.99), lags[len(lags)-1])
	return nil
}

// measureLag writes single-row updates at rate a second for d, in
// transactions of 10 that each stamp a tick row with the clock, and
// samples the twin's newest tick every 50ms.
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
	var lags []float64
	// The first seconds of writing measure the agent's start (it finds
	// the changes made since the catch-up), not the steady stream.
	const warmUp = 3 * time.Second
	began := time.Now()
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- nil
				return
			case <-tick.C:
				var lag float64
				if err := r.QueryRow(ctx, "SELECT extract(epoch FROM clock_timestamp() - max(at)) FROM tick").Scan(&lag); err != nil {
					sampled <- err
					return
				}
				if time.Since(began) >= warmUp {
					lags = append(lags, lag)
				}
			}
		}
	}()
	// Transactions of 10 rows, 100ms apart at 5k/s … spread evenly.
	const perTx = 10
	start := time.Now()
	written := 0
	next := 0
	for time.Since(start) < d {
		if ahead := time.Duration(written)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		for range perTx {
			next = next%rows + 1
			b.Queue("UPDATE bench SET full_name = full_name || '+', updated_at = clock_timestamp() WHERE id = $1", next)
		}
		b.Queue("UPDATE tick SET at = clock_timestamp() WHERE id = $1", written/perTx%100)
		b.Queue("COMMIT")
		if err := w.SendBatch(ctx, b).Close(); err != nil {
			close(stop)
			<-sampled
			return nil, written, err
		}
		written += perTx
	}
	time.Sleep(2 * time.Second) // the tail drains
	close(stop)
	if err := <-sampled; err != nil {
		return nil, written, err
	}
	// Samples from before the first change reached the twin measure the
	// agent's start, not the stream.
	for len(lags) > 0 && lags[0] > 1000 {
		lags = lags[1:]
	}
	if len(lags) == 0 {
		return nil, written, fmt.Errorf("no lag samples")
	}
	return lags, written, nil
}
