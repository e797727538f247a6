package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/human"
)

// Replicator is a logical replication stream of one input's cdc tables
// (source/postgres.Replication).
type Replicator interface {
	// CheckTable refuses a table whose changes cannot be applied.
	CheckTable(ctx context.Context, t *nopii.Table) error
	// Ensure makes the publication hold exactly tables and creates the
	// slot if needed.
	Ensure(ctx context.Context, tables []nopii.TableName) (nopii.SlotStart, error)
	// CurrentLSN returns the source's WAL insert position.
	CurrentLSN(ctx context.Context) (nopii.LSN, error)
	// SlotLag returns the WAL the slot retains and how far its confirmed
	// position is behind the source, in bytes.
	SlotLag(ctx context.Context) (retained, behind int64, err error)
	// Register sets the description a table's changes are decoded with.
	Register(t *nopii.Table) error
	// Start starts streaming at from.
	Start(ctx context.Context, from nopii.LSN) error
	// Next returns the next change; its values are valid until the next call.
	Next(ctx context.Context) (*nopii.Change, error)
	// Confirm lets the source free the WAL before lsn.
	Confirm(lsn nopii.LSN) error
	// Refetch reads the source's current values of columns cols[i] of
	// rows[i] (a row of the described columns with its key columns set) by
	// key into rows[i]; found[i] is false when the source has no such row.
	Refetch(ctx context.Context, name nopii.TableName, cols [][]int, rows [][][]byte) (found []bool, err error)
	Close() error
}

// Lag is how far a stream is behind its source.
type Lag struct {
	Bytes    int64   // WAL written since the position the stream confirmed
	Seconds  float64 // since the commit of the oldest source transaction not applied yet; 0 when caught up
	Retained int64   // WAL the slot keeps on the source's disk
	WALWarn  int64   // the input's slot_wal_warn: Retained past it is warned of
}

// LagObserver is an Observer that also hears, every few seconds, how far
// each input's stream is behind.
type LagObserver interface {
	StreamLag(input string, lag Lag)
}

// cdcCopy marks a job's full copy as the start of its stream: the state
// gets lsn, from which the stream resumes.
type cdcCopy struct {
	lsn    nopii.LSN
	reason string
}

// Batch bounds: a batch is applied at a commit once it holds maxBatch
// changes or is flushAfter old (flushEarly when no batch is in flight:
// due), and in the middle of a huge source
// transaction at 2×maxBatch (its LSN is then not confirmed until its end).
const (
	maxBatch   = 20000
	flushAfter = 250 * time.Millisecond
	flushEarly = 50 * time.Millisecond
)

// splitCDC separates the jobs of mode cdc that resolved without error.
func splitCDC(jobs []*job) (rest, cdc []*job) {
	for _, j := range jobs {
		if j.err == nil && j.entry != nil && j.entry.EffectiveMode() == config.ModeCDC {
			cdc = append(cdc, j)
			continue
		}
		rest = append(rest, j)
	}
	return rest, cdc
}

// stream is one input's cdc run: its tables, the batch being built, and
// where the stream stands.
type stream struct {
	*inputRun // par: tables of a batch applied at once
	changes   []nopii.ChangeFeed
	rp        Replicator
	tables    map[nopii.TableName]*streamTable

	applied   nopii.LSN // end of the last source transaction applied to every feed
	pending   int       // changes in the batch
	started   time.Time // of the batch
	committed nopii.LSN // end of the last transaction in the batch
	commitAt  time.Time
	scratch   []byte
	out       [][]byte
	vals      [][]byte
	txStart   nopii.LSN     // ChangeBegin's: where the current transaction's commit starts
	inflight  *batch        // being applied
	caughtUp  bool          // the last news was ChangeIdle with nothing pending
	oldest    time.Time     // commit time of the oldest transaction in the batch
	lagAt     time.Time     // of the last lag report
	keysAt    nopii.LSN     // publish the tables again once everything up to here is applied (publishWhenCaughtUp)
	subset    *nopii.Subset // the input's referential subset, kept current by the stream (cdcsubset.go)
}

type streamTable struct {
	// copied is the LSN of a copy made by this run: transactions that
	// committed before it are in the copy, and their changes (and their
	// schema, which may be older) are skipped.
	copied   nopii.LSN
	j        *job
	c        *compiled
	ids      *identifierCheck // forgotten identifiers, read when the table started streaming
	index    map[string]int   // key → ops
	ops      []change
	truncate bool
	partial  bool // some ops wait for refetch
	tr       TableReport
	// copiedRows are the rows of this run's copy of the table, in tr.Rows
	// with the changes streamed after it.
	copiedRows int64

	// The table's suppression list (SPEC §7), read again every
	// forgottenRefresh by the goroutine that applies batches.
	forgotten   *forgottenSet
	forgottenAt time.Time

	// Its foreign keys to tables with forgotten rows (forgotrefs.go), read
	// again every forgottenRefresh by the goroutine that decodes: a row
	// that references a forgotten row has the reference set to NULL, or
	// stays out, as in a copy.
	refs   *forgottenRefs
	refCol [][]int
	refsAt time.Time
}

// unlink applies the table's references to forgotten rows to a row: raw,
// its source values and key; out, redacted. keep is false for a row that
// must stay out (it references a forgotten row through NOT NULL columns).
func (s *stream) unlink(ctx context.Context, t *streamTable, raw, out [][]byte) (keep bool, err error) {
	if time.Since(t.refsAt) > forgottenRefresh {
		refs, err := loadForgottenRefs(ctx, s.feeds, s.wf.Name, t.j, s.key)
		if err != nil {
			return false, err
		}
		t.refs, t.refCol, t.refsAt = refs, nil, time.Now()
		if refs != nil {
			for _, r := range refs.refs {
				t.refCol = append(t.refCol, r.cols)
			}
		}
	}
	if t.refs == nil {
		return true, nil
	}
	rk, ok := s.rp.(referenceKeyer)
	if !ok {
		return false, errors.New("mode cdc: this source cannot render the keys rows reference")
	}
	keys, err := rk.ReferenceKeys(ctx, t.j.table.Name, t.refCol, raw)
	if err != nil {
		return false, err
	}
	keep, _, err = t.refs.apply(keys, out)
	return keep, err
}

// referenceKeyer is a replication that renders the keys a row references
// (source/postgres).
type referenceKeyer interface {
	ReferenceKeys(ctx context.Context, name nopii.TableName, refs [][]int, values [][]byte) ([][]byte, error)
}

// forgottenRefresh bounds how long a streamed table goes on with a
// suppression list older than a subject request: after a forget, the
// subject's changes stop reaching the feeds within this time.
const forgottenRefresh = 5 * time.Second

// change is one collapsed change: the last one of its key in the batch.
type change struct {
	key string
	row [][]byte // nil: delete
	// An upsert waiting for refetch: the source row (values and key) with
	// the columns unchanged not sent; row is nil until then.
	raw       [][]byte
	unchanged []int
	skip      bool // nothing to apply (refetch found the row gone)
}

// runCDC runs an input's cdc tables: publication and slot, a full copy of
// the tables that need one (from the new slot's snapshot on the first run),
// then the stream. Without follow it stops once it has applied everything
// the source had written when the stream started.
func (ir *inputRun) runCDC(ctx context.Context, jobs []*job, follow bool) error {
	if ir.r.OpenReplication == nil {
		return errors.New("mode cdc: this build has no replication support")
	}
	s := &stream{inputRun: ir, tables: map[nopii.TableName]*streamTable{}}
	if !s.changeFeeds(jobs) {
		return nil
	}
	rp, err := ir.r.OpenReplication(ctx, ir.wf, ir.in)
	if err != nil {
		return err
	}
	defer rp.Close()
	s.rp = rp
	ok := s.check(ctx, jobs)
	if len(ok) == 0 {
		return nil
	}
	from, err := s.start(ctx, ok)
	if err != nil || len(s.tables) == 0 {
		return err
	}
	until, err := rp.CurrentLSN(ctx)
	if err != nil {
		return err
	}
	if err := rp.Start(ctx, from); err != nil {
		return err
	}
	s.applied = from
	s.log.Info("streaming", "slot_from", from.String(), "until", until.String(), "follow", follow)
	streamed := time.Now()
	err = s.run(ctx, until, follow)
	if follow && ctx.Err() != nil {
		// The agent stopping (or reloading) ends a follower's stream: the
		// stream stops where it got, which is no failure; the next one
		// resumes from the state's LSN.
		s.log.Info("stream stopped", "applied", s.applied.String())
		err = nil
	}
	for _, t := range s.tables {
		// Seconds and rows/s of the copy and the stream together.
		t.tr.Seconds += time.Since(streamed).Seconds()
		if t.tr.Seconds > 0 {
			t.tr.RowsPerSec = float64(t.tr.Rows) / t.tr.Seconds
		}
		t.tr.Note = fmt.Sprintf("%s streamed to %s", human.Count(int(t.tr.Rows-t.copiedRows), "change"), s.applied)
		if t.copiedRows > 0 || t.tr.Reason != "" {
			t.tr.Note = fmt.Sprintf("%s copied, then %s", human.Count(int(t.copiedRows), "row"), t.tr.Note)
		}
		if err != nil {
			t.tr.Error, t.tr.Outcome = err.Error(), OutcomeFailed
		}
		s.rep.Tables = append(s.rep.Tables, t.tr)
	}
	return err
}

// skip reports a cdc table that will not stream.
func (s *stream) skip(j *job, err error) {
	j.err = err
	s.rep.Tables = append(s.rep.Tables, j.report(s.feeds))
	s.log.Error("table skipped", LogKeyTable, j.rel.Name.String(), LogKeyError, err.Error())
}

// changeFeeds takes every feed's change loads; a feed that has none fails
// every cdc table, and changeFeeds returns false.
func (s *stream) changeFeeds(jobs []*job) bool {
	for _, f := range s.feeds {
		cf, ok := f.(nopii.ChangeFeed)
		if !ok {
			for _, j := range jobs {
				s.skip(j, fmt.Errorf("the %s feed does not take mode cdc yet: use mode full or delta for this table, or a twin feed", f.Kind()))
			}
			return false
		}
		s.changes = append(s.changes, cf)
	}
	return true
}

// check returns the tables whose changes can be applied; the others are
// reported failed.
func (s *stream) check(ctx context.Context, jobs []*job) []*job {
	var ok []*job
	for _, j := range jobs {
		if err := s.rp.CheckTable(ctx, j.table); err != nil {
			s.skip(j, err)
			continue
		}
		ok = append(ok, j)
	}
	return ok
}

// start makes the publication and slot hold the tables, copies those that
// need a full copy first (from the new slot's snapshot on the first run),
// and adds every table that may stream. It returns where the stream
// resumes.
func (s *stream) start(ctx context.Context, ok []*job) (nopii.LSN, error) {
	names := make([]nopii.TableName, len(ok))
	for i, j := range ok {
		names[i] = j.table.Name
	}
	start, err := s.rp.Ensure(ctx, names)
	if err != nil {
		return 0, err
	}
	from, copies, err := s.plan(ctx, ok, start)
	if err != nil {
		return 0, err
	}
	var first *Report
	if len(copies) > 0 {
		lsn, reason := start.LSN, "cdc: first copy, from the new replication slot's snapshot"
		if !start.Created {
			// Any snapshot taken after lsn will do: changes between lsn and
			// the snapshot are replayed on it, idempotently by key.
			if lsn, err = s.rp.CurrentLSN(ctx); err != nil {
				return 0, err
			}
			reason = "cdc: full copy before streaming (new table, schema change, or no stream position)"
		}
		// The copies' rows go into the rows of the tables they start
		// streaming (firstCopy): one row a table in the report.
		first = &Report{}
		defer func() { s.rep.Tables = append(s.rep.Tables, first.Tables...) }()
		copied, err := s.copy(ctx, copies, start.Snapshot, lsn, reason, s.par, first)
		if err != nil {
			return 0, err
		}
		if len(copied) < len(copies) {
			// A table that failed its copy must not stream: its rows would
			// be changes to a copy it does not have.
			ok = slices.DeleteFunc(ok, func(j *job) bool { return slices.Contains(copies, j) && !slices.Contains(copied, j) })
		}
		if from == 0 || lsn < from {
			from = lsn
		}
	}
	for _, j := range ok {
		if err := s.add(ctx, j); err != nil {
			return 0, err
		}
		if j.cdc != nil {
			s.tables[j.table.Name].copied = j.cdc.lsn
		}
	}
	if len(copies) > 0 {
		if start.Created {
			// One snapshot for every table: consistent now.
			s.publishStreamed(ctx)
		} else if err := s.publishWhenCaughtUp(ctx); err != nil {
			return 0, err
		}
	}
	if first != nil {
		first.Tables = slices.DeleteFunc(first.Tables, func(tr TableReport) bool {
			for _, t := range s.tables {
				if t.tr.Table == tr.Table && tr.Error == "" {
					t.firstCopy(tr)
					return true
				}
			}
			return false
		})
	}
	return from, nil
}

// firstCopy folds the report of the full copy that started a table's
// stream into the table's row: what it copied, and why.
func (t *streamTable) firstCopy(c TableReport) {
	t.tr.Reason, t.tr.DriftForced, t.tr.Outcome = c.Reason, c.DriftForced, c.Outcome
	t.tr.Rows, t.tr.Bytes, t.tr.Seconds, t.tr.RowsPerSec, t.tr.Streams = c.Rows, c.Bytes, c.Seconds, c.RowsPerSec, c.Streams
	t.tr.Forgotten, t.tr.Unclassified = c.Forgotten, c.Unclassified
	t.tr.Warnings = append(c.Warnings, t.tr.Warnings...)
	t.copiedRows = c.Rows
}

// plan reads the feeds' states: where the stream resumes, and the tables
// that need a full copy first.
func (s *stream) plan(ctx context.Context, jobs []*job, start nopii.SlotStart) (from nopii.LSN, copies []*job, err error) {
	for _, j := range jobs {
		if start.Created || slices.Contains(start.Added, j.table.Name) {
			copies = append(copies, j)
			continue
		}
		need := false
		for _, f := range s.feeds {
			st, err := f.State(ctx, nopii.StateKey{Workflow: s.wf.Name, Input: s.in.Name, Table: j.rel.Name})
			if err != nil {
				return 0, nil, err
			}
			if st == nil || st.LSN == "" || st.Fingerprint != j.table.Fingerprint() {
				need = true
				break
			}
			lsn, err := nopii.ParseLSN(st.LSN)
			if err != nil {
				return 0, nil, fmt.Errorf("state of %s: %w", j.rel.Name, err)
			}
			if from == 0 || lsn < from {
				from = lsn
			}
		}
		if need {
			copies = append(copies, j)
		}
	}
	return from, copies, nil
}

// copy fully copies jobs from a snapshot (the slot's, or a fresh one when
// snapshot is empty), each state saying that its stream starts at lsn. It
// returns the jobs copied.
func (s *stream) copy(ctx context.Context, jobs []*job, snapshot string, lsn nopii.LSN, reason string, par int, rep *Report) ([]*job, error) {
	src, err := s.r.OpenSnapshot(ctx, s.in, par, snapshot)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var ready []*job
	for _, old := range jobs {
		// Described again in this snapshot: it may be newer than the run's.
		j := &job{input: old.input, rel: old.rel, entry: old.entry, cdc: &cdcCopy{lsn: lsn, reason: reason}, subset: old.subset, refs: old.refs, peers: old.peers}
		describe(ctx, src, s.in, j, s.key, false)
		if j.err == nil {
			j.err = s.rp.CheckTable(ctx, j.table)
		}
		if j.err == nil {
			j.err = prepareFeeds(ctx, s.feeds, j.target)
		}
		if j.err != nil {
			rep.Tables = append(rep.Tables, j.report(s.feeds))
			s.log.Error("table skipped", LogKeyTable, j.rel.Name.String(), LogKeyError, j.err.Error())
			continue
		}
		ready = append(ready, j)
	}
	results := s.copyAll(ctx, src, ready, par)
	rep.Tables = append(rep.Tables, reports(results)...)
	var copied []*job
	for i, tr := range results {
		if tr.Error == "" {
			*findJob(jobs, ready[i].rel.Name) = *ready[i]
			copied = append(copied, findJob(jobs, ready[i].rel.Name))
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return copied, nil
}

func findJob(jobs []*job, name nopii.TableName) *job {
	for _, j := range jobs {
		if j.rel.Name == name {
			return j
		}
	}
	return nil
}

// add starts streaming a table.
func (s *stream) add(ctx context.Context, j *job) error {
	c, err := compile(j, s.key)
	if err != nil {
		return err
	}
	ids, err := j.identifiers(ctx, s.feeds, s.wf.Name, s.key)
	if err != nil {
		return err
	}
	if j.subset != nil {
		if c.keyFn != nil {
			return fmt.Errorf("table %s: a rule changes its key, and the stream finds a subset's rows in the source by the twin's keys", j.table.Name)
		}
		s.subset = j.subset
	}
	if err := s.rp.Register(j.table); err != nil {
		return err
	}
	tr := j.report(s.feeds)
	tr.Mode, tr.Outcome = ModeCDC, OutcomeCopied
	if s.pub != nil {
		tr.Schema = s.pub.notes[j.table.Name]
	}
	s.tables[j.table.Name] = &streamTable{j: j, c: c, ids: ids, index: map[string]int{}, tr: tr}
	return nil
}

func (s *stream) run(ctx context.Context, until nopii.LSN, follow bool) (err error) {
	defer func() {
		// A batch in flight finishes (or fails) before the run ends.
		if werr := s.wait(); err == nil {
			err = werr
		}
		if err == nil {
			err = s.publishDue(ctx, s.applied)
		}
	}()
	for {
		c, err := s.rp.Next(ctx)
		if err != nil {
			return err
		}
		if err := s.poll(); err != nil {
			return err
		}
		if err := s.publishDue(ctx, s.applied); err != nil {
			return err
		}
		if time.Since(s.lagAt) >= 5*time.Second {
			s.reportLag(ctx)
		}
		switch c.Kind {
		case nopii.ChangeBegin:
			s.txStart = c.LSN
		case nopii.ChangeUpsert, nopii.ChangeDelete, nopii.ChangeTruncate:
			if err := s.add1(ctx, c); err != nil {
				return err
			}
			if s.pending >= 2*maxBatch {
				if err := s.flush(ctx, false); err != nil {
					return err
				}
			}
		case nopii.ChangeCommit:
			s.committed, s.commitAt, s.caughtUp = c.LSN, c.Time, false
			if s.oldest.IsZero() {
				s.oldest = c.Time
			}
			done := !follow && c.LSN >= until
			if s.pending >= maxBatch || (s.pending > 0 && s.due()) || done {
				if err := s.flush(ctx, done); err != nil {
					return err
				}
			}
			if done {
				return nil
			}
		case nopii.ChangeIdle:
			// The server sends one whenever it has sent everything so far
			// and waits for more, with a source committing one transaction
			// at a time as often as after each: the batch goes by age, as
			// at a commit, not at once.
			end := !follow && c.LSN >= until
			if s.pending > 0 && (end || s.due()) {
				if err := s.flush(ctx, end); err != nil {
					return err
				}
			}
			if err := s.poll(); err != nil {
				return err
			}
			s.caughtUp = s.pending == 0 && s.inflight == nil
			if s.caughtUp && c.LSN > s.applied {
				// Nothing of ours in between: let the slot free that WAL.
				if err := s.rp.Confirm(c.LSN); err != nil {
					return err
				}
			}
			if s.caughtUp {
				if err := s.publishDue(ctx, c.LSN); err != nil {
					return err
				}
			}
			if end {
				return nil
			}
		case nopii.ChangeDrift:
			if err := s.drift(ctx, c.Table); err != nil {
				return err
			}
		}
	}
}

// due reports whether the batch should be applied now, at a commit: when
// it is flushAfter old, or flushEarly old and no batch is in flight (the
// feeds are free; batches grow by themselves while one is slow, and
// flushEarly bounds the batches a second when the stream trickles).
func (s *stream) due() bool {
	if err := s.poll(); err != nil {
		return true // flush reports it
	}
	age := time.Since(s.started)
	return age >= flushAfter || (s.inflight == nil && age >= flushEarly)
}

// add1 redacts a change through the copy's row path and collapses it into
// the batch: the last change of a key wins.
func (s *stream) add1(ctx context.Context, c *nopii.Change) error {
	t := s.tables[c.Table]
	if t == nil || s.txStart < t.copied {
		return nil
	}
	if s.pending == 0 {
		s.started = time.Now()
	}
	s.pending++
	if c.Kind == nopii.ChangeTruncate {
		t.truncate, t.ops = true, t.ops[:0]
		clear(t.index)
		return nil
	}
	n := len(t.j.table.Columns)
	if c.Kind == nopii.ChangeDelete {
		k, err := t.c.redactKey(c.Key, &s.scratch)
		if err != nil {
			return fmt.Errorf("table %s: %w", c.Table, err)
		}
		t.put(change{key: string(k)})
		return nil
	}
	if c.OldKey != nil {
		k, err := t.c.redactKey(c.OldKey, &s.scratch)
		if err != nil {
			return fmt.Errorf("table %s: %w", c.Table, err)
		}
		t.put(change{key: string(k)})
	}
	s.vals = append(append(s.vals[:0], c.Values...), c.Key)
	if t.ids.forgotten(s.vals) {
		// A forgotten subject's row, in a table copied after the request:
		// kept out, as a delete.
		k, err := t.c.redactKey(c.Key, &s.scratch)
		if err != nil {
			return fmt.Errorf("table %s: %w", c.Table, err)
		}
		t.put(change{key: string(k)})
		return nil
	}
	if len(c.Unchanged) > 0 {
		// An update that left large values unchanged, which the stream did
		// not send. Within a batch the key's last row has them; otherwise
		// they are read again from the source when the batch is flushed.
		k, err := t.c.redactKey(c.Key, &s.scratch)
		if err != nil {
			return fmt.Errorf("table %s: %w", c.Table, err)
		}
		if i, ok := t.index[string(k)]; !ok || t.ops[i].row == nil {
			t.put(change{key: string(k), raw: pack(s.vals), unchanged: slices.Clone(c.Unchanged)})
			t.partial = true
			return nil
		}
	}
	if cap(s.out) < n+1 {
		s.out = make([][]byte, n+1)
	}
	out := s.out[:n+1]
	if err := t.c.redactRow(t.j.table, s.vals, out, &s.scratch); err != nil {
		return fmt.Errorf("table %s: %w", c.Table, err)
	}
	if len(c.Unchanged) > 0 {
		prev := t.ops[t.index[string(out[n])]].row
		for _, i := range c.Unchanged {
			out[i] = prev[i] // redacted by the same rule
		}
	}
	if keep, err := s.unlink(ctx, t, s.vals, out); err != nil || !keep {
		if err != nil {
			return fmt.Errorf("table %s: %w", c.Table, err)
		}
		t.put(change{key: string(out[n])}) // a forgotten subject's row: as a delete
		return nil
	}
	row := pack(out)
	t.put(change{key: string(row[n]), row: row})
	return nil
}

// pack copies values into one allocation.
func pack(values [][]byte) [][]byte {
	size := 0
	for _, v := range values {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	row := make([][]byte, len(values))
	for i, v := range values {
		if v != nil {
			start := len(buf)
			buf = append(buf, v...)
			row[i] = buf[start:len(buf):len(buf)]
		}
	}
	return row
}

func (t *streamTable) put(c change) {
	if i, ok := t.index[c.key]; ok {
		t.ops[i] = c
		return
	}
	t.index[c.key] = len(t.ops)
	t.ops = append(t.ops, c)
}

// refetch completes the batch's rows whose unchanged large values the
// stream did not send, with the source's current values, redacted by the
// row path: one round trip per table. A row the source no longer has is
// left as the feeds hold it (its delete comes later in the stream). Values read
// now may be newer than the change; the stream brings the changes that
// made them next, so the feeds converge, as after a replay.
func (s *stream) refetch(ctx context.Context) error {
	for name, t := range s.tables {
		if !t.partial {
			continue
		}
		t.partial = false
		var idx []int
		var cols [][]int
		var rows [][][]byte
		for i, c := range t.ops {
			if c.raw != nil {
				idx, cols, rows = append(idx, i), append(cols, c.unchanged), append(rows, c.raw)
			}
		}
		if len(idx) == 0 {
			continue
		}
		found, err := s.rp.Refetch(ctx, name, cols, rows)
		if err != nil {
			return err
		}
		n := len(t.j.table.Columns)
		if cap(s.out) < n+1 {
			s.out = make([][]byte, n+1)
		}
		out := s.out[:n+1]
		for x, i := range idx {
			c := &t.ops[i]
			if found[x] {
				if err := t.c.redactRow(t.j.table, c.raw, out, &s.scratch); err != nil {
					return fmt.Errorf("table %s: %w", name, err)
				}
				keep, err := s.unlink(ctx, t, c.raw, out)
				if err != nil {
					return fmt.Errorf("table %s: %w", name, err)
				}
				if keep {
					c.row = pack(out)
				}
			} else {
				// Deleted since: its delete comes later in the stream,
				// with those of the rows that reference it. Deleting it
				// now would break their foreign keys in the twin.
				c.skip = true
			}
			c.raw, c.unchanged = nil, nil
		}
		t.tr.Refetched += int64(len(idx))
	}
	return nil
}

// batch is a flushed batch on its way to the feeds: per table, the
// collapsed changes; the state of each table says lsn.
type batch struct {
	items   []batchItem
	lsn     nopii.LSN
	changes int
	done    chan error
}

type batchItem struct {
	t         *streamTable
	ops       []change
	truncate  bool
	forgotten *forgottenSet // rows of these keys are left out
}

// flush hands the batch to a goroutine that applies it to every feed,
// table by table, each with its state at the last complete source
// transaction, while the stream goes on decoding the next batch. One batch
// is in flight at a time; its position is confirmed to the source when it
// is done (wait). With sync, flush waits for it.
func (s *stream) flush(ctx context.Context, sync bool) error {
	if err := s.wait(); err != nil {
		return err
	}
	lsn := max(s.applied, s.committed)
	if s.pending == 0 {
		if lsn > s.applied {
			s.applied = lsn
			return s.rp.Confirm(lsn)
		}
		return nil
	}
	if err := s.subsetBatch(ctx); err != nil {
		return err
	}
	if err := s.refetch(ctx); err != nil {
		return err
	}
	b := &batch{lsn: lsn, changes: s.pending, done: make(chan error, 1)}
	for _, t := range s.tables {
		if len(t.ops) == 0 && !t.truncate {
			continue
		}
		b.items = append(b.items, batchItem{t: t, ops: t.ops, truncate: t.truncate})
		t.ops, t.truncate = make([]change, 0, len(t.ops)), false
		clear(t.index)
	}
	s.pending, s.oldest = 0, time.Time{}
	s.inflight = b
	started := s.started
	go func() {
		t0 := time.Now()
		err := s.applyAll(ctx, b)
		if err == nil {
			s.log.Debug("batch applied", "changes", b.changes, "tables", len(b.items), "lsn", b.lsn.String(), "seconds", time.Since(t0).Seconds(), "batch_seconds", time.Since(started).Seconds())
		}
		b.done <- err
	}()
	if sync {
		return s.wait()
	}
	return nil
}

// applyAll applies a batch's tables, par at a time, each with its state
// at the batch's LSN: in its own transaction, or, where foreign keys link
// tables of the batch, those tables together in one transaction of each
// feed that can (a change group), so that the keys hold at its commit. A
// crash between two transactions' commits leaves some tables at the older
// LSN: the stream resumes at the oldest and replays the rest on top of
// what they have, idempotently by key, as for any batch applied but not
// confirmed.
func (s *stream) applyAll(ctx context.Context, b *batch) error {
	groups := linked(b.items)
	if len(groups) == 1 || s.par <= 1 {
		for _, g := range groups {
			if err := s.apply(ctx, g, b.lsn); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan []batchItem)
	errs := make(chan error, len(groups))
	var wg sync.WaitGroup
	for range min(s.par, len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				if err := s.apply(ctx, g, b.lsn); err != nil {
					errs <- err
					cancel()
				}
			}
		}()
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // nil when none failed
}

// linked splits a batch's items into groups linked by the foreign keys
// of their tables' schemas (the connected parts: a customer, her orders,
// their lines), in the batch's order.
func linked(items []batchItem) [][]batchItem {
	index := map[nopii.TableName]int{}
	for i, it := range items {
		index[it.t.j.table.Name] = i
	}
	parent := make([]int, len(items))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i, it := range items {
		sc := it.t.j.table.Schema
		if sc == nil {
			continue
		}
		for _, c := range sc.Constraints {
			if k, ok := index[c.References]; ok && c.Kind == nopii.ConstraintForeignKey {
				parent[find(i)] = find(k)
			}
		}
	}
	var out [][]batchItem
	at := map[int]int{}
	for i, it := range items {
		r := find(i)
		g, ok := at[r]
		if !ok {
			g = len(out)
			at[r] = g
			out = append(out, nil)
		}
		out[g] = append(out[g], it)
	}
	return out
}

// wait waits for the batch in flight, if any, and confirms its position.
func (s *stream) wait() error {
	b := s.inflight
	if b == nil {
		return nil
	}
	s.inflight = nil
	if err := <-b.done; err != nil {
		return err
	}
	if b.lsn > s.applied {
		s.applied = b.lsn
		return s.rp.Confirm(s.applied)
	}
	return nil
}

// poll confirms the batch in flight if it is done, without waiting.
func (s *stream) poll() error {
	if s.inflight == nil {
		return nil
	}
	select {
	case err := <-s.inflight.done:
		s.inflight.done <- err // wait reads it
		return s.wait()
	default:
		return nil
	}
}

// changeGrouper is a change feed that applies several tables' changes in
// one transaction (feeds/twin).
type changeGrouper interface {
	ChangeGroup(ctx context.Context, tables []nopii.TableName) (nopii.ChangeGroup, error)
}

// apply applies a group of a batch's items (linked tables, or one) to
// every change feed: in one change group where the feed has them and the
// group has more than one table, else each table in its own load.
func (s *stream) apply(ctx context.Context, items []batchItem, lsn nopii.LSN) error {
	targets := make([]nopii.Target, len(items))
	for i := range items {
		t, err := s.prepareApply(ctx, &items[i], lsn)
		if err != nil {
			return err
		}
		targets[i] = t
	}
	for _, f := range s.changes {
		g, ok := f.(changeGrouper)
		if !ok || len(items) == 1 {
			for i, it := range items {
				if err := s.load(ctx, it, targets[i], f.Changes, nil); err != nil {
					return err
				}
			}
			continue
		}
		names := make([]nopii.TableName, len(targets))
		for i, t := range targets {
			names[i] = t.Name
		}
		group, err := g.ChangeGroup(ctx, names)
		if err != nil {
			return err
		}
		var counted []func()
		for i, it := range items {
			if err := s.load(ctx, it, targets[i], group.Changes, &counted); err != nil {
				group.Abort()
				return err
			}
		}
		if err := group.Commit(ctx); err != nil {
			return err
		}
		for _, count := range counted {
			count()
		}
	}
	for _, it := range items {
		it.t.tr.Rows += int64(len(it.ops))
	}
	return nil
}

// prepareApply is an item's target, with its state at lsn, and its
// forgotten keys, read again when they are old.
func (s *stream) prepareApply(ctx context.Context, it *batchItem, lsn nopii.LSN) (nopii.Target, error) {
	t := it.t
	j := t.j
	target := j.target
	target.State = &nopii.TableState{Workflow: s.wf.Name, Input: j.input, Table: j.table.Name, Mode: string(ModeCDC),
		Fingerprint: j.table.Fingerprint(), Columns: j.table.Shape(), PrimaryKey: j.table.PrimaryKey,
		LSN: lsn.String(), LastRun: time.Now().UTC()}
	if time.Since(t.forgottenAt) > forgottenRefresh {
		set, err := loadForgotten(ctx, s.feeds, nopii.StateKey{Workflow: s.wf.Name, Input: j.input, Table: j.table.Name}, s.key)
		if err != nil {
			return target, err
		}
		t.forgotten, t.forgottenAt = set, time.Now()
	}
	it.forgotten = t.forgotten
	return target, nil
}

// load writes an item to a change load opened by open, and commits it. In
// a group (counted not nil), what it applied is counted once the group
// commits.
func (s *stream) load(ctx context.Context, it batchItem, target nopii.Target, open func(context.Context, nopii.Target) (nopii.ChangeLoad, error), counted *[]func()) error {
	t0 := time.Now()
	l, err := open(ctx, target)
	if err != nil {
		return err
	}
	s.log.Debug("change load opened", LogKeyTable, it.t.j.table.Name.String(), "seconds", time.Since(t0).Seconds())
	if err := it.write(l); err != nil {
		l.Abort()
		return err
	}
	if err := l.Commit(ctx); err != nil {
		return err
	}
	if a, ok := l.(appliedCounter); ok {
		count := func() {
			up, del := a.Applied()
			it.t.tr.Upserted += up
			it.t.tr.Deleted += del
		}
		if counted == nil {
			count()
		} else {
			*counted = append(*counted, count)
		}
	}
	return nil
}

func (it batchItem) write(l nopii.ChangeLoad) error {
	if it.truncate {
		if err := l.Truncate(); err != nil {
			return err
		}
	}
	for _, c := range it.ops {
		var err error
		if c.skip {
			continue
		}
		if c.row != nil && it.forgotten.has([]byte(c.key)) {
			continue // a forgotten subject's row stays out
		}
		if c.row == nil {
			err = l.DeleteKey([]byte(c.key))
		} else {
			err = l.WriteRow(c.row)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// drift handles a table whose columns changed mid-stream: apply what came
// before, copy the table afresh with its new columns (its state starting
// at the last applied transaction, so the changes after it are replayed on
// the copy, idempotently by key), and go on streaming it.
func (s *stream) drift(ctx context.Context, name nopii.TableName) error {
	t := s.tables[name]
	if t == nil || s.txStart < t.copied {
		// Older than this run's copy: the copy has the new columns, and
		// the stream describes the table anew before its first change.
		return nil
	}
	if err := s.flush(ctx, true); err != nil {
		return err
	}
	s.log.Info("schema changed mid-stream: copying the table again", LogKeyTable, name.String())
	// The replication connection idles meanwhile; keep the server from
	// timing it out.
	stop := s.keepAlive()
	rep := &Report{}
	copied, err := s.copy(ctx, []*job{t.j}, "", s.applied, "cdc: schema changed mid-stream: full copy", 1, rep)
	stop()
	for _, tr := range rep.Tables {
		t.tr.Warnings = append(t.tr.Warnings, fmt.Sprintf("%s: %s", tr.Reason, tr.Table))
		if tr.Error != "" {
			return fmt.Errorf("table %s changed mid-stream and could not be copied again: %s", name, tr.Error)
		}
	}
	if err != nil {
		return err
	}
	if len(copied) == 0 {
		return fmt.Errorf("table %s changed mid-stream and could not be copied again", name)
	}
	tr := t.tr
	if err := s.add(ctx, copied[0]); err != nil {
		return err
	}
	nt := s.tables[name]
	nt.copied, nt.copiedRows = s.applied, t.copiedRows
	// The row goes on: this run's counts so far, its columns' rules now.
	tr.Redacted, tr.DriftForced = nt.tr.Redacted, true
	nt.tr = tr
	// The swap dropped the foreign keys to and from the old table.
	if s.pub != nil && s.pub.last != nil {
		for i, pt := range s.pub.last.Tables {
			if pt.Name == name {
				s.pub.last.Tables[i].Schema = copied[0].table.Schema
			}
		}
	}
	return s.publishWhenCaughtUp(ctx)
}

// publishWhenCaughtUp has the stream publish its tables again (their
// foreign keys, publishStreamed) once it has applied every change up to
// the source's position now: a table just copied from a newer snapshot is
// ahead of the others until then, and a key between them would not hold.
func (s *stream) publishWhenCaughtUp(ctx context.Context) error {
	if s.pub == nil {
		return nil
	}
	at, err := s.rp.CurrentLSN(ctx)
	if err != nil {
		return err
	}
	s.keysAt = max(s.keysAt, at)
	return nil
}

// publishDue publishes the streamed tables once the stream has applied
// everything up to keysAt (at: where it stands), after the batch in
// flight.
func (s *stream) publishDue(ctx context.Context, at nopii.LSN) error {
	if s.keysAt == 0 || at < s.keysAt {
		return nil
	}
	if err := s.wait(); err != nil {
		return err
	}
	s.keysAt = 0
	// Validating the keys of large tables takes a while: keep the
	// replication connection from timing out meanwhile.
	stop := s.keepAlive()
	s.publishStreamed(ctx)
	stop()
	return nil
}

// reportLag tells a LagObserver how far the stream is behind, and warns
// when the slot retains more WAL than the input's slot_wal_warn.
func (s *stream) reportLag(ctx context.Context) {
	s.lagAt = time.Now()
	retained, behind, err := s.rp.SlotLag(ctx)
	if err != nil {
		s.log.Warn("cannot read the replication slot's lag", LogKeyError, err.Error())
		return
	}
	lag := Lag{Bytes: behind, Retained: retained}
	if !s.caughtUp {
		if !s.oldest.IsZero() {
			lag.Seconds = time.Since(s.oldest).Seconds()
		} else if !s.commitAt.IsZero() {
			lag.Seconds = max(0, time.Since(s.commitAt).Seconds())
		}
	}
	warn := s.in.SlotWALWarn
	if warn <= 0 {
		warn = config.DefaultSlotWALWarn
	}
	lag.WALWarn = warn
	if retained > warn {
		s.log.Warn("the replication slot retains much WAL on the source: check that the stream keeps up, or drop the slot (nopii cdc drop) of a workflow no longer run",
			"retained_bytes", retained, "behind_bytes", behind, "slot_wal_warn", warn)
	}
	if o, ok := s.obs.(LagObserver); ok {
		o.StreamLag(s.in.Name, lag)
	}
}

// keepAlive sends standby status updates until stopped, while the stream
// is not read.
func (s *stream) keepAlive() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s.rp.Confirm(s.applied)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
