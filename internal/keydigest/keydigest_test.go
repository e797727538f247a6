package keydigest_test

import (
	"slices"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
)

// TestDiffer: a bucket differs when its count or sum differs, or when it
// is empty on one side only.
func TestDiffer(t *testing.T) {
	d := func(m map[uint32]nopii.KeyDigest) nopii.KeyDigests {
		return nopii.KeyDigests{Hasher: "UTF8/1", Buckets: m}
	}
	for _, tc := range []struct {
		name string
		a, b nopii.KeyDigests
		want []uint32
	}{
		{"equal", d(map[uint32]nopii.KeyDigest{1: {Count: 2, Sum: "10"}, 3: {Count: 1, Sum: "-4"}}), d(map[uint32]nopii.KeyDigest{1: {Count: 2, Sum: "10"}, 3: {Count: 1, Sum: "-4"}}), nil},
		{"count", d(map[uint32]nopii.KeyDigest{1: {Count: 2, Sum: "10"}}), d(map[uint32]nopii.KeyDigest{1: {Count: 3, Sum: "10"}}), []uint32{1}},
		{"sum", d(map[uint32]nopii.KeyDigest{1: {Count: 2, Sum: "10"}, 2: {Count: 1, Sum: "5"}}), d(map[uint32]nopii.KeyDigest{1: {Count: 2, Sum: "11"}, 2: {Count: 1, Sum: "5"}}), []uint32{1}},
		{"one side empty", d(map[uint32]nopii.KeyDigest{7: {Count: 1, Sum: "3"}}), d(map[uint32]nopii.KeyDigest{0: {Count: 1, Sum: "8"}}), []uint32{0, 7}},
		{"both empty", d(nil), d(map[uint32]nopii.KeyDigest{}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keydigest.Differ(tc.a, tc.b); !slices.Equal(got, tc.want) {
				t.Errorf("Differ = %v, want %v", got, tc.want)
			}
			if got := keydigest.Differ(tc.b, tc.a); !slices.Equal(got, tc.want) {
				t.Errorf("Differ reversed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSQL: the bucket condition and the digest query hash the key under
// the C collation, with the same mask.
func TestSQL(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{keydigest.InBuckets(`"id"::text`, 4, []uint32{1, 9}), `(hashtextextended(("id"::text) COLLATE "C", 0) & 15)::int4 = ANY ('{1,9}'::int4[])`},
		{keydigest.SQL("k", "ONLY t", " WHERE x", 14), `SELECT (h & 16383)::int4, count(*), sum(h)::text FROM (SELECT hashtextextended((k) COLLATE "C", 0) AS h FROM ONLY t WHERE x) k GROUP BY 1`},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}
