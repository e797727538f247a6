package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
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
	// Started, when set, is called once the run holds its feeds' run
	// locks, before the first table.
	Started func()
	// Locked, when set, is called when the run did not start because
	// another run of the workflow held a feed's run lock past the
	// workflow's lock_wait; the report's Error says the same.
	Locked func(*nopii.LockedError)
	// LockWait, when set, replaces the workflow's lock_wait: how long a
	// run waits for another run that holds a feed's run lock.
	LockWait time.Duration
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

// run is one workflow run: what every step of it needs, in one value. Its
// methods are the run's steps, in the order they happen: open the feeds,
// then per input (inputRun) resolve the tables, prepare the feeds, and copy
// each table (tableCopy: plan, guard, open the loads, stream the rows,
// commit), then stream the cdc tables; the report is filled in as it goes.
type run struct {
	r     *Runner
	wf    *config.Workflow
	key   []byte // hmac_key
	par   int    // tables (and page-range streams) copied at once
	feeds []nopii.Feed
	log   *slog.Logger
	obs   Observer
	rep   *Report
}

func (r *Runner) newRun(cfg *config.Config, wf *config.Workflow) *run {
	par := wf.Parallelism
	if par <= 0 {
		par = DefaultParallelism()
	}
	return &run{r: r, wf: wf, key: []byte(cfg.HMACKey.Reveal()), par: par,
		log: r.logger().With(LogKeyWorkflow, wf.Name), obs: r.observer(),
		rep: &Report{Workflow: wf.Name, StartedAt: time.Now().UTC()}}
}

// open opens every feed of the workflow; close closes them.
func (rn *run) open(ctx context.Context) error {
	t0 := time.Now()
	feeds, err := rn.r.openFeeds(ctx, rn.wf)
	if err != nil {
		return err
	}
	rn.feeds = feeds
	logPhase(rn.log, "open feeds", t0)
	return nil
}

func (rn *run) close() { closeFeeds(rn.feeds) }

// finish closes the report: its end, duration and status.
func (rn *run) finish() *Report {
	rep := rn.rep
	rep.FinishedAt = time.Now().UTC()
	rep.Seconds = rep.FinishedAt.Sub(rep.StartedAt).Seconds()
	rep.Status = StatusSuccess
	if rep.Failed() {
		rep.Status = StatusFailed
	}
	return rep
}

// Run runs one workflow now and returns its report. A cancelled context
// aborts the tables in flight; feeds keep their previous copies.
func (r *Runner) Run(ctx context.Context, cfg *config.Config, wf *config.Workflow) *Report {
	rn := r.newRun(cfg, wf)
	defer rn.finish()
	if err := rn.open(ctx); err != nil {
		rn.rep.Error = err.Error()
		return rn.rep
	}
	defer rn.close()
	// The agent's cdc follower streams beside the scheduled runs of its
	// workflow, which leave its tables out: its replication slot, which
	// one session at a time can use, keeps it single.
	unlock, err := func() (func(), error) {
		if r.CDC == CDCFollow {
			return func() {}, nil
		}
		wait := wf.LockWait
		if r.LockWait > 0 {
			wait = r.LockWait
		}
		return lockFeeds(ctx, rn.feeds, wf.Name, wait, rn.log)
	}()
	if err != nil {
		rn.rep.Error = err.Error()
		var held *nopii.LockedError
		if errors.As(err, &held) && r.Locked != nil {
			r.Locked(held)
		}
		return rn.rep
	}
	defer unlock()
	if r.Started != nil {
		r.Started()
	}
	for i := range wf.Inputs {
		if err := rn.input(&wf.Inputs[i]).execute(ctx); err != nil {
			rn.rep.Error = joinError(rn.rep.Error, err.Error())
			if ctx.Err() != nil {
				return rn.rep
			}
		}
	}
	return rn.rep
}

// inputRun is one input of a run.
type inputRun struct {
	*run
	in  *config.Input
	log *slog.Logger
	pub *publication // what the publish step needs, from the first attempt's snapshot
}

func (rn *run) input(in *config.Input) *inputRun {
	return &inputRun{run: rn, in: in, log: rn.log.With(LogKeyInput, in.Name)}
}

// result is a table's report with the error behind it, for retry
// decisions.
type result struct {
	TableReport
	err error
}

func reports(rs []result) []TableReport {
	out := make([]TableReport, len(rs))
	for i, r := range rs {
		out[i] = r.TableReport
	}
	return out
}

// execute copies the input's tables, retries those that lost a
// connection, then streams its cdc tables.
func (ir *inputRun) execute(ctx context.Context) error {
	results, streamed, err := ir.attempt(ctx, nil)
	results, err = ir.retryLost(ctx, results, err, func(only map[string]bool) ([]result, error) {
		results, _, err := ir.attempt(ctx, only)
		return results, err
	})
	if err == nil && ctx.Err() == nil {
		// The run's tables become visible together, with their foreign
		// keys and views, once every table is in.
		if perr := ir.publish(ctx, results); perr != nil {
			err = fmt.Errorf("publish: %w", perr)
		}
	} else {
		ir.discard(ctx)
	}
	ir.rep.Tables = append(ir.rep.Tables, reports(results)...)
	if err != nil {
		return fmt.Errorf("input %s: %w", ir.in.Name, err)
	}
	if len(streamed) > 0 {
		// The stream runs after the copies, and without their snapshot,
		// whose table locks would block DDL on the source meanwhile.
		if err := ir.runCDC(ctx, streamed, ir.r.CDC == CDCFollow); err != nil {
			return fmt.Errorf("input %s: %w", ir.in.Name, err)
		}
	}
	return nil
}

// attempt opens a snapshot of the input and copies its tables, or those
// named in only (source schema.table) when only is not nil. It returns the
// tables in mode cdc apart, for the stream (none on a retry).
func (ir *inputRun) attempt(ctx context.Context, only map[string]bool) ([]result, []*job, error) {
	t0 := time.Now()
	src, err := ir.r.OpenSource(ctx, ir.in, ir.par)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	logPhase(ir.log, "open source", t0)
	t0 = time.Now()
	jobs, unmatched, err := resolveAll(ctx, src, ir.in, ir.key, computesGenerated(ir.feeds))
	if err != nil {
		return nil, nil, err
	}
	if only == nil {
		ir.warnUnmatched(unmatched)
	}
	logPhase(ir.log, "resolve", t0)
	jobs, streamed := splitCDC(jobs)
	cdcJobs := streamed
	switch {
	case ir.r.CDC == CDCSkip, only != nil:
		streamed = nil
	case ir.r.CDC == CDCFollow:
		jobs = nil
	}
	if only != nil {
		jobs = slices.DeleteFunc(jobs, func(j *job) bool { return !only[j.rel.Name.String()] })
	}
	results, ready := ir.prepare(ctx, jobs)
	if ctx.Err() != nil {
		return results, nil, ctx.Err()
	}
	if only == nil {
		// What the publish step needs of this snapshot (execute).
		if err := ir.keepForPublish(ctx, src, jobs, cdcJobs); err != nil {
			return results, nil, err
		}
	}
	return append(results, ir.copyAll(ctx, src, ready, ir.par)...), streamed, nil
}

// prepare has every feed prepare each table, serially (feeds create
// shared types and schemas): a type that a feed cannot create fails the
// tables that use it, not the whole input. It returns the failed tables'
// results and the tables ready to copy.
func (ir *inputRun) prepare(ctx context.Context, jobs []*job) ([]result, []*job) {
	t0 := time.Now()
	defer logPhase(ir.log, "prepare feeds", t0)
	var failed []result
	var ready []*job
	for _, j := range jobs {
		if j.err == nil {
			j.err = prepareFeeds(ctx, ir.feeds, j.target)
		}
		if j.err != nil {
			failed = append(failed, j.result(ir.feeds))
			ir.log.Error("table skipped", LogKeyTable, j.rel.Name.String(), LogKeyError, j.err.Error())
			continue
		}
		ready = append(ready, j)
	}
	return failed, ready
}

func prepareFeeds(ctx context.Context, feeds []nopii.Feed, t nopii.Target) error {
	for _, f := range feeds {
		if err := f.Prepare(ctx, []nopii.Target{t}); err != nil {
			return fmt.Errorf("prepare %s feed: %w", f.Kind(), err)
		}
	}
	return nil
}

// copyAll copies prepared jobs from src, par at a time.
func (ir *inputRun) copyAll(ctx context.Context, src nopii.Source, ready []*job, par int) []result {
	results := make([]result, len(ready))
	work := make(chan int)
	pool, split := newStreams(par), rangeStreams(ir.wf)
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
				results[i] = ir.copyTable(ctx, src, ready[i])
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
//
// With omitGenerated (every feed computes stored generated columns), the
// source sends no values for them, and they need no rule.
func resolve(ctx context.Context, src nopii.Source, in *config.Input, key []byte, omitGenerated bool) ([]*job, error) {
	jobs, _, err := resolveAll(ctx, src, in, key, omitGenerated)
	return jobs, err
}

// resolveAll is resolve that also says which of the input's patterns
// choose no table (a misspelt schema would copy nothing, silently).
func resolveAll(ctx context.Context, src nopii.Source, in *config.Input, key []byte, omitGenerated bool) (jobs []*job, unmatched []string, err error) {
	rels, err := src.Relations(ctx)
	if err != nil {
		return nil, nil, err
	}
	jobs = selectRelations(in, rels)
	for _, j := range jobs {
		describe(ctx, src, in, j, key, omitGenerated)
	}
	if _, err := linkSubset(ctx, src, jobs, rels, key, time.Now()); err != nil {
		return nil, nil, err
	}
	peers := map[nopii.TableName]*job{}
	for _, j := range jobs {
		if j.table != nil {
			peers[j.table.Name] = j
		}
	}
	for _, j := range jobs {
		j.peers = peers
	}
	return jobs, unmatchedPatterns(in, rels), nil
}

// warnUnmatched logs the patterns that choose no table.
func (ir *inputRun) warnUnmatched(unmatched []string) {
	for _, u := range unmatched {
		ir.log.Warn("pattern chooses no table", "detail", u)
	}
}

// report is the job's line of the report before it is copied: what
// resolve found, and its error if it cannot be copied.
func (j *job) report(feeds []nopii.Feed) TableReport {
	return j.result(feeds).TableReport
}

func (j *job) result(feeds []nopii.Feed) result {
	tr := TableReport{Input: j.input, Table: j.rel.Name.String(), Mode: j.mode, Note: j.note, Redacted: j.redacted}
	if faithful(feeds) {
		tr.Schema = schemaLines(j.decisions, true)
	}
	if j.inherited.Name != "" {
		tr.Note = "column rules inherited from " + j.inherited.String()
	}
	if j.table != nil {
		tr.Target = j.target.Name.String()
	}
	for _, f := range feeds {
		tr.Feeds = append(tr.Feeds, f.Kind())
	}
	res := result{TableReport: tr}
	if j.err != nil {
		res.Error, res.Outcome, res.err = j.err.Error(), OutcomeFailed, j.err
	}
	return res
}

const progressEvery = 16384

// tableCopy is one table's copy in a run. Its steps (execute) read as the
// copy goes: plan (full or delta, and why), guard (columns without a rule
// that look like PII), open the loads, stream the rows (and the keys that
// detect deletes), commit.
type tableCopy struct {
	*inputRun
	src nopii.Source
	j   *job
	tr  TableReport
	log *slog.Logger

	d         *decision
	c         *compiled
	target    nopii.Target
	forgotten *forgottenSet
	ids       *identifierCheck
	refs      *forgottenRefs
	loads     []nopii.Load
	deltas    []nopii.DeltaLoad
	path      *rowPath
}

// appliedCounter is a load that counts what it applied: rows inserted or
// updated, and rows deleted (a delta's MERGE, a change load).
type appliedCounter interface {
	Applied() (upserted, deleted int64)
}

func (ir *inputRun) copyTable(ctx context.Context, src nopii.Source, j *job) result {
	tc := &tableCopy{inputRun: ir, src: src, j: j, tr: j.report(ir.feeds)}
	tc.log = ir.log.With(LogKeyTable, tc.tr.Table)
	start := time.Now()
	ir.obs.TableStarted(j.input, tc.tr.Table, j.table.EstRows)
	err := tc.execute(ctx)
	tr := tc.tr
	tr.Seconds = time.Since(start).Seconds()
	if tr.Seconds > 0 {
		tr.RowsPerSec = float64(tr.Rows) / tr.Seconds
	}
	var guarded *guardError
	switch {
	case err == nil:
		tr.Outcome = OutcomeCopied
	case errors.As(err, &guarded):
		tr.Outcome = OutcomeGuarded
	default:
		tr.Outcome = OutcomeFailed
	}
	if err != nil {
		tr.Error = err.Error()
	}
	ir.obs.TableFinished(tr)
	if err != nil {
		ir.log.Error("table failed", LogKeyTable, tr.Table, "outcome", tr.Outcome, LogKeyError, tr.Error)
	} else {
		ir.log.Info("table copied", LogKeyTable, tr.Table, "mode", tr.Mode, "rows", tr.Rows, "bytes", tr.Bytes, "seconds", tr.Seconds)
	}
	return result{TableReport: tr, err: err}
}

func (tc *tableCopy) execute(ctx context.Context) error {
	defer tc.abort()
	if err := tc.plan(ctx); err != nil {
		return err
	}
	if err := tc.guard(); err != nil {
		return err
	}
	if err := tc.open(ctx); err != nil {
		return err
	}
	if err := tc.copy(ctx); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("cancelled: %w", errors.Join(ctx.Err(), err))
		}
		return err
	}
	return tc.commit(ctx)
}

// phase logs how long a step took (debug level).
func (tc *tableCopy) phase(name string, since time.Time) { logPhase(tc.log, name, since) }

// plan decides full or delta from the feeds' states.
func (tc *tableCopy) plan(ctx context.Context) error {
	t0 := time.Now()
	d, err := decide(ctx, tc.src, tc.feeds, tc.wf, tc.j, time.Now())
	if err != nil {
		return err
	}
	if tc.j.cdc != nil {
		// mode cdc: the stream asked for this copy, which starts the
		// table's stream; drift and unclassified columns still count.
		d.mode, d.since, d.deletes = ModeFull, nil, false
		if !d.drift {
			d.reason = tc.j.cdc.reason
		}
	}
	tc.phase("decide", t0)
	tc.d = d
	tc.tr.Mode, tc.tr.Reason, tc.tr.DriftForced = d.mode, d.reason, d.drift
	return nil
}

// guard applies on_unclassified to the columns without a rule (guard.go):
// fail and strict write nothing for the table, warn copies it and says so.
func (tc *tableCopy) guard() error {
	d, mode := tc.d, tc.wf.OnUnclassified
	tc.tr.Unclassified = d.findings(tc.j.table)
	if err := d.guardFailure(tc.j, mode); err != nil {
		return err
	}
	for _, u := range d.flagged(false) {
		w := fmt.Sprintf("column %s looks like %s and has no rule: copied as it is (on_unclassified: warn); add %s", u.column.Name, u.finding.Kind, u.suggestion())
		tc.tr.Warnings = append(tc.tr.Warnings, w)
		tc.log.Warn("unclassified PII column copied", "column", u.column.Name, "kind", u.finding.Kind)
	}
	return nil
}

// open compiles the rules, computes the cursors to save, reads the
// suppression list and opens one load per feed.
func (tc *tableCopy) open(ctx context.Context) error {
	j, d := tc.j, tc.d
	c, err := compile(j, tc.key)
	if err != nil {
		return err
	}
	tc.c = c
	// Cursors come from the same snapshot as the rows: consistent.
	t0 := time.Now()
	cursors, err := newCursors(ctx, tc.src, j)
	if err != nil {
		return err
	}
	tc.phase("cursors", t0)
	t0 = time.Now()
	tc.target = j.target
	tc.target.State = &nopii.TableState{Workflow: tc.wf.Name, Input: j.input, Table: j.table.Name, Mode: string(d.mode),
		Fingerprint: j.table.Fingerprint(), Columns: j.table.Shape(), PrimaryKey: j.table.PrimaryKey,
		Cursors: cursors, LastRun: time.Now().UTC(), SchemaDigest: j.table.Schema.Digest()}
	if j.cdc != nil {
		tc.target.State.LSN = j.cdc.lsn.String()
	}
	tc.target.Deferred = tc.deferred(j)
	// Before the loads take the feeds' idle connections: the twin reads the
	// list on the connection its load then uses, instead of opening another.
	if tc.forgotten, err = loadForgotten(ctx, tc.feeds, tc.stateKey(), tc.key); err != nil {
		return err
	}
	if tc.ids, err = j.identifiers(ctx, tc.feeds, tc.wf.Name, tc.key); err != nil {
		return err
	}
	if tc.refs, err = tc.forgottenRefs(ctx); err != nil {
		return err
	}
	tc.loads = make([]nopii.Load, 0, len(tc.feeds))
	for _, f := range tc.feeds {
		if d.mode == ModeDelta {
			l, err := f.Delta(ctx, tc.target, d.deletes)
			if err != nil {
				return err
			}
			tc.loads = append(tc.loads, l)
			tc.deltas = append(tc.deltas, l)
			continue
		}
		l, err := f.FullCopy(ctx, tc.target)
		if err != nil {
			return err
		}
		tc.loads = append(tc.loads, l)
	}
	tc.phase("open loads", t0)
	return nil
}

func (tc *tableCopy) stateKey() nopii.StateKey {
	return nopii.StateKey{Workflow: tc.wf.Name, Input: tc.j.input, Table: tc.j.table.Name}
}

// abort aborts the loads not committed (a no-op after Commit).
func (tc *tableCopy) abort() {
	for _, l := range tc.loads {
		l.Abort()
	}
}

// copy streams the selected rows through the row path into the loads and,
// for a delta that detects deletes, the keys that should remain.
func (tc *tableCopy) copy(ctx context.Context) error {
	t0 := time.Now()
	j, d := tc.j, tc.d
	tc.path = newRowPath(tc.c, j.table, tc.forgotten, tc.loads)
	tc.path.ids, tc.path.refs = tc.ids, tc.refs
	dels := startDeletes(ctx, tc.src, j.table, d, tc.c, tc.deltas, tc.log)
	defer dels.close()
	sel := nopii.Selection{Since: d.since, WindowSince: d.window, WindowBy: d.windowBy, References: tc.refs.columns()}
	if err := tc.selectSubset(ctx, &sel); err != nil {
		return err
	}
	fork := func() (*rowPath, error) {
		c, err := compile(j, tc.key)
		p := newRowPath(c, j.table, tc.forgotten.fork(), tc.loads)
		p.ids = tc.ids.fork()
		return p, err
	}
	res, err := copyRows(ctx, tc.src, j, sel, tc.path, tc.loads, fork, func(n int64) { tc.obs.TableProgress(j.input, tc.tr.Table, n) })
	tc.tr.Rows, tc.tr.Bytes, tc.tr.Streams = res.stats.Rows, res.stats.Bytes, res.streams
	if res.suppressed > 0 {
		tc.tr.Forgotten = res.suppressed
	}
	if n := tc.path.unlinked; n > 0 {
		tc.tr.Note = joinNote(tc.tr.Note, fmt.Sprintf("%d rows named rows forgotten by subject requests: those references are NULL", n))
	}
	tc.target.State.Rows = res.rows
	if err == nil && dels != nil {
		err = dels.finish(ctx, tc.remainingKey)
	}
	if err != nil {
		return err
	}
	tc.phase("copy", t0)
	return nil
}

// remainingKey hands the delta loads a source key that should remain (all,
// or those inside the window, but never a forgotten one): the feeds remove
// the others by an anti-join.
func (tc *tableCopy) remainingKey(key []byte) error {
	k, err := tc.path.feedKey(key)
	if err != nil {
		return err
	}
	if tc.forgotten.has(k) {
		return nil
	}
	tc.tr.KeysStreamed++
	for _, l := range tc.deltas {
		if err := l.WriteKey(k); err != nil {
			return err
		}
	}
	return nil
}

// commit publishes the table in every feed, with its state.
func (tc *tableCopy) commit(ctx context.Context) error {
	t0 := time.Now()
	defer tc.phase("commit", t0)
	for _, l := range tc.loads {
		if err := l.Commit(ctx); err != nil {
			return err
		}
		if a, ok := l.(appliedCounter); ok {
			up, del := a.Applied()
			addApplied(&tc.tr, up, del)
		}
		if n, ok := l.(schemaNoter); ok {
			tc.tr.Schema = append(tc.tr.Schema, n.Notes()...)
		}
	}
	return nil
}

// addApplied counts what one feed applied. With several feeds the report
// gives the most any of them did: a lake writes every row it gets, a twin
// skips rows that did not change.
func addApplied(tr *TableReport, upserted, deleted int64) {
	tr.Upserted, tr.Deleted = max(tr.Upserted, upserted), max(tr.Deleted, deleted)
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
