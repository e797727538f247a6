package agent

import (
	"context"
	"log/slog"
	"math/bits"
	"slices"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
)

// keyDigester is a source that digests its key texts per bucket in the
// run's snapshot (source/postgres).
type keyDigester interface {
	KeyDigests(ctx context.Context, t *nopii.Table, sel nopii.Selection, bits int) (nopii.KeyDigests, error)
}

// bucketedDelta is a delta load that digests its keys per bucket after
// applying the changed rows, and can narrow its anti-join to some buckets
// (the twin).
type bucketedDelta interface {
	KeyDigests(ctx context.Context, bits int) (nopii.KeyDigests, error)
	DeleteBuckets(bits int, buckets []uint32)
}

// deleteDetection finds the rows that left the source (detect_deletes, or
// aged out of the window). Where it can, it compares per-bucket digests of
// the keys on both sides and streams only the keys of the buckets that
// differ; otherwise every key that should remain goes to the loads'
// anti-join.
//
// Digests are compared only where the feeds hold the source's key text as
// it is (no rule on a key column) and both servers hash the same bytes
// the same way (keydigest.HasherSQL). A hash collision can then only make
// a bucket look different (more keys streamed), or, with the odds of two
// 64-bit sums agreeing by chance, keep a deleted row until a later run's
// digests of its bucket differ; a row is deleted only if its key is
// missing from its bucket's streamed keys, which hold every source key of
// that bucket.
type deleteDetection struct {
	src    nopii.Source
	table  *nopii.Table
	sel    nopii.Selection // the keys that should remain: KeysOnly, the window
	deltas []nopii.DeltaLoad
	log    *slog.Logger

	bits     int
	digest   chan digestResult // the source's digests, computed meanwhile; nil: stream every key
	received bool
}

type digestResult struct {
	d   nopii.KeyDigests
	err error
}

// startDeletes returns nil when d detects no deletes. Otherwise, when the
// digests can be compared, it starts the source's digest, which runs
// while the changed rows are copied.
func startDeletes(ctx context.Context, src nopii.Source, t *nopii.Table, d *decision, c *compiled, deltas []nopii.DeltaLoad, log *slog.Logger) *deleteDetection {
	if !d.deletes {
		return nil
	}
	dd := &deleteDetection{src: src, table: t, deltas: deltas, log: log,
		sel: nopii.Selection{KeysOnly: true, WindowSince: d.window, WindowBy: d.windowBy, Subset: d.subset}}
	kd, ok := src.(keyDigester)
	if !ok || c.keyFn != nil {
		return dd
	}
	for _, l := range deltas {
		if _, ok := l.(bucketedDelta); !ok {
			return dd
		}
	}
	dd.bits = bucketBits(t.EstRows)
	dd.digest = make(chan digestResult, 1)
	go func() {
		g, err := kd.KeyDigests(ctx, t, dd.sel, dd.bits)
		dd.digest <- digestResult{g, err}
	}()
	return dd
}

// bucketBits chooses about 128 keys a bucket, between 16 and 16384
// buckets: the digests stay small, and a bucket with a deleted key costs
// streaming about 128 keys.
func bucketBits(estRows int64) int {
	if estRows <= 0 {
		return 10
	}
	return min(14, max(4, bits.Len64(uint64(estRows/128))))
}

// close waits for the source's digest if it still runs (the copy failed).
// It is not cancelled: cancelling a query makes pgx close its connection,
// and the digest runs on the connection the other tables' catalog queries
// share.
func (dd *deleteDetection) close() {
	if dd != nil && dd.digest != nil && !dd.received {
		<-dd.digest
		dd.received = true
	}
}

// finish hands the loads the keys they need: none when every bucket
// agrees, the keys of the buckets that differ, or every key.
func (dd *deleteDetection) finish(ctx context.Context, writeKey func(k []byte) error) error {
	if dd.digest != nil {
		t0 := time.Now()
		buckets, ok, err := dd.differ(ctx)
		if err != nil {
			return err
		}
		if ok {
			dd.log.Debug("deletes: digests compared", "buckets", 1<<dd.bits, "differ", len(buckets), "seconds", time.Since(t0).Seconds())
			for _, l := range dd.deltas {
				l.(bucketedDelta).DeleteBuckets(dd.bits, buckets)
			}
			if len(buckets) == 0 {
				return nil
			}
			sel := dd.sel
			sel.BucketBits, sel.Buckets = dd.bits, buckets
			return dd.stream(ctx, sel, writeKey)
		}
	}
	return dd.stream(ctx, dd.sel, writeKey)
}

// differ compares every load's digests with the source's: ok false means
// they cannot be compared (or too many buckets differ), so every key is
// streamed. The loads apply their changed rows and digest while the
// source's digest still runs.
func (dd *deleteDetection) differ(ctx context.Context) ([]uint32, bool, error) {
	feeds := make([]nopii.KeyDigests, len(dd.deltas))
	for i, l := range dd.deltas {
		g, err := l.(bucketedDelta).KeyDigests(ctx, dd.bits)
		if err != nil {
			return nil, false, err
		}
		feeds[i] = g
	}
	src := <-dd.digest
	dd.received = true
	if src.err != nil || src.d.Hasher == "" {
		dd.log.Debug("deletes: no source digests, every key is streamed", "error", errString(src.err))
		return nil, false, nil
	}
	seen := map[uint32]bool{}
	var all []uint32
	for _, g := range feeds {
		if g.Hasher != src.d.Hasher {
			dd.log.Debug("deletes: source and feed hash differently, every key is streamed")
			return nil, false, nil
		}
		for _, b := range keydigest.Differ(src.d, g) {
			if !seen[b] {
				seen[b] = true
				all = append(all, b)
			}
		}
	}
	if len(all) > (1<<dd.bits)/4 {
		dd.log.Debug("deletes: most buckets differ, every key is streamed", "differ", len(all))
		return nil, false, nil
	}
	slices.Sort(all)
	return all, true, nil
}

func (dd *deleteDetection) stream(ctx context.Context, sel nopii.Selection, writeKey func(k []byte) error) error {
	_, err := dd.src.CopySelect(ctx, dd.table, sel, func(vals [][]byte) error { return writeKey(vals[0]) })
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
