package cmd

import (
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

// TestDeltaDeletes: a delta with detect_deletes compares per-bucket key
// digests of source and twin and streams only the keys of buckets that
// differ (none when nothing was deleted; every key when most buckets
// differ), and still removes exactly the
// rows that left the source: single and composite keys (with quotes,
// commas and non-ASCII text, rendered as json arrays), a redacted key
// (the twin holds hashes: every key is streamed, as before), and rows that
// age out of a window.
func TestDeltaDeletes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  string // creates and fills public.t in the source
		entry  string // the table's lines in the workflow
		change string // between the full copy and the delta
		keys   string // SQL over public.t: the rows the twin must hold, as text
		src    string // WHERE clause for keys on the source ("" = every row)

		wantDeleted  int64
		wantStreamed func(streamed, rows int64) bool
		streamedSays string
	}{
		{
			name: "deletes in some buckets",
			setup: `CREATE TABLE public.t (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
				INSERT INTO public.t SELECT i, 'v' || i, now() - interval '1 day' FROM generate_series(1, 5000) i`,
			entry: "            updated_at: updated_at\n            detect_deletes: true",
			change: `DELETE FROM public.t WHERE id IN (7, 2500, 4999);
				UPDATE public.t SET v = 'changed', updated_at = now() WHERE id % 50 = 0`,
			keys: "string_agg(id::text || ':' || v, ',' ORDER BY id)", wantDeleted: 3,
			wantStreamed: func(s, rows int64) bool { return s > 0 && s < rows/10 },
			streamedSays: "some, but under a tenth of the keys",
		},
		{
			name: "deletes in most buckets",
			setup: `CREATE TABLE public.t (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
				INSERT INTO public.t SELECT i, 'v' || i, now() - interval '1 day' FROM generate_series(1, 5000) i`,
			entry:  "            updated_at: updated_at\n            detect_deletes: true",
			change: `DELETE FROM public.t WHERE id % 10 = 0`,
			keys:   "string_agg(id::text || ':' || v, ',' ORDER BY id)", wantDeleted: 500,
			wantStreamed: func(s, rows int64) bool { return s == rows },
			streamedSays: "every key (comparing buckets saves nothing)",
		},
		{
			name: "no deletes",
			setup: `CREATE TABLE public.t (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
				INSERT INTO public.t SELECT i, 'v' || i, now() - interval '1 day' FROM generate_series(1, 5000) i`,
			entry:  "            updated_at: updated_at\n            detect_deletes: true",
			change: `UPDATE public.t SET v = 'changed', updated_at = now() WHERE id % 50 = 0; INSERT INTO public.t VALUES (9000, 'new', now())`,
			keys:   "string_agg(id::text || ':' || v, ',' ORDER BY id)", wantDeleted: 0,
			wantStreamed: func(s, rows int64) bool { return s == 0 },
			streamedSays: "none",
		},
		{
			name: "composite key",
			setup: `CREATE TABLE public.t (a text, b int, v text, updated_at timestamptz NOT NULL, PRIMARY KEY (a, b));
				INSERT INTO public.t SELECT (ARRAY['x', 'O''Brien, "q"', 'zoë', 'a\b'])[i % 4 + 1] || (i / 4), i % 3, 'v', now() - interval '1 day'
				FROM generate_series(1, 3000) i`,
			entry:  "            updated_at: updated_at\n            detect_deletes: true",
			change: `DELETE FROM public.t WHERE (a, b) IN (SELECT a, b FROM public.t ORDER BY a, b LIMIT 2); DELETE FROM public.t WHERE a = 'zoë100'`,
			keys:   "string_agg(a || '/' || b, ',' ORDER BY a, b)", wantDeleted: -1,
			wantStreamed: func(s, rows int64) bool { return s > 0 && s < rows/2 },
			streamedSays: "some, but under half of the keys",
		},
		{
			name: "redacted key",
			setup: `CREATE TABLE public.t (email text PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
				INSERT INTO public.t SELECT 'u' || i || '@x.org', 'v' || i, now() - interval '1 day' FROM generate_series(1, 2000) i`,
			entry:  "            updated_at: updated_at\n            detect_deletes: true\n            columns:\n              email: { rule: hash }",
			change: `DELETE FROM public.t WHERE email IN ('u1@x.org', 'u2@x.org')`,
			keys:   "count(*)::text || ':' || string_agg(v, ',' ORDER BY v)", wantDeleted: 2,
			wantStreamed: func(s, rows int64) bool { return s == rows },
			streamedSays: "every key (the twin holds hashed keys)",
		},
		{
			name: "window and deletes",
			setup: `CREATE TABLE public.t (id int PRIMARY KEY, created_at timestamptz NOT NULL);
				INSERT INTO public.t SELECT i, now() - (i % 20) * interval '1 day' + interval '1 hour' FROM generate_series(1, 4000) i`,
			entry: "            created_at: created_at\n            window: 7d\n            window_by: created_at\n            detect_deletes: true",
			change: `UPDATE public.t SET created_at = created_at - interval '30 days' WHERE id IN (1, 2, 3);
				DELETE FROM public.t WHERE id IN (20, 40)`,
			keys: "string_agg(id::text, ',' ORDER BY id)", src: "created_at >= now() - interval '7 days'", wantDeleted: 5,
			wantStreamed: func(s, rows int64) bool { return s > 0 && s < rows/2 },
			streamedSays: "some, but under half of the keys",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prodDSN, twinDSN := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
			prod, twin := mustConnect(t, prodDSN), mustConnect(t, twinDSN)
			mustExec(t, prod, tc.setup)
			mustExec(t, prod, "ANALYZE public.t")
			cfgPath := oneInputConfig(t, prodDSN, twinDSN, "\n          - name: public.t\n"+tc.entry)
			if tr := tableReport(t, runJSON(t, cfgPath, 0), "public.t"); tr.Mode != "full" {
				t.Fatalf("first run: %+v", tr)
			}
			before := queryInt(t, prod, "SELECT count(*) FROM public.t")
			mustExec(t, prod, tc.change)
			tr := tableReport(t, runJSON(t, cfgPath, 0), "public.t")
			where := ""
			if tc.src != "" {
				where = " WHERE " + tc.src
			}
			want := queryString(t, prod, "SELECT "+tc.keys+" FROM public.t"+where)
			if got := queryString(t, twin, "SELECT "+tc.keys+" FROM public.t"); got != want {
				t.Errorf("twin rows after the delta differ from the source's:\n got %.200s\nwant %.200s", got, want)
			}
			wantDeleted := tc.wantDeleted
			if wantDeleted < 0 {
				wantDeleted = before - queryInt(t, prod, "SELECT count(*) FROM public.t")
			}
			if tr.Mode != "delta" || tr.Deleted != wantDeleted {
				t.Errorf("delta: mode %s, deleted %d, want delta and %d", tr.Mode, tr.Deleted, wantDeleted)
			}
			remaining := queryInt(t, prod, "SELECT count(*) FROM public.t"+where)
			if !tc.wantStreamed(tr.KeysStreamed, remaining) {
				t.Errorf("%d of %d keys streamed for the anti-join, want %s", tr.KeysStreamed, remaining, tc.streamedSays)
			}
			// Another run with nothing changed streams no key at all
			// (except where the twin holds hashed keys).
			tr = tableReport(t, runJSON(t, cfgPath, 0), "public.t")
			if tr.Deleted != 0 || (tc.name != "redacted key" && tr.KeysStreamed != 0) {
				t.Errorf("idle delta: deleted %d, %d keys streamed; want none", tr.Deleted, tr.KeysStreamed)
			}
		})
	}
}
