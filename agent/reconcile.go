package agent

import (
	"fmt"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/rulesets"
)

// schemaDecision is what a faithful twin does with one of the source's
// constraints or indexes that a column's rule could break, decided before
// any row moves (SPEC §3, docs/twin.md "Constraints and the rules").
type schemaDecision struct {
	text    string // for plan, validate and the report
	leftOut bool   // the twin does not build it
}

// reconcile decides, before any row moves, the source's constraints and
// indexes that read a column with a rule:
//
//   - a primary key, unique or exclusion constraint, or unique index is
//     kept when each column it reads is kept or has an injective rule
//     (rulesets.Injective), and left out otherwise: the redacted rows could
//     collide, and its build would fail after the copy;
//   - a CHECK that reads a redacted column, and a unique one on a stored
//     generated column the twin computes from a redacted one, are tried on
//     the copied rows: kept if they satisfy it, else left out with
//     PostgreSQL's reason (the report says which);
//   - the partitioning, when a partition key reads a column a rule changes:
//     its bounds hold the source's values of that column, and the redacted
//     rows would not route; the twin's table is a plain one.
//
// It replaces t.Schema by a copy without what it leaves out, and returns
// the decisions.
func reconcile(t *nopii.Table, rules []config.ColumnRule) []schemaDecision {
	if t.Schema == nil {
		return nil
	}
	spec := map[string]rulesets.Spec{}
	for _, r := range rules {
		spec[r.Column] = rulesets.Spec{Rule: r.Rule, Params: r.Params}
	}
	col := func(name string) nopii.Column { c, _ := t.Column(name); return c }
	// derived names the redacted column a generated column computed in
	// the twin reads, "" when none.
	derived := func(c nopii.Column) string {
		if c.Generated == "" || !t.OmitGenerated {
			return ""
		}
		for _, from := range c.GeneratedFrom {
			if s, ok := spec[from]; ok && s.Rule != rulesets.RuleKeep {
				return from
			}
		}
		return ""
	}
	// unique decides an object that must keep distinct rows distinct.
	unique := func(what string, columns []string) (schemaDecision, bool) {
		var kept, broken, tried []string
		for _, name := range columns {
			s, ok := spec[name]
			if !ok {
				if from := derived(col(name)); from != "" {
					tried = append(tried, fmt.Sprintf("%s is computed from %s (rule %s)", name, from, spec[from].Rule))
				}
				continue
			}
			if ok, why := rulesets.Injective(col(name), s); ok {
				kept = append(kept, name+": "+why)
			} else {
				broken = append(broken, name+": "+why)
			}
		}
		switch {
		case len(broken) > 0:
			return schemaDecision{text: what + " left out: " + strings.Join(broken, "; "), leftOut: true}, true
		case len(tried) > 0:
			return schemaDecision{text: what + " tried on the copied rows (" + strings.Join(tried, "; ") + "): kept if they satisfy it, else left out with PostgreSQL's reason"}, true
		case len(kept) > 0:
			return schemaDecision{text: what + " kept: " + strings.Join(kept, "; ")}, true
		}
		return schemaDecision{}, false
	}
	var out []schemaDecision
	sc := *t.Schema
	sc.Constraints, sc.Indexes = nil, nil
	for _, c := range t.Schema.Constraints {
		what := c.Kind.String() + " " + c.Name
		switch c.Kind {
		case nopii.ConstraintPrimaryKey, nopii.ConstraintUnique, nopii.ConstraintExclusion:
			if d, ok := unique(what, c.Columns); ok {
				out = append(out, d)
				if d.leftOut {
					continue
				}
			}
		case nopii.ConstraintCheck:
			var reads []string
			for _, name := range c.Columns {
				if s, ok := spec[name]; ok && s.Rule != rulesets.RuleKeep {
					reads = append(reads, name+" (rule "+s.Rule+")")
				} else if from := derived(col(name)); from != "" {
					reads = append(reads, name+" (computed from "+from+")")
				}
			}
			if len(reads) > 0 {
				out = append(out, schemaDecision{text: what + " tried on the copied rows (it reads " + strings.Join(reads, ", ") +
					", whose values the rules change): kept if they satisfy it, else left out with PostgreSQL's reason"})
			}
		}
		sc.Constraints = append(sc.Constraints, c)
	}
	for _, ix := range t.Schema.Indexes {
		if ix.Unique {
			if d, ok := unique("unique index "+ix.Name, ix.Columns); ok {
				out = append(out, d)
				if d.leftOut {
					continue
				}
			}
		}
		sc.Indexes = append(sc.Indexes, ix)
	}
	// Literals in what the twin copies as text, on a column a rule changes
	// (a CHECK (email <> 'ceo@example.com'), a partial index, a default):
	// the twin gets them as the source wrote them, so plan and validate
	// say so, for a review, never printing them.
	ruled := func(columns []string) []string {
		var out []string
		for _, name := range columns {
			if s, ok := spec[name]; ok && s.Rule != rulesets.RuleKeep {
				out = append(out, name+" (rule "+s.Rule+")")
			}
		}
		return out
	}
	literals := func(what, def string, columns []string) {
		if r := ruled(columns); len(r) > 0 && holdsLiteral(def) {
			out = append(out, schemaDecision{text: what + " reads " + strings.Join(r, ", ") +
				" and holds literals, which the twin gets as the source wrote them: review them (schema: data_only copies none)"})
		}
	}
	for _, c := range sc.Constraints {
		literals(c.Kind.String()+" "+c.Name, c.Def, c.Columns)
	}
	for _, ix := range sc.Indexes {
		literals("index "+ix.Name, ix.Def, ix.Columns)
	}
	for _, c := range t.Columns {
		if c.Generated == "" {
			literals("default of column "+c.Name, c.Default, []string{c.Name})
		}
	}
	if sc.PartitionKey != "" {
		var changed []string
		for _, name := range sc.PartitionColumns {
			if s, ok := spec[name]; ok && s.Rule != rulesets.RuleKeep {
				changed = append(changed, name+" (rule "+s.Rule+")")
			}
		}
		if len(changed) > 0 {
			// The bounds are the source's values of those columns, which
			// the twin must not hold, and the redacted rows would not route
			// to the partitions the source's values chose.
			out = append(out, schemaDecision{text: "partitioning left out: its key reads " + strings.Join(changed, ", ") +
				": the bounds hold the source's values, and the redacted rows would not fall in them; the twin's table is not partitioned", leftOut: true})
			sc.PartitionKey, sc.PartitionColumns, sc.Partitions = "", nil, nil
		}
	}
	t.Schema = &sc
	return out
}

// schemaLines renders decisions, all of them or only what is left out.
func schemaLines(ds []schemaDecision, leftOutOnly bool) []string {
	var out []string
	for _, d := range ds {
		if d.leftOut || !leftOutOnly {
			out = append(out, d.text)
		}
	}
	return out
}

// faithful reports whether a feed builds the source's schema objects (a
// faithful twin, which also computes generated columns): the decisions of
// reconcile matter to it.
func faithful(feeds []nopii.Feed) bool {
	for _, f := range feeds {
		if g, ok := f.(generatedComputer); ok && g.ComputesGenerated() {
			return true
		}
	}
	return false
}

// holdsLiteral reports whether a definition as PostgreSQL prints it holds
// a string literal other than a name ('public.s'::regclass) or an empty one.
func holdsLiteral(def string) bool {
	for i := 0; i < len(def); i++ {
		if def[i] != '\'' {
			continue
		}
		j := i + 1
		for j < len(def) {
			if def[j] == '\'' {
				if j+1 < len(def) && def[j+1] == '\'' {
					j += 2
					continue
				}
				break
			}
			j++
		}
		if j > i+1 && !strings.HasPrefix(def[min(j+1, len(def)):], "::reg") {
			return true
		}
		i = j
	}
	return false
}
