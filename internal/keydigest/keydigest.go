// Package keydigest builds the SQL that digests key texts per bucket, the
// same on the source (over the key expression a copy renders) and on the
// twin (over source_primary_key), so that a delta with detect_deletes can
// compare the two sides bucket by bucket and stream only the keys of
// buckets that differ.
//
// A key text's bucket is the low bits of hashtextextended(key COLLATE "C",
// 0); a bucket's digest is the count of its keys and the exact (numeric)
// sum of their hashes. Both sides run the same function on the same bytes,
// which Hasher checks: the server encoding and the hash of a fixed text
// must be equal on both sides, or the digests are not compared at all.
package keydigest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
)

// MinServer is the first PostgreSQL major version with hashtextextended.
const MinServer = 11

// HasherSQL names the hash function and the text encoding of a server:
// two servers whose results are equal bucket and digest the same bytes
// the same way.
const HasherSQL = `SELECT current_setting('server_encoding') || '/' || hashtextextended('nopii key digest', 0)::text`

// hash is the 64-bit hash of a key text, under the C collation so that a
// key column's own (perhaps nondeterministic) collation cannot change it.
func hash(key string) string {
	return "hashtextextended((" + key + ") COLLATE \"C\", 0)"
}

func mask(bits int) string { return strconv.FormatInt(int64(1)<<bits-1, 10) }

// Bucket is the SQL of the bucket, among 1<<bits, of the key text key.
func Bucket(key string, bits int) string {
	return "(" + hash(key) + " & " + mask(bits) + ")::int4"
}

// InBuckets is the SQL condition that the key text key falls in one of
// buckets.
func InBuckets(key string, bits int, buckets []uint32) string {
	var b strings.Builder
	b.WriteString(Bucket(key, bits))
	b.WriteString(" = ANY ('{")
	for i, n := range buckets {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(n), 10))
	}
	b.WriteString("}'::int4[])")
	return b.String()
}

// SQL digests the key texts key of the rows of from (a FROM clause) that
// where (empty, or " WHERE …") selects: one row per non-empty bucket with
// its number, count and hash sum as text.
func SQL(key, from, where string, bits int) string {
	return "SELECT (h & " + mask(bits) + ")::int4, count(*), sum(h)::text FROM (SELECT " + hash(key) + " AS h FROM " + from + where + ") k GROUP BY 1"
}

// Read runs HasherSQL and a digest query on conn. The planner expects a
// group per row, so it would compile the aggregate (JIT) for a query that
// yields a few thousand: jit is switched off for the rest of the caller's
// transaction.
func Read(ctx context.Context, conn *pgx.Conn, sql string) (nopii.KeyDigests, error) {
	d := nopii.KeyDigests{Buckets: map[uint32]nopii.KeyDigest{}}
	if err := conn.QueryRow(ctx, HasherSQL).Scan(&d.Hasher); err != nil {
		return d, fmt.Errorf("hash function: %w", err)
	}
	if _, err := conn.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return d, err
	}
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		var b int32
		var g nopii.KeyDigest
		if err := rows.Scan(&b, &g.Count, &g.Sum); err != nil {
			return d, err
		}
		d.Buckets[uint32(b)] = g
	}
	return d, rows.Err()
}

// Differ returns the buckets, in order, whose digests differ between a
// and b (a bucket empty on one side counts).
func Differ(a, b nopii.KeyDigests) []uint32 {
	var out []uint32
	for n, x := range a.Buckets {
		if b.Buckets[n] != x {
			out = append(out, n)
		}
	}
	for n := range b.Buckets {
		if _, ok := a.Buckets[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
