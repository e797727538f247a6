package agent

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/rulesets"
)

// job is one table of one input, resolved and with its rules compiled.
type job struct {
	input    string
	rel      nopii.Relation
	entry    *config.Table // the explicit entry, or nil when a pattern chose the table
	table    *nopii.Table
	target   nopii.Target
	mode     string
	note     string
	redacted []string
	err      error
}

// selectRelations applies an input's table entries to the catalog: patterns
// choose tables and partitioned roots (never partitions, views or foreign
// tables); explicit entries choose anything they name and override patterns;
// exclude entries remove. Explicit names that the catalog lacks come back as
// jobs with ErrNotFound.
func selectRelations(in *config.Input, rels []nopii.Relation) []*job {
	byName := map[nopii.TableName]nopii.Relation{}
	for _, r := range rels {
		byName[r.Name] = r
	}
	chosen := map[nopii.TableName]*job{}
	excluded := map[nopii.TableName]bool{}
	var missing []*job
	for i := range in.Tables {
		e := &in.Tables[i]
		if !e.Pattern {
			continue
		}
		for _, r := range rels {
			if r.Partition || (r.Kind != nopii.RelTable && r.Kind != nopii.RelPartitioned) {
				continue
			}
			if !globMatch(e.Schema, r.Name.Schema) || !globMatch(e.Table, r.Name.Name) {
				continue
			}
			if e.Exclude {
				excluded[r.Name] = true
				continue
			}
			if _, ok := chosen[r.Name]; !ok {
				chosen[r.Name] = &job{input: in.Name, rel: r}
			}
		}
	}
	for i := range in.Tables {
		e := &in.Tables[i]
		if e.Pattern {
			continue
		}
		name := nopii.TableName{Schema: e.Schema, Name: e.Table}
		if e.Exclude {
			excluded[name] = true
			continue
		}
		r, ok := byName[name]
		if !ok {
			missing = append(missing, &job{input: in.Name, rel: nopii.Relation{Name: name}, entry: e,
				err: fmt.Errorf("table %s: %w in source %s (check the name, or that the role may see it)", name, nopii.ErrNotFound, in.Name)})
			continue
		}
		chosen[name] = &job{input: in.Name, rel: r, entry: e}
	}
	var out []*job
	for n, j := range chosen {
		if !excluded[n] {
			out = append(out, j)
		}
	}
	out = append(out, missing...)
	sort.Slice(out, func(a, b int) bool { return out[a].rel.Name.String() < out[b].rel.Name.String() })
	return out
}

func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// columnRule is a compiled rule for one column; nil fn means pass through.
type compiled struct {
	funcs  []redact.Func // per column
	keyFn  redact.Func   // hashes source_primary_key when a key column is redacted
	hasAny bool
}

// describe fills in j.table, j.target, j.mode and checks every rule compiles.
func describe(ctx context.Context, src nopii.Source, in *config.Input, j *job, key []byte) {
	if j.err != nil {
		return
	}
	var pk []string
	if j.entry != nil {
		pk = j.entry.PrimaryKey
	}
	t, err := src.Describe(ctx, j.rel, pk)
	if err != nil {
		if errors.Is(err, nopii.ErrNoPrimaryKey) {
			err = fmt.Errorf("%w (e.g. primary_key: [id] under table %s)", err, j.rel.Name)
		}
		j.err = err
		return
	}
	j.table = t
	j.target = nopii.Target{Table: t, Name: nopii.TableName{Schema: in.TargetSchemaPrefix + t.Name.Schema, Name: t.Name.Name}, Prefix: in.TargetSchemaPrefix}
	j.mode = "full"
	if j.entry != nil {
		for _, cc := range []struct{ key, col string }{{"updated_at", j.entry.UpdatedAt}, {"created_at", j.entry.CreatedAt}} {
			if cc.col == "" {
				continue
			}
			col, ok := t.Column(cc.col)
			if !ok {
				j.err = fmt.Errorf("%s:%d:%d: %s column %q: %w in table %s (columns: %s)", j.entry.Pos.File, j.entry.Pos.Line, j.entry.Pos.Col,
					cc.key, cc.col, nopii.ErrNotFound, t.Name, columnNames(t))
				return
			}
			switch col.Type.Underlying().Name {
			case "date", "timestamp", "timestamptz":
			default:
				j.err = fmt.Errorf("%s column %q of %s is %s: delta cursors must be date, timestamp or timestamptz", cc.key, cc.col, t.Name, col.TypeSQL)
				return
			}
		}
		for _, c := range j.entry.Columns {
			col, ok := t.Column(c.Column)
			if !ok {
				j.err = fmt.Errorf("%s:%d:%d: column %q: %w in table %s (columns: %s)", c.Pos.File, c.Pos.Line, c.Pos.Col,
					c.Column, nopii.ErrNotFound, t.Name, columnNames(t))
				return
			}
			if _, err := rulesets.Compile(t.Name, col, rulesets.Spec{Rule: c.Rule, Params: c.Params}, key); err != nil {
				j.err = err
				return
			}
			if c.Rule != "keep" {
				j.redacted = append(j.redacted, c.Column)
			}
		}
		if redactsKey(t, j.redacted) && len(key) == 0 {
			j.err = fmt.Errorf("table %s: a primary key column has a rule, so %s is hashed, which needs hmac_key", t.Name, nopii.SourcePrimaryKeyColumn)
		}
	}
}

func columnNames(t *nopii.Table) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func redactsKey(t *nopii.Table, redacted []string) bool {
	for _, k := range t.PrimaryKey {
		for _, r := range redacted {
			if k == r {
				return true
			}
		}
	}
	return false
}

var keyColumn = nopii.Column{Name: nopii.SourcePrimaryKeyColumn, Type: &nopii.Type{OID: 25, Schema: "pg_catalog", Name: "text"}, Typmod: -1, TypeSQL: "text", NotNull: true}

// compile builds the per-stream functions for a described job. Funcs keep
// scratch state, so every concurrent stream compiles its own.
func compile(j *job, key []byte) (*compiled, error) {
	c := &compiled{funcs: make([]redact.Func, len(j.table.Columns))}
	if j.entry == nil {
		return c, nil
	}
	for _, r := range j.entry.Columns {
		for i, col := range j.table.Columns {
			if col.Name != r.Column {
				continue
			}
			f, err := rulesets.Compile(j.table.Name, col, rulesets.Spec{Rule: r.Rule, Params: r.Params}, key)
			if err != nil {
				return nil, err
			}
			c.funcs[i] = f
			c.hasAny = c.hasAny || f != nil
		}
	}
	if redactsKey(j.table, j.redacted) {
		f, err := rulesets.Compile(j.table.Name, keyColumn, rulesets.Spec{Rule: "hash"}, key)
		if err != nil {
			return nil, err
		}
		c.keyFn = f
	}
	return c, nil
}

// Check resolves an input without copying: one TableReport per table, with
// the error that a run would meet (missing table or column, a rule that does
// not fit its column, no primary key).
func Check(ctx context.Context, src nopii.Source, in *config.Input, key []byte) ([]TableReport, error) {
	jobs, err := resolve(ctx, src, in, key)
	if err != nil {
		return nil, err
	}
	out := make([]TableReport, len(jobs))
	for i, j := range jobs {
		out[i] = j.report(nil)
	}
	return out, nil
}
