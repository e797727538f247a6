package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii/internal/pgtest"
)

// snapshotSchema is a parent and a child by foreign key, both with a
// generation that every run of the test changes everywhere; gen g has
// 2000+50g users and 6000+100g orders, the new orders of each generation
// on its new users.
const snapshotSchema = `CREATE TABLE public.users (id int PRIMARY KEY, email text NOT NULL, gen int NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now());
	CREATE TABLE public.orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES public.users, total numeric NOT NULL,
		gen int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
	CREATE INDEX ON public.orders (user_id);
	CREATE INDEX ON public.orders (updated_at);
	INSERT INTO public.users SELECT i, 'u' || i || '@x.org', 0 FROM generate_series(1, 2000) i;
	INSERT INTO public.orders SELECT i, 1 + i % 2000, i, 0 FROM generate_series(1, 6000) i`

// nextGeneration moves the source to generation g: every row of both
// tables gets it, 50 users and 100 orders of theirs are added.
func nextGeneration(t *testing.T, prod *pgx.Conn, g int) {
	t.Helper()
	for _, q := range []string{
		"UPDATE public.users SET gen = $1, updated_at = now()",
		"INSERT INTO public.users SELECT i, 'u' || i || '@x.org', $1 FROM generate_series(2000 + ($1 - 1) * 50 + 1, 2000 + $1 * 50) i",
		"UPDATE public.orders SET gen = $1, updated_at = now()",
		"INSERT INTO public.orders SELECT i, 2000 + ($1 - 1) * 50 + 1 + i % 50, i, $1 FROM generate_series(6000 + ($1 - 1) * 100 + 1, 6000 + $1 * 100) i",
	} {
		mustExec(t, prod, q, g)
	}
}

// snapshotRead is what a reader of the twin saw in one transaction.
type snapshotRead struct {
	users, orders, joined          int64
	uMin, uMax, oMin, oMax, orphan int64
}

// mixed says what is wrong with a read, "" when it is one whole generation.
func (r snapshotRead) mixed() string {
	switch {
	case r.uMin != r.uMax || r.oMin != r.oMax || r.uMin != r.oMin:
		return fmt.Sprintf("generations mixed: users %d-%d, orders %d-%d", r.uMin, r.uMax, r.oMin, r.oMax)
	case r.users != 2000+50*r.uMin || r.orders != 6000+100*r.oMin:
		return fmt.Sprintf("generation %d with %d users and %d orders", r.uMin, r.users, r.orders)
	case r.joined != r.orders || r.orphan != 0:
		return fmt.Sprintf("%d of %d orders join their user, %d orphans", r.joined, r.orders, r.orphan)
	}
	return ""
}

// TestOneSnapshot: readers of the twin, each transaction of theirs reading
// users, orders and their join, see one whole run during runs that change
// both tables, never this run's users with the last run's orders: in one
// statement whatever the runs do; in REPEATABLE READ, statement by
// statement, when the runs copy both tables in full or both by delta (a
// run that swaps one table in and merges a delta into the other can show
// a REPEATABLE READ snapshot older than its publish the new copy next to
// the old delta: docs/twin.md, "One snapshot").
func TestOneSnapshot(t *testing.T) {
	const delta = "\n            updated_at: updated_at"
	for _, tc := range []struct {
		name, users, orders string
		repeatable          bool
	}{
		{"full and full", "", "", true},
		{"delta and delta", delta, delta, true},
		{"full and delta", "", delta, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
			prod := mustConnect(t, prodDSN)
			mustExec(t, prod, snapshotSchema)
			cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.users`+tc.users+`
            columns:
              email: { rule: redact_email }
          - name: public.orders`+tc.orders)
			runJSON(t, cfg, 0)

			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var mu sync.Mutex
			seen := map[int64]int{} // reads per generation
			var problems []string
			read := func(name string, once func(context.Context, *pgx.Conn) (snapshotRead, error)) {
				defer wg.Done()
				conn, err := pgx.Connect(ctx, twinDSN)
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close(context.Background())
				for ctx.Err() == nil {
					r, err := once(ctx, conn)
					var pgErr *pgconn.PgError
					switch {
					case ctx.Err() != nil:
						return
					case errors.As(err, &pgErr) && pgErr.Code == "40P01":
						continue // PostgreSQL broke a deadlock with the publish: nothing seen
					case err != nil:
						mu.Lock()
						problems = append(problems, name+": "+err.Error())
						mu.Unlock()
						return
					}
					mu.Lock()
					seen[r.uMin]++
					if m := r.mixed(); m != "" {
						problems = append(problems, name+": "+m)
					}
					mu.Unlock()
				}
			}
			repeatable := func(ctx context.Context, conn *pgx.Conn) (r snapshotRead, err error) {
				tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
				if err != nil {
					return r, err
				}
				defer tx.Rollback(context.Background())
				if err := tx.QueryRow(ctx, "SELECT count(*), min(gen), max(gen) FROM public.users").Scan(&r.users, &r.uMin, &r.uMax); err != nil {
					return r, err
				}
				time.Sleep(time.Millisecond) // the publish may come between the statements
				if err := tx.QueryRow(ctx, "SELECT count(*), min(gen), max(gen) FROM public.orders").Scan(&r.orders, &r.oMin, &r.oMax); err != nil {
					return r, err
				}
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM public.orders o JOIN public.users u ON u.id = o.user_id").Scan(&r.joined); err != nil {
					return r, err
				}
				return r, tx.Commit(ctx)
			}
			if tc.repeatable {
				wg.Add(1)
				go read("repeatable read", repeatable)
			}
			wg.Add(1)
			go read("one statement", func(ctx context.Context, conn *pgx.Conn) (r snapshotRead, err error) {
				err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.users), (SELECT min(gen) FROM public.users), (SELECT max(gen) FROM public.users),
					(SELECT count(*) FROM public.orders), (SELECT min(gen) FROM public.orders), (SELECT max(gen) FROM public.orders),
					(SELECT count(*) FROM public.orders o JOIN public.users u ON u.id = o.user_id),
					(SELECT count(*) FROM public.orders o WHERE NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = o.user_id))`).
					Scan(&r.users, &r.uMin, &r.uMax, &r.orders, &r.oMin, &r.oMax, &r.joined, &r.orphan)
				return r, err
			})
			const runs = 5
			for g := 1; g <= runs; g++ {
				nextGeneration(t, prod, g)
				rep := runJSON(t, cfg, 0)
				for _, tr := range rep.Tables {
					if tr.Error != "" {
						t.Errorf("gen %d: %s: %s", g, tr.Table, tr.Error)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
			stop()
			wg.Wait()
			for _, p := range problems[:min(10, len(problems))] {
				t.Error(p)
			}
			if len(seen) < 3 {
				t.Errorf("the readers saw generations %v: too few to have read while runs published", seen)
			}
			twin := mustConnect(t, twinDSN)
			if n := queryInt(t, twin, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.orders'::regclass AND contype = 'f' AND convalidated`); n != 1 {
				t.Errorf("orders has %d validated foreign keys, want 1", n)
			}
			t.Logf("reads per generation: %v", seen)
		})
	}
}

// TestPublishWaitsForReaders: a reader of the twin holding a table that a
// run replaces makes the run wait a bounded time (lock_timeout, three
// times), then fail with an error naming the reader (its application and
// user, never its query); the twin keeps the previous run whole, and the
// next run, once the reader is gone, publishes.
func TestPublishWaitsForReaders(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, snapshotSchema)
	cfg := writeConfig(t, workflowYAML("w", prodDSN, `
          - name: public.users
            columns:
              email: { rule: redact_email }
          - name: public.orders
            updated_at: updated_at
`, `    feeds:
      - type: twin
        dsn: `+twinDSN+`
        lock_timeout: 300ms
`))
	runJSON(t, cfg, 0)
	nextGeneration(t, prod, 1)

	twin := mustConnect(t, twinDSN)
	stateBefore := queryString(t, twin, "SELECT string_agg(state::text, ',' ORDER BY source_table) FROM nopii.table_state")
	rc, err := pgx.ParseConfig(twinDSN)
	if err != nil {
		t.Fatal(err)
	}
	rc.RuntimeParams["application_name"] = "monthly-report"
	reader, err := pgx.ConnectConfig(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(context.Background())
	mustExec(t, reader, "BEGIN; SELECT count(*) FROM public.users WHERE email LIKE '%secret-filter%'")
	start := time.Now()
	rep := runJSON(t, cfg, 1)
	took := time.Since(start)
	mustExec(t, reader, "COMMIT")

	if !strings.Contains(rep.Error, "readers of the twin held the tables it replaces for longer than it waits (3 × 300ms)") ||
		!strings.Contains(rep.Error, `application "monthly-report"`) || !strings.Contains(rep.Error, `user "postgres"`) ||
		!strings.Contains(rep.Error, "public.users") || !strings.Contains(rep.Error, "the twin keeps the previous run") {
		t.Errorf("the run's error does not name the reader and what it holds: %q", rep.Error)
	}
	if strings.Contains(rep.Error, "secret-filter") {
		t.Errorf("the error shows the reader's query: %q", rep.Error)
	}
	for _, tr := range rep.Tables {
		if !strings.HasPrefix(tr.Error, "not published: ") {
			t.Errorf("%s: error %q, want not published", tr.Table, tr.Error)
		}
	}
	if took > 30*time.Second {
		t.Errorf("the run took %v to give up: the wait is not bounded", took)
	}
	for _, q := range []string{"SELECT min(gen) FROM public.users", "SELECT max(gen) FROM public.users", "SELECT max(gen) FROM public.orders"} {
		if g := queryInt(t, twin, q); g != 0 {
			t.Errorf("%s = %d after a run that did not publish, want 0", q, g)
		}
	}
	if after := queryString(t, twin, "SELECT string_agg(state::text, ',' ORDER BY source_table) FROM nopii.table_state"); after != stateBefore {
		t.Errorf("state moved although the run did not publish")
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM nopii.pending"); n != 0 {
		t.Errorf("%d relations left in nopii.pending by a run that failed to publish", n)
	}

	runJSON(t, cfg, 0)
	if g := queryInt(t, twin, "SELECT min(gen) FROM public.orders"); g != 1 {
		t.Errorf("orders at generation %d after the next run, want 1", g)
	}
}
