package twin_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
)

// bucketedDelta is the agent's view of a delta load that compares key
// digests.
type bucketedDelta interface {
	KeyDigests(ctx context.Context, bits int) (nopii.KeyDigests, error)
	DeleteBuckets(bits int, buckets []uint32)
}

// TestDeltaKeyDigests: KeyDigests applies the staged rows first (a new key
// counts), digests every key once, and DeleteBuckets narrows the anti-join
// to the named buckets: rows of other buckets stay even though their keys
// were not streamed, and no bucket at all deletes nothing.
func TestDeltaKeyDigests(t *testing.T) {
	const bits = 3
	for _, tc := range []struct {
		name    string
		buckets func(all map[int64]uint32) []uint32 // the buckets handed to DeleteBuckets
		drop    []int64                             // keys of those buckets not streamed
		none    bool                                // stream no key at all
		want    func(all map[int64]uint32, buckets []uint32) []int64
	}{
		{
			name:    "one bucket, one key gone",
			buckets: func(all map[int64]uint32) []uint32 { return []uint32{all[5]} },
			drop:    []int64{5},
			want: func(all map[int64]uint32, _ []uint32) []int64 {
				return slices.DeleteFunc(ids(1, 41), func(id int64) bool { return id == 5 })
			},
		},
		{
			name:    "no bucket",
			buckets: func(map[int64]uint32) []uint32 { return nil },
			want:    func(map[int64]uint32, []uint32) []int64 { return ids(1, 41) },
		},
		{
			name:    "a bucket with no key left",
			buckets: func(all map[int64]uint32) []uint32 { return []uint32{all[3]} },
			none:    true,
			want: func(all map[int64]uint32, b []uint32) []int64 {
				return slices.DeleteFunc(ids(1, 41), func(id int64) bool { return all[id] == b[0] })
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, db, tg := loadedNotes(t, "digests")
			mustLoad(t, f, tg, noteRows(1, 40, "x"))
			ctx := testContext(t)
			all := map[int64]uint32{}
			for id := int64(1); id <= 41; id++ {
				all[id] = uint32(queryInt(t, db, "SELECT "+keydigest.Bucket("$1::text", bits), strconv.FormatInt(id, 10)))
			}
			l, err := f.Delta(ctx, tg, true)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Abort()
			if err := l.WriteRow(noteRows(41, 41, "new")[0]); err != nil {
				t.Fatal(err)
			}
			bd := l.(bucketedDelta)
			g, err := bd.KeyDigests(ctx, bits)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for b, d := range g.Buckets {
				if b >= 1<<bits || d.Count == 0 || d.Sum == "" {
					t.Errorf("bucket %d: %+v", b, d)
				}
				n += d.Count
			}
			if n != 41 || g.Hasher == "" {
				t.Fatalf("digests count %d keys (hasher %q), want 41: the staged new row applied first", n, g.Hasher)
			}
			buckets := tc.buckets(all)
			bd.DeleteBuckets(bits, buckets)
			for id := int64(1); id <= 41; id++ {
				if slices.Contains(buckets, all[id]) && !slices.Contains(tc.drop, id) && !tc.none {
					if err := l.WriteKey(keyValue(id)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := l.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			want := tc.want(all, buckets)
			got := queryStrings(t, db, "SELECT id::text AS k FROM "+tg.Name.Quoted()+" ORDER BY id")
			var wantS []string
			for _, id := range want {
				wantS = append(wantS, strconv.FormatInt(id, 10))
			}
			if !slices.Equal(got, wantS) {
				t.Errorf("twin ids after the delta:\n got %v\nwant %v", got, wantS)
			}
			if _, del := l.(interface{ Applied() (int64, int64) }).Applied(); del != int64(41-len(want)) {
				t.Errorf("deleted %d, want %d", del, 41-len(want))
			}
			assertNoLeftovers(t, db)
		})
	}
}

func ids(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}
