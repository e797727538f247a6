package twin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keydigest"
	"github.com/nopii/nopii/internal/pgconnect"
)

// FullCopy implements nopii.Feed.
func (f *Feed) FullCopy(ctx context.Context, t nopii.Target) (nopii.Load, error) {
	l, err := f.begin(ctx, t)
	if err != nil {
		return nil, err
	}
	l.shadow = shortName("_nopii_new_"+t.Name.Name, "")
	if err := l.createShadow(ctx); err != nil {
		l.conn.Close(context.Background())
		return nil, fmt.Errorf("twin: load %s: %w", t.Name, err)
	}
	// COPY FREEZE needs a plain table created in the same transaction.
	freeze := ", FREEZE"
	if l.partitioned() {
		freeze = ""
	}
	l.stream = startCopy(ctx, l.conn, "COPY "+l.shadowName()+" ("+l.columnList()+") FROM STDIN (FORMAT binary"+freeze+")").skipping(l.skip)
	return &fullLoad{load: l}, nil
}

// Delta implements nopii.Feed. The stage for the changed rows is created
// with the first row: a table with no changes costs one transaction that
// saves its state.
func (f *Feed) Delta(ctx context.Context, t nopii.Target, deletes bool) (nopii.DeltaLoad, error) {
	l, err := f.begin(ctx, t)
	if err != nil {
		return nil, err
	}
	return &deltaLoad{load: l, ctx: ctx, deletes: deletes}, nil
}

// load is what full and delta loads share: a connection in a transaction,
// a COPY stream, the per-column OID patches.
type load struct {
	feed   *Feed
	conn   *pgx.Conn
	target nopii.Target
	shadow string
	patch  []uint32
	stream *copyStream
	done   bool
	skip   []bool // columns whose values are not written (skipped)

	notes   []string        // what the load left out of the source's schema, and why
	leftOut map[string]bool // names of the constraints and indexes left out

	registered bool // it committed relations named in nopii.pending (register)

	// group, when set, owns the load's connection and transaction (a
	// change group, changes.go): Commit applies without committing, and
	// Abort ends the whole group.
	group *changeGroup
}

func (f *Feed) begin(ctx context.Context, t nopii.Target) (*load, error) {
	return f.beginWith(ctx, t, "BEGIN; ")
}

// beginWith begins a load with the transaction's first statements.
func (f *Feed) beginWith(ctx context.Context, t nopii.Target, begin string) (*load, error) {
	l, err := f.newLoad(t)
	if err != nil {
		return nil, err
	}
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.on(ctx, conn, begin); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return l, nil
}

// newLoad is a load of t, on no connection yet.
func (f *Feed) newLoad(t nopii.Target) (*load, error) {
	l := &load{feed: f, target: t, patch: make([]uint32, len(t.Table.Columns)+1)}
	for i, c := range t.Table.Columns {
		u := c.Type.Underlying()
		if u.Kind == nopii.TypeArray && !u.Elem.BuiltIn() {
			oid, ok := f.oid(u.Elem.OID)
			if !ok {
				return nil, fmt.Errorf("twin: load %s: column %s: element type %s was not prepared", t.Name, c.Name, u.Elem.SQL)
			}
			l.patch[i] = oid
		}
		if u.Kind == nopii.TypeComposite {
			for _, a := range u.Attrs {
				if !a.Type.BuiltIn() {
					return nil, fmt.Errorf("twin: load %s: column %s: composite type %s has attributes of user types: %w", t.Name, c.Name, u.SQL, nopii.ErrUnsupportedType)
				}
			}
		}
	}
	l.leftOut = map[string]bool{}
	l.skip = l.skipped()
	return l, nil
}

// on puts the load in conn's transaction (begun by begin, SQL run first),
// with the shared table lock of loads: a subject request's forget waits
// for loads of the table in flight (whose rows it then deletes), and loads
// that begin later read its suppression list. One round trip.
func (l *load) on(ctx context.Context, conn *pgx.Conn, begin string) error {
	if _, err := conn.Exec(ctx, begin+"SELECT pg_advisory_xact_lock_shared("+tableLockKey(l.target.Name)+")"); err != nil {
		return fmt.Errorf("twin: load %s: %w", l.target.Name, pgconnect.SafeError(err))
	}
	l.conn = conn
	return nil
}

// partitioned reports whether the twin's table is partitioned.
func (l *load) partitioned() bool { return l.faithful() && l.target.Table.Schema.PartitionKey != "" }

// tableLocks is a SELECT that takes fn (pg_advisory_xact_lock or its
// _shared form) of the tables' load locks, in one order for every caller
// (by name), so that two transactions that take several never wait on
// each other in a cycle.
func tableLocks(fn string, tables []nopii.TableName) string {
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		names = append(names, t.String())
	}
	slices.Sort(names)
	names = slices.Compact(names)
	calls := make([]string, len(names))
	for i, n := range names {
		calls[i] = fn + "(hashtext('nopii table'), hashtext(" + quoteLiteral(n) + "))"
	}
	if len(calls) == 0 {
		return "SELECT 1"
	}
	return "SELECT " + strings.Join(calls, ", ")
}

// tableLockKey is the advisory lock key pair, as SQL, that loads of a twin
// table take shared and a forget takes exclusive.
func tableLockKey(name nopii.TableName) string {
	return "hashtext('nopii table'), hashtext(" + quoteLiteral(name.String()) + ")"
}

func (l *load) columnList() string {
	names := make([]string, 0, len(l.target.Table.Columns)+1)
	for _, c := range l.target.Table.Columns {
		if l.written(c) {
			names = append(names, nopii.QuoteIdent(c.Name))
		}
	}
	names = append(names, nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn))
	return strings.Join(names, ", ")
}

func (l *load) shadowName() string {
	return nopii.QuoteIdent(l.target.Name.Schema) + "." + nopii.QuoteIdent(l.shadow)
}

func (l *load) createShadow(ctx context.Context) error {
	t := l.target
	var cols []string
	if l.faithful() {
		cols = l.columnDefs()
	} else {
		for _, c := range t.Table.Columns {
			def := nopii.QuoteIdent(c.Name) + " " + columnType(c, t.Prefix)
			if c.NotNull {
				def += " NOT NULL"
			}
			cols = append(cols, def)
		}
	}
	// COLLATE "C": the key is compared for equality only, and C sorts fastest
	// when the unique index is built.
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn) + ` text COLLATE "C" NOT NULL`
	if l.faithful() {
		// Rows that users insert in the twin get a key of their own, which
		// no source key text starts with.
		spk += ` DEFAULT ('twin:' || gen_random_uuid())`
	}
	cols = append(cols, spk)
	create := "CREATE TABLE " + l.shadowName() + " (" + strings.Join(cols, ", ") + ")"
	if l.partitioned() {
		create += " PARTITION BY " + t.Table.Schema.PartitionKey
	}
	for _, s := range []string{"DROP TABLE IF EXISTS " + l.shadowName(), create} {
		if _, err := l.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("create shadow table: %w", pgconnect.SafeError(err))
		}
	}
	if !l.faithful() {
		return nil
	}
	if err := l.createPartitions(ctx); err != nil {
		return err
	}
	return l.setDefaults(ctx)
}

// WriteRow implements nopii.Load.
func (l *load) WriteRow(values [][]byte) error {
	if err := l.stream.row(values, l.patch); err != nil {
		return fmt.Errorf("twin: copy into %s: %w", l.target.Name, pgconnect.SafeError(err))
	}
	return nil
}

// Abort implements nopii.Load. Closing the connection rolls back the
// transaction, so a shadow table, a stage or half-applied upserts vanish.
func (l *load) Abort() {
	if l.done {
		return
	}
	l.done = true
	if l.stream != nil && !l.stream.closed {
		l.stream.cancel()
	}
	if l.group != nil {
		l.group.Abort()
		return
	}
	l.conn.Close(context.Background())
}

func (l *load) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := l.conn.Exec(ctx, sql, args...)
	return tag, pgconnect.SafeError(err)
}

// finishCopy ends the current COPY and reports its error with context.
func (l *load) finishCopy() error {
	if err := l.stream.finish(); err != nil {
		return fmt.Errorf("twin: copy into %s: %w", l.target.Name, pgconnect.SafeError(err))
	}
	return nil
}

type fullLoad struct {
	*load
	par *parallel // set by Writers: the rows go through several connections (parallel.go)

	// What build made on the shadow, for the swap.
	spkIndex, spkCons string            // source_primary_key's unique index and constraint
	rn                *renames          // temporary → final names
	st                *nopii.TableState // the state to save, naming the source's objects
	carried           map[string]bool   // users' constraints and indexes already built
}

// Commit implements nopii.Load: finish the COPY, build the indexes and
// constraints on the shadow, then swap it in, with the state, in the same
// transaction; or, for a deferred target, commit the shadow for Publish.
func (l *fullLoad) Commit(ctx context.Context) error {
	if l.done {
		return errors.New("twin: load already finished")
	}
	if l.par != nil {
		return l.commitParallel(ctx)
	}
	t0 := time.Now()
	if err := l.finishCopy(); err != nil {
		l.Abort()
		return err
	}
	t1 := time.Now()
	idx, err := l.build(ctx)
	if err == nil {
		err = l.finish(ctx)
	}
	if err != nil {
		l.Abort()
		return fmt.Errorf("twin: swap in %s: %w", l.target.Name, err)
	}
	l.feed.release(l.conn)
	l.feed.log.Debug("twin table loaded", "table", l.target.Name.String(), "rows", l.stream.rows, "deferred", l.target.Deferred,
		"copy_tail_seconds", t1.Sub(t0).Seconds(), "index_seconds", idx.Seconds(), "swap_seconds", time.Since(t1).Seconds()-idx.Seconds())
	return nil
}

// finish ends the load's transaction: the shadow swapped in, or committed
// and held for Publish (named in nopii.pending).
func (l *fullLoad) finish(ctx context.Context) error {
	if l.target.Deferred {
		if !l.registered {
			if err := l.register(ctx, l.shadowName(), pendingShadow); err != nil {
				return err
			}
		}
		if _, err := l.exec(ctx, "COMMIT"); err != nil {
			return err
		}
		l.done = true
		l.feed.hold(&deferred{full: l})
		return nil
	}
	if err := l.swapIn(ctx, false); err != nil {
		return err
	}
	if _, err := l.exec(ctx, "COMMIT"); err != nil {
		return err
	}
	l.done = true
	return nil
}

// build builds, on the loaded shadow, source_primary_key's unique index,
// the source's constraints and indexes (a faithful twin), and those users
// made on the old table: everything slow, where no reader looks.
func (l *fullLoad) build(ctx context.Context) (time.Duration, error) {
	if l.buildsApart() {
		return l.buildApart(ctx)
	}
	name := l.target.Name
	l.spkIndex = shortName(l.shadow, "_spk")
	l.spkCons = shortName(name.Name, "_source_primary_key_key")
	start := time.Now()
	if _, err := l.exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return 0, err
	}
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	var spkRename *[2]string
	if l.partitioned() {
		// A unique index of a partitioned table holds its partition key,
		// which the source's key columns hold.
		tmp := tempName(l.spkCons)
		cols := []string{spk}
		for _, k := range l.target.Table.PrimaryKey {
			cols = append(cols, nopii.QuoteIdent(k))
		}
		if err := l.tryExec(ctx, "ALTER TABLE "+l.shadowName()+" ADD CONSTRAINT "+nopii.QuoteIdent(tmp)+" UNIQUE ("+strings.Join(cols, ", ")+")"); err != nil {
			l.note("%s is indexed but not unique: a partitioned table's unique index must hold its partition key (%v)", nopii.SourcePrimaryKeyColumn, err)
			if _, err := l.exec(ctx, "CREATE INDEX "+nopii.QuoteIdent(tmp)+" ON "+l.shadowName()+" ("+spk+")"); err != nil {
				return 0, fmt.Errorf("build index on %s: %w", nopii.SourcePrimaryKeyColumn, err)
			}
		} else {
			spkRename = &[2]string{tmp, l.spkCons}
		}
	} else if _, err := l.exec(ctx, "CREATE UNIQUE INDEX "+nopii.QuoteIdent(l.spkIndex)+" ON "+l.shadowName()+" ("+spk+")"); err != nil {
		return 0, fmt.Errorf("build unique index on %s: %w", nopii.SourcePrimaryKeyColumn, err)
	}
	rn := l.buildObjects(ctx, l.sourceObjects())
	if spkRename != nil {
		rn.constraints = append(rn.constraints, *spkRename)
	}
	l.st = l.state(rn) // names the source's objects alone
	// What users made on the old table: read from the catalog (no lock on
	// the table), built here; the swap builds what they make meanwhile.
	l.carried = map[string]bool{}
	oid, err := l.oldTable(ctx)
	if err != nil {
		return 0, err
	}
	if oid != nil {
		k := &kept{}
		if err := l.userObjects(ctx, *oid, l.spkCons, k); err != nil {
			return 0, fmt.Errorf("read what users made on the table: %w", err)
		}
		users := l.buildObjects(ctx, objects{constraints: k.constraints, indexes: k.indexes})
		rn.constraints = append(rn.constraints, users.constraints...)
		rn.indexes = append(rn.indexes, users.indexes...)
		for _, c := range k.constraints {
			l.carried[c.Name] = true
		}
		for _, ix := range k.indexes {
			l.carried[ix.Name] = true
		}
	}
	l.rn = rn
	return time.Since(start), nil
}

// swapIn puts the built shadow in the old table's place, inside the
// transaction on l.conn: what users made since build (and their triggers,
// policies, views and grants) carried over, the old table dropped, the
// shadow and its objects renamed, sequences set, the state saved. In a
// publish (locked), the caller holds the tables already; otherwise the old
// table is waited for a bounded time, a few times.
func (l *fullLoad) swapIn(ctx context.Context, locked bool) error {
	name := l.target.Name
	// One swap at a time in the twin: dropping a table drops the foreign
	// keys between it and others, which locks them too; two swaps at once
	// would take the same tables in opposite orders.
	if _, err := l.exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('nopii swap'))"); err != nil {
		return err
	}
	keep, err := l.dependents(ctx, l.spkCons)
	if err != nil {
		return err
	}
	late := objects{statements: keep.onShadow}
	for _, c := range keep.constraints {
		if !l.carried[c.Name] {
			late.constraints = append(late.constraints, c)
		}
	}
	for _, ix := range keep.indexes {
		if !l.carried[ix.Name] {
			late.indexes = append(late.indexes, ix)
		}
	}
	rn := *l.rn
	users := l.buildObjects(ctx, late)
	rn.constraints = append(rn.constraints, users.constraints...)
	rn.indexes = append(rn.indexes, users.indexes...)
	if err := l.beforeDrop(ctx); err != nil {
		return err
	}
	if err := l.dropOld(ctx, locked); err != nil {
		return err
	}
	stmts := []string{"ALTER TABLE " + l.shadowName() + " RENAME TO " + nopii.QuoteIdent(name.Name)}
	if !l.partitioned() {
		stmts = append(stmts, "ALTER TABLE "+name.Quoted()+" ADD CONSTRAINT "+nopii.QuoteIdent(l.spkCons)+" UNIQUE USING INDEX "+nopii.QuoteIdent(l.spkIndex))
	}
	if _, err := l.exec(ctx, strings.Join(stmts, "; ")); err != nil {
		return err
	}
	if err := l.afterRename(ctx, &rn, keep); err != nil {
		return err
	}
	if err := l.restore(ctx, keep); err != nil {
		return err
	}
	if err := writeState(ctx, l.conn, name, l.st); err != nil {
		return err
	}
	if !l.registered {
		return nil
	}
	// A shadow committed before (parallel writers, a deferred load) is
	// named in nopii.pending: no longer.
	return unregister(ctx, l.conn, l.shadowName())
}

// dropOld drops the previous copy. Readers of the twin hold it: unless the
// caller holds it already (locked), it is waited for at most the feed's
// lock timeout, three times, without losing the loaded shadow (savepoint).
func (l *fullLoad) dropOld(ctx context.Context, locked bool) error {
	drop := "DROP TABLE IF EXISTS " + l.target.Name.Quoted() + " CASCADE"
	if locked {
		if _, err := l.exec(ctx, drop); err != nil {
			return fmt.Errorf("drop the previous copy: %w", err)
		}
		return nil
	}
	var err error
	for attempt := 1; attempt <= lockAttempts; attempt++ {
		if _, err = l.exec(ctx, "SAVEPOINT nopii_swap; "+l.feed.lockTimeout()); err != nil {
			return err
		}
		if _, err = l.exec(ctx, drop); err == nil {
			break
		}
		if !lockFailure(err) {
			return fmt.Errorf("drop the previous copy: %w", err)
		}
		l.feed.log.Warn("twin table is busy, retrying the swap", "table", l.target.Name.String(), "attempt", attempt)
		if _, rerr := l.exec(ctx, "ROLLBACK TO SAVEPOINT nopii_swap"); rerr != nil {
			return rerr
		}
		if attempt == lockAttempts {
			who, _ := holders(ctx, l.conn, []string{l.target.Name.Quoted()})
			return fmt.Errorf("take the previous copy (readers hold it past %d waits of %s%s): %w", lockAttempts, l.feed.opts.LockTimeout, who, err)
		}
	}
	_, err = l.exec(ctx, "SET LOCAL lock_timeout = 0")
	return err
}

// state is the target's state with the names of the objects the load
// built from the source's schema.
func (l *load) state(rn *renames) *nopii.TableState {
	st := l.target.State
	if st == nil || !l.faithful() {
		return st
	}
	cp := *st
	cp.Objects = nil
	for _, r := range rn.constraints {
		cp.Objects = append(cp.Objects, r[1])
	}
	for _, r := range rn.indexes {
		cp.Objects = append(cp.Objects, r[1])
	}
	for _, c := range l.target.Table.Schema.Constraints {
		if c.Kind == nopii.ConstraintCheck && !l.leftOut[c.Name] {
			cp.Objects = append(cp.Objects, c.Name)
		}
	}
	return &cp
}

// kept is what users built on the old table that the swap must carry over:
// its grants, and views (plain and materialized) that depend on it, in the
// order they can be recreated, with their own grants.
type kept struct {
	grants []string // table- and column-level
	views  []keptView
	// What users made on the old table besides (carry.go): constraints and
	// indexes, built on the shadow as the source's are; triggers, policies
	// and row security (onShadow); comments the source does not give.
	constraints []nopii.Constraint
	indexes     []nopii.Index
	onShadow    []string
	comments    []string // COMMENT ON … with %s for the table's name
}

type keptView struct {
	name, kind, def string
	options         string   // reloptions: security_barrier, check_option …
	owner           string   // quoted role name
	grants          []string // table- and column-level
	indexes         []string // of materialized views
	comment         string
}

const grantsSQL = `SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, $2::text,
	CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
	CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
	FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1 AND a.grantee <> c.relowner
	UNION ALL
	SELECT format('GRANT %s (%I) ON %s TO %s%s', a.privilege_type, att.attname, $2::text,
	CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
	CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
	FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid, aclexplode(att.attacl) a
	WHERE c.oid = $1 AND att.attacl IS NOT NULL AND a.grantee <> c.relowner`

// oldTable returns the OID of the table's previous copy, nil when none.
func (l *load) oldTable(ctx context.Context) (*uint32, error) {
	var oid *uint32
	if err := l.conn.QueryRow(ctx, "SELECT to_regclass($1)::oid", l.target.Name.Quoted()).Scan(&oid); err != nil {
		return nil, pgconnect.SafeError(err)
	}
	return oid, nil
}

// dependents reads what the swap has to carry over from the old table.
func (l *load) dependents(ctx context.Context, spkConstraint string) (*kept, error) {
	oid, err := l.oldTable(ctx)
	if err != nil {
		return nil, err
	}
	k := &kept{}
	if oid == nil {
		return k, nil
	}
	grants := func(rel uint32, name string) ([]string, error) {
		rows, err := l.conn.Query(ctx, grantsSQL, rel, name)
		if err != nil {
			return nil, pgconnect.SafeError(err)
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if k.grants, err = grants(*oid, l.target.Name.Quoted()); err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	if err := l.userObjects(ctx, *oid, spkConstraint, k); err != nil {
		return nil, fmt.Errorf("read what users made on the table: %w", err)
	}
	rows, err := l.conn.Query(ctx, `
		WITH RECURSIVE deps(oid, depth) AS (
			SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
			WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND r.ev_class <> $1
			UNION
			SELECT r.ev_class, deps.depth + 1 FROM deps
			JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
			JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> deps.oid AND deps.depth < 50
		)
		SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind::text, pg_get_viewdef(c.oid), max(deps.depth),
		       coalesce(array_to_string(c.reloptions, ', '), ''), quote_ident(pg_get_userbyid(c.relowner)),
		       coalesce((SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid), '{}'),
		       coalesce(obj_description(c.oid, 'pg_class'), '')
		FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
		GROUP BY 1, 2, 3, 4, 6, 7, 8, 9 ORDER BY 5, 2`, *oid)
	if err != nil {
		return nil, fmt.Errorf("read dependent views: %w", pgconnect.SafeError(err))
	}
	type row struct {
		oid                             uint32
		name, kind, def, options, owner string
		depth                           int
		indexes                         []string
		comment                         string
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.oid, &x.name, &x.kind, &x.def, &x.depth, &x.options, &x.owner, &x.indexes, &x.comment)
	})
	if err != nil {
		return nil, fmt.Errorf("read dependent views: %w", pgconnect.SafeError(err))
	}
	for _, v := range vs {
		g, err := grants(v.oid, v.name)
		if err != nil {
			return nil, fmt.Errorf("read grants of %s: %w", v.name, err)
		}
		k.views = append(k.views, keptView{name: v.name, kind: v.kind, def: v.def, options: v.options, owner: v.owner, grants: g, indexes: v.indexes, comment: v.comment})
	}
	return k, nil
}

// restore recreates the views and grants on the new table.
func (l *load) restore(ctx context.Context, k *kept) error {
	for _, g := range k.grants {
		if _, err := l.exec(ctx, g); err != nil {
			return fmt.Errorf("carry over a grant: %w", err)
		}
	}
	for _, v := range k.views {
		kind := "VIEW"
		if v.kind == "m" {
			kind = "MATERIALIZED VIEW"
		}
		with := ""
		if v.options != "" {
			with = " WITH (" + v.options + ")"
		}
		// pg_get_viewdef ends with ';' and leaves out WITH CHECK OPTION,
		// which lives in reloptions (check_option=…), carried by WITH above.
		def := strings.TrimSuffix(strings.TrimSpace(v.def), ";")
		if _, err := l.exec(ctx, "CREATE "+kind+" "+v.name+with+" AS "+def); err != nil {
			return fmt.Errorf("view %s depends on the table and cannot be recreated on the new copy (drop or change it): %w", v.name, err)
		}
		for _, ix := range v.indexes {
			if _, err := l.exec(ctx, ix); err != nil {
				return fmt.Errorf("recreate an index of %s: %w", v.name, err)
			}
		}
		for _, g := range v.grants {
			if _, err := l.exec(ctx, g); err != nil {
				return fmt.Errorf("carry over a grant on %s: %w", v.name, err)
			}
		}
		if v.comment != "" {
			if _, err := l.exec(ctx, "COMMENT ON "+kind+" "+v.name+" IS "+quoteLiteral(v.comment)); err != nil {
				return fmt.Errorf("carry over the comment on %s: %w", v.name, err)
			}
		}
		// The view's owner decides whose privileges it runs with: keep it.
		if _, err := l.exec(ctx, "ALTER "+kind+" "+v.name+" OWNER TO "+v.owner); err != nil {
			return fmt.Errorf("give %s back to its owner %s: %w", v.name, v.owner, err)
		}
	}
	if len(k.views) > 0 {
		l.feed.log.Info("recreated views on the new copy", "table", l.target.Name.String(), "views", len(k.views))
	}
	return nil
}

// probeShare: a stage under 1/probeShare of the table's rows is applied
// by an index probe per staged row.
const probeShare = 20

type deltaLoad struct {
	*load
	ctx     context.Context // the run's, for the stage created by the first row
	deletes bool
	staged  int64 // rows written to the stage
	keys    bool  // the stage COPY is done and the key COPY runs
	merged  bool  // the stage is applied (Commit, or KeyDigests before it)
	// buckets, when bucketed, narrow the anti-join to the keys in these
	// buckets of 1<<bucketBits (digest.go); none: nothing to delete.
	bucketed   bool
	bucketBits int
	buckets    []uint32
	// beforeUpsert, when set, runs after the stage is loaded and before the
	// upsert, in the same transaction (streamed deletes and truncates).
	beforeUpsert func(ctx context.Context) error
	// stage, when set, names a stage that exists, empty, on the connection
	// (a change load's, kept between loads: changes.go); otherwise the
	// first row creates _nopii_stage, dropped at commit, or for a deferred
	// target a committed stage in schema nopii (committed).
	stage string
	// committed are a deferred delta's stage and keys, named in
	// nopii.pending (pending.go).
	committed []string
	// Upserted and Deleted count what Commit applied.
	upserted, deleted int64
}

// WriteRow implements nopii.Load: the row goes to the stage, created with
// the first row. The stage is a temporary table (no WAL), LIKE the target,
// dropped at commit; the connection is this load's alone, so no name clash.
// A deferred delta's stage is an unlogged table that its Commit commits.
func (d *deltaLoad) WriteRow(values [][]byte) error {
	if d.keys || d.merged {
		return errors.New("twin: WriteRow after WriteKey or KeyDigests")
	}
	if d.stream == nil {
		like := "(LIKE " + d.target.Name.Quoted() + d.likeOptions() + ")"
		var err error
		switch {
		case d.stage != "":
		case d.target.Deferred:
			err = d.createStaged(d.ctx, pendingStage, like)
		default:
			_, err = d.exec(d.ctx, "CREATE TEMP TABLE _nopii_stage "+like+" ON COMMIT DROP")
		}
		if err != nil {
			return fmt.Errorf("twin: delta %s: create stage: %w", d.target.Name, err)
		}
		d.stream = startCopy(d.ctx, d.conn, "COPY "+d.stageName()+" ("+d.columnList()+") FROM STDIN (FORMAT binary)").skipping(d.skip)
	}
	d.staged++
	return d.load.WriteRow(values)
}

// createStaged creates, for a deferred delta, its stage or its keys as an
// unlogged table in schema nopii, named in nopii.pending: no WAL, and a
// crash of the twin loses them with the run that made them.
func (d *deltaLoad) createStaged(ctx context.Context, kind, def string) error {
	rel := stagedName(kind, d.target.State, d.target.Name)
	if _, err := d.exec(ctx, "DROP TABLE IF EXISTS "+rel+"; CREATE UNLOGGED TABLE "+rel+" "+def); err != nil {
		return err
	}
	if err := d.register(ctx, rel, kind); err != nil {
		return err
	}
	d.committed = append(d.committed, rel)
	return nil
}

// likeOptions: a faithful twin's stage computes the generated columns as
// the table does, so that rows compare whole (t *= s).
func (l *load) likeOptions() string {
	if l.skip != nil {
		return " INCLUDING GENERATED"
	}
	return ""
}

func (d *deltaLoad) stageName() string {
	switch {
	case d.stage != "":
		return d.stage
	case d.target.Deferred:
		return stagedName(pendingStage, d.target.State, d.target.Name)
	}
	return "_nopii_stage"
}

func (d *deltaLoad) keysName() string {
	if d.target.Deferred {
		return stagedName(pendingKeys, d.target.State, d.target.Name)
	}
	return "_nopii_keys"
}

// WriteKey implements nopii.DeltaLoad: the first key ends the row stream
// and starts the key stream.
func (d *deltaLoad) WriteKey(key []byte) error {
	if !d.deletes {
		return errors.New("twin: WriteKey on a delta load without deletes")
	}
	if !d.keys {
		if err := d.startKeys(d.ctx); err != nil {
			return err
		}
	}
	var one [1][]byte
	one[0] = key
	if err := d.stream.row(one[:], nil); err != nil {
		return fmt.Errorf("twin: copy keys of %s: %w", d.target.Name, pgconnect.SafeError(err))
	}
	return nil
}

func (d *deltaLoad) startKeys(ctx context.Context) error {
	if err := d.endStream(); err != nil {
		return err
	}
	d.keys = true
	var err error
	if d.target.Deferred {
		err = d.createStaged(ctx, pendingKeys, `(k text COLLATE "C")`)
	} else {
		_, err = d.exec(ctx, `CREATE TEMP TABLE _nopii_keys (k text COLLATE "C") ON COMMIT DROP`)
	}
	if err != nil {
		return fmt.Errorf("twin: delta %s: create key table: %w", d.target.Name, err)
	}
	d.stream = startCopy(ctx, d.conn, "COPY "+d.keysName()+" (k) FROM STDIN (FORMAT binary)")
	return nil
}

// Commit implements nopii.Load: upsert the stage, remove keys that left
// the source, save state, commit — one transaction. A deferred delta
// commits its stage and keys instead, for Publish.
func (d *deltaLoad) Commit(ctx context.Context) error {
	if d.done {
		return errors.New("twin: load already finished")
	}
	var err error
	if d.target.Deferred {
		if err = d.ready(ctx); err == nil {
			_, err = d.exec(ctx, "COMMIT")
		}
	} else {
		err = d.apply(ctx)
	}
	if err != nil {
		d.Abort()
		return fmt.Errorf("twin: delta %s: %w", d.target.Name, err)
	}
	d.done = true
	if d.group != nil {
		return nil // the group commits, and keeps the connection
	}
	d.feed.release(d.conn)
	if d.target.Deferred {
		d.feed.hold(&deferred{delta: d})
	}
	return nil
}

// deleting reports whether Commit deletes rows whose key left the source.
func (d *deltaLoad) deleting() bool {
	return d.deletes && (!d.bucketed || len(d.buckets) > 0)
}

// ready ends the load's streams: the stage's, and the keys' (none at all
// when deleting: every row of the buckets left the source).
func (d *deltaLoad) ready(ctx context.Context) error {
	if d.deleting() && !d.keys {
		if err := d.startKeys(ctx); err != nil {
			return err
		}
	}
	return d.endStream()
}

func (d *deltaLoad) apply(ctx context.Context) error {
	t0 := time.Now()
	defer func() {
		d.feed.log.Debug("twin delta applied", "table", d.target.Name.String(), "rows", d.staged, "seconds", time.Since(t0).Seconds())
	}()
	if err := d.ready(ctx); err != nil {
		return err
	}
	if err := d.applyRows(ctx); err != nil {
		return err
	}
	if err := d.deleteGone(ctx); err != nil {
		return err
	}
	if err := d.save(ctx); err != nil {
		return err
	}
	if d.group != nil {
		return nil
	}
	_, err := d.exec(ctx, "COMMIT")
	return err
}

// deleteGone removes the rows (of the buckets) whose key is not among
// those the source still has.
func (d *deltaLoad) deleteGone(ctx context.Context) error {
	if !d.deleting() {
		return nil
	}
	keys := d.keysName()
	if _, err := d.exec(ctx, "ANALYZE "+keys); err != nil {
		return err
	}
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	in := ""
	if d.bucketed {
		in = keydigest.InBuckets("t."+spk, d.bucketBits, d.buckets) + " AND "
	}
	tag, err := d.exec(ctx, "DELETE FROM "+d.target.Name.Quoted()+" t WHERE "+in+"NOT EXISTS (SELECT 1 FROM "+keys+" k WHERE k.k = t."+spk+")")
	if err != nil {
		return fmt.Errorf("delete rows that left the source: %w", err)
	}
	d.deleted = tag.RowsAffected()
	return nil
}

// save sets the sequences past the data and saves the state, in the
// caller's transaction.
func (d *deltaLoad) save(ctx context.Context) error {
	if err := d.advanceSequences(ctx); err != nil {
		return err
	}
	return writeState(ctx, d.conn, d.target.Name, d.target.State)
}

// endStream ends the COPY in progress, if any: the stage's or the keys'.
func (d *deltaLoad) endStream() error {
	if d.stream == nil || d.stream.closed {
		return nil
	}
	return d.finishCopy()
}

// applyRows applies the staged rows, once: the streamed changes' deletes
// (beforeUpsert), then the upsert.
func (d *deltaLoad) applyRows(ctx context.Context) error {
	if d.merged {
		return nil
	}
	d.merged = true
	d.feed.log.Debug("twin stage loaded", "table", d.target.Name.String(), "rows", d.staged)
	if d.beforeUpsert != nil {
		if err := d.beforeUpsert(ctx); err != nil {
			return err
		}
	}
	if d.staged > 0 {
		return d.upsert(ctx)
	}
	return nil
}

// upsert applies the stage to the target, skipping staged rows whose every
// column the target already has (rows read again inside the cursor
// overlap): t *= s compares the rows' binary images, which needs no
// equality operator (json, point and xml have none) and holds NULLs equal.
//
// On PostgreSQL 15 and later it is one MERGE: one index probe (or one hash
// join, when much of the table changed) per staged row, and a plain update
// of the rows that changed. INSERT … ON CONFLICT DO UPDATE, used before,
// also locks each conflicting row first (a WAL record and a dirtied page
// per row) and rewrites unchanged rows. Older twins get the same effect in
// two statements.
//
// The planner must know the stage is small to probe the index per row
// rather than hash the whole table (its guess from the stage's pages is
// about twice the rows, enough to pick a full scan for a 1–2% change). A
// stage under 1/probeShare of the table's estimated rows is applied with
// hash and merge joins switched off for that statement alone, in the same
// round trip; a larger one gets an ANALYZE of its key column and the
// planner chooses.
func (d *deltaLoad) upsert(ctx context.Context) error {
	name := d.target.Name.Quoted()
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	cols := d.columnList()
	sets := make([]string, 0, len(d.target.Table.Columns))
	vals := make([]string, 0, len(d.target.Table.Columns)+1)
	for _, c := range d.target.Table.Columns {
		if !d.written(c) {
			continue
		}
		q := nopii.QuoteIdent(c.Name)
		sets = append(sets, q+" = s."+q)
		vals = append(vals, "s."+q)
	}
	vals = append(vals, "s."+spk)
	set := strings.Join(sets, ", ")
	stage := d.stageName()
	probe := d.target.Table.EstRows > 0 && d.staged*probeShare < d.target.Table.EstRows
	if !probe {
		if _, err := d.exec(ctx, "ANALYZE "+stage+" ("+spk+")"); err != nil {
			return fmt.Errorf("analyze stage: %w", err)
		}
	}
	exec := func(sql string) (pgconn.CommandTag, error) {
		if !probe {
			return d.exec(ctx, sql)
		}
		rs, err := d.conn.PgConn().Exec(ctx, "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "+sql+
			"; RESET enable_hashjoin; RESET enable_mergejoin").ReadAll()
		if err != nil {
			return pgconn.CommandTag{}, pgconnect.SafeError(err)
		}
		return rs[2].CommandTag, nil
	}
	if serverMajor(d.conn) >= 15 && !d.feed.noMerge {
		tag, err := exec("MERGE INTO " + name + " t USING " + stage + " s ON t." + spk + " = s." + spk +
			" WHEN MATCHED AND NOT (t *= s) THEN UPDATE SET " + set +
			" WHEN NOT MATCHED THEN INSERT (" + cols + ") VALUES (" + strings.Join(vals, ", ") + ")")
		if err != nil {
			return fmt.Errorf("merge changed rows: %w", err)
		}
		d.upserted = tag.RowsAffected()
		return nil
	}
	tag, err := exec("UPDATE " + name + " t SET " + set + " FROM " + stage + " s WHERE t." + spk + " = s." + spk + " AND NOT (t *= s)")
	if err != nil {
		return fmt.Errorf("update changed rows: %w", err)
	}
	d.upserted = tag.RowsAffected()
	tag, err = exec("INSERT INTO " + name + " (" + cols + ") SELECT " + strings.Join(vals, ", ") + " FROM " + stage + " s WHERE NOT EXISTS (SELECT 1 FROM " +
		name + " t WHERE t." + spk + " = s." + spk + ")")
	if err != nil {
		return fmt.Errorf("insert new rows: %w", err)
	}
	d.upserted += tag.RowsAffected()
	return nil
}

// serverMajor returns the major version of the server conn is connected
// to, 0 when it cannot tell.
func serverMajor(conn *pgx.Conn) int { return pgconnect.ServerMajor(conn.PgConn()) }

// Applied returns the rows upserted (inserted, or updated because they
// changed) and deleted by Commit.
func (d *deltaLoad) Applied() (upserted, deleted int64) { return d.upserted, d.deleted }
