package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/rulesets"
	"github.com/nopii/nopii/source/postgres"
)

// faultOnProgress runs fault once, at the first progress event of a run:
// in the middle of a table's COPY.
type faultOnProgress struct {
	once  sync.Once
	fault func()
}

func (f *faultOnProgress) TableStarted(string, string, int64)  {}
func (f *faultOnProgress) TableProgress(string, string, int64) { f.once.Do(f.fault) }
func (f *faultOnProgress) TableFinished(agent.TableReport)     {}

// faultRunner is the CLI's runner with short waits, so that the retries of
// a test take seconds: connection retries every 50 ms, table retries after
// 100, 200, 400 ms.
func faultRunner(obs agent.Observer) *agent.Runner {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := newRunner(log, obs)
	r.Retry.Backoff = 100 * time.Millisecond
	r.OpenSource = func(ctx context.Context, in *config.Input, readers int) (nopii.Source, error) {
		return postgres.Open(ctx, in.DSN.Reveal(), postgres.Options{Name: in.Name, Readers: readers, Logger: log,
			Connect: pgconnect.Options{Attempts: 3, Backoff: 50 * time.Millisecond}})
	}
	r.OpenFeed = func(ctx context.Context, wf *config.Workflow, f *config.Feed) (nopii.Feed, error) {
		if f.Type != config.FeedTwin {
			return openFeed(ctx, wf, f, log)
		}
		return twin.Open(ctx, f.DSN.Reveal(), twin.Options{Logger: log,
			Connect: pgconnect.Options{Attempts: 3, Backoff: 50 * time.Millisecond}})
	}
	return r
}

const faultRows = 200000

// ownCluster starts a cluster of the test's own, which it may stop and
// restart, and returns it with the DSN of a new database in it.
func ownCluster(t *testing.T, db string) (*pgtest.Cluster, string) {
	t.Helper()
	c := pgtest.MustNewCluster(t)
	dsn, err := c.CreateDatabase(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return c, dsn
}

// faultTables creates two tables in prod, a big one to be interrupted and a
// small one, and returns the config that copies both into twin.
func faultTables(t *testing.T, prodDSN, twinDSN string) *config.Config {
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.big (id bigint PRIMARY KEY, email text NOT NULL, pad text);
		INSERT INTO public.big SELECT i, 'user' || i || '@example.org', repeat('x', 100) FROM generate_series(1, 200000) i;
		CREATE TABLE public.small (id int PRIMARY KEY, email text);
		INSERT INTO public.small SELECT i, 'small' || i || '@example.org' FROM generate_series(1, 10) i`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.big
            columns:
              email: { rule: redact_email }
          - name: public.small
            columns:
              email: { rule: redact_email }`)
	cfg, err := config.Load(cfgPath, config.Options{CheckRule: rulesets.Check, RuleNeedsKey: rulesets.NeedsKey})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkTwinComplete asserts that the twin holds every row of big, redacted,
// and no shadow table.
func checkTwinComplete(t *testing.T, twinDSN string, rows int64) {
	t.Helper()
	twin := mustConnect(t, twinDSN)
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big WHERE email LIKE 'u%@example.com'"); n != rows {
		t.Errorf("twin public.big has %d redacted rows, want %d", n, rows)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big WHERE email LIKE '%example.org'"); n != 0 {
		t.Errorf("twin public.big has %d raw emails", n)
	}
	if n := queryInt(t, twin, `SELECT count(*) FROM pg_class WHERE relname LIKE '\_nopii\_new\_%'`); n != 0 {
		t.Errorf("%d shadow tables left behind", n)
	}
}

// TestLostConnectionsAreRetried: a source backend terminated, or the twin
// restarted, in the middle of a COPY fails that attempt of the table only;
// the table is copied again from a new snapshot and the run succeeds.
func TestLostConnectionsAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(t *testing.T, prodDSN string, twin *pgtest.Cluster) func()
	}{
		{"source backends terminated", func(t *testing.T, prodDSN string, _ *pgtest.Cluster) func() {
			admin := mustConnect(t, prodDSN)
			return func() {
				// Every nopii session on the source: the snapshot holder
				// and the readers.
				mustExec(t, admin, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND application_name = 'nopii' AND pid <> pg_backend_pid()`)
			}
		}},
		{"twin restarted", func(t *testing.T, _ string, twin *pgtest.Cluster) func() {
			return func() {
				if err := twin.Restart(context.Background()); err != nil {
					t.Errorf("restart twin: %v", err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			twinCluster, twinDSN := ownCluster(t, "twin")
			prodDSN := pgtest.MustDatabase(t)
			cfg := faultTables(t, prodDSN, twinDSN)
			obs := &faultOnProgress{fault: tc.fault(t, prodDSN, twinCluster)}
			rep := faultRunner(obs).Run(context.Background(), cfg, &cfg.Workflows[0])
			if rep.Failed() {
				t.Fatalf("run failed despite retries: %+v", rep)
			}
			var retried bool
			for _, tr := range rep.Tables {
				retried = retried || strings.Contains(tr.Note, "after a lost connection")
			}
			if !retried {
				t.Errorf("no table says it was retried: %+v", rep.Tables)
			}
			checkTwinComplete(t, twinDSN, faultRows)
		})
	}
}

// TestLostSourceGivesUp: a source that goes away for good fails the table
// after bounded retries, with a message that says so; the twin keeps the
// previous complete copy and its state does not move.
func TestLostSourceGivesUp(t *testing.T) {
	prodCluster, prodDSN := ownCluster(t, "prod")
	twinDSN := pgtest.MustDatabase(t)
	cfg := faultTables(t, prodDSN, twinDSN)
	if rep := faultRunner(nil).Run(context.Background(), cfg, &cfg.Workflows[0]); rep.Failed() {
		t.Fatalf("first run: %+v", rep)
	}
	twin := mustConnect(t, twinDSN)
	stateBefore := queryString(t, twin, "SELECT state::text FROM nopii.table_state WHERE source_table = 'public.big'")
	mustExec(t, mustConnect(t, prodDSN), "DELETE FROM public.big WHERE id > 100000")

	start := time.Now()
	obs := &faultOnProgress{fault: func() {
		if err := prodCluster.StopServer(context.Background()); err != nil {
			t.Errorf("stop source: %v", err)
		}
	}}
	rep := faultRunner(obs).Run(context.Background(), cfg, &cfg.Workflows[0])
	if !rep.Failed() {
		t.Fatalf("run succeeded with the source gone: %+v", rep)
	}
	var msg string
	for _, tr := range rep.Tables {
		if tr.Table == "public.big" {
			msg = tr.Error
		}
	}
	if !strings.Contains(msg, "gave up after 4 attempts") || !strings.Contains(msg, "connect to source prod") {
		t.Errorf("public.big error does not say it gave up reconnecting: %q", msg)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("giving up took %v: retries are not bounded", d)
	}
	checkTwinComplete(t, twinDSN, faultRows)
	if after := queryString(t, twin, "SELECT state::text FROM nopii.table_state WHERE source_table = 'public.big'"); after != stateBefore {
		t.Errorf("state moved although no rows were written:\nbefore %s\nafter  %s", stateBefore, after)
	}
}

// TestLostTwinGivesUp: a twin that goes away for good in the middle of a
// copy fails the tables after the same bounded retries as a lost source,
// counted to the end and said so: every attempt is logged, and the error
// names the twin and how many attempts were made.
func TestLostTwinGivesUp(t *testing.T) {
	twinCluster, twinDSN := ownCluster(t, "twin")
	prodDSN := pgtest.MustDatabase(t)
	cfg := faultTables(t, prodDSN, twinDSN)
	obs := &faultOnProgress{fault: func() {
		if err := twinCluster.StopServer(context.Background()); err != nil {
			t.Errorf("stop twin: %v", err)
		}
	}}
	var logs syncBuf
	r := faultRunner(obs)
	r.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	start := time.Now()
	rep := r.Run(context.Background(), cfg, &cfg.Workflows[0])
	if !rep.Failed() {
		t.Fatalf("run succeeded with the twin gone: %+v", rep)
	}
	// public.small (10 rows) may be loaded before the twin stops; then the
	// publish of the run fails, after the connection's own retries. Every
	// table that failed must say why, and public.big is among them.
	var bigFailed bool
	for _, tr := range rep.Tables {
		if tr.Error == "" {
			continue
		}
		bigFailed = bigFailed || tr.Table == "public.big"
		gaveUp := "gave up after 4 attempts"
		if tr.Table == "public.small" && strings.HasPrefix(tr.Error, "not published: ") {
			gaveUp = "gave up after"
		}
		if !strings.Contains(tr.Error, gaveUp) || !strings.Contains(tr.Error, "connect to twin") {
			t.Errorf("%s: error does not say it gave up reconnecting to the twin: %q", tr.Table, tr.Error)
		}
	}
	if !bigFailed {
		t.Errorf("public.big did not fail with the twin gone: %+v", rep.Tables)
	}
	for n := 2; n <= 4; n++ {
		if want := fmt.Sprintf("attempt=%d of=4", n); !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks the retry %q:\n%s", want, logs.String())
		}
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("giving up took %v: retries are not bounded", d)
	}
}
