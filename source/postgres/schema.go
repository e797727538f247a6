package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// The faithful twin's schema objects are read from the catalog, in the
// run's snapshot, rather than from pg_dump: see docs/twin.md ("Why the
// catalog and not pg_dump").

// prefixed renames the schema references of a SQL text by the input's
// target_schema_prefix. The caller holds s.mu.
func (s *Source) prefixed(ctx context.Context, sql string) (string, error) {
	if s.opts.SchemaPrefix == "" {
		return sql, nil
	}
	if s.schemas == nil {
		rows, err := s.main.Query(ctx, `SELECT nspname::text FROM pg_namespace
			WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%'`)
		if err != nil {
			return "", pgconnect.SafeError(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return "", pgconnect.SafeError(err)
		}
		s.schemas = map[string]bool{}
		for _, n := range names {
			s.schemas[n] = true
		}
	}
	return nopii.PrefixSchemas(sql, s.opts.SchemaPrefix, s.schemas), nil
}

// extensionsSQL lists, for the index whose oid is the query's $idx, the
// extensions that own its access method or operator classes.
const extensionsSQL = `coalesce((SELECT array_agg(DISTINCT e.extname::text ORDER BY e.extname::text)
	FROM pg_index xi JOIN pg_class xc ON xc.oid = xi.indexrelid
	JOIN pg_depend d ON d.deptype = 'e' AND ((d.classid = 'pg_opclass'::regclass AND d.objid = ANY(xi.indclass::oid[]))
	                                      OR (d.classid = 'pg_am'::regclass AND d.objid = xc.relam))
	JOIN pg_extension e ON e.oid = d.refobjid WHERE xi.indexrelid = $idx), '{}')`

// columnsOfSQL lists the columns of the table that the object ($obj, of
// catalog $cat) reads, from its dependencies: keys, expressions, predicate.
const columnsOfSQL = `coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
	WHERE a.attrelid = $1 AND a.attnum IN (SELECT refobjsubid FROM pg_depend
	  WHERE classid = $cat::regclass AND objid = $obj AND refclassid = 'pg_class'::regclass AND refobjid = $1 AND refobjsubid > 0)), '{}')`

// schema reads the table's schema objects: constraints, indexes,
// sequences, partitions, comment; and its identity columns' sequences.
func (s *Source) schema(ctx context.Context, oid uint32, t *nopii.Table) (*nopii.Schema, error) {
	sc := &nopii.Schema{}
	var tableText, partKey string
	err := s.main.QueryRow(ctx, `SELECT $1::oid::regclass::text, coalesce(obj_description($1, 'pg_class'), ''),
		CASE WHEN (SELECT relkind FROM pg_class WHERE oid = $1) = 'p' THEN pg_get_partkeydef($1) ELSE '' END`, oid).
		Scan(&tableText, &sc.Comment, &partKey)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	if sc.PartitionKey, err = s.prefixed(ctx, partKey); err != nil {
		return nil, err
	}
	if err := s.constraints(ctx, oid, tableText, sc); err != nil {
		return nil, fmt.Errorf("constraints: %w", err)
	}
	if sc.Indexes, err = s.indexes(ctx, oid, tableText); err != nil {
		return nil, fmt.Errorf("indexes: %w", err)
	}
	if err := s.sequences(ctx, oid, t, sc); err != nil {
		return nil, fmt.Errorf("sequences: %w", err)
	}
	if partKey != "" {
		if sc.Partitions, err = s.partitions(ctx, oid); err != nil {
			return nil, fmt.Errorf("partitions: %w", err)
		}
		if sc.PartitionColumns, err = s.partitionColumns(ctx, oid); err != nil {
			return nil, fmt.Errorf("partition key: %w", err)
		}
	}
	return sc, nil
}

// constraints reads the relation's own constraints; tableText is its name
// as pg_get_indexdef prints it.
func (s *Source) constraints(ctx context.Context, oid uint32, tableText string, sc *nopii.Schema) error {
	q := `SELECT k.conname::text, k.contype::text, pg_get_constraintdef(k.oid),
		       CASE WHEN k.contype IN ('p', 'u') THEN coalesce(pg_get_indexdef(k.conindid), '') ELSE '' END,
		       ` + strings.NewReplacer("$cat", "'pg_constraint'", "$obj", "k.oid").Replace(columnsOfSQL) + `,
		       coalesce((SELECT array_agg(a.attname::text ORDER BY x.ord) FROM unnest(k.conkey) WITH ORDINALITY x(n, ord)
		                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.n), '{}'),
		       coalesce(pn.nspname::text, ''), coalesce(p.relname::text, ''),
		       coalesce((SELECT array_agg(a.attname::text ORDER BY x.ord) FROM unnest(k.confkey) WITH ORDINALITY x(n, ord)
		                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.n), '{}'),
		       coalesce(obj_description(k.oid, 'pg_constraint'), ''),
		       ` + strings.ReplaceAll(extensionsSQL, "$idx", "k.conindid") + `
		FROM pg_constraint k
		LEFT JOIN pg_class p ON p.oid = k.confrelid LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE k.conrelid = $1 AND k.contype IN ('p', 'u', 'x', 'c', 'f') AND k.conislocal
		ORDER BY position(k.contype::text IN 'puxcf'), k.conname`
	rows, err := s.main.Query(ctx, q, oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	type raw struct {
		c          nopii.Constraint
		kind       string
		deps, keys []string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (raw, error) {
		var x raw
		return x, r.Scan(&x.c.Name, &x.kind, &x.c.Def, &x.c.IndexDef, &x.deps, &x.keys, &x.c.References.Schema, &x.c.References.Name,
			&x.c.RefColumns, &x.c.Comment, &x.c.Extensions)
	})
	if err != nil {
		return pgconnect.SafeError(err)
	}
	kinds := map[string]nopii.ConstraintKind{"p": nopii.ConstraintPrimaryKey, "u": nopii.ConstraintUnique,
		"x": nopii.ConstraintExclusion, "c": nopii.ConstraintCheck, "f": nopii.ConstraintForeignKey}
	for _, x := range rs {
		c := x.c
		c.Kind = kinds[x.kind]
		c.Columns = x.keys
		if len(c.Columns) == 0 {
			c.Columns = x.deps
		}
		if c.Def, err = s.prefixed(ctx, c.Def); err != nil {
			return err
		}
		if c.IndexDef != "" {
			// Its index, to build apart and attach (USING INDEX); without
			// it the twin builds the constraint as it is.
			tail, ok := nopii.IndexTail(c.IndexDef, tableText)
			if c.IndexDef = ""; ok {
				if c.IndexDef, err = s.prefixed(ctx, tail); err != nil {
					return err
				}
			}
		}
		sc.Constraints = append(sc.Constraints, c)
	}
	return nil
}

// indexes reads the indexes of a relation that back no constraint.
// tableText is the relation's name as pg_get_indexdef prints it.
func (s *Source) indexes(ctx context.Context, oid uint32, tableText string) ([]nopii.Index, error) {
	q := `SELECT ic.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid),
		       ` + strings.NewReplacer("$cat", "'pg_class'", "$obj", "i.indexrelid").Replace(columnsOfSQL) + `,
		       coalesce(obj_description(i.indexrelid, 'pg_class'), ''),
		       ` + strings.ReplaceAll(extensionsSQL, "$idx", "i.indexrelid") + `
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
		ORDER BY ic.relname`
	rows, err := s.main.Query(ctx, q, oid)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	ixs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (nopii.Index, error) {
		var x nopii.Index
		return x, r.Scan(&x.Name, &x.Unique, &x.Def, &x.Columns, &x.Comment, &x.Extensions)
	})
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	for i := range ixs {
		tail, ok := nopii.IndexTail(ixs[i].Def, tableText)
		if !ok {
			return nil, fmt.Errorf("index %s: cannot read its definition %q", ixs[i].Name, ixs[i].Def)
		}
		if ixs[i].Def, err = s.prefixed(ctx, tail); err != nil {
			return nil, err
		}
	}
	return ixs, nil
}

// sequenceSQL renders a sequence's options, as CREATE SEQUENCE takes them.
const sequenceSQL = `format('INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s',
	sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqstart, sq.seqcache, CASE WHEN sq.seqcycle THEN ' CYCLE' ELSE '' END),
	format_type(sq.seqtypid, NULL)`

func (s *Source) sequences(ctx context.Context, oid uint32, t *nopii.Table, sc *nopii.Schema) error {
	// Sequences the defaults draw from (serial's are owned by their column),
	// and those of identity columns.
	rows, err := s.main.Query(ctx, `
		WITH seqs(oid) AS (
			SELECT d.refobjid FROM pg_depend d
			WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
			  AND d.objid IN (SELECT oid FROM pg_attrdef WHERE adrelid = $1)
			UNION
			SELECT d.objid FROM pg_depend d
			WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.deptype = 'i'
		)
		SELECT sn.nspname::text, sc.relname::text, `+sequenceSQL+`,
		       coalesce((SELECT a.attname::text FROM pg_depend o JOIN pg_attribute a ON a.attrelid = o.refobjid AND a.attnum = o.refobjsubid
		                 WHERE o.classid = 'pg_class'::regclass AND o.objid = sc.oid AND o.refobjid = $1 AND o.deptype = 'a'), ''),
		       coalesce((SELECT a.attname::text FROM pg_depend o JOIN pg_attribute a ON a.attrelid = o.refobjid AND a.attnum = o.refobjsubid
		                 WHERE o.classid = 'pg_class'::regclass AND o.objid = sc.oid AND o.refobjid = $1 AND o.deptype = 'i'), '')
		FROM seqs JOIN pg_class sc ON sc.oid = seqs.oid AND sc.relkind = 'S'
		JOIN pg_namespace sn ON sn.oid = sc.relnamespace
		JOIN pg_sequence sq ON sq.seqrelid = sc.oid
		ORDER BY 1, 2`, oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	type raw struct {
		seq        nopii.Sequence
		identityOf string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (raw, error) {
		var x raw
		return x, r.Scan(&x.seq.Name.Schema, &x.seq.Name.Name, &x.seq.Options, &x.seq.Type, &x.seq.OwnedBy, &x.identityOf)
	})
	if err != nil {
		return pgconnect.SafeError(err)
	}
	for _, x := range rs {
		if x.identityOf != "" {
			for i := range t.Columns {
				if t.Columns[i].Name == x.identityOf {
					t.Columns[i].IdentitySequence, t.Columns[i].IdentityOptions = x.seq.Name, x.seq.Options
				}
			}
			continue
		}
		if x.seq.OwnedBy == "" {
			// A standalone sequence carries on from the source's value.
			var last *int64
			if err := s.guarded(ctx, func() error {
				return s.main.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value END FROM "+x.seq.Name.Quoted()).Scan(&last)
			}); err == nil && last != nil {
				x.seq.Last = *last
			}
		}
		sc.Sequences = append(sc.Sequences, x.seq)
	}
	return nil
}

// partitionColumns lists the columns the partition keys of the tree read:
// its key columns (partattrs) and those its key expressions read, which
// PostgreSQL records as internal dependencies of the table on its own
// columns (in either direction).
func (s *Source) partitionColumns(ctx context.Context, root uint32) ([]string, error) {
	var cols []string
	err := s.main.QueryRow(ctx, `
		SELECT coalesce(array_agg(DISTINCT a.attname::text ORDER BY a.attname::text), '{}')
		FROM pg_partition_tree($1::oid) t
		JOIN pg_partitioned_table pt ON pt.partrelid = t.relid
		JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE a.attnum = ANY (pt.partattrs::int2[])
		   OR a.attnum IN (SELECT CASE WHEN d.refobjsubid > 0 THEN d.refobjsubid ELSE d.objsubid END FROM pg_depend d
		                   WHERE d.classid = 'pg_class'::regclass AND d.objid = t.relid
		                     AND d.refclassid = 'pg_class'::regclass AND d.refobjid = t.relid AND d.deptype = 'i')`, root).Scan(&cols)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	return cols, nil
}

func (s *Source) partitions(ctx context.Context, root uint32) ([]nopii.Partition, error) {
	rows, err := s.main.Query(ctx, `
		SELECT n.nspname::text, c.relname::text, pn.nspname::text, p.relname::text,
		       pg_get_expr(c.relpartbound, c.oid), CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '' END,
		       coalesce(obj_description(c.oid, 'pg_class'), ''),
		       coalesce((SELECT array_agg(pi.relname::text || ' ' || ci.relname::text) FROM pg_index x
		                 JOIN pg_class ci ON ci.oid = x.indexrelid
		                 JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pi ON pi.oid = h.inhparent
		                 WHERE x.indrelid = c.oid), '{}')
		FROM pg_partition_tree($1::oid) t
		JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class p ON p.oid = t.parentrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE t.level > 0 AND c.relkind IN ('r', 'p')
		ORDER BY t.level, n.nspname, c.relname`, root)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	type raw struct {
		p     nopii.Partition
		pairs []string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (raw, error) {
		var x raw
		return x, r.Scan(&x.p.Name.Schema, &x.p.Name.Name, &x.p.Parent.Schema, &x.p.Parent.Name, &x.p.Bound, &x.p.PartitionKey, &x.p.Comment, &x.pairs)
	})
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	out := make([]nopii.Partition, len(rs))
	for i, x := range rs {
		p := x.p
		p.Indexes = map[string]string{}
		for _, pair := range x.pairs {
			// Index names are identifiers, which hold no space only when
			// quoted; a space-free split is exact for the usual ones.
			if parent, child, ok := strings.Cut(pair, " "); ok && !strings.Contains(child, " ") {
				p.Indexes[parent] = child
			}
		}
		if p.Bound, err = s.prefixed(ctx, p.Bound); err != nil {
			return nil, err
		}
		if p.PartitionKey, err = s.prefixed(ctx, p.PartitionKey); err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// Views returns the source's views and materialized views, each with the
// relations it reads, in an order they can be created in (what a view
// reads before it).
func (s *Source) Views(ctx context.Context) ([]nopii.View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.main.Query(ctx, `
		SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid),
		       coalesce(array_to_string(c.reloptions, ', '), ''), coalesce(obj_description(c.oid, 'pg_class'), ''),
		       coalesce((SELECT array_agg(DISTINCT rn.nspname::text || '.' || rc.relname::text)
		                 FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
		                 JOIN pg_class rc ON rc.oid = d.refobjid AND rc.oid <> c.oid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
		                 WHERE rw.ev_class = c.oid), '{}'),
		       c.oid::regclass::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'nopii')
		  AND n.nspname NOT LIKE 'pg\_%'
		  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
		ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("source %s: list views: %w", s.opts.Name, pgconnect.SafeError(err))
	}
	type raw struct {
		oid   uint32
		v     nopii.View
		reads []string
		text  string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (raw, error) {
		var x raw
		return x, r.Scan(&x.oid, &x.v.Name.Schema, &x.v.Name.Name, &x.v.Materialized, &x.v.Def, &x.v.Options, &x.v.Comment, &x.reads, &x.text)
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: list views: %w", s.opts.Name, pgconnect.SafeError(err))
	}
	var out []nopii.View
	for _, x := range rs {
		v := x.v
		for _, r := range x.reads {
			// schema.name with names that hold no '.', else skipped: such a
			// view is then left out as reading a table not copied.
			if sch, name, ok := strings.Cut(r, "."); ok && !strings.Contains(name, ".") {
				v.Reads = append(v.Reads, nopii.TableName{Schema: sch, Name: name})
			} else {
				v.Reads = append(v.Reads, nopii.TableName{Schema: r, Name: "?"})
			}
		}
		if v.Def, err = s.prefixed(ctx, strings.TrimSuffix(strings.TrimSpace(v.Def), ";")); err != nil {
			return nil, err
		}
		if v.Materialized {
			if v.Indexes, err = s.indexes(ctx, x.oid, x.text); err != nil {
				return nil, fmt.Errorf("source %s: indexes of %s: %w", s.opts.Name, v.Name, err)
			}
		}
		out = append(out, v)
	}
	return orderViews(out), nil
}

// orderViews sorts views so that each comes after the views it reads.
func orderViews(vs []nopii.View) []nopii.View {
	byName := map[nopii.TableName]int{}
	for i, v := range vs {
		byName[v.Name] = i
	}
	depth := make([]int, len(vs))
	var visit func(i, guard int) int
	visit = func(i, guard int) int {
		if depth[i] > 0 || guard > len(vs) {
			return depth[i]
		}
		d := 1
		for _, r := range vs[i].Reads {
			if j, ok := byName[r]; ok && j != i {
				d = max(d, visit(j, guard+1)+1)
			}
		}
		depth[i] = d
		return d
	}
	for i := range vs {
		visit(i, 0)
	}
	idx := make([]int, len(vs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return depth[idx[a]] < depth[idx[b]] })
	out := make([]nopii.View, len(vs))
	for i, j := range idx {
		out[i] = vs[j]
	}
	return out
}
