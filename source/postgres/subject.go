package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// Data-subject requests (SPEC §7). A subject's rows are the rows of the
// seed tables whose identifying column holds one of the values, and every
// row that references one of those by a foreign key, transitively
// (customer → rental → payment), following the source catalog's
// constraints. A path never enters a table twice, so cycles (and
// self-references such as staff.manager_id, whose rows are other people)
// end there.
//
// The rows are selected by one SQL condition per table, built from nested
// IN (SELECT …) subqueries along the foreign-key paths: the database plans
// them with its indexes, and every statement of a request sees one
// snapshot.

// maxSubjectPaths bounds the foreign-key paths followed for one request:
// a catalog dense with references could otherwise make the conditions
// grow exponentially.
const maxSubjectPaths = 512

// fkEdge is a foreign key: child's columns reference parent's.
type fkEdge struct {
	name                  string
	child, parent         nopii.TableName
	childCols, parentCols []string
	validated             bool
}

// relInfo is what a subject query needs of a table outside the workflow.
type relInfo struct {
	partitioned bool
	key         []string
}

// subjectTable is one table of a subject plan: the OR of its conditions
// selects the subject's rows; every condition refers to the table as t.
type subjectTable struct {
	name  nopii.TableName
	from  string
	key   []string
	conds []string
	via   []string
}

type subjectPlan struct {
	tables []*subjectTable
	byName map[nopii.TableName]*subjectTable
	edges  []fkEdge
	params []any
}

// where is the OR of the table's conditions.
func (t *subjectTable) where() string { return "(" + strings.Join(t.conds, ") OR (") + ")" }

// foreignKeys reads the catalog's foreign keys (those of partitioned roots,
// not their clones on partitions) and what the tables they name look like.
func foreignKeys(ctx context.Context, conn *pgx.Conn) ([]fkEdge, map[nopii.TableName]relInfo, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.conname, cn.nspname, cc.relname, pn.nspname, pc.relname, cc.relkind::text, pc.relkind::text,
		       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
		          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
		       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
		          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
		       coalesce((SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i
		          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
		          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		          WHERE i.indrelid = c.conrelid AND i.indisprimary), '{}'),
		       c.convalidated
		FROM pg_constraint c
		JOIN pg_class cc ON cc.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
		JOIN pg_class pc ON pc.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE c.contype = 'f' AND c.conparentid = 0
		  AND cn.nspname NOT IN ('pg_catalog', 'information_schema', 'nopii')
		ORDER BY cn.nspname, cc.relname, c.conname`)
	if err != nil {
		return nil, nil, fmt.Errorf("read foreign keys: %w", pgconnect.SafeError(err))
	}
	defer rows.Close()
	var edges []fkEdge
	info := map[nopii.TableName]relInfo{}
	for rows.Next() {
		var e fkEdge
		var childKind, parentKind string
		var key []string
		if err := rows.Scan(&e.name, &e.child.Schema, &e.child.Name, &e.parent.Schema, &e.parent.Name, &childKind, &parentKind,
			&e.childCols, &e.parentCols, &key, &e.validated); err != nil {
			return nil, nil, fmt.Errorf("read foreign keys: %w", err)
		}
		edges = append(edges, e)
		info[e.child] = relInfo{partitioned: childKind == "p", key: key}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read foreign keys: %w", pgconnect.SafeError(err))
	}
	return edges, info, nil
}

// planSubject builds the conditions of queries, each query's values bound
// to its own parameter.
func planSubject(qs []nopii.SubjectQuery, edges []fkEdge, info map[nopii.TableName]relInfo) (*subjectPlan, error) {
	p := &subjectPlan{byName: map[nopii.TableName]*subjectTable{}, edges: edges}
	described := map[nopii.TableName]*nopii.Table{}
	for _, q := range qs {
		for _, t := range q.Tables {
			described[t.Name] = t
		}
		for _, s := range q.Seeds {
			described[s.Table.Name] = s.Table
		}
	}
	table := func(n nopii.TableName) *subjectTable {
		if t := p.byName[n]; t != nil {
			return t
		}
		t := &subjectTable{name: n}
		if d := described[n]; d != nil {
			t.from, t.key = from(d), d.PrimaryKey
		} else {
			ri := info[n]
			t.from, t.key = "ONLY "+n.Quoted(), ri.key
			if ri.partitioned {
				t.from = n.Quoted()
			}
		}
		p.byName[n] = t
		p.tables = append(p.tables, t)
		return t
	}
	paths := 0
	var visit func(n nopii.TableName, cond, via string, path []nopii.TableName) error
	visit = func(n nopii.TableName, cond, via string, path []nopii.TableName) error {
		if paths++; paths > maxSubjectPaths {
			return fmt.Errorf("more than %d foreign-key paths lead from the identifying columns: the catalog references the subject's tables too densely to follow", maxSubjectPaths)
		}
		t := table(n)
		t.conds = append(t.conds, cond)
		t.via = append(t.via, via)
		path = append(path, n)
		for _, e := range edges {
			if e.parent != n || slices.Contains(path, e.child) {
				continue
			}
			sub := "(" + qualified("t", e.childCols) + ") IN (SELECT " + qualified("t", e.parentCols) + " FROM " + t.from + " AS t WHERE " + cond + ")"
			if err := visit(e.child, sub, fmt.Sprintf("%s(%s) → %s", e.child, strings.Join(e.childCols, ", "), via), slices.Clip(path)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, q := range qs {
		p.params = append(p.params, q.Values)
		param := "$" + strconv.Itoa(len(p.params))
		for _, s := range q.Seeds {
			col, ok := s.Table.Column(s.Column)
			if !ok {
				return nil, fmt.Errorf("identifying column %q: %w in table %s", s.Column, nopii.ErrNotFound, s.Table.Name)
			}
			if err := visit(s.Table.Name, seedCond(col, param), fmt.Sprintf("%s(%s)", s.Table.Name, s.Column), nil); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// seedCond compares a column with the text values of param, cast to the
// column's type without its typmod (a varchar(n) cast would cut a longer
// value into one that matches) and without domains (whose checks would
// turn a value that cannot match into an error). Array columns match
// when they hold one of the values.
func seedCond(c nopii.Column, param string) string {
	t := c.Type.Underlying()
	col := "t." + nopii.QuoteIdent(c.Name)
	if t.Kind == nopii.TypeArray && t.Elem != nil {
		return col + " && " + param + "::text[]::" + t.Elem.Underlying().SQL + "[]"
	}
	return col + " = ANY (" + param + "::text[]::" + t.SQL + "[])"
}

func qualified(alias string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + "." + nopii.QuoteIdent(c)
	}
	return strings.Join(out, ", ")
}

// keyExpr is source_primary_key's text as CopySQL computes it, over t.
func (t *subjectTable) keyExpr() string {
	if len(t.key) == 1 {
		return "t." + nopii.QuoteIdent(t.key[0]) + "::text"
	}
	return "json_build_array(" + qualified("t", t.key) + ")::text"
}

// matchError turns a value that cannot be cast to the column's type into
// an error that does not repeat the value (PostgreSQL's message does).
func matchError(t nopii.TableName, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		return fmt.Errorf("match rows of %s: a --match value is not a valid value of the identifying column's type (SQLSTATE %s)", t, pgErr.Code)
	}
	return fmt.Errorf("match rows of %s: %w", t, pgconnect.SafeError(err))
}

// count runs the plan's queries on conn: each table's matched keys (or,
// without a key, its matched rows) and its row count.
func (p *subjectPlan) count(ctx context.Context, conn *pgx.Conn) ([]nopii.SubjectRows, error) {
	var out []nopii.SubjectRows
	for _, t := range p.tables {
		r := nopii.SubjectRows{Table: t.name, Via: t.via}
		where := t.where()
		if len(t.key) > 0 {
			rows, err := conn.Query(ctx, "SELECT DISTINCT "+t.keyExpr()+" FROM "+t.from+" AS t WHERE "+where+" ORDER BY 1", p.params...)
			if err != nil {
				return nil, matchError(t.name, err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return nil, matchError(t.name, err)
			}
			slices.Sort(keys) // by bytes, as feeds compare them
			r.Keys, r.Rows = keys, int64(len(keys))
		} else if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.from+" AS t WHERE "+where, p.params...).Scan(&r.Rows); err != nil {
			return nil, matchError(t.name, err)
		}
		if r.Rows > 0 {
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.from).Scan(&r.TableRows); err != nil {
				return nil, fmt.Errorf("count rows of %s: %w", t.name, pgconnect.SafeError(err))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// SubjectRows finds a subject's rows in the snapshot: per table reached
// from the seeds, the keys of the rows matched and the table's row count.
// Queries are OR'ed. Tables where nothing matched are listed with Rows 0.
func (s *Source) SubjectRows(ctx context.Context, qs []nopii.SubjectQuery) ([]nopii.SubjectRows, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []nopii.SubjectRows
	err := s.guarded(ctx, func() error {
		p, err := s.plan(ctx, s.main, qs)
		if err != nil {
			return err
		}
		out, err = p.count(ctx, s.main)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.opts.Name, err)
	}
	return out, nil
}

func (s *Source) plan(ctx context.Context, conn *pgx.Conn, qs []nopii.SubjectQuery) (*subjectPlan, error) {
	edges, info, err := foreignKeys(ctx, conn)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, q := range qs {
		for _, r := range q.References {
			if k := r.String(); !seen[k] {
				seen[k] = true
				edges = append(edges, fkEdge{name: "virtual", child: r.From, parent: r.To, childCols: r.Columns, parentCols: r.ToColumns})
			}
		}
	}
	return planSubject(qs, edges, info)
}

// SubjectJSON streams a subject's rows in the snapshot, table by table
// (in the order SubjectRows lists them), each row as row_to_json renders
// it, ordered by key.
func (s *Source) SubjectJSON(ctx context.Context, qs []nopii.SubjectQuery, row func(t nopii.TableName, js []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.guarded(ctx, func() error {
		p, err := s.plan(ctx, s.main, qs)
		if err != nil {
			return err
		}
		for _, t := range p.tables {
			q := "SELECT row_to_json(t)::text FROM " + t.from + " AS t WHERE " + t.where()
			if len(t.key) > 0 {
				q += " ORDER BY " + t.keyExpr()
			}
			rows, err := s.main.Query(ctx, q, p.params...)
			if err != nil {
				return matchError(t.name, err)
			}
			for rows.Next() {
				if err := row(t.name, rows.RawValues()[0]); err != nil {
					rows.Close()
					return err
				}
			}
			if err := rows.Err(); err != nil {
				return matchError(t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: %w", s.opts.Name, err)
	}
	return nil
}

// ErrTooWide reports a subject request that matches more of a table than
// the safeguard allows.
var ErrTooWide = errors.New("the request matches too large a share of a table")

// DeleteSubject deletes a subject's rows from the source database in one
// transaction on a connection of its own (the snapshot is read-only): it
// matches the rows again, refuses (deleting nothing) when they exceed
// maxProportion of any table, then deletes each table's rows, tables that
// reference others first. It returns the rows deleted per table.
func (s *Source) DeleteSubject(ctx context.Context, qs []nopii.SubjectQuery, maxProportion float64) ([]nopii.SubjectRows, error) {
	conn, err := pgconnect.ConnectConfig(ctx, s.cfg.Copy(), s.opts.Connect)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	out, err := deleteSubject(ctx, conn, s, qs, maxProportion)
	if err != nil {
		return nil, fmt.Errorf("source %s: delete subject: %w", s.opts.Name, err)
	}
	return out, nil
}

func deleteSubject(ctx context.Context, conn *pgx.Conn, s *Source, qs []nopii.SubjectQuery, maxProportion float64) ([]nopii.SubjectRows, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	defer tx.Rollback(context.Background())
	p, err := s.plan(ctx, conn, qs)
	if err != nil {
		return nil, err
	}
	// Rows are addressed by (relation, ctid), read in this transaction
	// before anything is deleted: exact, type-agnostic, and a row that
	// another transaction changes meanwhile fails the delete with a
	// serialization error instead of being missed.
	type victims struct {
		rel   []string // tableoid::regclass, per row
		ctids []string
	}
	found := map[nopii.TableName]*victims{}
	for _, t := range p.tables {
		rows, err := conn.Query(ctx, "SELECT t.tableoid::regclass::text, t.ctid::text FROM "+t.from+" AS t WHERE "+t.where(), p.params...)
		if err != nil {
			return nil, matchError(t.name, err)
		}
		v := &victims{}
		for rows.Next() {
			var rel, ctid string
			if err := rows.Scan(&rel, &ctid); err != nil {
				rows.Close()
				return nil, err
			}
			v.rel, v.ctids = append(v.rel, rel), append(v.ctids, ctid)
		}
		if err := rows.Err(); err != nil {
			return nil, matchError(t.name, err)
		}
		found[t.name] = v
		if len(v.ctids) == 0 {
			continue
		}
		var total int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.from).Scan(&total); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t.name, pgconnect.SafeError(err))
		}
		if share := float64(len(v.ctids)) / float64(total); share > maxProportion {
			return nil, fmt.Errorf("%w: %d of %d rows (%.4f) of %s, more than --max-matching-proportion %g; nothing was deleted",
				ErrTooWide, len(v.ctids), total, share, t.name, maxProportion)
		}
	}
	var out []nopii.SubjectRows
	for _, n := range p.deleteOrder() {
		v := found[n]
		r := nopii.SubjectRows{Table: n, Via: p.byName[n].via}
		byRel := map[string][]string{}
		var rels []string
		for i, rel := range v.rel {
			if _, ok := byRel[rel]; !ok {
				rels = append(rels, rel)
			}
			byRel[rel] = append(byRel[rel], v.ctids[i])
		}
		for _, rel := range rels {
			tag, err := conn.Exec(ctx, "DELETE FROM ONLY "+rel+" WHERE ctid = ANY ($1::tid[])", byRel[rel])
			if err != nil {
				return nil, fmt.Errorf("delete from %s: %w", n, pgconnect.SafeError(err))
			}
			r.Rows += tag.RowsAffected()
		}
		out = append(out, r)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// deleteOrder lists the plan's tables so that a table comes after every
// table that references it (dependents first), so that no foreign key sees
// its target go first: a depth-first walk along references, appending a
// table when everything referencing it is placed. A reference cycle is cut
// where the walk meets it again; the database decides whether its
// constraints (deferrable, say) allow the order.
func (p *subjectPlan) deleteOrder() []nopii.TableName {
	var out []nopii.TableName
	seen := map[nopii.TableName]bool{}
	var visit func(n nopii.TableName)
	visit = func(n nopii.TableName) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, e := range p.edges {
			if e.parent == n && p.byName[e.child] != nil {
				visit(e.child)
			}
		}
		out = append(out, n)
	}
	for _, t := range p.tables {
		visit(t.name)
	}
	return out
}
