package agent

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/internal/didyoumean"
	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/rulesets"
)

// job is one table of one input, resolved and with its rules compiled.
type job struct {
	input     string
	rel       nopii.Relation
	entry     *config.Table // the explicit entry, or nil when a pattern chose the table
	table     *nopii.Table
	target    nopii.Target
	mode      Mode
	note      string
	redacted  []string
	inherited nopii.TableName          // the parent whose rules an inheritance child took
	cdc       *cdcCopy                 // mode cdc: a full copy that starts the table's stream
	subset    *nopii.Subset            // the input's subset, when it reaches the table
	refs      []nopii.Reference        // the input's foreign keys, catalog and virtual (shared by its jobs)
	peers     map[nopii.TableName]*job // the input's described jobs by table (shared by its jobs)
	streams   streams                  // the copy streams of the run's copyAll
	split     int                      // most streams that may read this table at once (page ranges)
	decisions []schemaDecision         // the constraints and indexes a rule could break (reconcile)
	err       error
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
			if !chooses(e, r) {
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
				err: fmt.Errorf("%s: table %s: %w in source %s (check the name, or that the role may see it)", e.Pos, name, nopii.ErrNotFound, in.Name)})
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
	guardHierarchy(out, byName)
	if len(missing) > 0 && hasPattern(in) {
		// A name that matches nothing may be meant for a table that a
		// pattern chose, which would then be copied without its rules
		// (public.Customer vs public."Customer", a typo). Copy nothing.
		var names []string
		for _, m := range missing {
			m.err = fmt.Errorf("%w%s", m.err, didYouMean(m.rel.Name, rels))
			names = append(names, m.rel.Name.String())
		}
		for _, j := range out {
			j.err = fmt.Errorf("not copied: the input's patterns may have chosen the table meant by %s, which matches no table, and would copy it without its rules; fix the name(s) first", strings.Join(names, ", "))
		}
	} else {
		for _, m := range missing {
			m.err = fmt.Errorf("%w%s", m.err, didYouMean(m.rel.Name, rels))
		}
	}
	out = append(out, missing...)
	sort.Slice(out, func(a, b int) bool { return out[a].rel.Name.String() < out[b].rel.Name.String() })
	return out
}

// chooses reports whether a pattern entry chooses a relation: tables and
// partitioned roots it matches, never partitions, views or foreign tables.
func chooses(e *config.Table, r nopii.Relation) bool {
	return !r.Partition && (r.Kind == nopii.RelTable || r.Kind == nopii.RelPartitioned) &&
		globMatch(e.Schema, r.Name.Schema) && globMatch(e.Table, r.Name.Name)
}

func hasPattern(in *config.Input) bool {
	for _, e := range in.Tables {
		if e.Pattern && !e.Exclude {
			return true
		}
	}
	return false
}

// didYouMean suggests a catalog name that differs only by case or schema,
// or a table of the same schema spelt alike.
func didYouMean(n nopii.TableName, rels []nopii.Relation) string {
	for _, r := range rels {
		if strings.EqualFold(r.Name.Schema, n.Schema) && strings.EqualFold(r.Name.Name, n.Name) {
			return fmt.Sprintf("; did you mean %s (quote mixed-case names in the config: name: '%s')", r.Name.Quoted(), r.Name.Quoted())
		}
	}
	for _, r := range rels {
		if r.Name.Name == n.Name {
			return fmt.Sprintf("; did you mean %s?", r.Name)
		}
	}
	var names []string
	for _, r := range rels {
		if r.Name.Schema == n.Schema && !r.Partition {
			names = append(names, r.Name.Name)
		}
	}
	if s := didyoumean.Closest(n.Name, names); s != "" {
		return fmt.Sprintf("; did you mean %s?", nopii.TableName{Schema: n.Schema, Name: s})
	}
	return ""
}

// guardHierarchy keeps rules from being bypassed through table hierarchies:
// an inheritance child that a pattern chose takes its parent's column rules
// (it has the parent's columns, and their data); a partitioned root whose
// partition was named with rules fails, since the root's rows include the
// partition's.
func guardHierarchy(jobs []*job, byName map[nopii.TableName]nopii.Relation) {
	index := map[nopii.TableName]*job{}
	for _, j := range jobs {
		index[j.rel.Name] = j
	}
	for _, j := range jobs {
		if j.entry != nil || j.rel.Parent.Name == "" || j.rel.Partition {
			continue
		}
		for p := j.rel.Parent; p.Name != ""; p = byName[p].Parent {
			if pj := index[p]; pj != nil && pj.entry != nil && len(pj.entry.Columns) > 0 {
				inherited := *pj.entry
				inherited.Name, inherited.Schema, inherited.Table = j.rel.Name.String(), j.rel.Name.Schema, j.rel.Name.Name
				inherited.PrimaryKey, inherited.Mode, inherited.UpdatedAt, inherited.CreatedAt = nil, "", "", ""
				inherited.Window, inherited.WindowBy, inherited.DetectDeletes = 0, "", false
				j.entry, j.inherited = &inherited, p
				break
			}
			if _, ok := byName[p]; !ok {
				break
			}
		}
	}
	for _, j := range jobs {
		if !j.rel.Partition || j.entry == nil || len(j.entry.Columns) == 0 {
			continue
		}
		for p := j.rel.Parent; p.Name != ""; p = byName[p].Parent {
			if rj := index[p]; rj != nil && rj.err == nil {
				rj.err = fmt.Errorf("partition %s has column rules, but its rows are read through %s, which is selected too: put the rules on %s (partitions are copied through their root)", j.rel.Name, p, p)
			}
			if _, ok := byName[p]; !ok {
				break
			}
		}
	}
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

// describe fills in j.table, j.target, j.mode and checks every rule
// compiles. It reports every problem of the table at once (errors.Join, one
// per line), each at its place in the file, so that a table with three
// mistakes needs one round of fixes, not three.
func describe(ctx context.Context, src nopii.Source, in *config.Input, j *job, key []byte, omitGenerated bool) {
	if j.err != nil {
		return
	}
	var pk []string
	if j.entry != nil {
		pk = j.entry.PrimaryKey
	}
	t, err := src.Describe(ctx, j.rel, pk)
	if err != nil && errors.Is(err, nopii.ErrNoPrimaryKey) {
		// The source says what the table has to stand in for a key.
		err = fmt.Errorf("%w; set it under table %s", err, j.rel.Name)
	}
	if err != nil && (t == nil || j.entry == nil) {
		if j.entry != nil {
			err = fmt.Errorf("%s: %w", j.entry.Pos, err)
		}
		j.err = err
		return
	}
	for _, c := range t.Columns {
		if c.Generated != "" && omitGenerated {
			t.OmitGenerated = true
		}
	}
	j.table = t
	j.target = nopii.Target{Table: t, Name: nopii.TableName{Schema: in.TargetSchemaPrefix + t.Name.Schema, Name: t.Name.Name}, Prefix: in.TargetSchemaPrefix}
	j.mode = ModeFull
	if j.entry == nil {
		return
	}
	var problems []error
	problem := func(pos config.Pos, format string, a ...any) {
		problems = append(problems, fmt.Errorf("%s: %w", pos, fmt.Errorf(format, a...)))
	}
	keyPos := func(keys ...string) config.Pos {
		for _, k := range keys {
			if p, ok := j.entry.KeyPos[k]; ok {
				return p
			}
		}
		return j.entry.Pos
	}
	missingColumns := func(key string, names []string) (n int) {
		for i, c := range names {
			if _, ok := t.Column(c); !ok {
				n++
				problem(keyPos(fmt.Sprintf("%s[%d]", key, i), key), "%s column %q: %w in table %s%s", key, c, nopii.ErrNotFound, t.Name, columnHint(t, c))
			}
		}
		return n
	}
	// A table described without a usable key is still checked whole: one
	// round of fixes for all of its problems.
	if err != nil && missingColumns("primary_key", pk) == 0 {
		problems = append(problems, fmt.Errorf("%s: %w", j.entry.Pos, err))
	}
	// A subject forgotten by a column not found would still be copied.
	missingColumns("identifies", j.entry.Identifies)
	for _, cc := range []struct{ key, col string }{{"updated_at", j.entry.UpdatedAt}, {"created_at", j.entry.CreatedAt}} {
		if cc.col == "" {
			continue
		}
		col, ok := t.Column(cc.col)
		if !ok {
			problem(keyPos(cc.key), "%s column %q: %w in table %s%s", cc.key, cc.col, nopii.ErrNotFound, t.Name, columnHint(t, cc.col))
			continue
		}
		switch col.Type.Underlying().Name {
		case "date", "timestamp", "timestamptz":
		default:
			problem(keyPos(cc.key), "%s column %q of %s is %s: delta cursors must be date, timestamp or timestamptz", cc.key, cc.col, t.Name, col.TypeSQL)
		}
	}
	for _, c := range j.entry.Columns {
		col, ok := t.Column(c.Column)
		if !ok {
			problem(c.Pos, "column %q: %w in table %s%s", c.Column, nopii.ErrNotFound, t.Name, columnHint(t, c.Column))
			continue
		}
		if _, err := rulesets.Compile(t.Name, col, rulesets.Spec{Rule: c.Rule, Params: c.Params}, key); err != nil {
			problem(c.RulePos, "%w", err)
			continue
		}
		if c.Rule != "keep" {
			j.redacted = append(j.redacted, c.Column)
		}
	}
	if t.OmitGenerated {
		// the feeds compute the generated columns from the redacted ones
	} else if err := checkGenerated(t, j.entry.Columns); err != nil {
		problems = append(problems, fmt.Errorf("%s: %w", j.entry.Pos, err))
	}
	j.decisions = reconcile(t, j.entry.Columns)
	if redactsKey(t, j.redacted) && len(key) == 0 {
		problem(j.entry.Pos, "table %s: a primary key column has a rule, so %s is hashed, which needs hmac_key", t.Name, nopii.SourcePrimaryKeyColumn)
	}
	j.err = errors.Join(problems...)
}

// columnHint is "; did you mean x?" for the column of t closest to name,
// and the table's columns.
func columnHint(t *nopii.Table, name string) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	hint := " (columns: " + strings.Join(names, ", ") + ")"
	if s := didyoumean.Closest(name, names); s != "" {
		hint = fmt.Sprintf("; did you mean %q?%s", s, hint)
	}
	return hint
}

// checkGenerated refuses a stored generated column computed from a
// redacted column unless it has a rule of its own: its stored value carries
// the raw one (lower(email), say).
func checkGenerated(t *nopii.Table, rules []config.ColumnRule) error {
	rule := map[string]string{}
	for _, r := range rules {
		rule[r.Column] = r.Rule
	}
	for _, c := range t.Columns {
		if _, ok := rule[c.Name]; ok {
			continue
		}
		for _, from := range c.GeneratedFrom {
			if r, ok := rule[from]; ok && r != "keep" {
				return fmt.Errorf("generated column %s of %s is computed from redacted column %s and would carry its raw value: give %s a rule too (e.g. %s: { rule: destroy })", c.Name, t.Name, from, c.Name, c.Name)
			}
		}
	}
	return nil
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
	f, err := keyHash(j, key)
	c.keyFn = f
	return c, err
}

// keyHash is the function that hashes a job's key text where a key column
// is redacted (the feeds hold that hash as its source_primary_key); nil
// where none is.
func keyHash(j *job, key []byte) (redact.Func, error) {
	if !redactsKey(j.table, j.redacted) {
		return nil, nil
	}
	return rulesets.Compile(j.table.Name, keyColumn, rulesets.Spec{Rule: "hash"}, key)
}

// TableChecker refuses a table whose changes a stream cannot apply
// (Replicator.CheckTable).
type TableChecker interface {
	CheckTable(ctx context.Context, t *nopii.Table) error
}

// CheckWith is what Check checks besides the source.
type CheckWith struct {
	// Feeds are the workflow's, open; nil when they could not all be
	// opened: Check then asks for rules on the generated columns that a
	// faithful twin would compute.
	Feeds []nopii.Feed
	// Stream is the input's replication stream, when it has tables in mode
	// cdc: each cdc table is also checked as a run's stream checks it before
	// streaming (replica identity, generated columns).
	Stream TableChecker
}

// Check resolves an input without copying: one TableReport per table, with
// the error that a run would meet (missing table or column, a rule that does
// not fit its column, no primary key), a warning for each pattern that
// chooses no table (a misspelt schema copies nothing, silently) and, when a
// feed is a faithful twin, in Schema what it does with each constraint and
// index a rule could break.
func Check(ctx context.Context, src nopii.Source, in *config.Input, key []byte, with CheckWith) (tables []TableReport, warnings []string, err error) {
	feeds, tc := with.Feeds, with.Stream
	jobs, warnings, err := resolveAll(ctx, src, in, key, computesGenerated(feeds))
	if err != nil {
		return nil, nil, err
	}
	for _, j := range jobs {
		if tc == nil || j.err != nil || j.entry == nil || j.entry.EffectiveMode() != config.ModeCDC {
			continue
		}
		if err := tc.CheckTable(ctx, j.table); err != nil {
			pos := j.entry.Pos
			if p, ok := j.entry.KeyPos["mode"]; ok {
				pos = p
			}
			j.err = fmt.Errorf("%s: mode cdc: %w", pos, err)
		}
	}
	tables = make([]TableReport, len(jobs))
	for i, j := range jobs {
		tables[i] = j.report(nil)
		if faithful(feeds) {
			tables[i].Schema = schemaLines(j.decisions, false)
		}
	}
	return tables, warnings, nil
}

// unmatchedPatterns says which of an input's patterns choose no table.
func unmatchedPatterns(in *config.Input, rels []nopii.Relation) []string {
	var out []string
	for _, e := range in.Tables {
		if !e.Pattern || e.Exclude {
			continue
		}
		if !slices.ContainsFunc(rels, func(r nopii.Relation) bool { return chooses(&e, r) }) {
			out = append(out, fmt.Sprintf("%s: pattern %s chooses no table in source %s%s", e.Pos, e.Name, in.Name, schemaHint(e.Schema, rels)))
		}
	}
	return out
}

// schemaHint is "; did you mean x?" for a pattern's schema that the source
// lacks, with the schema closest to it.
func schemaHint(schema string, rels []nopii.Relation) string {
	var schemas []string
	for _, r := range rels {
		if globMatch(schema, r.Name.Schema) {
			return ""
		}
		if !slices.Contains(schemas, r.Name.Schema) {
			schemas = append(schemas, r.Name.Schema)
		}
	}
	if s := didyoumean.Closest(schema, schemas); s != "" {
		return fmt.Sprintf("; did you mean schema %s?", s)
	}
	return fmt.Sprintf(" (no schema matches %s)", schema)
}
