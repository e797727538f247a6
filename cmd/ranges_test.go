package cmd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/rulesets"
	"github.com/nopii/nopii/source/postgres"
)

// TestPageRangeCopy copies a table as page ranges read at once (a low
// range threshold makes a test-sized table large) into a twin and a files
// feed, and checks both hold exactly what a single-stream copy gives; a
// small table of the same run stays one stream.
func TestPageRangeCopy(t *testing.T) {
	prodDSN, twinDSN, refDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.big (id bigint PRIMARY KEY, email text NOT NULL, ssn text, pad text);
		INSERT INTO public.big SELECT i, 'user' || i || '@example.org', lpad(i::text, 9, '0'), repeat('x', i % 80)
		FROM generate_series(1, 30000) i;
		CREATE TABLE public.small (id bigint PRIMARY KEY, email text);
		INSERT INTO public.small SELECT i, 'u' || i || '@example.org' FROM generate_series(1, 10) i`)
	tables := `          - name: public.big
            columns:
              email: { rule: redact_email }
              ssn:   { rule: hash }
          - name: public.small
            columns:
              email: { rule: redact_email }
`
	dirs := []string{t.TempDir(), t.TempDir()}
	feeds := func(twin, dir string) string {
		return fmt.Sprintf("    feeds:\n      - type: twin\n        dsn: %s\n      - type: files\n        path: %s\n        format: csv\n", twin, dir)
	}
	// The reference: one stream per table (parallelism 1).
	ref := writeConfig(t, strings.Replace(workflowYAML("w", prodDSN, tables, feeds(refDSN, dirs[0])), "    inputs:", "    parallelism: 1\n    inputs:", 1))
	if code, out, errOut := runCLI(t, "run", "--config", ref, "--log-level", "error"); code != 0 {
		t.Fatalf("reference run exited %d\n%s\n%s", code, out, errOut)
	}

	path := writeConfig(t, strings.Replace(workflowYAML("w", prodDSN, tables, feeds(twinDSN, dirs[1])), "    inputs:", "    parallelism: 4\n    inputs:", 1))
	cfg, err := config.Load(path, config.Options{CheckRule: rulesets.Check, RuleNeedsKey: rulesets.NeedsKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	rep := rangeRunner(nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))).Run(ctx, cfg, &cfg.Workflows[0])
	if rep.Failed() {
		t.Fatalf("run failed: %+v", rep)
	}
	streams := map[string]int{}
	for _, tr := range rep.Tables {
		streams[tr.Table] = tr.Streams
		if tr.Table == "public.big" && tr.Rows != 30000 {
			t.Errorf("big: report says %d rows read, want 30000", tr.Rows)
		}
	}
	// Two tables in flight hold two of the 4 streams; big takes what is free.
	if s := streams["public.big"]; s < 2 || s > 4 {
		t.Errorf("big was read by %d streams, want 2 to 4 (parallelism 4)", s)
	}
	if s := streams["public.small"]; s != 1 {
		t.Errorf("small was read by %d streams, want 1", s)
	}
	// The twin took big's ranges through as many writers.
	if want := fmt.Sprintf("table=public.big rows=30000 writers=%d", streams["public.big"]); !strings.Contains(logs.String(), want) {
		t.Errorf("the twin's log does not say %q:\n%s", want, logs.String())
	}

	got, want := mustConnect(t, twinDSN), mustConnect(t, refDSN)
	for _, tb := range []string{"big", "small"} {
		sum := fmt.Sprintf(`SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY source_primary_key)) FROM public.%s t`, tb)
		if g, w := queryString(t, got, sum), queryString(t, want, sum); g != w {
			t.Errorf("twin %s: page ranges %s, one stream %s", tb, g, w)
		}
		if g, w := csvRows(t, dirs[1], tb), csvRows(t, dirs[0], tb); !slices.Equal(g, w) {
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("files feed %s: first difference at sorted row %d: page ranges %q, one stream %q", tb, i, g[i], w[i])
					break
				}
			}
			t.Errorf("files feed %s: page ranges wrote %d rows, one stream %d, or they differ", tb, len(g), len(w))
		}
	}
	if n := queryInt(t, got, "SELECT count(*) FROM public.big"); n != 30000 {
		t.Errorf("twin big has %d rows, want 30000", n)
	}

	// Cancelled while its ranges stream, the copy leaves the previous one
	// whole and no shadow table behind; the next run converges.
	sum := `SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY source_primary_key)) FROM public.big t`
	before := queryString(t, got, sum)
	mustExec(t, prod, "DELETE FROM public.big WHERE id > 20000")
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	rep = rangeRunner(&cancelOnProgress{cancel: ccancel}, quietLog).Run(cctx, cfg, &cfg.Workflows[0])
	if !rep.Failed() {
		t.Fatalf("the cancelled run did not fail: %+v", rep)
	}
	if after := queryString(t, got, sum); after != before {
		t.Errorf("after the cancelled run the twin's big is %s, want the previous %s", after, before)
	}
	if n := queryInt(t, got, `SELECT count(*) FROM pg_class WHERE relname LIKE '\_nopii\_new\_%'`); n != 0 {
		t.Errorf("%d shadow tables left behind", n)
	}
	if rep := rangeRunner(nil, quietLog).Run(ctx, cfg, &cfg.Workflows[0]); rep.Failed() {
		t.Fatalf("run after the cancelled one failed: %+v", rep)
	}
	if n := queryInt(t, got, "SELECT count(*) FROM public.big"); n != 20000 {
		t.Errorf("after the next run the twin's big has %d rows, want 20000", n)
	}
}

var quietLog = slog.New(slog.DiscardHandler)

// rangeRunner is the CLI's runner with a range threshold of 16 pages, so
// that a test-sized table is read as page ranges.
func rangeRunner(obs agent.Observer, log *slog.Logger) *agent.Runner {
	r := newRunner(log, obs)
	r.OpenSource = func(ctx context.Context, in *config.Input, readers int) (nopii.Source, error) {
		return postgres.Open(ctx, in.DSN.Reveal(), postgres.Options{Name: in.Name, Readers: readers, Logger: log, RangePages: 16})
	}
	return r
}

// csvRows returns the data lines of a table's snapshot in a files feed, sorted.
func csvRows(t *testing.T, dir, table string) []string {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "w", "public."+table, "snapshot=*", "part-*.csv"))
	if err != nil || len(parts) == 0 {
		t.Fatalf("files feed %s: no parts (%v)", table, err)
	}
	var rows []string
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, l := range lines[1:] { // after the header
			rows = append(rows, strings.TrimSuffix(l, "\r"))
		}
	}
	slices.Sort(rows)
	return rows
}
