package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nopii/nopii"
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
	jobs  []*job
	views []nopii.View
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
func (ir *inputRun) keepForPublish(ctx context.Context, src nopii.Source, jobs []*job) error {
	if len(ir.publishers()) == 0 {
		return nil
	}
	ir.pub = &publication{jobs: jobs}
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
	for _, j := range jobs {
		if j.table != nil && j.subsetTable() != nil && !failed[j.rel.Name.String()] {
			closed = append(closed, j.table.Name)
		}
	}
	for _, j := range jobs {
		if j.table == nil {
			continue
		}
		pt := nopii.PublishedTable{Name: j.table.Name, Schema: j.table.Schema}
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
	p.Views = ir.pub.views
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
