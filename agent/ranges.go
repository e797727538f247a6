package agent

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// rangeSource is a source that can read a large table's full copy as
// several page ranges at once, each on its own connection in the run's one
// snapshot (source/postgres.Source is one). PageRanges returns nil when
// the table should be read as one stream.
type rangeSource interface {
	PageRanges(ctx context.Context, t *nopii.Table, n int) ([]nopii.PageRange, error)
	CopyPages(ctx context.Context, t *nopii.Table, r nopii.PageRange, row func(values [][]byte) error) (nopii.CopyStats, error)
}

// streams bounds the copy streams of one copyAll to the workflow's
// parallelism: each table in flight holds one token, and a full copy of a
// large table takes more, for page ranges, while others are free.
type streams chan struct{}

func newStreams(n int) streams { return make(streams, n) }

func (s streams) acquire() { s <- struct{}{} }

// tryAcquire takes up to n free tokens without waiting and says how many.
func (s streams) tryAcquire(n int) int {
	got := 0
	for got < n {
		select {
		case s <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

func (s streams) release(n int) {
	for range n {
		<-s
	}
}

// rangeStreams is the most streams that read one table at once: the
// workflow's parallelism when it sets one, else half the cores. Each feed
// takes a table's rows through one writer (the twin's COPY … FREEZE), so
// more readers pay only where reading and redacting are slower than that
// writer: measured on 2 cores, where the source's backends, nopii and the
// twin's backend share the machine, one stream per table was as fast or
// faster (README, Performance).
func rangeStreams(wf *config.Workflow) int {
	if wf.Parallelism > 0 {
		return wf.Parallelism
	}
	return runtime.NumCPU() / 2
}

// parallelLoad is a load that can take a full copy's rows from several
// streams at once, one writer each (the twin: parallel COPY into a shadow
// table). Writers is called before any row; each writer is used by one
// goroutine, and Commit publishes what all of them wrote. A load without
// it gets the rows of every stream through one writer, in turns.
type parallelLoad interface {
	Writers(ctx context.Context, n int) ([]nopii.RowWriter, error)
}

// lockedWriter serialises the streams' rows into a load that takes one
// writer.
type lockedWriter struct {
	mu *sync.Mutex
	w  nopii.RowWriter
}

func (l lockedWriter) WriteRow(values [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.WriteRow(values)
}

// streamWriters gives each of n streams its writers, one per load: the
// load's own for a parallelLoad, else a shared locked one.
func streamWriters(ctx context.Context, loads []nopii.Load, n int) ([][]nopii.RowWriter, error) {
	out := make([][]nopii.RowWriter, n)
	for _, l := range loads {
		ws := make([]nopii.RowWriter, n)
		if pl, ok := l.(parallelLoad); ok {
			var err error
			if ws, err = pl.Writers(ctx, n); err != nil {
				return nil, err
			}
		} else {
			lw := lockedWriter{mu: &sync.Mutex{}, w: l}
			for i := range ws {
				ws[i] = lw
			}
		}
		for i := range out {
			out[i] = append(out[i], ws[i])
		}
	}
	return out, nil
}

// copyResult is what a table's row stream read and handed on.
type copyResult struct {
	stats      nopii.CopyStats
	rows       int64 // handed to the loads
	suppressed int64 // forgotten
	streams    int   // connections that read the rows at once
}

// copyRows streams the selected rows of j's table through path into the
// loads. A full copy (the zero Selection) of a table that the source splits
// into page ranges is read by one stream per range, as many as free stream
// tokens allow; fork gives each extra stream its own row path (redaction
// functions keep scratch state), and each stream writes through its own
// writer of a parallelLoad, or in turns into any other load. Delta and window selections
// stay one stream: they read few rows, through an index.
func copyRows(ctx context.Context, src nopii.Source, j *job, sel nopii.Selection, path *rowPath, loads []nopii.Load,
	fork func() (*rowPath, error), progress func(rows int64)) (copyResult, error) {
	one := func() (copyResult, error) {
		stats, err := src.CopySelect(ctx, j.table, sel, func(vals [][]byte) error {
			if err := path.row(vals); err != nil {
				return err
			}
			if path.rows%progressEvery == 0 {
				progress(path.rows)
			}
			return nil
		})
		return copyResult{stats, path.rows, path.suppressed, 1}, err
	}
	rs, ok := src.(rangeSource)
	full := len(sel.Since) == 0 && len(sel.WindowBy) == 0 && !sel.KeysOnly && sel.Subset == nil && len(sel.References) == 0
	if !ok || !full || j.streams == nil {
		return one()
	}
	// Ask the source first, so that a small table takes no token from a
	// large one; then split into as many ranges as there are free tokens.
	ranges, err := rs.PageRanges(ctx, j.table, min(j.split, cap(j.streams)))
	if err != nil || len(ranges) < 2 {
		if err != nil {
			return copyResult{}, err
		}
		return one()
	}
	extra := j.streams.tryAcquire(len(ranges) - 1)
	defer j.streams.release(extra)
	if extra == 0 {
		return one()
	}
	if extra < len(ranges)-1 {
		if ranges, err = rs.PageRanges(ctx, j.table, extra+1); err != nil {
			return copyResult{}, err
		}
	}
	return copyRanges(ctx, rs, j.table, ranges, path, loads, fork, progress)
}

// copyRanges reads every range at once, one row path and one writer per
// load each (path for the first), and stops them all at the first error.
func copyRanges(ctx context.Context, rs rangeSource, t *nopii.Table, ranges []nopii.PageRange, path *rowPath, loads []nopii.Load,
	fork func() (*rowPath, error), progress func(rows int64)) (copyResult, error) {
	writers, err := streamWriters(ctx, loads, len(ranges))
	if err != nil {
		return copyResult{}, err
	}
	paths := make([]*rowPath, len(ranges))
	for i := range paths {
		p := path
		if i > 0 {
			var err error
			if p, err = fork(); err != nil {
				return copyResult{}, err
			}
		}
		p.loads = writers[i]
		paths[i] = p
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var total atomic.Int64
	stats := make([]nopii.CopyStats, len(ranges))
	errs := make([]error, len(ranges))
	var wg sync.WaitGroup
	for i, r := range ranges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := paths[i]
			stats[i], errs[i] = rs.CopyPages(ctx, t, r, func(vals [][]byte) error {
				if err := p.row(vals); err != nil {
					return err
				}
				if n := total.Add(1); n%progressEvery == 0 {
					progress(n)
				}
				return nil
			})
			if errs[i] != nil {
				cancel(errs[i])
			}
		}()
	}
	wg.Wait()
	res := copyResult{streams: len(ranges)}
	for i, p := range paths {
		res.stats.Rows += stats[i].Rows
		res.stats.Bytes += stats[i].Bytes
		res.rows += p.rows
		res.suppressed += p.suppressed
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return res, err // the first range's error; the others are its echo
	}
	return res, errors.Join(errs...)
}
