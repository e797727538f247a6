package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
	"github.com/nopii/nopii/internal/pgtest"
	"github.com/nopii/nopii/internal/s3test"
)

const lockRows = 5000

// process is a nopii binary running in the background.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuf
	done chan error
}

func startNopii(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &syncBuf{}, done: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// wait returns the exit status.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(2 * time.Minute):
		t.Fatalf("nopii %v did not end:\n%s", p.cmd.Args[1:], p.out.String())
		return -1
	}
}

// runNopii runs the binary to its end and returns its exit status and output.
func runNopii(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	p := startNopii(t, bin, env, args...)
	return p.wait(t), p.out.String()
}

// tableBlock holds an ACCESS EXCLUSIVE lock on the source table: a run
// that reaches it waits there, holding its feeds' run locks.
type tableBlock struct{ tx pgx.Tx }

func blockTable(t *testing.T, prodDSN string) *tableBlock {
	t.Helper()
	tx, err := mustConnect(t, prodDSN).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), "LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return &tableBlock{tx}
}

func (b *tableBlock) release(t *testing.T) {
	t.Helper()
	if err := b.tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitBlocked waits until a run waits for the source table.
func waitBlocked(t *testing.T, prod *pgx.Conn, p *process) {
	t.Helper()
	eventually(t, 30*time.Second, "the run waits for the source table (it holds the feeds' run locks)\n"+p.out.String(), func() bool {
		return queryInt(t, prod, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'public.t'::regclass") > 0
	})
}

// TestRunLock: two `nopii run` processes of one workflow at once, into a
// twin, a lake on the S3 test server and a files feed, each alone: the
// second says who holds the feed and exits 3, or with lock_wait waits
// for the first, saying whom it waits for; no raw database error; every
// row once. A holder killed with SIGKILL releases the twin at once and a
// lake when its lease expires.
func TestRunLock(t *testing.T) {
	bin := buildNopii(t)
	host, _ := os.Hostname()
	const lease = 6 * time.Second
	for _, kind := range []string{"twin", "s3", "files"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			prodDSN := pgtest.MustDatabase(t)
			prod := mustConnect(t, prodDSN)
			mustExec(t, prod, fmt.Sprintf(`CREATE TABLE public.t (id int PRIMARY KEY, email text NOT NULL, gen int NOT NULL, updated_at timestamptz NOT NULL);
				INSERT INTO public.t SELECT i, 'u' || i || '@x.org', 0, now() - interval '1 day' FROM generate_series(1, %d) i`, lockRows))
			env := append(os.Environ(), envLockLease+"="+lease.String())
			var feed string
			var rows func() (n, distinct int64) // the feed's rows of public.t, and distinct keys
			switch kind {
			case "twin":
				twinDSN := pgtest.MustDatabase(t)
				feed = "      - type: twin\n        dsn: " + twinDSN + "\n"
				rows = func() (int64, int64) {
					twin := mustConnect(t, twinDSN)
					return queryInt(t, twin, "SELECT count(*) FROM public.t"), queryInt(t, twin, "SELECT count(DISTINCT source_primary_key) FROM public.t")
				}
			case "s3":
				srv, bucket := s3test.MustServer(t), s3test.MustBucket(t)
				env = append(env, "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey)
				feed = fmt.Sprintf("      - type: s3\n        bucket: %s\n        prefix: lake/\n        region: %s\n        endpoint: %s\n", bucket, srv.Region, srv.Endpoint())
				st := mustS3Store(t, srv, bucket)
				rows = func() (int64, int64) { return lakeTableRows(t, st) }
			case "files":
				dir := t.TempDir()
				feed = "      - type: files\n        path: " + dir + "\n"
				st, err := files.NewStore(dir)
				if err != nil {
					t.Fatal(err)
				}
				rows = func() (int64, int64) { return lakeTableRows(t, st) }
			}
			tables := `          - name: public.t
            updated_at: updated_at
            columns:
              email: { rule: redact_email }
`
			body := workflowYAML("w", prodDSN, tables, "    feeds:\n"+feed)
			cfg := writeConfig(t, body)
			waiting := writeConfig(t, strings.Replace(body, "  - name: w\n", "  - name: w\n    lock_wait: 2m\n", 1))
			total := int64(lockRows)
			checkRows := func(when string) {
				t.Helper()
				if n, distinct := rows(); n != total || distinct != total {
					t.Errorf("%s: the feed holds %d rows (%d keys), want %d once each", when, n, distinct, total)
				}
			}
			change := func() {
				mustExec(t, prod, "UPDATE public.t SET gen = gen + 1, updated_at = now() WHERE id % 7 = 0")
				mustExec(t, prod, fmt.Sprintf("INSERT INTO public.t SELECT i, 'u' || i || '@x.org', 0, now() FROM generate_series(%d, %d) i", total+1, total+100))
				total += 100
			}
			noRawError := func(what, out string) {
				t.Helper()
				if strings.Contains(out, "SQLSTATE") || strings.Contains(out, "duplicate key") {
					t.Errorf("%s printed a database error:\n%s", what, out)
				}
			}

			if code, out := runNopii(t, bin, env, "run", "--config", cfg); code != 0 {
				t.Fatalf("first run: exit %d\n%s", code, out)
			}
			checkRows("after the first run")

			// A holder, a second run that gives up, a third that waits.
			change()
			block := blockTable(t, prodDSN)
			holder := startNopii(t, bin, env, "run", "--config", cfg)
			waitBlocked(t, prod, holder)
			code, out := runNopii(t, bin, env, "run", "--config", cfg)
			want := "another run of workflow w holds feed "
			holderID := fmt.Sprintf("(pid %d, host %s)", holder.cmd.Process.Pid, host)
			if code != exitLocked || !strings.Contains(out, want) || !strings.Contains(out, holderID) {
				t.Errorf("second run: exit %d, want %d saying %q … %q:\n%s", code, exitLocked, want, holderID, out)
			}
			noRawError("the second run", out)
			waiter := startNopii(t, bin, env, "run", "--config", waiting)
			eventually(t, 30*time.Second, "the waiting run says whom it waits for", func() bool {
				o := waiter.out.String()
				return strings.Contains(o, "waiting for another run of the workflow") && strings.Contains(o, fmt.Sprintf(`"holder_pid":%d`, holder.cmd.Process.Pid))
			})
			block.release(t)
			if code := holder.wait(t); code != 0 {
				t.Errorf("holder: exit %d\n%s", code, holder.out.String())
			}
			if code := waiter.wait(t); code != 0 {
				t.Errorf("waiting run: exit %d\n%s", code, waiter.out.String())
			}
			noRawError("the holder", holder.out.String())
			noRawError("the waiting run", waiter.out.String())
			checkRows("after the overlapping runs")

			// SIGKILL of a holder.
			change()
			block = blockTable(t, prodDSN)
			killed := startNopii(t, bin, env, "run", "--config", cfg)
			waitBlocked(t, prod, killed)
			killed.cmd.Process.Signal(syscall.SIGKILL)
			killed.wait(t)
			killedAt := time.Now()
			block.release(t)
			code, out = runNopii(t, bin, env, "run", "--config", cfg)
			if kind == "twin" {
				if code != 0 {
					t.Fatalf("run after the holder was killed: exit %d, want 0 at once (its session ended)\n%s", code, out)
				}
			} else {
				if time.Since(killedAt) < lease*2/3 && code != exitLocked {
					t.Errorf("run at once after the holder was killed: exit %d, want %d until its lease expires\n%s", code, exitLocked, out)
				}
				if code != 0 {
					time.Sleep(time.Until(killedAt.Add(lease + time.Second)))
					code, out = runNopii(t, bin, env, "run", "--config", cfg)
					if code != 0 || !strings.Contains(out, "run lock expired") {
						t.Fatalf("run after the killed holder's lease expired: exit %d, want 0 and a takeover in the log\n%s", code, out)
					}
				}
			}
			checkRows("after a killed holder and the next run")
		})
	}
}

// lakeTableRows counts the rows of public.t in a lake (the reader checks the
// snapshot holds each key once and every part matches the manifest).
func lakeTableRows(t *testing.T, st lake.Store) (int64, int64) {
	rows := laketest.NewReader(st, lake.Options{Workflow: "w", Format: lake.FormatParquet}).Rows(t, nopii.TableName{Schema: "public", Name: "t"})
	return int64(len(rows)), int64(len(rows))
}

// TestAgentSkipsLockedTicks: an agent whose ticks come faster than a run
// lasts skips them and says why — another process holds the workflow's run
// lock (a manual nopii run), or its own previous run is still going — and
// posts no job for a skipped tick; then a run that fails is logged at ERROR
// with its error.
func TestAgentSkipsLockedTicks(t *testing.T) {
	bin := buildNopii(t)
	dashDSN, prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod := mustConnect(t, prodDSN)
	mustExec(t, prod, `CREATE TABLE public.t (id int PRIMARY KEY, email text NOT NULL);
		INSERT INTO public.t SELECT i, 'u' || i || '@x.org' FROM generate_series(1, 100) i`)
	dashAddr, token, _ := startDashboard(t, bin, dashDSN)
	agentAddr := freeAddr(t)
	body := `
version: 1
hmac_key: ` + testKey + `
dashboard:
  url: http://` + dashAddr + `
  token: ` + token + `
  heartbeat_interval: 1s
agent:
  name: edge-agent
  listen: ` + agentAddr + `
workflows:
  - name: w
    schedule: "@every 1s"
    inputs:
      - name: prod
        dsn: ` + prodDSN + `
        tables:
          - name: public.t
            columns:
              email: { rule: redact_email }
    feeds:
      - type: twin
        dsn: ` + twinDSN + `
`
	cfg := writeConfig(t, body)
	env := os.Environ()

	block := blockTable(t, prodDSN)
	manual := startNopii(t, bin, env, "run", "--config", cfg)
	waitBlocked(t, prod, manual)
	ag := startNopii(t, bin, env, "agent", "--config", cfg)
	eventually(t, 30*time.Second, "the agent says another process holds the lock", func() bool {
		o := ag.out.String()
		return strings.Contains(o, "scheduled run skipped: another run of workflow w holds feed twin") &&
			strings.Contains(o, fmt.Sprintf("(pid %d, host ", manual.cmd.Process.Pid))
	})

	// The manual run dies holding the lock; the agent's next run takes it
	// at once, and waits for the table longer than a tick.
	manual.cmd.Process.Signal(syscall.SIGKILL)
	manual.wait(t)
	eventually(t, 30*time.Second, "the agent skips ticks while its own run goes on", func() bool {
		return strings.Contains(ag.out.String(), "scheduled run skipped: the previous run is still going")
	})
	block.release(t)
	eventually(t, 30*time.Second, "the agent's run succeeds", func() bool {
		return strings.Contains(ag.out.String(), `"msg":"run finished","workflow":"w","status":"success"`)
	})
	_, metrics := httpGet("http://" + agentAddr + "/metrics")
	if !strings.Contains(metrics, `nopii_runs_skipped_total{workflow="w"}`) {
		t.Errorf("/metrics does not count the skipped ticks:\n%s", metrics)
	}
	jobs := queryString(t, mustConnect(t, dashDSN), `SELECT coalesce(string_agg(status, ',' ORDER BY status), '') FROM nopii_dashboard.jobs`)
	if strings.Contains(jobs, "failed") || !strings.Contains(jobs, "success") {
		t.Errorf("dashboard jobs %q: want successes only, no job for a skipped tick", jobs)
	}

	// A run that fails says why in the agent's log, at ERROR.
	mustExec(t, prod, `ALTER TABLE public.t ADD COLUMN mobile_phone text; UPDATE public.t SET mobile_phone = '+49 151 2345' || lpad(id::text, 3, '0')`)
	eventually(t, 30*time.Second, "the failed run is logged at ERROR with its error", func() bool {
		for _, line := range strings.Split(ag.out.String(), "\n") {
			if strings.Contains(line, `"level":"ERROR","msg":"run finished"`) && strings.Contains(line, `"status":"failed"`) &&
				strings.Contains(line, `"error":"table public.t: `) && strings.Contains(line, "mobile_phone") {
				return true
			}
		}
		return false
	})
}
