package twin

import (
	"context"
	"errors"
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
	"github.com/nopii/nopii/internal/pgconnect"
)

// KeyDigests applies the staged rows now, inside the load's transaction
// (a deferred delta's stage joins the table's keys instead), and digests the table's source_primary_key values per bucket of
// 1<<bits, for the agent to compare with the source's. A twin before
// PostgreSQL 11 returns no Hasher (and no digests): nothing to compare.
func (d *deltaLoad) KeyDigests(ctx context.Context, bits int) (nopii.KeyDigests, error) {
	if d.keys {
		return nopii.KeyDigests{}, errors.New("twin: KeyDigests after WriteKey")
	}
	if err := d.endStream(); err != nil {
		return nopii.KeyDigests{}, err
	}
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	from := "ONLY " + d.target.Name.Quoted()
	switch {
	case !d.target.Deferred:
		if err := d.applyRows(ctx); err != nil {
			return nopii.KeyDigests{}, fmt.Errorf("twin: delta %s: %w", d.target.Name, err)
		}
	case d.staged > 0:
		// The upsert waits for Publish: the keys the table will hold are
		// its own and the stage's new ones.
		from = "(SELECT " + spk + " FROM " + from + " UNION ALL SELECT s." + spk + " FROM " + d.stageName() + " s WHERE NOT EXISTS (SELECT 1 FROM " +
			from + " t WHERE t." + spk + " = s." + spk + ")) u"
	}
	if serverMajor(d.conn) < keydigest.MinServer {
		return nopii.KeyDigests{}, nil
	}
	q := keydigest.SQL(spk, from, "", bits)
	g, err := keydigest.Read(ctx, d.conn, q)
	if err != nil {
		return g, fmt.Errorf("twin: digest keys of %s: %w", d.target.Name, pgconnect.SafeError(err))
	}
	return g, nil
}

// DeleteBuckets narrows the delete detection to the keys in buckets (of
// 1<<bits): the keys written afterwards are the source's keys in those
// buckets, and Commit deletes the rows of those buckets whose key is not
// among them. No buckets: Commit deletes nothing.
func (d *deltaLoad) DeleteBuckets(bits int, buckets []uint32) {
	d.bucketed, d.bucketBits, d.buckets = true, bits, buckets
}
