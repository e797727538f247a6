package agent

import (
	"context"
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

// publisher is a feed that completes a run's schema once every table of an
// input is loaded (a faithful twin: foreign keys among the tables, views).
// The notes say, per source table, what it left out or made NOT VALID.
type publisher interface {
	Publish(ctx context.Context, p nopii.Publication) (map[nopii.TableName][]string, error)
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
	for _, j := range jobs {
		if j.table == nil {
			continue
		}
		pt := nopii.PublishedTable{Name: j.table.Name, Schema: j.table.Schema}
		switch {
		case failed[j.rel.Name.String()]:
			pt.Incomplete = "failed to copy in this run"
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
	for _, pub := range pubs {
		notes, err := pub.Publish(ctx, p)
		if err != nil {
			return err
		}
		for t, ns := range notes {
			if i, ok := index[t.String()]; ok {
				results[i].Schema = append(results[i].Schema, ns...)
			}
		}
	}
	return nil
}
