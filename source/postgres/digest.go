package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
	"github.com/nopii/nopii/internal/pgconnect"
)

// KeyDigests digests, per bucket of 1<<bits, the key texts of the rows sel
// selects (its window; cursors and buckets are ignored), in the run's
// snapshot. It runs on the catalog connection, so that it can overlap the
// copy of the changed rows on a reader; a failure (a server before
// PostgreSQL 11 has no hashtextextended) leaves the snapshot usable.
func (s *Source) KeyDigests(ctx context.Context, t *nopii.Table, sel nopii.Selection, bits int) (nopii.KeyDigests, error) {
	sel = nopii.Selection{WindowSince: sel.WindowSince, WindowBy: sel.WindowBy, Subset: sel.Subset}
	q := keydigest.SQL(keyExpr(t), from(t), where(t, sel), bits)
	s.mu.Lock()
	defer s.mu.Unlock()
	var d nopii.KeyDigests
	err := s.guarded(ctx, func() error {
		if sel.Subset.Table(t.Name) != nil {
			if _, err := s.main.Exec(ctx, subsetSettings); err != nil {
				return err
			}
		}
		var err error
		d, err = keydigest.Read(ctx, s.main, q)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("digest keys of %s: %w", t.Name, pgconnect.SafeError(err))
	}
	return d, nil
}

// keyExpr is the SQL of a row's key text, as copies render it.
func keyExpr(t *nopii.Table) string {
	var b strings.Builder
	writeKey(&b, t)
	return b.String()
}

// bucketCond narrows a key stream to the buckets sel names.
func bucketCond(t *nopii.Table, sel nopii.Selection) string {
	return keydigest.InBuckets(keyExpr(t), sel.BucketBits, sel.Buckets)
}
