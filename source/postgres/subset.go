package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// Referential subsets (docs/subsets.md), computed by the source in the
// snapshot: a table's rows in the subset are selected by one SQL
// condition, built from semi-joins along the subset's references, so no
// key ever travels to the client and the database plans each step with
// its indexes and hash joins.
//
// Two kinds of sets make up the subset, each per table:
//
//	P(T)  the rows that bring their children: T's window and (T's root
//	      rows, when the root has children, or rows referencing P(X)
//	      through a Down reference T → X)
//	I(T)  the rows copied: P(T), T's root rows (window applied), and the
//	      rows that I(C) references through an Up reference C → T
//
// Where the sets depend on each other in a cycle (a self-reference such as
// staff.manager_id, or customer ↔ address), the members of the cycle are
// computed by one WITH RECURSIVE whose rows are (member, values of the
// columns the references use as text); UNION ends the recursion when no
// new row is found, so cycles in the data end too. Elsewhere the sets are
// nested IN (SELECT …) conditions. The source transaction is read only:
// nothing is written, not even a temporary table.

// subsetSettings hold the work_mem of a reader that copies a subset table: a
// semi-join under OR (a table reached in two ways) is hashed only when its
// hash table fits in work_mem, and would otherwise rescan the inner rows
// for each outer row.
//
// JIT is off: the planner's costs for nested semi-joins and recursive
// unions are high enough to compile them, which takes seconds for a query
// that runs in milliseconds.
const subsetSettings = "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off"

// subsetShare is the granularity of percent: the keyed hash modulo
// subsetShare is compared with percent × subsetShare / 100.
const subsetShare = 1_000_000

type setKind uint8

const (
	setP setKind = iota // rows that bring their children
	setI                // rows copied
)

type setNode struct {
	kind  setKind
	table nopii.TableName
}

// subsetPlan renders the conditions of one Subset.
type subsetPlan struct {
	s      *nopii.Subset
	by     map[nopii.TableName]*nopii.SubsetTable
	need   map[nopii.TableName][]string // columns the references use, key first
	deps   map[setNode][]setEdge
	scc    map[setNode]int // component of each node, where the component is a cycle
	cycles [][]setNode     // members of each cyclic component
	alias  int
	// correlated renders the conditions for a few rows at a time (a
	// stream's checks): see in.
	correlated bool
}

// setEdge says that a set takes rows through a reference from another
// set: for setP, r is a Down reference from the node's table (the child)
// to from's (the parent); for setI, an Up reference from from's table
// (the child) to the node's (the parent).
type setEdge struct {
	from setNode
	r    nopii.Reference
}

func newSubsetPlan(s *nopii.Subset) *subsetPlan {
	p := &subsetPlan{s: s, by: map[nopii.TableName]*nopii.SubsetTable{}, need: map[nopii.TableName][]string{},
		deps: map[setNode][]setEdge{}, scc: map[setNode]int{}}
	addNeed := func(t nopii.TableName, cols []string) {
		for _, c := range cols {
			if !containsString(p.need[t], c) {
				p.need[t] = append(p.need[t], c)
			}
		}
	}
	for _, t := range s.Tables {
		p.by[t.Table.Name] = t
		addNeed(t.Table.Name, t.Table.PrimaryKey)
	}
	for _, r := range s.Down {
		addNeed(r.From, r.Columns)
		addNeed(r.To, r.ToColumns)
		n := setNode{setP, r.From}
		p.deps[n] = append(p.deps[n], setEdge{from: setNode{setP, r.To}, r: r})
	}
	for _, r := range s.Up {
		if p.redundantUp(r) {
			continue
		}
		addNeed(r.From, r.Columns)
		addNeed(r.To, r.ToColumns)
		n := setNode{setI, r.To}
		p.deps[n] = append(p.deps[n], setEdge{from: setNode{setI, r.From}, r: r})
	}
	p.components()
	return p
}

// redundantUp reports an Up reference C → T whose rows are in I(T)
// already: C is no root, is reached only through its Down reference r
// from T, and nothing references C, so every row of I(C) references a row
// of P(T). Leaving it out spares the copy of T a scan of C (the users of
// orders brought by the users).
func (p *subsetPlan) redundantUp(r nopii.Reference) bool {
	if r.From == r.To || p.by[r.From].Root != nil {
		return false
	}
	downs := 0
	same := false
	for _, d := range p.s.Down {
		if d.From == r.From {
			downs++
			same = same || sameReference(d, r)
		}
	}
	if downs != 1 || !same {
		return false
	}
	for _, u := range p.s.Up {
		if u.To == r.From {
			return false
		}
	}
	return true
}

func sameReference(a, b nopii.Reference) bool {
	return a.From == b.From && a.To == b.To && strings.Join(a.Columns, "\x00") == strings.Join(b.Columns, "\x00") &&
		strings.Join(a.ToColumns, "\x00") == strings.Join(b.ToColumns, "\x00")
}

// components finds the cycles among the sets' dependencies (Tarjan).
func (p *subsetPlan) components() {
	index := map[setNode]int{}
	low := map[setNode]int{}
	on := map[setNode]bool{}
	var stack []setNode
	next := 0
	var visit func(n setNode)
	visit = func(n setNode) {
		index[n], low[n] = next, next
		next++
		stack = append(stack, n)
		on[n] = true
		for _, e := range p.deps[n] {
			m := e.from
			if _, seen := index[m]; !seen {
				visit(m)
				low[n] = min(low[n], low[m])
			} else if on[m] {
				low[n] = min(low[n], index[m])
			}
		}
		if low[n] != index[n] {
			return
		}
		var comp []setNode
		for {
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			on[m] = false
			comp = append(comp, m)
			if m == n {
				break
			}
		}
		cyclic := len(comp) > 1
		for _, e := range p.deps[n] {
			cyclic = cyclic || e.from == n
		}
		if cyclic {
			for _, m := range comp {
				p.scc[m] = len(p.cycles)
			}
			p.cycles = append(p.cycles, comp)
		}
	}
	for _, t := range p.s.Tables {
		for _, k := range []setKind{setP, setI} {
			if n := (setNode{k, t.Table.Name}); !visitedNode(index, n) {
				visit(n)
			}
		}
	}
}

func visitedNode(index map[setNode]int, n setNode) bool { _, ok := index[n]; return ok }

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *subsetPlan) newAlias() string {
	p.alias++
	return "s" + strconv.Itoa(p.alias)
}

// col is alias.column.
func col(alias, c string) string { return alias + "." + nopii.QuoteIdent(c) }

func cols(alias string, cs []string) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = col(alias, c)
	}
	return strings.Join(out, ", ")
}

// columnType is the SQL type a column's text is cast back to.
func columnType(t *nopii.Table, name string) string {
	c, ok := t.Column(name)
	if !ok || c.Type == nil {
		return "text"
	}
	if c.TypeSQL != "" {
		return c.TypeSQL
	}
	return c.Type.SQL
}

// has reports whether the table has a set of that kind: every table has
// I; P only a table whose rows bring their children.
func (p *subsetPlan) has(n setNode) bool {
	t := p.by[n.table]
	return t != nil && (n.kind == setI || t.Propagates)
}

// window is the table's own window over alias, or "".
func (p *subsetPlan) window(t *nopii.SubsetTable, alias string) string {
	if len(t.WindowBy) == 0 || t.WindowSince.IsZero() {
		return ""
	}
	lit := quoteLiteral(t.WindowSince.UTC().Format("2006-01-02 15:04:05.999999Z07:00")) + "::timestamptz"
	var or []string
	for _, c := range t.WindowBy {
		or = append(or, col(alias, c)+" >= "+lit)
	}
	return "(" + strings.Join(or, " OR ") + ")"
}

// seed selects a root table's root rows over alias. The user's where
// names the table's columns unqualified: it runs where alias is the only
// table in scope.
func (p *subsetPlan) seed(t *nopii.SubsetTable, alias string) string {
	r := t.Root
	var and []string
	if r.Where != "" {
		and = append(and, "("+r.Where+")")
	}
	if r.Percent > 0 {
		and = append(and, share(r, t.Table, alias, t.Table.PrimaryKey))
	}
	return "(" + strings.Join(and, " AND ") + ")"
}

// share is the condition that a row of root, or a row (alias) whose
// columns cs hold a key of root, is in root's share. The keyed hash is of
// an integer key's value (hashint8extended, the same for int2, int4 and
// int8) and of any other key's text as copies render it
// (hashtextextended): building the text of a number costs more than
// hashing it, and each copy of a root or of its children hashes every row.
func share(r *nopii.SubsetRoot, root *nopii.Table, alias string, cs []string) string {
	h := fmt.Sprintf("hashtextextended(%s, %d)", keyText(alias, cs), r.Seed)
	if len(root.PrimaryKey) == 1 && integerColumn(root, root.PrimaryKey[0]) {
		h = fmt.Sprintf("hashint8extended(%s::int8, %d)", col(alias, cs[0]), r.Seed)
	}
	return fmt.Sprintf("((%s %% %d + %d) %% %d) < %d", h, subsetShare, subsetShare, subsetShare, int64(r.Percent*subsetShare/100+0.5))
}

// integerColumn reports a column of a built-in integer type.
func integerColumn(t *nopii.Table, name string) bool {
	c, ok := t.Column(name)
	if !ok || c.Type == nil || !c.Type.BuiltIn() {
		return false
	}
	switch c.Type.Name {
	case "int2", "int4", "int8":
		return true
	}
	return false
}

// keyText renders columns over alias as copies render a key of them: the
// value's text for one column, a JSON array's for several.
func keyText(alias string, key []string) string {
	if len(key) == 1 {
		return col(alias, key[0]) + "::text"
	}
	return "json_build_array(" + cols(alias, key) + ")::text"
}

// sharedByReference returns, for a Down reference from a child (alias) to
// a root whose rows that bring children are exactly its share (percent,
// no where, no window, no other way in), the share's condition over the
// child's referencing columns; "" where that does not hold. When the
// reference is a validated foreign key of the source on the root's key,
// of the same types, each referencing value names an existing root row
// whose key text is the value's: the child row is in the subset exactly
// when that text is in the share. The child's copy then reads only the
// child table, and never hashes the root's keys a second time (the root's
// copy does), instead of a semi-join over a scan of the root.
func (p *subsetPlan) sharedByReference(e setEdge, alias string) string {
	root, r := p.by[e.from.table], e.r
	if e.from.kind != setP || root == nil || root.Root == nil || !root.Root.WithChildren || root.Root.Percent <= 0 ||
		root.Root.Where != "" || p.window(root, "x") != "" || len(p.deps[e.from]) > 0 || !r.Enforced ||
		!slices.Equal(r.ToColumns, root.Table.PrimaryKey) {
		return ""
	}
	child := p.by[r.From].Table
	for i, c := range r.Columns {
		if columnType(child, c) != columnType(root.Table, r.ToColumns[i]) {
			return ""
		}
	}
	cond := share(root.Root, root.Table, alias, r.Columns)
	if len(r.Columns) > 1 {
		// A NULL in a reference's columns references nothing (MATCH
		// SIMPLE), but json_build_array would render it.
		var and []string
		for _, c := range r.Columns {
			and = append(and, col(alias, c)+" IS NOT NULL")
		}
		cond = strings.Join(and, " AND ") + " AND " + cond
	}
	return "(" + cond + ")"
}

// and joins the non-empty conditions with AND ("true" for none).
func and(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return join(out, " AND ", "true")
}

// or joins conditions with OR ("false" for none).
func or(parts []string) string { return join(parts, " OR ", "false") }

func join(parts []string, op, none string) string {
	switch len(parts) {
	case 0:
		return none
	case 1:
		return parts[0]
	}
	return "(" + strings.Join(parts, op) + ")"
}

// pred is the condition that a row of n's table, as alias, is in n. With
// skip >= 0, dependencies inside cycle skip are left out (the recursive
// CTE of that cycle follows them).
func (p *subsetPlan) pred(n setNode, alias string, skip int) string {
	t := p.by[n.table]
	var alts []string
	switch n.kind {
	case setP:
		if t.Root != nil && t.Root.WithChildren {
			alts = append(alts, p.seed(t, alias))
		}
		for _, e := range p.deps[n] {
			if skip >= 0 && p.inCycle(e.from, skip) {
				continue
			}
			if c := p.sharedByReference(e, alias); c != "" {
				alts = append(alts, c)
				continue
			}
			alts = append(alts, p.in(e.from, alias, e.r.Columns, e.r.ToColumns, skip))
		}
		if len(alts) == 0 {
			return "false"
		}
		return and(p.window(t, alias), or(alts))
	default:
		if t.Propagates {
			alts = append(alts, p.member(setNode{setP, n.table}, alias))
		}
		if t.Root != nil && !t.Root.WithChildren {
			alts = append(alts, and(p.window(t, alias), p.seed(t, alias)))
		}
		for _, e := range p.deps[n] {
			if skip >= 0 && p.inCycle(e.from, skip) {
				continue
			}
			alts = append(alts, p.in(e.from, alias, e.r.ToColumns, e.r.Columns, skip))
		}
		return or(alts)
	}
}

// in is the condition that the columns mine of a row (alias) equal the
// columns theirs of a row of n: (mine) IN (SELECT theirs FROM n's rows),
// which the source hashes once per query, or, in a plan for a few rows
// (correlated, outside a cycle's recursion), EXISTS (SELECT 1 FROM … WHERE
// theirs = mine AND …), which it runs per row through theirs' index: a
// stream's check of a few keys then reads a few rows, not whole tables
// (TestSubsetMembersByIndex).
func (p *subsetPlan) in(n setNode, alias string, mine, theirs []string, skip int) string {
	if !p.correlated || skip >= 0 {
		return "(" + cols(alias, mine) + ") IN (" + p.set(n, theirs) + ")"
	}
	a := p.newAlias()
	conds := make([]string, len(mine))
	for i := range mine {
		conds[i] = col(a, theirs[i]) + " = " + col(alias, mine[i])
	}
	return "EXISTS (SELECT 1 FROM " + from(p.by[n.table].Table) + " AS " + a + " WHERE " + strings.Join(conds, " AND ") + " AND " + p.member(n, a) + ")"
}

func (p *subsetPlan) inCycle(n setNode, c int) bool {
	k, ok := p.scc[n]
	return ok && k == c
}

// member is the condition that a row (alias) of n's table is in n.
func (p *subsetPlan) member(n setNode, alias string) string {
	if _, cyclic := p.scc[n]; !cyclic {
		return p.pred(n, alias, -1)
	}
	key := p.by[n.table].Table.PrimaryKey
	return "(" + cols(alias, key) + ") IN (" + p.set(n, key) + ")"
}

// set is a SELECT of the columns cs of n's rows.
func (p *subsetPlan) set(n setNode, cs []string) string {
	t := p.by[n.table].Table
	c, cyclic := p.scc[n]
	if !cyclic {
		a := p.newAlias()
		return "SELECT " + cols(a, cs) + " FROM " + from(t) + " AS " + a + " WHERE " + p.pred(n, a, -1)
	}
	return p.recursive(c, n, cs)
}

// recursive is the WITH RECURSIVE of cycle c, selecting the columns cs of
// its member n.
func (p *subsetPlan) recursive(c int, n setNode, cs []string) string {
	members := p.cycles[c]
	idx := map[setNode]int{}
	for i, m := range members {
		idx[m] = i
	}
	cte := "nopii_cycle_" + p.newAlias()
	values := func(m setNode, alias string) string {
		need := p.need[m.table]
		out := make([]string, len(need))
		for i, c := range need {
			out[i] = col(alias, c) + "::text"
		}
		return "ARRAY[" + strings.Join(out, ", ") + "]::text[]"
	}
	// pos is the 1-based place of column c in the values of m's table.
	pos := func(m setNode, c string) int {
		for i, x := range p.need[m.table] {
			if x == c {
				return i + 1
			}
		}
		return 0
	}
	var b strings.Builder
	b.WriteString("WITH RECURSIVE " + cte + "(n, v) AS (")
	first := true
	for _, m := range members {
		pr := p.pred(m, "e", c)
		if pr == "false" {
			continue
		}
		if !first {
			b.WriteString(" UNION ALL ")
		}
		first = false
		t := p.by[m.table].Table
		fmt.Fprintf(&b, "SELECT %d, %s FROM %s AS e WHERE %s", idx[m], values(m, "e"), from(t), pr)
	}
	if first {
		b.WriteString("SELECT 0, NULL::text[] WHERE false")
	}
	b.WriteString(" UNION SELECT x.n, x.v FROM " + cte + " w CROSS JOIN LATERAL (")
	first = true
	for _, m := range members {
		st := p.by[m.table]
		for _, e := range p.deps[m] {
			if !p.inCycle(e.from, c) {
				continue
			}
			// The rows of m that the row w of e.from brings.
			mine, theirs := e.r.Columns, e.r.ToColumns // setP: m is the child
			if m.kind == setI {
				mine, theirs = e.r.ToColumns, e.r.Columns // m is the parent
			}
			conds := []string{"w.n = " + strconv.Itoa(idx[e.from])}
			for i := range mine {
				conds = append(conds, fmt.Sprintf("%s = (w.v[%d])::%s", col("y", mine[i]), pos(e.from, theirs[i]), columnType(st.Table, mine[i])))
			}
			if m.kind == setP {
				if w := p.window(st, "y"); w != "" {
					conds = append(conds, w)
				}
			}
			if !first {
				b.WriteString(" UNION ALL ")
			}
			first = false
			fmt.Fprintf(&b, "SELECT %d AS n, %s AS v FROM %s AS y WHERE %s", idx[m], values(m, "y"), from(st.Table), strings.Join(conds, " AND "))
		}
	}
	b.WriteString(") x) SELECT ")
	t := p.by[n.table].Table
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(v[%d])::%s", pos(n, c), columnType(t, c))
	}
	fmt.Fprintf(&b, " FROM %s WHERE n = %d", cte, idx[n])
	return b.String()
}

// SubsetCond returns the condition that a row of t, named by alias (an
// alias, or t's quoted name), is in the subset; "" when the subset does
// not reach t.
func SubsetCond(s *nopii.Subset, t *nopii.Table, alias string) string {
	if s.Table(t.Name) == nil {
		return ""
	}
	p := newSubsetPlan(s)
	return p.member(setNode{setI, t.Name}, alias)
}

// SubsetRows counts t's rows in the subset in the snapshot, for plan.
func (s *Source) SubsetRows(ctx context.Context, t *nopii.Table, sub *nopii.Subset) (int64, error) {
	cond := SubsetCond(sub, t, "t")
	if cond == "" {
		return 0, fmt.Errorf("count subset rows of %s: %w in the subset", t.Name, nopii.ErrNotFound)
	}
	conn, err := s.reader(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	if _, err = conn.Exec(ctx, subsetSettings); err == nil {
		err = conn.QueryRow(ctx, "SELECT count(*) FROM "+from(t)+" AS t WHERE "+cond).Scan(&n)
	}
	if err != nil {
		conn.Close(context.Background())
		<-s.slots
		return 0, fmt.Errorf("count subset rows of %s: %w", t.Name, pgconnect.SafeError(err))
	}
	s.release(conn)
	return n, nil
}

// References lists the catalog's foreign keys (of partitioned roots, not
// their clones on partitions), for subsets and for the references that
// subject requests do not follow.
func (s *Source) References(ctx context.Context) ([]nopii.Reference, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var edges []fkEdge
	err := s.guarded(ctx, func() error {
		var err error
		edges, _, err = foreignKeys(ctx, s.main)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.opts.Name, err)
	}
	out := make([]nopii.Reference, len(edges))
	for i, e := range edges {
		out[i] = nopii.Reference{Name: e.name, From: e.child, Columns: e.childCols, To: e.parent, ToColumns: e.parentCols, Enforced: e.validated}
	}
	return out, nil
}
