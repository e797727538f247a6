package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// generatedComputer is a feed that computes stored generated columns
// itself (a faithful twin): when every feed does, the source sends no
// values for them.
type generatedComputer interface {
	ComputesGenerated() bool
}

func computesGenerated(feeds []nopii.Feed) bool {
	for _, f := range feeds {
		if g, ok := f.(generatedComputer); !ok || !g.ComputesGenerated() {
			return false
		}
	}
	return len(feeds) > 0
}

// schemaNoter is a load that says what it left out of the source's schema
// (a constraint the rows do not satisfy, a default the twin cannot take),
// and why: the table's report carries it.
type schemaNoter interface {
	Notes() []string
}

// publisher is a feed that publishes an input's run once every table is
// loaded (a twin): the loads of deferred targets (nopii.Target.Deferred)
// become visible together, in one transaction, with the foreign keys among
// the tables and the views (a faithful twin). The result says per source
// table what it left out or made NOT VALID, whether a deferred delta was
// applied and what it changed, or why the table kept its previous version.
// Discard drops the deferred loads of a run that will not publish.
type publisher interface {
	Publish(ctx context.Context, p nopii.Publication) (map[nopii.TableName]nopii.Published, error)
	Discard(ctx context.Context)
}

// viewLister is a source that lists its views, for the feeds to publish.
type viewLister interface {
	Views(ctx context.Context) ([]nopii.View, error)
}

// publication is what the publish step needs from the run's first
// snapshot: the tables and the source's views.
type publication struct {
	jobs     []*job
	streamed []*job // the input's tables in mode cdc, which its stream applies
	views    []nopii.View
	last     *nopii.Publication           // the run's, which the stream publishes again after its copies
	notes    map[nopii.TableName][]string // the run's publish's notes on streamed tables, for the stream's report
}

func (ir *inputRun) publishers() []publisher {
	var pubs []publisher
	for _, f := range ir.feeds {
		if p, ok := f.(publisher); ok {
			pubs = append(pubs, p)
		}
	}
	return pubs
}

// keepForPublish keeps the tables and reads the source's views, when a
// feed publishes.
func (ir *inputRun) keepForPublish(ctx context.Context, src nopii.Source, jobs, streamed []*job) error {
	if len(ir.publishers()) == 0 {
		return nil
	}
	ir.pub = &publication{jobs: jobs, streamed: streamed}
	if vl, ok := src.(viewLister); ok {
		views, err := vl.Views(ctx)
		if err != nil {
			return err
		}
		ir.pub.views = views
	}
	return nil
}

// publish is the run's last step for an input's tables, after retries:
// each feed that publishes gets the tables (saying which may lack rows:
// windowed, failed) and the source's views; its notes go to the tables'
// reports.
func (ir *inputRun) publish(ctx context.Context, results []result) error {
	pubs := ir.publishers()
	if len(pubs) == 0 || ir.pub == nil {
		return nil
	}
	jobs := ir.pub.jobs
	t0 := time.Now()
	defer logPhase(ir.log, "publish", t0)
	failed := map[string]bool{}
	for _, r := range results {
		if r.err != nil {
			failed[r.Table] = true
		}
	}
	p := nopii.Publication{Prefix: ir.in.TargetSchemaPrefix}
	// A subset's tables hold every row that the subset's other tables
	// reference (windowed or not): their foreign keys to one another hold,
	// but for those from a table whose copy failed (the twin keeps its
	// older rows).
	var closed []nopii.TableName
	for _, j := range append(slices.Clip(jobs), ir.pub.streamed...) {
		if j.table != nil && j.subsetTable() != nil && !failed[j.rel.Name.String()] {
			closed = append(closed, j.table.Name)
		}
	}
	for _, j := range jobs {
		if j.table == nil {
			continue
		}
		pt := nopii.PublishedTable{Name: j.table.Name, Schema: j.table.Schema, Incremental: j.entry != nil && j.entry.EffectiveMode() == config.ModeDelta}
		switch {
		case failed[j.rel.Name.String()]:
			pt.Incomplete, pt.Failed = "failed to copy in this run", true
		case j.subsetTable() != nil:
			pt.Incomplete = "is in a referential subset: the twin holds only the rows the subset's tables need"
			pt.CompleteFor = closed
		case j.entry != nil && j.entry.Window > 0:
			pt.Incomplete = fmt.Sprintf("is windowed (window: %s): the twin holds only its newer rows", j.entry.Window)
		}
		p.Tables = append(p.Tables, pt)
	}
	for _, j := range ir.pub.streamed {
		if j.table != nil {
			pt := nopii.PublishedTable{Name: j.table.Name, Schema: j.table.Schema, Streamed: true}
			if j.subsetTable() != nil {
				pt.Incomplete = "is in a referential subset: the twin holds only the rows the subset's tables need"
				pt.CompleteFor = closed
			}
			p.Tables = append(p.Tables, pt)
		}
	}
	p.Views = ir.pub.views
	ir.pub.last = &p
	index := map[string]int{}
	for i, r := range results {
		index[r.Table] = i
	}
	var errs []error
	for _, pub := range pubs {
		out, err := pub.Publish(ctx, p)
		if err != nil {
			// Nothing of the run is visible in that feed.
			for i := range results {
				if results[i].err == nil && results[i].Outcome == OutcomeCopied {
					results[i].fail(fmt.Errorf("not published: %w", err))
				}
			}
			errs = append(errs, err)
			continue
		}
		for t, r := range out {
			i, ok := index[t.String()]
			if !ok {
				if ir.pub.notes == nil {
					ir.pub.notes = map[nopii.TableName][]string{}
				}
				ir.pub.notes[t] = append(ir.pub.notes[t], r.Notes...)
				continue
			}
			results[i].Schema = append(results[i].Schema, r.Notes...)
			if r.Applied {
				addApplied(&results[i].TableReport, r.Upserted, r.Deleted)
			}
			if r.Err != nil {
				results[i].fail(fmt.Errorf("not published: %w", r.Err))
			}
		}
	}
	return errors.Join(errs...)
}

// publishStreamed publishes the run's tables again once the stream has
// copied some (its first copy, or a copy after a schema change, which
// dropped the foreign keys to and from the old table): the feeds add the
// foreign keys among the streamed tables and the views that read them.
// Its notes replace the streamed tables' notes; a failure is a warning on
// them (their rows are in; the keys are not).
func (s *stream) publishStreamed(ctx context.Context) {
	if s.pub == nil || s.pub.last == nil {
		return
	}
	p := *s.pub.last
	p.Stream = true
	for _, pub := range s.publishers() {
		out, err := pub.Publish(ctx, p)
		if err != nil {
			s.log.Error("publish after the stream's copies failed: the streamed tables' foreign keys and views may be missing", LogKeyError, err.Error())
			for _, t := range s.tables {
				t.tr.Warnings = append(t.tr.Warnings, "foreign keys and views not published after the copy: "+err.Error())
			}
			continue
		}
		for name, r := range out {
			if t := s.tables[name]; t != nil {
				t.tr.Schema = r.Notes
			}
		}
	}
}

// discard drops what the feeds hold for a publish that will not come.
func (ir *inputRun) discard(ctx context.Context) {
	for _, pub := range ir.publishers() {
		pub.Discard(ctx)
	}
}

// deferred reports whether a table's loads wait for the publish step: in a
// run that publishes, every table but the first copies of cdc tables
// (whose stream takes them over at once).
func (ir *inputRun) deferred(j *job) bool { return ir.pub != nil && j.cdc == nil }

// fail marks a table failed after its copy.
func (r *result) fail(err error) {
	r.err, r.Error, r.Outcome = err, joinError(r.Error, err.Error()), OutcomeFailed
}
