package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// Log keys used across the package.
const (
	LogKeyWorkflow = "workflow"
	LogKeyInput    = "input"
	LogKeyTable    = "table"
	LogKeyError    = "error"
)

// Runner runs workflows. The Open functions are the seam where cmd plugs in
// the PostgreSQL source and the feeds.
type Runner struct {
	// OpenSource opens a snapshot of an input with up to readers parallel readers.
	OpenSource func(ctx context.Context, in *config.Input, readers int) (nopii.Source, error)
	// OpenFeed opens one feed of a workflow.
	OpenFeed func(ctx context.Context, wf *config.Workflow, f *config.Feed) (nopii.Feed, error)
	// OpenSnapshot opens an input like OpenSource, importing an exported
	// snapshot when one is given (mode cdc's first copy).
	OpenSnapshot func(ctx context.Context, in *config.Input, readers int, snapshot string) (nopii.Source, error)
	// OpenReplication opens the logical replication stream of an input's
	// cdc tables.
	OpenReplication func(ctx context.Context, wf *config.Workflow, in *config.Input) (Replicator, error)
	// Retry says how tables whose copy lost a connection are tried again.
	Retry    Retry
	Logger   *slog.Logger
	Observer Observer
	// CDC says what Run does with tables in mode cdc; the zero value is
	// CDCCatchUp.
	CDC CDCMode
}

// CDCMode says what a run does with the tables in mode cdc.
type CDCMode uint8

const (
	// CDCCatchUp streams until the source's WAL position at the start of
	// the stream, then returns (nopii run).
	CDCCatchUp CDCMode = iota
	// CDCFollow runs only the cdc tables and streams until the context
	// ends (the agent's follower).
	CDCFollow
	// CDCSkip leaves the cdc tables out (the agent's scheduled runs, while
	// a follower streams them).
	CDCSkip
)

// DefaultParallelism is the number of tables copied at once when the
// workflow does not say: one per core, at least 2, at most 4.
func DefaultParallelism() int { return min(4, max(2, runtime.NumCPU())) }

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

func (r *Runner) observer() Observer {
	if r.Observer == nil {
		return nopObserver{}
	}
	return r.Observer
}

// Run runs one workflow now and returns its report. A cancelled context
// aborts the tables in flight; feeds keep their previous copies.
func (r *Runner) Run(ctx context.Context, cfg *config.Config, wf *config.Workflow) *Report {
	rep := &Report{Workflow: wf.Name, StartedAt: time.Now().UTC()}
	defer func() {
		rep.FinishedAt = time.Now().UTC()
		rep.Seconds = rep.FinishedAt.Sub(rep.StartedAt).Seconds()
		rep.Status = "success"
		if rep.Failed() {
			rep.Status = "failed"
		}
	}()
	log := r.logger().With(LogKeyWorkflow, wf.Name)
	key := []byte(cfg.HMACKey.Reveal())
	par := wf.Parallelism
	if par <= 0 {
		par = DefaultParallelism()
	}

	t0 := time.Now()
	feeds, err := r.openFeeds(ctx, wf)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	defer closeFeeds(feeds)
	logPhase(log, "open feeds", t0)
	for i := range wf.Inputs {
		in := &wf.Inputs[i]
		if err := r.runInput(ctx, wf, in, feeds, key, par, rep, log.With(LogKeyInput, in.Name)); err != nil {
			rep.Error = joinError(rep.Error, err.Error())
			if ctx.Err() != nil {
				return rep
			}
		}
	}
	return rep
}

func (r *Runner) runInput(ctx context.Context, wf *config.Workflow, in *config.Input, feeds []nopii.Feed, key []byte, par int, rep *Report, log *slog.Logger) error {
	reports, streamed, err := r.attemptInput(ctx, wf, in, feeds, key, par, nil, log)
	reports, err = r.retryLost(ctx, reports, err, log, func(only map[string]bool) ([]TableReport, error) {
		reports, _, err := r.attemptInput(ctx, wf, in, feeds, key, par, only, log)
		return reports, err
	})
	rep.Tables = append(rep.Tables, reports...)
	if err != nil {
		return fmt.Errorf("input %s: %w", in.Name, err)
	}
	if len(streamed) > 0 {
		// The stream runs after the copies, and without their snapshot,
		// whose table locks would block DDL on the source meanwhile.
		if err := r.runCDC(ctx, wf, in, streamed, feeds, key, par, rep, log, r.CDC == CDCFollow); err != nil {
			return fmt.Errorf("input %s: %w", in.Name, err)
		}
	}
	return nil
}

// attemptInput opens a snapshot of the input and copies its tables, or
// those named in only (source schema.table) when only is not nil. It
// returns the tables in mode cdc apart, for the stream (none on a retry).
func (r *Runner) attemptInput(ctx context.Context, wf *config.Workflow, in *config.Input, feeds []nopii.Feed, key []byte, par int, only map[string]bool, log *slog.Logger) ([]TableReport, []*job, error) {
	t0 := time.Now()
	src, err := r.OpenSource(ctx, in, par)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	logPhase(log, "open source", t0)
	t0 = time.Now()
	jobs, err := resolve(ctx, src, in, key)
	if err != nil {
		return nil, nil, err
	}
	logPhase(log, "resolve", t0)
	t0 = time.Now()
	jobs, streamed := splitCDC(jobs)
	switch {
	case r.CDC == CDCSkip, only != nil:
		streamed = nil
	case r.CDC == CDCFollow:
		jobs = nil
	}
	var reports []TableReport
	// Prepare per table, serially (feeds create shared types and schemas):
	// a type that a feed cannot create fails the tables that use it, not
	// the whole input.
	var ready []*job
	for _, j := range jobs {
		if only != nil && !only[j.rel.Name.String()] {
			continue
		}
		if j.err == nil {
			for _, f := range feeds {
				if err := f.Prepare(ctx, []nopii.Target{j.target}); err != nil {
					j.err = fmt.Errorf("prepare %s feed: %w", f.Kind(), err)
					break
				}
			}
		}
		if j.err != nil {
			reports = append(reports, j.report(feeds))
			log.Error("table skipped", LogKeyTable, j.rel.Name.String(), LogKeyError, j.err.Error())
			continue
		}
		ready = append(ready, j)
	}
	logPhase(log, "prepare feeds", t0)
	if ctx.Err() != nil {
		return reports, nil, ctx.Err()
	}
	return append(reports, r.copyAll(ctx, src, feeds, wf, ready, key, par, log)...), streamed, nil
}

// copyAll copies prepared jobs, par at a time.
func (r *Runner) copyAll(ctx context.Context, src nopii.Source, feeds []nopii.Feed, wf *config.Workflow, ready []*job, key []byte, par int, log *slog.Logger) []TableReport {
	results := make([]TableReport, len(ready))
	work := make(chan int)
	pool, split := newStreams(par), rangeStreams(wf)
	for _, j := range ready {
		j.streams, j.split = pool, split
	}
	var wg sync.WaitGroup
	for w := 0; w < min(par, len(ready)); w++ {
		wg.Add(1)
		pool.acquire()
		go func() {
			defer wg.Done()
			defer pool.release(1)
			for i := range work {
				results[i] = r.copyTable(ctx, src, feeds, wf, ready[i], key, log)
			}
		}()
	}
	for i := range ready {
		work <- i
	}
	close(work)
	wg.Wait()
	return results
}

func joinError(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// resolve matches an input's table entries against the source catalog and
// describes every chosen table, checking that the columns named by rules
// exist and that each rule fits its column's type. Per-table problems are
// returned in the jobs; the error is for a catalog that cannot be read.
func resolve(ctx context.Context, src nopii.Source, in *config.Input, key []byte) ([]*job, error) {
	rels, err := src.Relations(ctx)
	if err != nil {
		return nil, err
	}
	jobs := selectRelations(in, rels)
	for _, j := range jobs {
		describe(ctx, src, in, j, key)
	}
	return jobs, nil
}

func (j *job) report(feeds []nopii.Feed) TableReport {
	tr := TableReport{Input: j.input, Table: j.rel.Name.String(), Mode: j.mode, Note: j.note, Redacted: j.redacted}
	if j.inherited.Name != "" {
		tr.Note = "column rules inherited from " + j.inherited.String()
	}
	if j.table != nil {
		tr.Target = j.target.Name.String()
	}
	for _, f := range feeds {
		tr.Feeds = append(tr.Feeds, f.Kind())
	}
	if j.err != nil {
		tr.Error, tr.err = j.err.Error(), j.err
	}
	return tr
}

const progressEvery = 16384

func (r *Runner) copyTable(ctx context.Context, src nopii.Source, feeds []nopii.Feed, wf *config.Workflow, j *job, key []byte, log *slog.Logger) (tr TableReport) {
	tr = j.report(feeds)
	obs := r.observer()
	start := time.Now()
	obs.TableStarted(j.input, tr.Table, j.table.EstRows)
	defer func() {
		tr.Seconds = time.Since(start).Seconds()
		if tr.Seconds > 0 {
			tr.RowsPerSec = float64(tr.Rows) / tr.Seconds
		}
		obs.TableFinished(tr)
		if tr.Error != "" {
			log.Error("table failed", LogKeyTable, tr.Table, LogKeyError, tr.Error)
		} else {
			log.Info("table copied", LogKeyTable, tr.Table, "mode", tr.Mode, "rows", tr.Rows, "bytes", tr.Bytes, "seconds", tr.Seconds)
		}
	}()
	fail := func(err error) TableReport {
		tr.Error, tr.err = err.Error(), err
		return tr
	}
	tlog := log.With(LogKeyTable, tr.Table)
	phase := func(name string, since time.Time) { logPhase(tlog, name, since) }
	t0 := time.Now()
	d, err := decide(ctx, src, feeds, wf, j, time.Now())
	if err != nil {
		return fail(err)
	}
	if j.cdc != nil {
		// mode cdc: the stream asked for this copy, which starts the
		// table's stream; drift and unclassified columns still count.
		d.mode, d.since, d.deletes = "full", nil, false
		if !d.drift {
			d.reason = j.cdc.reason
		}
	}
	phase("decide", t0)
	tr.Mode, tr.Reason, tr.DriftForced = d.mode, d.reason, d.drift
	if len(d.unclassified) > 0 {
		tr.Unclassified = d.findings(j.table)
		if wf.OnUnclassified != config.OnUnclassifiedWarn {
			return fail(d.unclassifiedError(j.table.Name))
		}
		for i, f := range d.unclassified {
			w := fmt.Sprintf("new column %s looks like %s and has no rule: copied as it is (on_unclassified: warn); add %s", d.unclassCols[i], f.Kind, f.Rule)
			tr.Warnings = append(tr.Warnings, w)
			log.Warn("unclassified PII column copied", LogKeyTable, tr.Table, "column", d.unclassCols[i], "kind", f.Kind)
		}
	}
	c, err := compile(j, key)
	if err != nil {
		return fail(err)
	}
	// Cursors come from the same snapshot as the rows: consistent.
	t0 = time.Now()
	cursors, err := newCursors(ctx, src, j)
	if err != nil {
		return fail(err)
	}
	phase("cursors", t0)
	t0 = time.Now()
	target := j.target
	target.State = &nopii.TableState{Workflow: wf.Name, Input: j.input, Table: j.table.Name, Mode: d.mode,
		Fingerprint: j.table.Fingerprint(), Columns: j.table.Shape(), PrimaryKey: j.table.PrimaryKey,
		Cursors: cursors, LastRun: time.Now().UTC()}
	if j.cdc != nil {
		target.State.LSN = j.cdc.lsn.String()
	}
	// Before the loads take the feeds' idle connections: the twin reads the
	// list on the connection its load then uses, instead of opening another.
	forgotten, err := loadForgotten(ctx, feeds, nopii.StateKey{Workflow: wf.Name, Input: j.input, Table: j.table.Name}, key)
	if err != nil {
		return fail(err)
	}
	loads := make([]nopii.Load, 0, len(feeds))
	var deltas []nopii.DeltaLoad
	defer func() {
		for _, l := range loads {
			l.Abort() // a no-op after Commit
		}
	}()
	for _, f := range feeds {
		if d.mode == "delta" {
			l, err := f.Delta(ctx, target, d.deletes)
			if err != nil {
				return fail(err)
			}
			loads = append(loads, l)
			deltas = append(deltas, l)
			continue
		}
		l, err := f.FullCopy(ctx, target)
		if err != nil {
			return fail(err)
		}
		loads = append(loads, l)
	}
	phase("open loads", t0)
	t0 = time.Now()
	path := newRowPath(c, j.table, forgotten, loads)
	dels := startDeletes(ctx, src, j.table, d, c, deltas, tlog)
	defer dels.close()
	sel := nopii.Selection{Since: d.since, WindowSince: d.window, WindowBy: d.windowBy}
	fork := func() (*rowPath, error) {
		c, err := compile(j, key)
		return newRowPath(c, j.table, forgotten.fork(), loads), err
	}
	res, err := copyRows(ctx, src, j, sel, path, loads, fork, func(n int64) { obs.TableProgress(j.input, tr.Table, n) })
	rows := res.rows
	tr.Rows, tr.Bytes, tr.Streams = res.stats.Rows, res.stats.Bytes, res.streams
	if res.suppressed > 0 {
		tr.Forgotten = res.suppressed
	}
	if err == nil && dels != nil {
		// The keys that should remain (all, or those inside the window,
		// but never a forgotten one): the feeds remove the others by an
		// anti-join.
		err = dels.finish(ctx, func(key []byte) error {
			k, err := path.feedKey(key)
			if err != nil {
				return err
			}
			if forgotten.has(k) {
				return nil
			}
			tr.KeysStreamed++
			for _, l := range deltas {
				if err := l.WriteKey(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("cancelled: %w", errors.Join(ctx.Err(), err))
		}
		return fail(err)
	}
	phase("copy", t0)
	t0 = time.Now()
	defer phase("commit", t0)
	target.State.Rows = rows
	for _, l := range loads {
		if err := l.Commit(ctx); err != nil {
			return fail(err)
		}
		if a, ok := l.(interface{ Applied() (int64, int64) }); ok {
			tr.Upserted, tr.Deleted = a.Applied()
		}
	}
	return tr
}

// logPhase logs at debug level how long a phase of a run took: where a
// delta run's time goes, with --log-level debug.
func logPhase(log *slog.Logger, name string, since time.Time) {
	log.Debug("phase", "phase", name, "seconds", time.Since(since).Seconds())
}

// apply runs f on src, appending to *scratch; the result aliases *scratch
// and stays valid while later values are appended (a grown buffer leaves the
// old one to the earlier values).
func apply(f func(dst, src []byte) ([]byte, bool, error), scratch *[]byte, src []byte) ([]byte, error) {
	start := len(*scratch)
	b, null, err := f(*scratch, src)
	if err != nil {
		return nil, err
	}
	*scratch = b
	if null {
		return nil, nil
	}
	return b[start:len(b):len(b)], nil
}
