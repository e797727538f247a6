package lake_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
)

// TestForgetRewritesObjects: a snapshot and a delta (an upsert and a
// delete row) of the kitchen-sink table in every format; forgetting two
// keys rewrites the objects that hold them, leaves every other row's
// values as they were, keeps the manifest's counts true, drops the keys
// from the key list, deletes the old objects, and records the hashes.
func TestForgetRewritesObjects(t *testing.T) {
	for _, fc := range [][2]string{{"parquet", "zstd"}, {"parquet", "none"}, {"csv", "gzip"}, {"csv", "none"}, {"jsonl", "zstd"}, {"jsonl", "none"}} {
		t.Run(fc[0]+"-"+fc[1], func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			o := lake.Options{Workflow: feedtest.Workflow, Format: fc[0], Compression: fc[1], Logger: quiet}
			f, err := files.Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			tb := feedtest.KitchenSink(t)
			r1, r2, r4 := tb.Rows[0], tb.Rows[1], tb.Rows[2]
			feedtest.MustFullCopy(t, f, tb, r1, r2)
			d, err := f.Delta(ctx, tb.Target("delta", 2), true)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []feedtest.Row{r4, r1} {
				if err := d.WriteRow(append(slices.Clip(r.Values), []byte(r.Key))); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{r1.Key, r4.Key} { // r2 left the source: a delete row
				if err := d.WriteKey([]byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			st, _ := files.NewStore(dir)
			rd := laketest.NewReader(st, o)
			before := rd.Rows(t, tb.Name)
			if !slices.Equal(slices.Sorted(maps.Keys(before)), []string{r1.Key, r4.Key}) {
				t.Fatalf("before: keys %v", slices.Sorted(maps.Keys(before)))
			}
			if n, err := f.CountKeys(ctx, tb.Name, []string{r1.Key, r2.Key, "99"}); err != nil || n != 1 {
				t.Fatalf("CountKeys before = %d, %v; want 1 (key 2 was deleted by the delta)", n, err)
			}
			oldParts := rd.Referenced(t, tb.Name)

			forget := []string{r1.Key, r2.Key}
			deleted, err := f.Forget(ctx, nopii.Forget{RequestID: "5b0a3c9e-0000-4000-8000-000000000001", At: time.Now(),
				Tables: []nopii.ForgetTable{{Key: nopii.StateKey{Workflow: feedtest.Workflow, Input: feedtest.Input, Table: tb.Name},
					Target: tb.Name, Keys: forget, Forgotten: []string{strings.Repeat("ab", 32), strings.Repeat("cd", 32)}}}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(deleted[0], forget) {
				t.Errorf("deleted keys %v, want %v", deleted[0], forget)
			}
			after := rd.Rows(t, tb.Name) // checks the manifest's row counts and part sizes too
			want := maps.Clone(before)
			delete(want, r1.Key)
			if !maps.EqualFunc(after, want, slices.Equal) {
				t.Errorf("after forget:\n got %v\nwant %v", after, want)
			}
			if n, _ := f.CountKeys(ctx, tb.Name, forget); n != 0 {
				t.Errorf("CountKeys after = %d", n)
			}
			m := rd.Manifest(t, tb.Name)
			if m.Deltas[0].Upserts != 1 || m.Deltas[0].Deletes != 0 || m.Snapshot.Rows != 0 {
				t.Errorf("manifest counts: snapshot %d, delta %+v", m.Snapshot.Rows, m.Deltas[0])
			}
			// Nothing but what the manifest names is left of the table.
			objects := rd.Objects(t)
			for _, k := range oldParts {
				if slices.Contains(objects, k) && !slices.Contains(rd.Referenced(t, tb.Name), k) {
					t.Errorf("old object %s still there", k)
				}
			}
			var tableObjects []string
			for _, k := range objects {
				if strings.HasPrefix(k, lake.TableDir(o.Workflow, tb.Name)) || strings.Contains(k, "/_nopii/keys/") {
					tableObjects = append(tableObjects, k)
				}
			}
			if ref := rd.Referenced(t, tb.Name); !slices.Equal(tableObjects, ref) {
				t.Errorf("objects %v, want those the manifest names %v", tableObjects, ref)
			}
			hashes, err := f.ForgottenKeys(ctx, nopii.StateKey{Workflow: feedtest.Workflow, Input: feedtest.Input, Table: tb.Name})
			if err != nil || len(hashes) != 2 {
				t.Errorf("forgotten keys %v, %v", hashes, err)
			}
			// The key list no longer has the forgotten keys: a later delta
			// with deletes writes no delete row for them.
			d, err = f.Delta(ctx, tb.Target("delta", 0), true)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.WriteKey([]byte(r4.Key)); err != nil {
				t.Fatal(err)
			}
			if err := d.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if a, ok := d.(interface{ Applied() (int64, int64) }); ok {
				if _, del := a.Applied(); del != 0 {
					t.Errorf("a delta after forget wrote %d delete rows", del)
				}
			}
		})
	}
}
