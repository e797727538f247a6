package nopii

import (
	"fmt"
	"strings"
	"time"
)

// Reference is a foreign key between two tables, from the source catalog
// or from the configuration (a virtual foreign key): From's Columns hold
// the values of To's ToColumns.
type Reference struct {
	Name      string // the constraint's name; empty for a virtual foreign key
	From      TableName
	Columns   []string
	To        TableName
	ToColumns []string
	Virtual   bool // declared under references: in the configuration
	// Enforced: a validated foreign key of the source, so every row's
	// Columns, where none is NULL, name a row of To (a virtual or NOT
	// VALID one promises nothing).
	Enforced bool
}

// String renders the reference as plan and subject reports show it:
// public.orders(user_id) → public.users(id).
func (r Reference) String() string {
	return fmt.Sprintf("%s(%s) → %s(%s)", r.From, strings.Join(r.Columns, ", "), r.To, strings.Join(r.ToColumns, ", "))
}

// Describe is String with the reference's origin: the constraint's name,
// or "virtual".
func (r Reference) Describe() string {
	if r.Virtual {
		return r.String() + " (virtual)"
	}
	return r.String() + " (" + r.Name + ")"
}

// Subset is a referential subset of one input's tables (docs/subsets.md):
// the root tables' rows that their predicate or share selects; the rows
// that reference included rows of a table whose rows bring their children
// (Down), transitively; and every row that an included row references
// (Up), transitively, whatever its table's own options. A table's window
// limits its root and child rows, never the rows included rows reference,
// so that the copy's foreign keys hold.
type Subset struct {
	Tables []*SubsetTable // the tables the subset reaches, each once
	Down   []Reference    // followed from a referenced row to the rows referencing it
	Up     []Reference    // followed from a row to the rows it references
}

// SubsetTable is one table of a Subset.
type SubsetTable struct {
	Table *Table
	Root  *SubsetRoot // nil for a table that the subset only reaches
	// Propagates says that the table's included root and child rows bring
	// the rows that reference them (Down references out of it are followed).
	Propagates bool
	// WindowSince and WindowBy are the table's own window: its root and
	// child rows are those with a WindowBy column at or after WindowSince.
	WindowSince time.Time
	WindowBy    []string
	// Via says how the subset reaches the table, for plan: "root (percent
	// 10)", "children: public.orders(user_id) → public.users(id)",
	// "referenced: …".
	Via []string
}

// SubsetRoot selects a root table's rows. With both set, a row must match
// Where and fall in the share.
type SubsetRoot struct {
	Where        string  // a SQL condition on the table's columns
	Percent      float64 // in (0, 100]; 0 when not set
	Seed         int64   // the keyed hash's seed, derived from hmac_key
	WithChildren bool    // the root rows bring the rows referencing them
}

// String describes the root for plan.
func (r *SubsetRoot) String() string {
	var parts []string
	if r.Where != "" {
		parts = append(parts, "where "+r.Where)
	}
	if r.Percent > 0 {
		parts = append(parts, fmt.Sprintf("%g%% by keyed hash", r.Percent))
	}
	s := "root: " + strings.Join(parts, " and ")
	if !r.WithChildren {
		s += ", without children"
	}
	return s
}

// Table returns the subset's table named n, or nil when the subset does
// not reach it.
func (s *Subset) Table(n TableName) *SubsetTable {
	if s == nil {
		return nil
	}
	for _, t := range s.Tables {
		if t.Table.Name == n {
			return t
		}
	}
	return nil
}

// NewSubset computes the subset that the roots among candidates (those
// with Root set) reach through refs: first the tables whose rows
// reference a propagating table's rows (roots with children, then their
// children, transitively), then every table that a reached table
// references, transitively. References to or from tables outside
// candidates are not followed. It returns nil when no candidate is a root.
func NewSubset(candidates []*SubsetTable, refs []Reference) *Subset {
	by := map[TableName]*SubsetTable{}
	reached := map[TableName]bool{}
	var order []TableName
	reach := func(t *SubsetTable, via string) {
		if !reached[t.Table.Name] {
			reached[t.Table.Name] = true
			order = append(order, t.Table.Name)
		}
		t.Via = append(t.Via, via)
	}
	for _, t := range candidates {
		by[t.Table.Name] = t
		t.Via, t.Propagates = nil, false
		if t.Root != nil {
			t.Propagates = t.Root.WithChildren
			reach(t, t.Root.String())
		}
	}
	if len(order) == 0 {
		return nil
	}
	var usable []Reference
	for _, r := range refs {
		if by[r.From] != nil && by[r.To] != nil {
			usable = append(usable, r)
		}
	}
	s := &Subset{}
	down := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for i, r := range usable {
			if down[i] || !by[r.To].Propagates {
				continue
			}
			down[i], changed = true, true
			child := by[r.From]
			child.Propagates = true
			reach(child, "children: "+r.String())
			s.Down = append(s.Down, r)
		}
	}
	up := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for i, r := range usable {
			if up[i] || !reached[r.From] {
				continue
			}
			up[i], changed = true, true
			reach(by[r.To], "referenced: "+r.String())
			s.Up = append(s.Up, r)
		}
	}
	for _, n := range order {
		s.Tables = append(s.Tables, by[n])
	}
	return s
}
