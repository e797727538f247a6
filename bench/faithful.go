package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// faithfulSchema is the faithful case's source: users (the 4 personal
// columns of the bench table, a unique email) and orders, twice as many,
// with a foreign key to users, a CHECK and 3 secondary indexes.
const faithfulSchema = `
	CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, full_name text NOT NULL, phone text, ssn text,
		country text NOT NULL, created_at timestamptz NOT NULL);
	CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, total numeric(12, 2) NOT NULL CHECK (total >= 0),
		status text NOT NULL, created_at timestamptz NOT NULL, note text);
	INSERT INTO users SELECT i, 'user' || i || '@example.org', 'First' || (i %% 1000) || ' Last' || (i %% 777),
		'+1 555 ' || lpad((i %% 10000000)::text, 7, '0'), lpad((i %% 1000000000)::text, 9, '0'),
		(ARRAY['DE', 'FR', 'US', 'JP', 'BR'])[1 + i %% 5], timestamptz '2024-01-01' + i * interval '1 second'
		FROM generate_series(1, %[1]d) i;
	INSERT INTO orders SELECT i, 1 + (i::bigint * 7919) %% %[1]d, (i %% 10000) / 100.0,
		(ARRAY['new', 'paid', 'shipped', 'returned'])[1 + i %% 4], timestamptz '2024-06-01' + i * interval '1 second',
		CASE WHEN i %% 10 = 0 THEN repeat('n', 40) END
		FROM generate_series(1, 2 * %[1]d) i;
	CREATE INDEX orders_user_id ON orders (user_id);
	CREATE INDEX orders_created_at ON orders (created_at);
	CREATE INDEX orders_status ON orders (status, created_at)`

// faithfulBench times, -runs times each and in the same run on one
// cluster, the ways of giving a fresh database the source's users and
// orders with their keys, indexes and foreign key: pg_dump | psql,
// pg_dump -Fd -j2 then pg_restore -j2, nopii into a faithful twin
// (schema: full) and into a data-only twin, each with parallelism 2, 4 of
// the users' columns redacted. Each target database is made afresh before
// each run.
func faithfulBench(ctx context.Context, users, runs int) error {
	e, err := prepare(ctx, benchCluster(), "src")
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl, src := e.tmp, e.bin, e.cl, e.dbs["src"]
	admin := cl.DSN("postgres")
	if err := autovacuumOff(ctx, cl); err != nil {
		return err
	}
	fmt.Printf("loading %d users and %d orders …\n", users, 2*users)
	t0 := time.Now()
	if err := execSQL(ctx, src, fmt.Sprintf(faithfulSchema, users)); err != nil {
		return err
	}
	if err := execSQL(ctx, src, "VACUUM ANALYZE users, orders"); err != nil {
		return err
	}
	var size int64
	if err := queryRow(ctx, src, "SELECT pg_total_relation_size('users') + pg_total_relation_size('orders')", &size); err != nil {
		return err
	}
	fmt.Printf("tables with their indexes: %d MB (loaded in %.0fs)\n", size>>20, time.Since(t0).Seconds())

	psql, pgDump, pgRestore := clientTool("psql"), clientTool("pg_dump"), clientTool("pg_restore")
	quiet := psql + " -X -q -v ON_ERROR_STOP=1"
	dumpDir := filepath.Join(tmp, "dump")
	workflow := func(name, db, schema string) (string, error) {
		path := filepath.Join(tmp, name+".yaml")
		body := fmt.Sprintf(`version: 1
hmac_key: %s
workflows:
  - name: %s
    parallelism: 2
    inputs:
      - name: src
        dsn: %s
        tables:
          - name: public.users
            columns:
              email:     { rule: redact_email }
              full_name: { rule: fake, kind: full_name }
              phone:     { rule: mask, keep_last: 2 }
              ssn:       { rule: hash }
          - name: public.orders
    feeds:
      - type: twin
        dsn: %s
        schema: %s
`, key, name, src, cl.DSN(db), schema)
		return path, os.WriteFile(path, []byte(body), 0o600)
	}
	full, err := workflow("faithful", "twin", "full")
	if err != nil {
		return err
	}
	dataOnly, err := workflow("data_only", "twin", "data_only")
	if err != nil {
		return err
	}
	sh := func(s string) *exec.Cmd { return exec.Command("bash", "-o", "pipefail", "-c", s) }
	nopii := func(cfg string) *exec.Cmd {
		return exec.Command(bin, "run", "--config", cfg, "--log-level", cmp.Or(os.Getenv("NOPII_BENCH_LOG"), "warn"))
	}
	pipes := []struct {
		name string
		db   string
		cmd  func() *exec.Cmd
	}{
		{"pg_dump | psql", "dump", func() *exec.Cmd {
			return sh(fmt.Sprintf(`%s '%s' | %s '%s'`, pgDump, src, quiet, cl.DSN("dump")))
		}},
		{"pg_dump -Fd -j2 + pg_restore -j2", "dump", func() *exec.Cmd {
			return sh(fmt.Sprintf(`rm -rf '%[1]s' && %[2]s -Fd -j2 -f '%[1]s' '%[3]s' && %[4]s -j2 -d '%[5]s' '%[1]s'`,
				dumpDir, pgDump, src, pgRestore, cl.DSN("dump")))
		}},
		{"nopii → faithful twin", "twin", func() *exec.Cmd { return nopii(full) }},
		{"nopii → data-only twin", "twin", func() *exec.Cmd { return nopii(dataOnly) }},
	}
	results := make([][]pipeRun, len(pipes))
	for i := 0; i < runs; i++ {
		for k, p := range pipes {
			for _, q := range []string{"DROP DATABASE IF EXISTS " + p.db + " WITH (FORCE)", "CREATE DATABASE " + p.db, "CHECKPOINT"} {
				if err := execSQL(ctx, admin, q); err != nil {
					return err
				}
			}
			r, err := measured(p.cmd(), cl.DataDir())
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			var nu, no, idx, fks int64
			if err := queryRow(ctx, cl.DSN(p.db), `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders),
				(SELECT count(*) FROM pg_indexes WHERE tablename IN ('users', 'orders')),
				(SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated)`, &nu, &no, &idx, &fks); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if nu != int64(users) || no != 2*int64(users) {
				return fmt.Errorf("%s: %d users and %d orders arrived, want %d and %d", p.name, nu, no, users, 2*users)
			}
			results[k] = append(results[k], r)
			fmt.Printf("run %d: %-34s %6.2fs  cpu: clients %5.2fs, cluster %5.2fs  peak RSS %4d MB  (%d indexes, %d validated foreign keys)\n",
				i+1, p.name, r.wall.Seconds(), r.clientCPU.Seconds(), r.clusterCPU.Seconds(), r.rssKB/1024, idx, fks)
		}
	}
	fmt.Printf("\n%d users, %d orders, %d MB with indexes; medians of %d runs (CPU: of the median-time run)\n", users, 2*users, size>>20, runs)
	fmt.Printf("%-34s %8s %9s %9s %8s %s\n", "pipeline", "seconds", "cpu cli", "cpu pg", "RSS MB", "speed-up over the faster pg_dump way")
	best := min(medianRun(results[0]).wall, medianRun(results[1]).wall)
	for k, p := range pipes {
		m := medianRun(results[k])
		fmt.Printf("%-34s %8.2f %9.2f %9.2f %8d %6.2f×\n", p.name, m.wall.Seconds(), m.clientCPU.Seconds(), m.clusterCPU.Seconds(),
			maxRSS(results[k])/1024, best.Seconds()/m.wall.Seconds())
	}
	fmt.Println(strings.Repeat("-", 34))
	return nil
}
