package cmd

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/rulesets"
)

// cancelOnProgress cancels the run when the first progress event arrives,
// that is, in the middle of a table's COPY.
type cancelOnProgress struct {
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancelOnProgress) TableStarted(string, string, int64) {}
func (c *cancelOnProgress) TableProgress(string, string, int64) {
	c.once.Do(c.cancel)
}
func (c *cancelOnProgress) TableFinished(agent.TableReport) {}

// TestCancelMidCopyKeepsPreviousTwin interrupts a run during the COPY of a
// table: the twin keeps the previous complete copy, readable, with no
// shadow table behind, and the next run converges.
func TestCancelMidCopyKeepsPreviousTwin(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.big (id bigint PRIMARY KEY, email text NOT NULL, pad text);
		INSERT INTO public.big SELECT i, 'user' || i || '@example.org', repeat('x', 100) FROM generate_series(1, 200000) i`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.big
            columns:
              email: { rule: redact_email }`)
	if code, out, errOut := runCLI(t, "run", "--config", cfgPath); code != 0 {
		t.Fatalf("first run exited %d\n%s\n%s", code, out, errOut)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big"); n != 200000 {
		t.Fatalf("first run: %d rows", n)
	}
	mustExec(t, prod, "DELETE FROM public.big WHERE id > 100000")

	cfg, err := config.Load(cfgPath, config.Options{CheckRule: rulesets.Check, RuleNeedsKey: rulesets.NeedsKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := &cancelOnProgress{cancel: cancel}
	rep := newRunner(slog.New(slog.NewTextHandler(io.Discard, nil)), obs).Run(ctx, cfg, &cfg.Workflows[0])
	if !rep.Failed() || len(rep.Tables) != 1 || !strings.Contains(rep.Tables[0].Error, "cancel") {
		t.Fatalf("cancelled run should fail with a cancellation error: %+v", rep)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big"); n != 200000 {
		t.Fatalf("after the cancelled run the twin has %d rows, want the previous 200000", n)
	}
	if n := queryInt(t, twin, `SELECT count(*) FROM pg_class WHERE relname LIKE '\_nopii\_new\_%'`); n != 0 {
		t.Fatalf("%d shadow tables left behind", n)
	}
	if code, out, errOut := runCLI(t, "run", "--config", cfgPath); code != 0 {
		t.Fatalf("run after cancel exited %d\n%s\n%s", code, out, errOut)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM public.big"); n != 100000 {
		t.Fatalf("the run after the cancelled one left %d rows, want 100000", n)
	}
}

// TestTableErrors: problems with one table fail that table, say what to do,
// and leave the other tables to be copied; the exit status is 1.
func TestTableErrors(t *testing.T) {
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.nokey (email text, n int);
		INSERT INTO public.nokey VALUES ('a@b.c', 1);
		CREATE TABLE public.good (id int PRIMARY KEY, email text);
		INSERT INTO public.good VALUES (1, 'x@y.z'), (2, NULL);
		CREATE TABLE public.typed (id int PRIMARY KEY, age int)`)
	cfgPath := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.nokey
          - name: public.good
            columns:
              email: { rule: redact_email }
          - name: public.missing
          - name: public.typed
            columns:
              nope: { rule: hash }`)
	code, out, errOut := runCLI(t, "run", "--config", cfgPath)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"describe public.nokey: table has no primary key: set primary_key in the config (no unique index over NOT NULL columns either",
		"set it under table public.nokey",
		"table public.missing: not found in source prod",
		`column "nope": not found in table public.typed (columns: id, age)`,
		"workflow w: failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	twin := mustConnect(t, twinDSN)
	if n := queryInt(t, twin, "SELECT count(*) FROM public.good WHERE email LIKE 'u%@example.com'"); n != 1 {
		t.Errorf("the good table was not copied and redacted alongside the failures: %d rows", n)
	}

	// validate --connect finds the same problems without copying anything.
	code, out, _ = runCLI(t, "validate", "--config", cfgPath, "--connect")
	if code != 1 || !strings.Contains(out, "public.missing") || !strings.Contains(out, `column "nope"`) || !strings.Contains(out, "no primary key") {
		t.Errorf("validate --connect: exit %d\n%s", code, out)
	}
}

// TestUnreachableSource: a source that refuses connections fails the input
// after bounded retries with a message naming it, without its password.
func TestUnreachableSource(t *testing.T) {
	twinDSN := pgtest.MustDatabase(t)
	cfgPath := writeConfig(t, `
version: 1
workflows:
  - name: w
    inputs:
      - name: prod
        dsn: postgres://app:s3cr3t-pw@127.0.0.1:1/prod?sslmode=disable&connect_timeout=1
        tables:
          - name: public.x
    feeds:
      - type: twin
        dsn: `+twinDSN+`
`)
	code, out, errOut := runCLI(t, "run", "--config", cfgPath)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "connect to source prod") {
		t.Errorf("report does not name the unreachable source:\n%s", out)
	}
	if strings.Contains(out+errOut, "s3cr3t-pw") {
		t.Errorf("password leaked into output:\n%s\n%s", out, errOut)
	}
}
