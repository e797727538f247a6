package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
)

// subsetBench times, runs times in the same cluster, a full copy of users
// (the rows of -rows) and their orders (twice as many) and a referential
// subset of 10% of the users (a keyed share) with their orders, each into
// a new twin; it checks that the subset's twin holds exactly the share's
// users and their orders, and prints the subset's time as a share of the
// full copy's (target ≤ 0.15) and nopii's peak RSS.
func subsetBench(ctx context.Context, users, runs int) error {
	e, err := prepare(ctx, benchCluster(), "src")
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl, src := e.tmp, e.bin, e.cl, e.dbs["src"]
	if err := loadUsersOrders(ctx, src, users); err != nil {
		return err
	}
	workflow := func(path, name, subset, twin string) error {
		return subsetWorkflow(path, name, src, subset, "", twin)
	}
	wantUsers, wantOrders, err := shareCounts(ctx, src)
	if err != nil {
		return err
	}
	var full, sub []time.Duration
	var fullCPU, subCPU []time.Duration
	var rss int64
	var ratios []float64
	for i := 0; i < runs; i++ {
		for _, v := range []struct {
			name, subset string
		}{{"full", ""}, {"subset", "\n            subset: { percent: 10 }"}} {
			db := fmt.Sprintf("twin_%s%d", v.name, i)
			twin, err := cl.CreateDatabase(ctx, db)
			if err != nil {
				return err
			}
			cfg := filepath.Join(tmp, db+".yaml")
			if err := workflow(cfg, "bench_"+v.name, v.subset, twin); err != nil {
				return err
			}
			if err := execSQL(ctx, src, "CHECKPOINT"); err != nil {
				return err
			}
			d, used, err := timedRun(cl, bin, cfg)
			if err != nil {
				return fmt.Errorf("nopii run (%s): %w", v.name, err)
			}
			var u, o, orphans int64
			if err := queryRow(ctx, twin, "SELECT (SELECT count(*) FROM users), count(*), count(*) FILTER (WHERE u.id IS NULL) FROM orders o LEFT JOIN users u ON u.id = o.user_id", &u, &o, &orphans); err != nil {
				return err
			}
			if v.name == "full" {
				full, fullCPU = append(full, d), append(fullCPU, used.nopii+used.server)
				fmt.Printf("run %d: full copy of %d users and %d orders %.2fs, CPU %.2fs nopii + %.2fs PostgreSQL (peak RSS %d MB)\n",
					i+1, u, o, d.Seconds(), used.nopii.Seconds(), used.server.Seconds(), used.rss/1024)
				if u != int64(users) || o != 2*int64(users) {
					return fmt.Errorf("full copy: the twin has %d users and %d orders", u, o)
				}
			} else {
				sub, subCPU, rss = append(sub, d), append(subCPU, used.nopii+used.server), max(rss, used.rss)
				if u != wantUsers || o != wantOrders || orphans != 0 {
					return fmt.Errorf("subset: the twin has %d users and %d orders (%d orphans), want %d and %d", u, o, orphans, wantUsers, wantOrders)
				}
				ratios = append(ratios, sub[i].Seconds()/full[i].Seconds())
				fmt.Printf("run %d: subset of %d users and %d orders %.2fs: %.3f× the full copy; CPU %.2fs nopii + %.2fs PostgreSQL: %.3f× (peak RSS %d MB)\n",
					i+1, u, o, d.Seconds(), ratios[i], used.nopii.Seconds(), used.server.Seconds(), subCPU[i].Seconds()/fullCPU[i].Seconds(), used.rss/1024)
			}
		}
	}
	fmt.Printf("subset of 10%% of %d users with their orders: median %.2fs against the full copy's %.2fs: %.3f× (target ≤ 0.15×); CPU %.3f×; peak RSS %d MB\n",
		users, median(sub).Seconds(), median(full).Seconds(), median(sub).Seconds()/median(full).Seconds(),
		median(subCPU).Seconds()/median(fullCPU).Seconds(), rss/1024)
	return nil
}

// loadUsersOrders makes the subset benchmarks' source: users and twice as
// many orders, with a foreign key and its index.
func loadUsersOrders(ctx context.Context, src string, users int) error {
	fmt.Printf("loading %d users and %d orders …\n", users, 2*users)
	if err := execSQL(ctx, src, fmt.Sprintf(`
		CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, full_name text NOT NULL, created_at timestamptz NOT NULL);
		CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, amount numeric(10,2) NOT NULL,
		                     status text NOT NULL, created_at timestamptz NOT NULL);
		INSERT INTO users SELECT i, 'user' || i || '@example.org', 'First' || (i %% 1000) || ' Last' || (i %% 777),
		       timestamptz '2024-01-01' + i * interval '1 second' FROM generate_series(1, %d) i;
		INSERT INTO orders SELECT i, (i::bigint * 7919) %% %d + 1, (i %% 10000) / 100.0, 'paid', timestamptz '2024-06-01' + i * interval '1 second'
		FROM generate_series(1, %d) i;
		CREATE INDEX ON orders (user_id)`, users, users, 2*users)); err != nil {
		return err
	}
	return execSQL(ctx, src, "VACUUM ANALYZE")
}

// subsetWorkflow writes the subset benchmarks' workflow: users (with
// subset, its YAML lines) and orders, both with mode (its YAML lines), into
// a twin.
func subsetWorkflow(path, name, src, subset, mode, twin string) error {
	body := fmt.Sprintf(`version: 1
hmac_key: %s
workflows:
  - name: %s
    parallelism: 2
    on_unclassified: warn
    inputs:
      - name: src
        dsn: %s
        tables:
          - name: public.users%s%s
            columns:
              email:     { rule: redact_email }
              full_name: { rule: fake, kind: full_name }
          - name: public.orders%s
    feeds:
      - type: twin
        dsn: %s
`, key, name, src, subset, mode, mode, twin)
	return os.WriteFile(path, []byte(body), 0o600)
}

// subsetCDCBench times a stream keeping a referential subset current
// against one streaming the whole tables, in the same run, from the same
// changes: 10% of users (a keyed share) with their orders, all in mode
// cdc; after both first copies, changes orders spread over every user (an
// amount update each) and inserts a new order for every 100th user; then
// times each workflow's catch-up (nopii run), and the raw binary
// COPY | COPY of as many rows. It checks the subset's twin against the
// share, and prints rows/s and the ratios.
func subsetCDCBench(ctx context.Context, users, changes int) error {
	e, err := prepare(ctx, benchCluster(), "src", "raw")
	if err != nil {
		return err
	}
	defer e.close()
	tmp, bin, cl, src := e.tmp, e.bin, e.cl, e.dbs["src"]
	if err := loadUsersOrders(ctx, src, users); err != nil {
		return err
	}
	const mode = "\n            mode: cdc"
	cfgs, twins := map[string]string{}, map[string]string{}
	for _, v := range []struct{ name, subset string }{{"whole", ""}, {"subset", "\n            subset: { percent: 10 }"}} {
		twin, err := cl.CreateDatabase(ctx, "twin_"+v.name)
		if err != nil {
			return err
		}
		twins[v.name], cfgs[v.name] = twin, filepath.Join(tmp, v.name+".yaml")
		if err := subsetWorkflow(cfgs[v.name], "bench_cdc_"+v.name, src, v.subset, mode, twin); err != nil {
			return err
		}
		if _, _, err := timedRun(cl, bin, cfgs[v.name]); err != nil {
			return fmt.Errorf("nopii run (%s, first copy): %w", v.name, err)
		}
	}
	fmt.Printf("changing %d orders and adding %d …\n", changes, users/100)
	step := max(1, 2*users/changes)
	for done := 0; done < changes; done += 1000 {
		if err := execSQL(ctx, src, fmt.Sprintf(`UPDATE orders SET amount = amount + 1 WHERE id IN (SELECT %d + g * %d FROM generate_series(0, %d) g)`,
			1+done*step, step, min(1000, changes-done)-1)); err != nil {
			return err
		}
	}
	if err := execSQL(ctx, src, fmt.Sprintf(`INSERT INTO orders SELECT %d + u, u, 1, 'new', now() FROM generate_series(1, %d, 100) u`, 2*users, users)); err != nil {
		return err
	}
	total := changes + users/100
	took := map[string]time.Duration{}
	for _, name := range []string{"whole", "subset"} {
		d, used, err := timedRun(cl, bin, cfgs[name])
		if err != nil {
			return fmt.Errorf("nopii run (%s, catch-up): %w", name, err)
		}
		took[name] = d
		fmt.Printf("catch-up of %d changes, %-6s %6.2fs  %7.0f changes/s  CPU %.2fs nopii + %.2fs PostgreSQL\n",
			total, name+":", d.Seconds(), float64(total)/d.Seconds(), used.nopii.Seconds(), used.server.Seconds())
	}
	wantUsers, wantOrders, err := shareCounts(ctx, src)
	if err != nil {
		return err
	}
	var gotUsers, gotOrders int64
	if err := queryRow(ctx, twins["subset"], "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders)", &gotUsers, &gotOrders); err != nil {
		return err
	}
	if gotUsers != wantUsers || gotOrders != wantOrders {
		return fmt.Errorf("subset after the stream: %d users and %d orders in the twin, want %d and %d", gotUsers, gotOrders, wantUsers, wantOrders)
	}
	if err := execSQL(ctx, e.dbs["raw"], `CREATE TABLE orders (id bigint, user_id bigint, amount numeric(10,2), status text, created_at timestamptz)`); err != nil {
		return err
	}
	pipe := fmt.Sprintf(`psql -X -q -v ON_ERROR_STOP=1 -c "COPY (SELECT * FROM orders LIMIT %d) TO STDOUT (FORMAT binary)" '%s' | psql -X -q -v ON_ERROR_STOP=1 -c "COPY orders FROM STDIN (FORMAT binary)" '%s'`,
		total, src, e.dbs["raw"])
	rawD, _, err := timed(exec.Command("bash", "-o", "pipefail", "-c", pipe))
	if err != nil {
		return fmt.Errorf("raw pipe: %w", err)
	}
	fmt.Printf("raw COPY | COPY of %d rows %.2fs (%.0f rows/s)\n", total, rawD.Seconds(), float64(total)/rawD.Seconds())
	fmt.Printf("subset stream: %.2f× the whole-table stream's time, %.3f× the raw pipe's rate (%d users, %d orders kept)\n",
		took["subset"].Seconds()/took["whole"].Seconds(), rawD.Seconds()/took["subset"].Seconds(), gotUsers, gotOrders)
	return nil
}

// shareCounts counts in the source the users of the benchmarks' 10% share
// (by the documented formula, docs/subsets.md) and their orders.
func shareCounts(ctx context.Context, src string) (users, orders int64, err error) {
	seed := agent.SubsetSeed([]byte(key), nopii.TableName{Schema: "public", Name: "users"})
	share := fmt.Sprintf("((hashint8extended(id, %d) %% 1000000 + 1000000) %% 1000000) < 100000", seed)
	err = queryRow(ctx, src, "SELECT count(*), (SELECT count(*) FROM orders WHERE user_id IN (SELECT id FROM users WHERE "+share+")) FROM users WHERE "+share,
		&users, &orders)
	return users, orders, err
}
