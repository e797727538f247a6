package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/pgcopy"
)

var _ nopii.Source = (*Source)(nil)

// readBuffer is the read buffer of each source connection.
const readBuffer = 256 << 10

// Options configure a Source.
type Options struct {
	Name    string       // the input's name, for errors and logs
	Readers int          // most reader connections at once; default 1
	Logger  *slog.Logger // default slog.Default()
	Connect pgconnect.Options
	// Snapshot, when set, is an exported snapshot to import (a new
	// replication slot's) instead of exporting one of our own.
	Snapshot string
	// RangePages is the fewest heap pages a page range of a split full
	// copy gets (PageRanges); default DefaultRangePages.
	RangePages uint32
	// SchemaPrefix is the input's target_schema_prefix: schema references
	// in the SQL of a table's Schema (defaults, constraints, indexes,
	// views) are renamed with it.
	SchemaPrefix string
}

// Source is a snapshot of one PostgreSQL database. Safe for concurrent Copy.
type Source struct {
	cfg      *pgx.ConnConfig
	opts     Options
	log      *slog.Logger
	mu       sync.Mutex // guards main (catalog queries) and types
	main     *pgx.Conn
	snapshot string
	inFlight time.Time
	types    map[uint32]*nopii.Type
	schemas  map[string]bool // the source's own schemas, for PrefixSchemas; read once

	readers chan *pgx.Conn // idle readers
	slots   chan struct{}  // one token per reader that may exist
	closed  chan struct{}  // closed by Close: readers coming back are closed, not pooled
	once    sync.Once
}

// Open connects, begins the snapshot transaction and exports its snapshot
// (or imports Options.Snapshot).
func Open(ctx context.Context, dsn string, o Options) (*Source, error) {
	if o.Readers <= 0 {
		o.Readers = 1
	}
	cfg, conn, err := connectSource(ctx, dsn, o.Name, &o.Logger, &o.Connect)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, opts: o, log: o.Logger, main: conn, types: map[uint32]*nopii.Type{},
		readers: make(chan *pgx.Conn, o.Readers), slots: make(chan struct{}, o.Readers), closed: make(chan struct{})}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("source %s: begin snapshot: %w", o.Name, pgconnect.SafeError(err))
	}
	// Writers in flight now may stamp rows with times before the snapshot
	// yet commit after it; delta cursors must not pass their start. Without
	// pg_read_all_stats, other roles' sessions show no xact_start: the
	// cursor overlap covers those. One statement, so that the snapshot and
	// the look at writers are as close together as they can be.
	// An imported snapshot (mode cdc's first copy, consistent with its
	// replication slot) is shared with the readers under its own id.
	var since *time.Time
	const inFlight = `(SELECT min(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid())`
	if o.Snapshot != "" {
		s.snapshot = o.Snapshot
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(o.Snapshot)); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("source %s: import snapshot: %w", o.Name, pgconnect.SafeError(err))
		}
		if err := conn.QueryRow(ctx, "SELECT "+inFlight).Scan(&since); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("source %s: look at writers in flight: %w", o.Name, pgconnect.SafeError(err))
		}
	} else if err := conn.QueryRow(ctx, "SELECT pg_export_snapshot(), "+inFlight).Scan(&s.snapshot, &since); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("source %s: export snapshot: %w", o.Name, pgconnect.SafeError(err))
	}
	if since != nil {
		s.inFlight = *since
	}
	return s, nil
}

// connectSource fills in the logger and connect options and opens the
// source's catalog connection.
// The oldest PostgreSQL a source may run: the catalog reads use
// pg_partition_tree and pg_attribute.attgenerated (12); mode cdc creates
// its publication WITH (publish_via_partition_root) (13).
const (
	MinServer    = 12
	MinServerCDC = 13
)

func connectSource(ctx context.Context, dsn, name string, log **slog.Logger, co *pgconnect.Options) (*pgx.ConnConfig, *pgx.Conn, error) {
	if *log == nil {
		*log = slog.Default()
	}
	if co.What == "" {
		co.What = "source " + name
	}
	if co.MinServer == 0 {
		co.MinServer = MinServer
	}
	co.Logger = *log
	cfg, err := pgconnect.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("source %s: parse dsn: %w", name, err)
	}
	// Identifiers are always schema-qualified; with pg_catalog alone on the
	// path, format_type and pg_get_constraintdef qualify user types too.
	cfg.RuntimeParams["search_path"] = "pg_catalog"
	// Catalog queries run once each per run: the simple protocol does each
	// in one round trip, where a prepared statement takes two. (Arguments
	// are names and OIDs, which pgx quotes; COPY does not use it.)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	// A copy reads the whole table through this connection: one read
	// syscall per 256 KiB instead of pgproto3's 8 KiB (measured: reads were
	// 17% of nopii's CPU in a 10M-row copy).
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBuffer), w)
	}
	conn, err := pgconnect.ConnectConfig(ctx, cfg, *co)
	if err != nil {
		return nil, nil, err
	}
	return cfg, conn, nil
}

// InFlightSince implements nopii.Source.
func (s *Source) InFlightSince() time.Time { return s.inFlight }

// Snapshot returns the exported snapshot's id.
func (s *Source) Snapshot() string { return s.snapshot }

// Close ends the snapshot and closes every connection.
func (s *Source) Close() error {
	ctx := context.Background()
	s.once.Do(func() { close(s.closed) })
	for {
		select {
		case c := <-s.readers:
			c.Close(ctx)
			continue
		default:
		}
		break
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.main != nil {
		s.main.Exec(ctx, "ROLLBACK")
		s.main.Close(ctx)
		s.main = nil
	}
	return nil
}

// Relations implements nopii.Source.
func (s *Source) Relations(ctx context.Context) ([]nopii.Relation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.main.Query(ctx, `
		SELECT n.nspname, c.relname, c.relkind::text, c.relispartition,
		       coalesce(pn.nspname, ''), coalesce(p.relname, '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN LATERAL (SELECT inhparent FROM pg_inherits WHERE inhrelid = c.oid ORDER BY inhseqno LIMIT 1) i ON true
		LEFT JOIN pg_class p ON p.oid = i.inhparent
		LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE c.relkind IN ('r','p','v','m','f')
		  AND n.nspname NOT IN ('pg_catalog','information_schema','nopii')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("source %s: list relations: %w", s.opts.Name, pgconnect.SafeError(err))
	}
	defer rows.Close()
	var out []nopii.Relation
	for rows.Next() {
		var r nopii.Relation
		var kind string
		if err := rows.Scan(&r.Name.Schema, &r.Name.Name, &kind, &r.Partition, &r.Parent.Schema, &r.Parent.Name); err != nil {
			return nil, err
		}
		r.Kind = map[string]nopii.RelKind{"r": nopii.RelTable, "p": nopii.RelPartitioned, "v": nopii.RelView, "m": nopii.RelMatView, "f": nopii.RelForeign}[kind]
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("source %s: list relations: %w", s.opts.Name, pgconnect.SafeError(err))
	}
	return out, nil
}

// Describe implements nopii.Source.
func (s *Source) Describe(ctx context.Context, rel nopii.Relation, primaryKey []string) (*nopii.Table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.describe(ctx, rel, primaryKey)
	if err != nil {
		// t is nil but for a table described without a usable key.
		return t, fmt.Errorf("describe %s: %w", rel.Name, err)
	}
	return t, nil
}

func (s *Source) describe(ctx context.Context, rel nopii.Relation, primaryKey []string) (*nopii.Table, error) {
	var oid uint32
	var kind string
	var est float64
	err := s.main.QueryRow(ctx, `
		SELECT c.oid, c.relkind::text,
		       CASE WHEN c.relkind = 'p' THEN coalesce((SELECT sum(p.reltuples) FROM pg_partition_tree(c.oid) t
		            JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf AND p.reltuples >= 0), -1) ELSE c.reltuples END::float8
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, rel.Name.Schema, rel.Name.Name).Scan(&oid, &kind, &est)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("table %s: %w in the source", rel.Name, nopii.ErrNotFound)
	}
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	if err := s.lock(ctx, rel.Name, kind); err != nil {
		return nil, err
	}
	// TRUNCATE and table-rewriting ALTER TABLE are not MVCC-safe: committed
	// after the snapshot but before the lock, they leave the snapshot an
	// empty table, which would replace the twin's copy with nothing. The
	// snapshot's pg_class row still has the old file; the catalog has the new.
	var rewritten bool
	err = s.main.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c
		WHERE c.oid IN (SELECT $1::oid UNION SELECT relid FROM pg_partition_tree($1::oid))
		  AND c.relkind IN ('r', 'm') AND c.relfilenode <> pg_relation_filenode(c.oid))`, oid).Scan(&rewritten)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	if rewritten {
		return nil, fmt.Errorf("table %s was truncated or rewritten (TRUNCATE, ALTER … TYPE, VACUUM FULL) after the run's snapshot was taken; nothing was copied: run again", rel.Name)
	}
	t := &nopii.Table{Name: rel.Name, Partitioned: kind == "p", View: kind == "v" || kind == "m" || kind == "f", EstRows: int64(est)}
	if est < 0 {
		t.EstRows = -1
	}
	cols, err := s.columns(ctx, oid)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s has no columns", rel.Name)
	}
	t.Columns = cols
	if err := s.generated(ctx, oid, t); err != nil {
		return nil, err
	}
	if kind == "r" || kind == "p" {
		if t.Schema, err = s.schema(ctx, oid, t); err != nil {
			return nil, fmt.Errorf("read schema objects: %w", err)
		}
	}
	if _, ok := t.Column(nopii.SourcePrimaryKeyColumn); ok {
		return nil, fmt.Errorf("column %q is reserved for the key nopii adds; rename it in the source or exclude the table", nopii.SourcePrimaryKeyColumn)
	}
	if len(primaryKey) > 0 {
		for _, k := range primaryKey {
			if _, ok := t.Column(k); !ok {
				return t, fmt.Errorf("primary_key column %q: %w in table %s", k, nopii.ErrNotFound, rel.Name)
			}
		}
		t.PrimaryKey = primaryKey
		return t, nil
	}
	rows, err := s.main.Query(ctx, `
		SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, oid)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	t.PrimaryKey, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	if len(t.PrimaryKey) == 0 {
		index, cols, err := s.keyCandidate(ctx, oid)
		if err != nil {
			return nil, err
		}
		if index == "" {
			return t, fmt.Errorf("%w (no unique index over NOT NULL columns either: list the columns that identify a row)", nopii.ErrNoPrimaryKey)
		}
		return t, fmt.Errorf("%w (unique index %s is over NOT NULL columns: primary_key: [%s])", nopii.ErrNoPrimaryKey, index, strings.Join(cols, ", "))
	}
	return t, nil
}

// keyCandidate returns the unique index that could stand in for a missing
// primary key, and its columns: valid, not partial, over plain columns that
// are all NOT NULL; the one of fewest columns, then by name. Empty when the
// table has none.
func (s *Source) keyCandidate(ctx context.Context, oid uint32) (string, []string, error) {
	var index string
	var cols []string
	err := s.main.QueryRow(ctx, `
		SELECT ic.relname, array_agg(a.attname::text ORDER BY k.ord)
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		  AND k.ord <= i.indnkeyatts -- not the INCLUDE columns
		GROUP BY ic.relname
		HAVING bool_and(a.attnotnull)
		ORDER BY count(*), ic.relname
		LIMIT 1`, oid).Scan(&index, &cols)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, pgconnect.SafeError(err)
	}
	return index, cols, nil
}

// lock takes ACCESS SHARE on the table for the rest of the snapshot, as
// pg_dump does, so that no DDL can change it between describe and copy. A
// savepoint keeps a lock timeout from aborting the snapshot transaction.
func (s *Source) lock(ctx context.Context, name nopii.TableName, kind string) error {
	if kind != "r" && kind != "p" {
		// PostgreSQL locks only tables this way (not views, materialized
		// views or foreign tables); what they read is in the snapshot anyway.
		return nil
	}
	if _, err := s.main.Exec(ctx, "SAVEPOINT nopii_lock; SET LOCAL lock_timeout = '30s'"); err != nil {
		return pgconnect.SafeError(err)
	}
	if _, err := s.main.Exec(ctx, "LOCK TABLE "+name.Quoted()+" IN ACCESS SHARE MODE"); err != nil {
		s.main.Exec(context.Background(), "ROLLBACK TO SAVEPOINT nopii_lock")
		return fmt.Errorf("lock: %w", pgconnect.SafeError(err))
	}
	_, err := s.main.Exec(ctx, "RELEASE SAVEPOINT nopii_lock")
	return pgconnect.SafeError(err)
}

// generated fills GeneratedFrom for stored generated columns, from the
// dependencies of their expressions.
func (s *Source) generated(ctx context.Context, rel uint32, t *nopii.Table) error {
	rows, err := s.main.Query(ctx, `
		SELECT a.attname, r.attname
		FROM pg_attrdef d
		JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum AND a.attgenerated = 's'
		JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
		     AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = d.adrelid AND dep.refobjsubid > 0
		JOIN pg_attribute r ON r.attrelid = d.adrelid AND r.attnum = dep.refobjsubid
		WHERE d.adrelid = $1 ORDER BY a.attnum, r.attnum`, rel)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var gen, from string
		if err := rows.Scan(&gen, &from); err != nil {
			return err
		}
		for i := range t.Columns {
			if t.Columns[i].Name == gen {
				t.Columns[i].GeneratedFrom = append(t.Columns[i].GeneratedFrom, from)
			}
		}
	}
	return pgconnect.SafeError(rows.Err())
}

func (s *Source) columns(ctx context.Context, rel uint32) ([]nopii.Column, error) {
	rows, err := s.main.Query(ctx, `
		SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, format_type(a.atttypid, a.atttypmod),
		       coalesce(col_description(a.attrelid, a.attnum), ''),
		       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attgenerated::text, a.attidentity::text,
		       coalesce((SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN quote_ident(co.collname)
		                        ELSE quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
		                 FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
		                 WHERE co.oid = a.attcollation AND a.attcollation <> t.typcollation), '')
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, rel)
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	type raw struct {
		name             string
		oid              uint32
		typmod           int32
		notNull          bool
		sql              string
		comment          string
		expr, gen, ident string
		collation        string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (raw, error) {
		var x raw
		return x, r.Scan(&x.name, &x.oid, &x.typmod, &x.notNull, &x.sql, &x.comment, &x.expr, &x.gen, &x.ident, &x.collation)
	})
	if err != nil {
		return nil, pgconnect.SafeError(err)
	}
	cols := make([]nopii.Column, len(rs))
	for i, r := range rs {
		t, err := s.typ(ctx, r.oid)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", r.name, err)
		}
		cols[i] = nopii.Column{Name: r.name, Type: t, Typmod: r.typmod, TypeSQL: r.sql, NotNull: r.notNull, Comment: r.comment, Collation: r.collation}
		if r.ident != "" {
			cols[i].Identity = r.ident[0]
		}
		if r.expr != "" {
			expr, err := s.prefixed(ctx, r.expr)
			if err != nil {
				return nil, err
			}
			if r.gen == "s" {
				cols[i].Generated = expr
			} else {
				cols[i].Default = expr
			}
		}
	}
	return cols, nil
}

// typ resolves a type and everything it is built from, with a cache.
func (s *Source) typ(ctx context.Context, oid uint32) (*nopii.Type, error) {
	if t, ok := s.types[oid]; ok {
		return t, nil
	}
	var (
		t                     = &nopii.Type{OID: oid}
		typtype, category     string
		elem, base, relid     uint32
		baseSQL, ext, typeSQL string
	)
	err := s.main.QueryRow(ctx, `
		SELECT n.nspname, t.typname, t.typtype::text, t.typcategory::text, t.typelem, t.typbasetype, t.typtypmod,
		       t.typnotnull, t.typrelid, coalesce(format_type(t.typbasetype, t.typtypmod), ''), format_type(t.oid, NULL),
		       coalesce((SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
		                 WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e' LIMIT 1), '')
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`, oid).
		Scan(&t.Schema, &t.Name, &typtype, &category, &elem, &base, &t.BaseTypmod, &t.NotNull, &relid, &baseSQL, &typeSQL, &ext)
	if err != nil {
		return nil, fmt.Errorf("type %d: %w", oid, pgconnect.SafeError(err))
	}
	t.Extension = ext
	t.SQL = typeSQL
	s.types[oid] = t // before recursing: composite types may refer to themselves through arrays
	switch {
	case category == "A" && elem != 0:
		t.Kind = nopii.TypeArray
		if t.Elem, err = s.typ(ctx, elem); err != nil {
			return nil, err
		}
	case typtype == "d":
		t.Kind = nopii.TypeDomain
		t.BaseSQL = baseSQL
		if t.Base, err = s.typ(ctx, base); err != nil {
			return nil, err
		}
		rows, err := s.main.Query(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = $1 AND contype = 'c' ORDER BY conname`, oid)
		if err != nil {
			return nil, pgconnect.SafeError(err)
		}
		if t.Checks, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, pgconnect.SafeError(err)
		}
	case typtype == "e":
		t.Kind = nopii.TypeEnum
		rows, err := s.main.Query(ctx, `SELECT enumlabel FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder`, oid)
		if err != nil {
			return nil, pgconnect.SafeError(err)
		}
		if t.Labels, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, pgconnect.SafeError(err)
		}
	case typtype == "c":
		t.Kind = nopii.TypeComposite
		if t.Attrs, err = s.columns(ctx, relid); err != nil {
			return nil, err
		}
	case typtype == "r" || typtype == "m":
		t.Kind = nopii.TypeRange
	default:
		t.Kind = nopii.TypeBase
	}
	return t, nil
}

// CopySQL returns the statement CopySelect runs for t.
func CopySQL(t *nopii.Table, sel nopii.Selection) string { return copySQL(t, sel, "") }

// copySQL renders the COPY of t narrowed by sel and, when set, by a further
// condition (a page range).
func copySQL(t *nopii.Table, sel nopii.Selection, cond string) string {
	var b strings.Builder
	b.WriteString("COPY (SELECT ")
	if !sel.KeysOnly {
		for _, c := range t.Columns {
			if t.OmitGenerated && c.Generated != "" {
				// The feeds compute it: its value, built from columns
				// that may be redacted, does not leave the source.
				b.WriteString("NULL::" + c.TypeSQL + ", ")
				continue
			}
			b.WriteString(nopii.QuoteIdent(c.Name))
			b.WriteString(", ")
		}
	}
	writeKey(&b, t)
	if !sel.KeysOnly {
		for _, cs := range sel.References {
			b.WriteString(", " + referenceKey(cs))
		}
	}
	b.WriteString(" FROM ")
	b.WriteString(from(t))
	w := where(t, sel)
	switch {
	case cond != "" && w == "":
		w = " WHERE " + cond
	case cond != "":
		w += " AND " + cond
	}
	b.WriteString(w)
	b.WriteString(") TO STDOUT (FORMAT binary)")
	return b.String()
}

// referenceKey is the key text that columns of a reference name
// (Selection.References): NULL when one of them is NULL, which references
// nothing.
func referenceKey(cs []string) string {
	if len(cs) == 1 {
		return nopii.QuoteIdent(cs[0]) + "::text"
	}
	q := make([]string, len(cs))
	for i, c := range cs {
		q[i] = nopii.QuoteIdent(c)
	}
	return "CASE WHEN " + strings.Join(q, " IS NOT NULL AND ") + " IS NOT NULL THEN json_build_array(" + strings.Join(q, ", ") + ")::text END"
}

func from(t *nopii.Table) string {
	if !t.Partitioned && !t.View {
		return "ONLY " + t.Name.Quoted() // inheritance children are tables of their own
	}
	return t.Name.Quoted()
}

// where renders a Selection. Values are literals (COPY takes no
// parameters), quoted, and cast to the column's own type.
func where(t *nopii.Table, sel nopii.Selection) string {
	var conds []string
	sub := sel.Subset.Table(t.Name) != nil
	if len(sel.Since) > 0 {
		var or []string
		for _, c := range sel.Since {
			or = append(or, cursorCond(t, c))
		}
		if sub && !sel.KeysOnly && sel.BucketBits > 0 && len(sel.Resync) > 0 {
			or = append(or, keydigest.InBuckets(keyExpr(t), sel.BucketBits, sel.Resync))
		}
		conds = append(conds, "("+strings.Join(or, " OR ")+")")
	}
	if sub {
		conds = append(conds, SubsetCond(sel.Subset, t, t.Name.Quoted()))
	}
	if len(sel.WindowBy) > 0 && !sel.WindowSince.IsZero() && !sub {
		var or []string
		lit := quoteLiteral(sel.WindowSince.UTC().Format("2006-01-02 15:04:05.999999Z07:00")) + "::timestamptz"
		for _, col := range sel.WindowBy {
			or = append(or, nopii.QuoteIdent(col)+" >= "+lit)
		}
		conds = append(conds, "("+strings.Join(or, " OR ")+")")
	}
	if sel.KeysOnly && sel.BucketBits > 0 {
		conds = append(conds, bucketCond(t, sel))
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func cursorCond(t *nopii.Table, c nopii.Cursor) string {
	typ := "timestamptz"
	if col, ok := t.Column(c.Column); ok {
		typ = col.TypeSQL
	}
	cond := nopii.QuoteIdent(c.Column) + " > " + quoteLiteral(c.After) + "::" + typ
	if c.Overlap > 0 {
		cond += fmt.Sprintf(" - interval '%d microseconds'", c.Overlap.Microseconds())
	}
	return cond
}

func writeKey(b *strings.Builder, t *nopii.Table) {
	if len(t.PrimaryKey) == 1 {
		b.WriteString(nopii.QuoteIdent(t.PrimaryKey[0]) + "::text")
	} else {
		b.WriteString("json_build_array(")
		for i, k := range t.PrimaryKey {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(nopii.QuoteIdent(k))
		}
		b.WriteString(")::text")
	}
}

// Copy implements nopii.Source.
func (s *Source) Copy(ctx context.Context, t *nopii.Table, row func(values [][]byte) error) (nopii.CopyStats, error) {
	return s.CopySelect(ctx, t, nopii.Selection{}, row)
}

// CopySelect implements nopii.Source.
func (s *Source) CopySelect(ctx context.Context, t *nopii.Table, sel nopii.Selection, row func(values [][]byte) error) (nopii.CopyStats, error) {
	ncols := len(t.Columns) + 1 + len(sel.References)
	if sel.KeysOnly {
		ncols = 1
	}
	if sel.Subset.Table(t.Name) != nil {
		return s.copyWith(ctx, t, ncols, subsetSettings, CopySQL(t, sel), row)
	}
	return s.copy(ctx, t, ncols, CopySQL(t, sel), row)
}

// copy runs one COPY … TO STDOUT of t on a reader in the snapshot.
func (s *Source) copy(ctx context.Context, t *nopii.Table, ncols int, sql string, row func(values [][]byte) error) (nopii.CopyStats, error) {
	return s.copyWith(ctx, t, ncols, "", sql, row)
}

// copyWith is copy after a statement (a setting) on the reader, if any.
func (s *Source) copyWith(ctx context.Context, t *nopii.Table, ncols int, before, sql string, row func(values [][]byte) error) (nopii.CopyStats, error) {
	conn, err := s.reader(ctx)
	if err != nil {
		return nopii.CopyStats{}, err
	}
	if before != "" {
		if _, err := conn.Exec(ctx, before); err != nil {
			conn.Close(context.Background())
			<-s.slots
			return nopii.CopyStats{}, fmt.Errorf("copy %s: %w", t.Name, pgconnect.SafeError(err))
		}
	}
	var rows int64
	dec := pgcopy.NewDecoder(ncols, func(v [][]byte) error {
		rows++
		return row(v)
	})
	_, err = conn.PgConn().CopyTo(ctx, dec, sql)
	if err == nil {
		err = dec.Close()
	}
	stats := nopii.CopyStats{Rows: rows, Bytes: dec.Bytes()}
	if err != nil {
		// The connection is in an unknown state after a failed or cancelled
		// COPY: drop it rather than return it.
		conn.Close(context.Background())
		<-s.slots
		return stats, fmt.Errorf("copy %s: %w", t.Name, pgconnect.SafeError(err))
	}
	s.release(conn)
	return stats, nil
}

// release returns a reader to the pool, or closes it when the Source is.
func (s *Source) release(conn *pgx.Conn) {
	select {
	case <-s.closed:
		conn.Close(context.Background())
		<-s.slots
	default:
		s.readers <- conn
	}
}

// reader returns an idle reader, or opens one that imports the snapshot.
func (s *Source) reader(ctx context.Context) (*pgx.Conn, error) {
	select {
	case <-s.closed:
		return nil, errors.New("source is closed")
	default:
	}
	select {
	case c := <-s.readers:
		return c, nil
	default:
	}
	select {
	case c := <-s.readers:
		return c, nil
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	conn, err := pgconnect.ConnectConfig(ctx, s.cfg.Copy(), s.opts.Connect)
	if err == nil {
		_, err = conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
		if err == nil {
			_, err = conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(s.snapshot))
		}
		if err != nil {
			conn.Close(context.Background())
			err = fmt.Errorf("source %s: import snapshot: %w", s.opts.Name, pgconnect.SafeError(err))
		}
	}
	if err != nil {
		<-s.slots
		return nil, err
	}
	return conn, nil
}

// ColumnText streams every row's key text and the column's text (NULL as
// nil), for the leak check.
func (s *Source) ColumnText(ctx context.Context, t *nopii.Table, column string, row func(key, value []byte) error) error {
	conn, err := s.reader(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("COPY (SELECT ")
	writeKey(&b, t)
	b.WriteString(", " + nopii.QuoteIdent(column) + "::text FROM " + from(t) + ") TO STDOUT (FORMAT binary)")
	dec := pgcopy.NewDecoder(2, func(v [][]byte) error { return row(v[0], v[1]) })
	_, err = conn.PgConn().CopyTo(ctx, dec, b.String())
	if err == nil {
		err = dec.Close()
	}
	if err != nil {
		conn.Close(context.Background())
		<-s.slots
		return fmt.Errorf("read %s.%s: %w", t.Name, column, pgconnect.SafeError(err))
	}
	s.release(conn)
	return nil
}

// Max implements nopii.Source.
func (s *Source) Max(ctx context.Context, t *nopii.Table, column string, since *nopii.Cursor) (string, error) {
	q := "SELECT max(" + nopii.QuoteIdent(column) + ")::text FROM " + from(t)
	if since != nil {
		q += " WHERE " + cursorCond(t, *since)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var v *string
	if err := s.guarded(ctx, func() error { return s.main.QueryRow(ctx, q).Scan(&v) }); err != nil {
		return "", fmt.Errorf("max of %s.%s: %w", t.Name, column, pgconnect.SafeError(err))
	}
	if v == nil {
		return "", nil
	}
	return *v, nil
}

// Indexed implements nopii.Source. For a partitioned root, an index on the
// root (which every partition then has) counts.
func (s *Source) Indexed(ctx context.Context, t *nopii.Table, column string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ok bool
	err := s.guarded(ctx, func() error {
		return s.main.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			               JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			               WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3)`,
			t.Name.Schema, t.Name.Name, column).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("look up indexes of %s: %w", t.Name, pgconnect.SafeError(err))
	}
	return ok, nil
}

// CascadeParents returns the tables that t references by a foreign key with
// ON DELETE CASCADE: deleting one of their rows deletes rows of t, with no
// change to t's timestamps that a delta could see.
func (s *Source) CascadeParents(ctx context.Context, t *nopii.Table) ([]nopii.TableName, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []nopii.TableName
	err := s.guarded(ctx, func() error {
		rows, err := s.main.Query(ctx, `
			SELECT DISTINCT pn.nspname::text, p.relname::text
			FROM pg_constraint k
			JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
			WHERE k.contype = 'f' AND k.confdeltype = 'c' AND n.nspname = $1 AND c.relname = $2
			ORDER BY 1, 2`, t.Name.Schema, t.Name.Name)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (nopii.TableName, error) {
			var n nopii.TableName
			return n, r.Scan(&n.Schema, &n.Name)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("look up foreign keys of %s: %w", t.Name, pgconnect.SafeError(err))
	}
	return out, nil
}

// Sample implements nopii.Source in one round-trip on a reader connection
// (so several tables can be sampled at once): a table estimated at more than
// sampleSpread×n rows is read with TABLESAMPLE SYSTEM at the percentage
// that yields about that many rows, cut by LIMIT n; a smaller one (or one
// never analyzed) with LIMIT n alone. Either way the read is bounded and
// never a scan of the whole table. Text values longer than sampleChars are
// cut (json is kept whole: the scanner parses it).
func (s *Source) Sample(ctx context.Context, t *nopii.Table, columns []string, n int) ([][]string, error) {
	out := make([][]string, len(columns))
	if len(columns) == 0 || n <= 0 {
		return out, nil
	}
	conn, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	collect := func(v [][]byte) error {
		for i, b := range v {
			if b != nil {
				out[i] = append(out[i], string(b))
			}
		}
		return nil
	}
	dec := pgcopy.NewDecoder(len(columns), collect)
	_, err = conn.PgConn().CopyTo(ctx, dec, SampleSQL(t, columns, n))
	if err == nil {
		err = dec.Close()
	}
	if err == nil && t.EstRows > int64(sampleSpread*n) && empty(out) {
		// TABLESAMPLE SYSTEM picks whole pages: a table much smaller than
		// its statistics say can yield none. Read the first n rows instead.
		dec = pgcopy.NewDecoder(len(columns), collect)
		_, err = conn.PgConn().CopyTo(ctx, dec, sampleSQL(t, columns, n, false))
		if err == nil {
			err = dec.Close()
		}
	}
	if err != nil {
		conn.Close(context.Background())
		<-s.slots
		return nil, fmt.Errorf("sample %s: %w", t.Name, pgconnect.SafeError(err))
	}
	s.release(conn)
	return out, nil
}

const (
	sampleSpread = 3    // read TABLESAMPLE for about this many times n rows, then LIMIT n
	sampleChars  = 2000 // text values are cut to this many characters
)

func empty(vs [][]string) bool {
	for _, v := range vs {
		if len(v) > 0 {
			return false
		}
	}
	return true
}

// SampleSQL is the statement Sample runs.
func SampleSQL(t *nopii.Table, columns []string, n int) string {
	return sampleSQL(t, columns, n, t.EstRows > int64(sampleSpread*n))
}

func sampleSQL(t *nopii.Table, columns []string, n int, tablesample bool) string {
	var b strings.Builder
	b.WriteString("COPY (SELECT ")
	for i, name := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		expr := nopii.QuoteIdent(name) + "::text"
		if c, ok := t.Column(name); !ok || (c.Type.Underlying().Name != "json" && c.Type.Underlying().Name != "jsonb") {
			expr = fmt.Sprintf("left(%s, %d)", expr, sampleChars)
		}
		b.WriteString(expr)
	}
	b.WriteString(" FROM " + from(t))
	if tablesample {
		pct := 100 * float64(sampleSpread*n) / float64(t.EstRows)
		b.WriteString(" TABLESAMPLE SYSTEM (" + strconv.FormatFloat(pct, 'f', -1, 64) + ")")
	}
	fmt.Fprintf(&b, " LIMIT %d) TO STDOUT (FORMAT binary)", n)
	return b.String()
}

// guarded runs fn inside a savepoint, so that a failing query does not
// abort the snapshot transaction that every later query needs.
func (s *Source) guarded(ctx context.Context, fn func() error) error {
	if _, err := s.main.Exec(ctx, "SAVEPOINT nopii_q"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		s.main.Exec(context.Background(), "ROLLBACK TO SAVEPOINT nopii_q")
		return err
	}
	_, err := s.main.Exec(ctx, "RELEASE SAVEPOINT nopii_q")
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
