package postgres_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestKeyDigests: the digests count every key of the selection once, in
// the run's snapshot; streaming the keys of a set of buckets yields exactly
// the keys those buckets counted (the filter and the digest bucket the
// same text the same way), for single and composite keys; a window
// narrows both.
func TestKeyDigests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ddl    string
		window bool
		want   int64
	}{
		{"bigint key", `CREATE TABLE public.k (id bigint PRIMARY KEY, at timestamptz NOT NULL);
			INSERT INTO public.k SELECT i, now() - i * interval '1 hour' FROM generate_series(1, 500) i`, false, 500},
		{"composite key", `CREATE TABLE public.k (a text, b date, at timestamptz NOT NULL, PRIMARY KEY (a, b));
			INSERT INTO public.k SELECT (ARRAY['x', 'O''Brien, "q"', 'zoë', 'a\b'])[i % 4 + 1] || i, date '2024-01-01' + i, now() - i * interval '1 hour'
			FROM generate_series(1, 300) i`, false, 300},
		{"window", `CREATE TABLE public.k (id int PRIMARY KEY, at timestamptz NOT NULL);
			INSERT INTO public.k SELECT i, now() - i * interval '1 hour' FROM generate_series(1, 500) i`, true, 47},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.MustDatabase(t)
			mustExec(t, mustConnect(t, dsn), tc.ddl)
			src := mustOpen(t, dsn, 1)
			tbl := mustDescribe(t, src, "public", "k")
			// Rows written after the snapshot are not counted.
			mustExec(t, mustConnect(t, dsn), "DELETE FROM public.k WHERE at > now() - interval '3 hours'")
			sel := nopii.Selection{KeysOnly: true}
			if tc.window {
				sel.WindowSince, sel.WindowBy = time.Now().Add(-47*time.Hour-30*time.Minute), []string{"at"}
			}
			const bits = 4
			g, err := src.KeyDigests(testContext(t), tbl, sel, bits)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, d := range g.Buckets {
				n += d.Count
			}
			if n != tc.want || g.Hasher == "" || len(g.Buckets) < 2 {
				t.Fatalf("digests count %d keys in %d buckets (hasher %q), want %d keys", n, len(g.Buckets), g.Hasher, tc.want)
			}
			var some []uint32
			var want int64
			for b, d := range g.Buckets {
				if b%3 == 0 {
					some = append(some, b)
					want += d.Count
				}
			}
			slices.Sort(some)
			sel.BucketBits, sel.Buckets = bits, some
			var keys []string
			if _, err := src.CopySelect(testContext(t), tbl, sel, func(v [][]byte) error {
				keys = append(keys, string(v[0]))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if int64(len(keys)) != want {
				t.Errorf("buckets %v: %d keys streamed, their digests count %d", some, len(keys), want)
			}
			if slices.Sort(keys); len(slices.Compact(keys)) != len(keys) {
				t.Error("a key was streamed twice")
			}
		})
	}
}
