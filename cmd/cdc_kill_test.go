package cmd

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgtest"
)

// cdcWriter issues n single-row changes to cdcSchema's customer and pair
// tables — inserts, updates, deletes and key changes, in transactions of
// 1 to 20 — at about rate changes a second (0: as fast as it can), and
// returns how many it made.
func cdcWriter(ctx context.Context, dsn string, n, rate int, seed uint64) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewPCG(seed, 7))
	next := 10_000_000
	done := 0
	began := time.Now()
	for done < n {
		if rate > 0 {
			if ahead := time.Duration(done)*time.Second/time.Duration(rate) - time.Since(began); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		k := 1 + rng.IntN(20)
		for range k {
			id := 1 + rng.IntN(3000)
			switch rng.IntN(7) {
			case 0, 1:
				next++
				b.Queue("INSERT INTO public.customer VALUES ($1, $2, 'w', 0)", next, "w"+time.Now().String()+"@x.org")
			case 2, 3:
				b.Queue("UPDATE public.customer SET n = n + 1, email = 'e' || n || '@x.org' WHERE id = $1", id)
			case 4:
				b.Queue("DELETE FROM public.customer WHERE id = $1", id)
			case 5:
				next++
				b.Queue("UPDATE public.customer SET id = $2 WHERE id = $1", id, next)
			case 6:
				b.Queue("UPDATE public.pair SET v = v + 1 WHERE a = $1 % 7", id)
			}
		}
		b.Queue("COMMIT")
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

// cdcAgentConfig is oneInputConfig over cdcSchema in mode cdc, for
// `nopii agent` listening on listen.
func cdcAgentConfig(t *testing.T, prodDSN, twinDSN, listen string) string {
	p := oneInputConfig(t, prodDSN, twinDSN, cdcEntries("cdc"))
	body := strings.Replace(string(mustRead(t, p)), "workflows:", "agent:\n  listen: "+listen+"\nworkflows:", 1)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAgent starts `nopii agent` on cfg; stop ends it with SIGKILL or
// SIGTERM and waits.
func startAgent(t *testing.T, bin, cfg string, out *syncBuf) (stop func(kill bool)) {
	t.Helper()
	cmd := exec.Command(bin, "agent", "--config", cfg, "--log-level", "warn", "--grace", "5s")
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func(kill bool) {
		once.Do(func() {
			if kill {
				cmd.Process.Signal(syscall.SIGKILL)
			} else {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			cmd.Wait()
		})
	}
}

// TestCDCConcurrentWriterSIGKILL streams with `nopii agent` while a writer
// makes 50000 mixed changes, killing the agent (SIGKILL) ten times after
// it has streamed a while; the restarted agent catches up, its lag falls
// to 0 in /metrics, and the twin holds exactly what a fresh full copy holds.
func TestCDCConcurrentWriterSIGKILL(t *testing.T) {
	bin := buildNopii(t)
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, cdcSchema)
	listen := freeAddr(t)
	cfg := cdcAgentConfig(t, prodDSN, twinDSN, listen)
	var out syncBuf
	start := func() func(kill bool) { return startAgent(t, bin, cfg, &out) }
	defer func() {
		if t.Failed() {
			t.Logf("agent output:\n%s", out.String())
		}
	}()
	confirmed := func() string {
		return queryString(t, prod, "SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = 'nopii_w_prod'")
	}
	stop := start()
	eventually(t, 60*time.Second, "the agent made the first copy", func() bool {
		var n int64
		err := twin.QueryRow(t.Context(), "SELECT count(*) FROM nopii.table_state WHERE state->>'lsn' <> ''").Scan(&n)
		return err == nil && n == 6
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		n, err := cdcWriter(ctx, prodDSN, 50000, 1500, 1)
		wrote <- result{n, err}
	}()
	rng := rand.New(rand.NewPCG(3, 4))
	midStream := 0 // kills after the agent had applied and confirmed changes
	for kill := 1; kill <= 10; kill++ {
		before := confirmed()
		time.Sleep(time.Duration(2500+rng.IntN(2500)) * time.Millisecond)
		if confirmed() != before {
			midStream++
		}
		stop(true)
		if n := queryInt(t, twin, "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_nopii%' AND relpersistence <> 't'"); n != 0 {
			t.Fatalf("%d stray nopii tables in the twin after a kill", n)
		}
		stop = start()
	}
	w := <-wrote
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	if midStream < 8 {
		t.Fatalf("only %d of 10 kills came after the agent had applied changes; the kills do not test the stream", midStream)
	}
	end := queryString(t, prod, "SELECT pg_current_wal_insert_lsn()::text")
	eventually(t, 90*time.Second, "the agent caught up", func() bool {
		var ok bool
		err := prod.QueryRow(t.Context(), "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = 'nopii_w_prod'", end).Scan(&ok)
		return err == nil && ok
	})
	eventually(t, 20*time.Second, "/metrics shows the stream caught up", func() bool {
		_, body := httpGet("http://" + listen + "/metrics")
		return strings.Contains(body, `nopii_cdc_lag_seconds{input="prod",workflow="w"} 0`) &&
			strings.Contains(body, `nopii_cdc_slot_retained_bytes{input="prod",workflow="w"}`)
	})
	mustMatchFullCopy(t, prodDSN, twin, "after the writer and the kills")
	stop(false)
	t.Logf("%d changes written; 10 kills, %d of them mid-stream", w.n, midStream)
}
