package cmd

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/pgtest"
)

// buildNopii compiles the real binary for tests that kill it.
func buildNopii(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nopii")
	out, err := exec.Command("go", "build", "-o", bin, "./nopii").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSIGKILL kills `nopii run` at random points of full and delta copies.
// After every kill the twin holds a complete version of the table (the one
// before or the one after, never a mix), no shadow or stage table that the
// next run would not drop, and state that matches the rows; the next run
// converges on the source.
// leftBehind counts the shadow and stage tables (partitions aside) that
// nopii.pending does not name: those no run would drop.
const leftBehind = `SELECT count(*) FROM pg_class c WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
	AND c.relname ~ '^_nopii_(new|stage|keys)_'
	AND NOT EXISTS (SELECT 1 FROM nopii.pending p WHERE to_regclass(p.relation) = c.oid)`

func TestSIGKILL(t *testing.T) {
	bin := buildNopii(t)
	prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
	mustExec(t, prod, `CREATE TABLE public.full_t (id int PRIMARY KEY, email text NOT NULL, gen int NOT NULL);
		INSERT INTO public.full_t SELECT i, 'u' || i || '@x.org', 0 FROM generate_series(1, 60000) i;
		CREATE TABLE public.delta_t (id int PRIMARY KEY, email text NOT NULL, gen int NOT NULL, updated_at timestamptz NOT NULL);
		CREATE INDEX ON public.delta_t (updated_at);
		INSERT INTO public.delta_t SELECT i, 'u' || i || '@x.org', 0, now() - interval '1 day' - i * interval '1 second' FROM generate_series(1, 60000) i`)
	cfg := oneInputConfig(t, prodDSN, twinDSN, `
          - name: public.full_t
            columns:
              email: { rule: redact_email }
          - name: public.delta_t
            updated_at: updated_at
            columns:
              email: { rule: redact_email }`)
	run := func(kill time.Duration) (killed bool) {
		cmd := exec.Command(bin, "run", "--config", cfg, "--log-level", "error")
		cmd.Env = os.Environ()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run exited early with %v", err)
			}
			return false
		case <-time.After(kill):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return true
		}
	}
	// The first, complete copy. Kill points are spread over what it took on
	// this machine, so that most runs are killed mid-way however fast or
	// loaded the machine is.
	t0 := time.Now()
	run(time.Hour)
	whole := time.Since(t0)
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	var lastGen int64
	advanced := 0
	for gen := 1; gen <= 20; gen++ {
		// A new generation in the source: the full table grows by 100 rows
		// and gets a new gen everywhere; 20000 delta rows get the new gen.
		mustExec(t, prod, "UPDATE public.full_t SET gen = $1", gen)
		mustExec(t, prod, "INSERT INTO public.full_t SELECT i, 'u' || i || '@x.org', $1 FROM generate_series(60000 + ($1 - 1) * 100 + 1, 60000 + $1 * 100) i", gen)
		mustExec(t, prod, "UPDATE public.delta_t SET gen = $1, updated_at = now() WHERE id % 3 = 0", gen)
		if run(time.Duration(float64(whole) * (0.05 + 0.9*rng.Float64()))) {
			kills++
		}
		// Full: all rows of one generation, with that generation's count.
		n := queryInt(t, twin, "SELECT count(*) FROM public.full_t")
		g := queryInt(t, twin, "SELECT min(gen) FROM public.full_t")
		if g2 := queryInt(t, twin, "SELECT max(gen) FROM public.full_t"); g2 != g {
			t.Fatalf("gen %d: full_t mixes generations %d and %d", gen, g, g2)
		}
		// Killed runs leave the version before them, which may be several
		// generations old, but whole, and never older than one seen before.
		if want := int64(60000 + g*100); n != want || g > int64(gen) || g < lastGen {
			t.Fatalf("gen %d: full_t holds %d rows of generation %d (last seen %d); want a whole generation", gen, n, g, lastGen)
		}
		if g > lastGen {
			advanced++
		}
		lastGen = g
		// Delta: the 20000 updated rows carry one generation together.
		d := queryInt(t, twin, "SELECT count(DISTINCT gen) FROM public.delta_t WHERE id % 3 = 0")
		if d != 1 {
			t.Fatalf("gen %d: delta_t's updated rows are split across %d generations", gen, d)
		}
		// A run killed before its publish leaves what it loaded committed,
		// under names no reader uses (nothing half-written is visible under
		// the tables' names: above), each named in nopii.pending, which the
		// next run drops first.
		if n := queryInt(t, twin, leftBehind); n != 0 {
			t.Fatalf("gen %d: %d shadow or stage tables left behind that no run will drop", gen, n)
		}
		if rows := queryInt(t, twin, "SELECT (state->>'rows')::bigint FROM nopii.table_state WHERE source_table = 'public.full_t'"); rows != n {
			t.Fatalf("gen %d: state says %d rows, the table has %d", gen, rows, n)
		}
	}
	if kills < 5 {
		t.Fatalf("only %d of 20 runs were killed mid-way; the kill points are too late to test anything", kills)
	}
	run(time.Hour)
	for _, tbl := range []string{"full_t", "delta_t"} {
		q := "SELECT md5(string_agg(id || ':' || gen, ',' ORDER BY id)) FROM public." + tbl
		if queryString(t, prod, q) != queryString(t, twin, q) {
			t.Fatalf("%s did not converge on the source after the kills", tbl)
		}
	}
	if n := queryInt(t, twin, `SELECT count(*) FROM pg_class WHERE relname ~ '^_nopii_(new|stage|keys)_' AND relkind IN ('r', 'p')`); n != 0 {
		t.Fatalf("%d shadow or stage tables left after a complete run", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM nopii.pending"); n != 0 {
		t.Fatalf("nopii.pending names %d relations after a complete run", n)
	}
	if n := queryInt(t, twin, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'nopii'"); n != 0 {
		t.Fatalf("%d locks still held by nopii sessions", n)
	}
	t.Logf("%d of 20 runs killed mid-way (a whole run takes %v); the twin's full_t advanced %d times", kills, whole, advanced)
}
