package scanner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"

	"github.com/nopii/nopii"
)

// ColumnFinding is a column judged to hold personal data (SPEC §5, `nopii
// scan --format json`).
type ColumnFinding struct {
	Schema     string         `json:"schema"`
	Table      string         `json:"table"`
	Column     string         `json:"column"`
	Type       string         `json:"type"`
	Kind       string         `json:"kind"`
	Confidence float64        `json:"confidence"`
	Evidence   string         `json:"evidence"`
	Rule       map[string]any `json:"rule"`
	Paths      []PathFinding  `json:"paths,omitempty"` // kind json: what was found where
	RuleYAML   string         `json:"-"`
}

// DefaultSample is how many rows a table's sample holds unless told.
const DefaultSample = 1000

// Options bound a scan.
type Options struct {
	Schemas []string // glob patterns; default every schema
	Sample  int      // rows sampled per table (TABLESAMPLE or LIMIT); default DefaultSample
	// Workers is how many tables are sampled at once; default 4. The
	// Source needs as many reader connections to make use of them.
	Workers int
	// Covered reports columns the workflow already has a rule for (keep
	// included); they are left out of the findings and not sampled.
	Covered func(t nopii.TableName, column string) bool
}

// Scan classifies every column of the tables (and partitioned roots) of the
// chosen schemas from its type, name, comment and a bounded sample of the
// table's rows (one read per table, several tables at once). It never reads
// a whole table. Findings are sorted by table, then column order.
func Scan(ctx context.Context, src nopii.Source, o Options) ([]ColumnFinding, error) {
	if o.Sample <= 0 {
		o.Sample = DefaultSample
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	rels, err := src.Relations(ctx)
	if err != nil {
		return nil, err
	}
	var chosen []nopii.Relation
	for _, r := range rels {
		if !r.Partition && (r.Kind == nopii.RelTable || r.Kind == nopii.RelPartitioned) && schemaChosen(o.Schemas, r.Name.Schema) {
			chosen = append(chosen, r)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([][]ColumnFinding, len(chosen))
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(o.Workers, max(len(chosen), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res, err := scanTable(ctx, src, chosen[i], o)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					continue
				}
				results[i] = res
			}
		}()
	}
	for i := range chosen {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	var out []ColumnFinding
	for _, r := range results {
		out = append(out, r...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Schema+"."+out[i].Table < out[j].Schema+"."+out[j].Table
	})
	return out, nil
}

// scanTable describes one table and judges its columns that the workflow
// does not cover.
func scanTable(ctx context.Context, src nopii.Source, r nopii.Relation, o Options) ([]ColumnFinding, error) {
	// Sampling needs no key: a table without one is scanned too.
	t, err := src.Describe(ctx, r, nil)
	if err != nil && !(errors.Is(err, nopii.ErrNoPrimaryKey) && t != nil) {
		return nil, fmt.Errorf("scan: %w", err)
	}
	var judge func(nopii.Column) bool
	if o.Covered != nil {
		judge = func(c nopii.Column) bool { return !o.Covered(t.Name, c.Name) }
	}
	out, err := JudgeTable(ctx, src, t, o.Sample, judge)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}

// A Sampler reads a bounded sample of a table's columns as text, NULLs left
// out: nopii.Source's Sample (TABLESAMPLE SYSTEM or LIMIT, never the whole
// table).
type Sampler interface {
	Sample(ctx context.Context, t *nopii.Table, columns []string, n int) ([][]string, error)
}

// JudgeTable judges the columns of a described table for which judge
// returns true (every column when judge is nil), from one sample of at most
// n rows (DefaultSample when n <= 0) of the columns whose values count: one
// bounded read, whatever the table's size. It returns the columns judged to hold personal data, in
// column order, each with its evidence and suggested rule.
func JudgeTable(ctx context.Context, src Sampler, t *nopii.Table, n int, judge func(nopii.Column) bool) ([]ColumnFinding, error) {
	if n <= 0 {
		n = DefaultSample
	}
	var cols []nopii.Column
	var sampled []string
	for _, c := range t.Columns {
		if judge != nil && !judge(c) {
			continue
		}
		cols = append(cols, c)
		if NeedsValues(c) {
			sampled = append(sampled, c.Name)
		}
	}
	values := map[string][]string{}
	if len(sampled) > 0 {
		vs, err := src.Sample(ctx, t, sampled, n)
		if err != nil {
			return nil, err
		}
		for i, name := range sampled {
			values[name] = vs[i]
		}
	}
	var out []ColumnFinding
	for _, c := range cols {
		if f, ok := Judge(c, values[c.Name]); ok {
			out = append(out, NewColumnFinding(t.Name, c, f))
		}
	}
	return out, nil
}

// NewColumnFinding is the finding f of column c of table t.
func NewColumnFinding(t nopii.TableName, c nopii.Column, f Finding) ColumnFinding {
	return ColumnFinding{Schema: t.Schema, Table: t.Name, Column: c.Name, Type: c.TypeSQL, Kind: f.Kind,
		Confidence: f.Confidence, Evidence: f.Evidence, Rule: f.Spec, Paths: f.Paths, RuleYAML: f.Rule}
}

func schemaChosen(patterns []string, schema string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, schema); ok {
			return true
		}
	}
	return false
}
