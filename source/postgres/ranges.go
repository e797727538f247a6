package postgres

import (
	"context"
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// DefaultRangePages is the fewest pages (64 MiB of 8 kB pages) that a page
// range of a split copy gets: a smaller table is read as one stream, whose
// one connection costs less than the split saves.
const DefaultRangePages = 8192

// PageRanges splits a full read of t into at most n ranges of its heap
// pages, for CopyPages on as many connections at once; every row of the
// snapshot is in exactly one range, whatever happens to the table
// meanwhile (the last range is open-ended). It returns nil, meaning "read t
// as one stream", for n < 2, for views, foreign and partitioned tables
// (no heap of their own), for a table smaller than two ranges, and for
// servers before PostgreSQL 14, which have no TID Range Scan (each range
// would read the whole table).
func (s *Source) PageRanges(ctx context.Context, t *nopii.Table, n int) ([]nopii.PageRange, error) {
	if n < 2 || t.View || t.Partitioned {
		return nil, nil
	}
	least := int64(s.opts.RangePages)
	if least == 0 {
		least = DefaultRangePages
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The file's size, not pg_class.relpages (VACUUM's estimate), so the
	// split is even; pg_relation_size needs no privilege.
	var version int
	var pages int64
	err := s.guarded(ctx, func() error {
		return s.main.QueryRow(ctx, `SELECT current_setting('server_version_num')::int,
			pg_relation_size($1::regclass) / current_setting('block_size')::int`, t.Name.Quoted()).Scan(&version, &pages)
	})
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", t.Name, pgconnect.SafeError(err))
	}
	if version < 140000 {
		return nil, nil
	}
	parts := min(int64(n), pages/least)
	if parts < 2 {
		return nil, nil
	}
	out := make([]nopii.PageRange, parts)
	for i := range out {
		out[i] = nopii.PageRange{From: uint32(pages * int64(i) / parts), To: uint32(pages * int64(i+1) / parts)}
	}
	out[len(out)-1].To = 0
	return out, nil
}

// CopyPages is Copy of the rows on the pages of r: a TID Range Scan, which
// reads those pages only.
func (s *Source) CopyPages(ctx context.Context, t *nopii.Table, r nopii.PageRange, row func(values [][]byte) error) (nopii.CopyStats, error) {
	return s.copy(ctx, t, len(t.Columns)+1, CopyPagesSQL(t, r), row)
}

// CopyPagesSQL returns the statement CopyPages runs.
func CopyPagesSQL(t *nopii.Table, r nopii.PageRange) string {
	return copySQL(t, nopii.Selection{}, pageCond(r))
}

func pageCond(r nopii.PageRange) string {
	cond := fmt.Sprintf("ctid >= '(%d,0)'", r.From)
	if r.To != 0 {
		cond += fmt.Sprintf(" AND ctid < '(%d,0)'", r.To)
	}
	return cond
}
