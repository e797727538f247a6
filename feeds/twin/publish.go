package twin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// Publish makes an input's run visible in the twin, in one transaction
// (docs/twin.md, "One snapshot"): the deferred loads of its tables (full
// copies swapped in, deltas merged, states saved, sequences set) and, for
// a faithful twin, the foreign keys among the copied tables and the
// source's views that read only copied tables (created, or refreshed when
// materialized). A reader of the twin sees the run before or the run
// after, never a mix; the foreign keys hold at every moment.
//
// The tables it replaces are taken ACCESS EXCLUSIVE only once the slow
// work is done (the rows, their indexes and constraints are committed by
// the loads, on tables no reader looks at; deltas not linked by a foreign
// key to a replaced table are merged first, under row locks), for the
// catalog work of the swaps; readers of the twin that hold one of them are
// waited for at most the lock timeout, three times, after which Publish
// fails naming them, and the twin keeps the previous run. Foreign keys are
// added NOT VALID in the transaction and validated right after it, each
// in its own (SHARE UPDATE EXCLUSIVE: readers and writers go on).
//
// The result says per source table what was left out or made NOT VALID,
// and why; a deferred delta that broke a constraint of the twin is not
// applied (its Err), the rest of the run is.
func (f *Feed) Publish(ctx context.Context, p nopii.Publication) (map[nopii.TableName]nopii.Published, error) {
	tables := map[nopii.TableName]nopii.PublishedTable{} // by the twin's name
	for _, t := range p.Tables {
		tables[t.Name.Prefixed(p.Prefix)] = t
	}
	held := f.take(func(n nopii.TableName) bool { _, ok := tables[n]; return ok })
	var ready, failed []*deferred
	for _, h := range held {
		if tables[h.load().target.Name].Failed {
			failed = append(failed, h)
		} else {
			ready = append(ready, h)
		}
	}
	f.drop(ctx, failed)
	if len(ready) == 0 && f.opts.DataOnly {
		return nil, nil
	}
	conn, err := f.acquire(ctx)
	if err != nil {
		f.drop(ctx, ready)
		return nil, err
	}
	pr := &publishRun{feed: f, conn: conn, l: &load{feed: f, conn: conn, leftOut: map[string]bool{}}, p: p, tables: tables,
		out: map[nopii.TableName]*nopii.Published{}}
	t0 := time.Now()
	if err := pr.run(ctx, ready); err != nil {
		conn.Close(context.Background()) // rolls back
		f.drop(ctx, ready)
		return nil, fmt.Errorf("twin: publish: %w", err)
	}
	f.log.Debug("twin run published", "tables", len(ready), "seconds", time.Since(t0).Seconds())
	pr.validate(ctx)
	f.release(conn)
	f.drop(ctx, pr.failed)
	out := map[nopii.TableName]nopii.Published{}
	for n, r := range pr.out {
		out[n] = *r
	}
	return out, nil
}

// lockAttempts is how many times a swap or a publish waits, each time at
// most the feed's lock timeout, for the tables it replaces.
const lockAttempts = 3

func (f *Feed) lockTimeout() string {
	return fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", f.opts.LockTimeout.Milliseconds())
}

// lockFailure reports a lock wait that timed out, or a deadlock with a
// reader of the twin (which PostgreSQL broke by cancelling the wait).
func lockFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01")
}

// holders names the sessions that hold locks on the relations rels (SQL
// names), for the error of a lock wait that timed out: pid, application,
// user, since when and in what state; never their query, whose text may
// hold row values.
func holders(ctx context.Context, conn *pgx.Conn, rels []string) (string, error) {
	rows, err := conn.Query(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), a.xact_start,
		       coalesce(a.state, ''), string_agg(DISTINCT format('%I.%I', n.nspname, c.relname), ', ')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
		  AND l.relation IN (SELECT to_regclass(x) FROM unnest($1::text[]) x)
		GROUP BY 1, 2, 3, 4, 5 ORDER BY 4 NULLS LAST, 1`, rels)
	if err != nil {
		return "", pgconnect.SafeError(err)
	}
	type holder struct {
		pid              int32
		app, user, state string
		since            *time.Time
		on               string
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (holder, error) {
		var h holder
		return h, r.Scan(&h.pid, &h.app, &h.user, &h.since, &h.state, &h.on)
	})
	if err != nil {
		return "", pgconnect.SafeError(err)
	}
	if len(hs) == 0 {
		return "", nil
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		s := fmt.Sprintf("pid %d (application %q, user %q", h.pid, h.app, h.user)
		if h.since != nil {
			s += ", transaction started " + h.since.UTC().Format(time.RFC3339)
		}
		parts[i] = s + ", " + h.state + ") on " + h.on
	}
	return "; held by " + strings.Join(parts, "; "), nil
}

// publishRun is one Publish: its transaction on conn, and what it found.
type publishRun struct {
	feed   *Feed
	conn   *pgx.Conn
	l      *load // a load on conn, for exec, tryExec and the views
	p      nopii.Publication
	tables map[nopii.TableName]nopii.PublishedTable // by the twin's name
	out    map[nopii.TableName]*nopii.Published     // by the source's name
	failed []*deferred                              // loads that failed at publish, to drop
	fks    []addedKey                               // added NOT VALID, to validate after the commit
}

// addedKey is a foreign key the publish added NOT VALID, to validate.
type addedKey struct {
	table nopii.TableName // the source's child table
	child nopii.TableName // the twin's
	name  string
}

func (pr *publishRun) result(t nopii.TableName) *nopii.Published {
	r, ok := pr.out[t]
	if !ok {
		r = &nopii.Published{}
		pr.out[t] = r
	}
	return r
}

func (pr *publishRun) note(t nopii.TableName, format string, args ...any) {
	r := pr.result(t)
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// done ends a step of a load at publish, begun with SAVEPOINT
// nopii_table: kept, or, when it failed (err), rolled back, and the table
// keeps its previous version. It returns an error only when the
// transaction cannot go on.
func (pr *publishRun) done(ctx context.Context, d *deferred, err error) error {
	if err == nil {
		_, err := pr.l.exec(ctx, "RELEASE SAVEPOINT nopii_table")
		return err
	}
	if lockFailure(err) || pr.conn.IsClosed() {
		return err
	}
	if _, rerr := pr.l.exec(ctx, "ROLLBACK TO SAVEPOINT nopii_table"); rerr != nil {
		return errors.Join(err, rerr)
	}
	l := d.load()
	pr.result(l.target.Table.Name).Err = err
	pr.failed = append(pr.failed, d)
	pr.feed.log.Error("twin: table not published; it keeps its previous version", "table", l.target.Name.String(), "error", err.Error())
	return nil
}

func (pr *publishRun) run(ctx context.Context, ready []*deferred) error {
	if _, err := pr.l.exec(ctx, "BEGIN"); err != nil {
		return err
	}
	// Data-subject requests wait for the publish (and the loads before it
	// waited for them), as for a load.
	if len(ready) > 0 {
		names := make([]nopii.TableName, len(ready))
		for i, d := range ready {
			names[i] = d.load().target.Name
		}
		if _, err := pr.l.exec(ctx, tableLocks("pg_advisory_xact_lock_shared", names)); err != nil {
			return err
		}
	}
	if _, err := pr.l.exec(ctx, pr.feed.lockTimeout()); err != nil {
		return err
	}
	var fulls, deltas []*deferred
	for _, d := range ready {
		d.load().conn = pr.conn
		if d.full != nil {
			fulls = append(fulls, d)
		} else {
			deltas = append(deltas, d)
		}
	}
	early, late, err := pr.order(ctx, fulls, deltas)
	if err != nil {
		return err
	}
	if err := pr.merge(ctx, early); err != nil {
		return err
	}
	if err := pr.lock(ctx, fulls, deltas); err != nil {
		return err
	}
	for _, d := range fulls {
		if _, err := pr.l.exec(ctx, "SAVEPOINT nopii_table"); err != nil {
			return err
		}
		if err := pr.done(ctx, d, d.full.swapIn(ctx, true)); err != nil {
			return err
		}
	}
	if err := pr.merge(ctx, late); err != nil {
		return err
	}
	for _, d := range ready {
		l := d.load()
		r := pr.result(l.target.Table.Name)
		r.Notes = append(r.Notes, l.notes[d.notes:]...)
		if d.delta != nil && r.Err == nil {
			r.Applied, r.Upserted, r.Deleted = true, d.delta.upserted, d.delta.deleted
		}
	}
	if !pr.feed.opts.DataOnly {
		// A deferrable foreign key's checks of the merges are still pending,
		// and ALTER TABLE refuses a table with pending trigger events: check
		// them now (COMMIT would).
		if _, err := pr.l.exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
			return err
		}
		if err := pr.foreignKeys(ctx); err != nil {
			return err
		}
		bySource := map[nopii.TableName]nopii.PublishedTable{}
		for _, t := range pr.p.Tables {
			bySource[t.Name] = t
		}
		if err := pr.l.publishViews(ctx, pr.p, bySource, pr.note); err != nil {
			return err
		}
	}
	_, err = pr.l.exec(ctx, "COMMIT")
	return err
}

// order splits the deltas into those merged before the swaps (early) and
// those merged after them (late): the deltas linked, through foreign keys
// among the run's tables, to a table that a full copy replaces, whose
// rows may reference rows the new copy brings. Each group is ordered
// parents first.
func (pr *publishRun) order(ctx context.Context, fulls, deltas []*deferred) (early, late []*deferred, err error) {
	if len(deltas) == 0 {
		return nil, nil, nil
	}
	byName := map[string]*deferred{}
	var names []string
	for _, d := range append(append([]*deferred{}, fulls...), deltas...) {
		n := d.load().target.Name.Quoted()
		byName[n] = d
		names = append(names, n)
	}
	rows, err := pr.conn.Query(ctx, `WITH t AS (SELECT x AS name, to_regclass(x) AS oid FROM unnest($1::text[]) x)
		SELECT c.name, p.name FROM pg_constraint k JOIN t c ON c.oid = k.conrelid JOIN t p ON p.oid = k.confrelid
		WHERE k.contype = 'f' AND c.oid <> p.oid ORDER BY 1, 2`, names)
	if err != nil {
		return nil, nil, fmt.Errorf("read foreign keys: %w", pgconnect.SafeError(err))
	}
	edges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var e [2]string
		return e, r.Scan(&e[0], &e[1])
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read foreign keys: %w", pgconnect.SafeError(err))
	}
	// Components of the foreign-key graph; one with a full copy is late.
	root := map[string]string{}
	var find func(string) string
	find = func(n string) string {
		if r, ok := root[n]; ok && r != n {
			root[n] = find(r)
			return root[n]
		}
		return n
	}
	for _, e := range edges {
		if a, b := find(e[0]), find(e[1]); a != b {
			root[a] = b
		}
	}
	replaced := map[string]bool{}
	for _, d := range fulls {
		replaced[find(d.load().target.Name.Quoted())] = true
	}
	parents := map[string][]string{}
	for _, e := range edges {
		parents[e[0]] = append(parents[e[0]], e[1])
	}
	done := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, p := range parents[n] {
			visit(p)
		}
		if d := byName[n]; d.delta != nil {
			if replaced[find(n)] {
				late = append(late, d)
			} else {
				early = append(early, d)
			}
		}
	}
	for _, d := range deltas {
		visit(d.load().target.Name.Quoted())
	}
	return early, late, nil
}

// merge applies deferred deltas: their upserts parents first, then their
// deletes children first, so that the foreign keys among them hold after
// every statement; then each saves its state. A delta that breaks a
// constraint fails alone (its upserts stay when its deletes failed: the
// next run applies it again from the same cursor).
func (pr *publishRun) merge(ctx context.Context, ds []*deferred) error {
	var merged []*deferred
	for _, d := range ds {
		if _, err := pr.l.exec(ctx, "SAVEPOINT nopii_table"); err != nil {
			return err
		}
		err := d.delta.applyRows(ctx)
		if err := pr.done(ctx, d, err); err != nil {
			return err
		}
		if err == nil {
			merged = append(merged, d)
		}
	}
	for i := len(merged) - 1; i >= 0; i-- {
		d := merged[i]
		if _, err := pr.l.exec(ctx, "SAVEPOINT nopii_table"); err != nil {
			return err
		}
		err := d.delta.deleteGone(ctx)
		if err == nil {
			err = d.delta.save(ctx)
		}
		if err == nil {
			err = unregister(ctx, pr.conn, d.delta.committed...)
		}
		if err := pr.done(ctx, d, err); err != nil {
			return err
		}
	}
	return nil
}

// lock takes, when the publish swaps a table in, the tables it replaces,
// their neighbours by foreign key (whose keys the swaps drop) and the
// tables its deltas change ACCESS EXCLUSIVE, waiting for readers at most
// the lock timeout, lockAttempts times; then it fails, naming the sessions
// that hold them.
//
// The deltas' tables are taken too because a swap is not MVCC-safe (as
// TRUNCATE is not): a transaction that read a delta's table before the
// publish, and reads a swapped table after it, would see the new rows of
// the one and the old rows of the other. Holding its lock on the first,
// it makes the publish wait for it instead. A run of deltas alone takes
// no such lock: its merges are MVCC-safe, in one transaction.
func (pr *publishRun) lock(ctx context.Context, fulls, deltas []*deferred) error {
	if len(fulls) == 0 {
		return nil
	}
	var names, swapped []string
	for _, d := range fulls {
		swapped = append(swapped, d.load().target.Name.Quoted())
	}
	for _, d := range deltas {
		if d.delta.staged > 0 || d.delta.deleting() {
			names = append(names, d.load().target.Name.Quoted())
		}
	}
	rows, err := pr.conn.Query(ctx, `WITH t AS (SELECT to_regclass(x) AS oid FROM unnest($1::text[]) x WHERE to_regclass(x) IS NOT NULL)
		SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid IN (SELECT oid FROM t
			UNION SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid IN (SELECT oid FROM t)
			UNION SELECT confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid IN (SELECT oid FROM t)
			UNION SELECT to_regclass(x) FROM unnest($2::text[]) x)
		ORDER BY 1`, swapped, names)
	if err != nil {
		return fmt.Errorf("read the tables to lock: %w", pgconnect.SafeError(err))
	}
	rels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the tables to lock: %w", pgconnect.SafeError(err))
	}
	// Another swap or publish of the twin (another input's) holds it for
	// its own bounded lock waits and its catalog work, merges and views:
	// waited for without the lock timeout, which bounds the waits for
	// readers of the twin, and would fail this publish whole.
	if _, err := pr.l.exec(ctx, "SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock(hashtext('nopii swap')); "+pr.feed.lockTimeout()); err != nil {
		return fmt.Errorf("wait for another swap: %w", err)
	}
	if len(rels) == 0 {
		return nil
	}
	// Waiting for one table while holding another would deadlock with a
	// reader that holds the second and wants the first (PostgreSQL would
	// cancel the longer wait: the publish's). So the publish waits for one
	// table at a time holding none of them (a wait that readers coming
	// later queue behind), then takes the others without waiting; when
	// one is busy it lets go of all and waits for that one. It gives up
	// after lockAttempts times the lock timeout in all.
	deadline := time.Now().Add(lockAttempts * pr.feed.opts.LockTimeout)
	t0 := time.Now()
	next := rels[0]
	for waits := 1; ; waits++ {
		if _, err := pr.l.exec(ctx, "SAVEPOINT nopii_lock"); err != nil {
			return err
		}
		_, err := pr.l.exec(ctx, "LOCK TABLE "+next+" IN ACCESS EXCLUSIVE MODE")
		if err == nil {
			busy := ""
			for _, r := range rels {
				if r == next {
					continue
				}
				if _, err = pr.l.exec(ctx, "LOCK TABLE "+r+" IN ACCESS EXCLUSIVE MODE NOWAIT"); err != nil {
					busy = r
					break
				}
			}
			if err == nil {
				pr.feed.log.Debug("twin tables taken for the publish", "tables", len(rels), "waits", waits, "seconds", time.Since(t0).Seconds())
				return nil
			}
			if lockFailure(err) {
				next = busy
			}
		}
		if !lockFailure(err) {
			return fmt.Errorf("take the tables it replaces: %w", err)
		}
		if _, rerr := pr.l.exec(ctx, "ROLLBACK TO SAVEPOINT nopii_lock"); rerr != nil {
			return errors.Join(err, rerr)
		}
		if time.Now().After(deadline) {
			who, herr := holders(ctx, pr.conn, rels)
			if herr != nil {
				return errors.Join(err, herr)
			}
			return fmt.Errorf("readers of the twin held the tables it replaces for longer than it waits (%d × %s)%s; the twin keeps the previous run: %w",
				lockAttempts, pr.feed.opts.LockTimeout, who, err)
		}
		if waits%10 == 0 {
			who, _ := holders(ctx, pr.conn, rels)
			pr.feed.log.Warn("twin tables are busy, still waiting to publish", "seconds", time.Since(t0).Seconds(), "holders", strings.TrimPrefix(who, "; held by "))
		}
	}
}

// foreignKeys adds the source's foreign keys among the copied tables that
// the twin lacks (a swap dropped them with the old table): NOT VALID, to be
// validated after the commit; NOT VALID for good where the parent may lack
// rows; left out where the parent is not copied.
func (pr *publishRun) foreignKeys(ctx context.Context) error {
	p := pr.p
	for _, t := range p.Tables {
		if t.Schema == nil {
			continue
		}
		child := t.Name.Prefixed(p.Prefix)
		for _, c := range t.Schema.Constraints {
			if c.Kind != nopii.ConstraintForeignKey {
				continue
			}
			parent, ok := pr.tables[c.References.Prefixed(p.Prefix)]
			if !ok {
				pr.note(t.Name, "foreign key %s left out: its parent %s is not copied", c.Name, c.References)
				continue
			}
			def := c.Def
			leftOut := func(format string, args ...any) error {
				pr.note(t.Name, format, args...)
				return pr.dropKey(ctx, child, c.Name)
			}
			switch {
			case t.Streamed && !parent.Streamed:
				if err := leftOut("foreign key %s left out: this table is streamed (mode cdc) and its parent %s is not: a row the stream adds may reference one that %s gets only at its next run", c.Name, c.References, c.References); err != nil {
					return err
				}
				continue
			case !t.Streamed && parent.Streamed:
				if err := leftOut("foreign key %s left out: its parent %s is streamed (mode cdc) and this table is not: a delete the stream applies may remove a row this table references until its next run", c.Name, c.References); err != nil {
					return err
				}
				continue
			case t.Streamed && parent.Incomplete != "" && !slices.Contains(parent.CompleteFor, t.Name):
				// NOT VALID would still refuse the stream's new rows.
				if err := leftOut("foreign key %s left out: its parent %s %s, and the stream's rows may reference one the twin lacks", c.Name, c.References, parent.Incomplete); err != nil {
					return err
				}
				continue
			case t.Streamed && !p.Stream:
				continue // the stream adds it once its tables agree
			case t.Streamed:
				def = deferrableKey(def)
			case parent.Incomplete != "" && !slices.Contains(parent.CompleteFor, t.Name) && (t.Incremental || parent.Incremental):
				// NOT VALID is still checked on the rows a delta adds or
				// removes: a new order of a user outside the window, an
				// old user leaving it.
				delta := t.Name
				if !t.Incremental {
					delta = c.References
				}
				if err := leftOut("foreign key %s left out: its parent %s %s, and %s is updated in place by deltas, whose rows a NOT VALID key would still refuse", c.Name, c.References, parent.Incomplete, delta); err != nil {
					return err
				}
				continue
			}
			var exists, ready bool
			err := pr.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2),
				to_regclass($1) IS NOT NULL AND to_regclass($3) IS NOT NULL`, child.Quoted(), c.Name, parent.Name.Prefixed(p.Prefix).Quoted()).Scan(&exists, &ready)
			if err != nil {
				return fmt.Errorf("look up foreign key %s of %s: %w", c.Name, child, pgconnect.SafeError(err))
			}
			if exists || !ready {
				continue
			}
			add := "ALTER TABLE " + child.Quoted() + " ADD CONSTRAINT " + nopii.QuoteIdent(c.Name) + " " + def + " NOT VALID"
			if err := pr.l.tryExec(ctx, add); err != nil {
				pr.note(t.Name, "foreign key %s left out: %v", c.Name, err)
				continue
			}
			if parent.Incomplete != "" && !slices.Contains(parent.CompleteFor, t.Name) {
				pr.note(t.Name, "foreign key %s is NOT VALID: its parent %s %s", c.Name, c.References, parent.Incomplete)
				continue
			}
			pr.fks = append(pr.fks, addedKey{table: t.Name, child: child, name: c.Name})
		}
	}
	return nil
}

// dropKey drops a foreign key of the source that an earlier version added
// where it is now left out.
func (pr *publishRun) dropKey(ctx context.Context, child nopii.TableName, name string) error {
	var exists bool
	if err := pr.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2 AND contype = 'f')`,
		child.Quoted(), name).Scan(&exists); err != nil {
		return fmt.Errorf("look up foreign key %s of %s: %w", name, child, pgconnect.SafeError(err))
	}
	if !exists {
		return nil
	}
	if _, err := pr.l.exec(ctx, "ALTER TABLE "+child.Quoted()+" DROP CONSTRAINT "+nopii.QuoteIdent(name)); err != nil {
		return fmt.Errorf("drop foreign key %s of %s: %w", name, child, err)
	}
	return nil
}

// deferrableKey makes a foreign key's definition DEFERRABLE (INITIALLY
// IMMEDIATE, unless it says otherwise): between streamed tables, whose
// changes the stream applies in one transaction with SET CONSTRAINTS ALL
// DEFERRED, checked at its commit. A reader or writer of the twin sees the
// source's behaviour: checked at each statement unless it defers them.
func deferrableKey(def string) string {
	if deferrable(def) != "" { // pg_get_constraintdef ends with it; never prints NOT DEFERRABLE
		return def
	}
	return def + " DEFERRABLE"
}

// validate validates the foreign keys the publish added, each in its own
// transaction after the publish's: SHARE UPDATE EXCLUSIVE on the child and
// ROW SHARE on the parent, which block neither readers nor writers. The
// keys of different children are validated at once, on connections of
// their own, as many as the feed's index builds; one child's keys one
// after another (their locks conflict). One the twin's rows do not
// satisfy stays NOT VALID, and is said.
func (pr *publishRun) validate(ctx context.Context) {
	var children []nopii.TableName
	byChild := map[nopii.TableName][]addedKey{}
	for _, k := range pr.fks {
		if _, ok := byChild[k.child]; !ok {
			children = append(children, k.child)
		}
		byChild[k.child] = append(byChild[k.child], k)
	}
	var mu sync.Mutex // guards pr.out
	var wg sync.WaitGroup
	for _, child := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := byChild[child]
			fail := func(err error, ks ...addedKey) {
				mu.Lock()
				defer mu.Unlock()
				for _, k := range ks {
					pr.note(k.table, "foreign key %s is NOT VALID: the twin's rows do not satisfy it (%v)", k.name, err)
				}
			}
			select {
			case pr.feed.builds <- struct{}{}:
			case <-ctx.Done():
				fail(ctx.Err(), keys...)
				return
			}
			defer func() { <-pr.feed.builds }()
			conn, err := pr.feed.acquire(ctx)
			if err != nil {
				fail(pgconnect.SafeError(err), keys...)
				return
			}
			defer pr.feed.release(conn)
			l := &load{feed: pr.feed, conn: conn}
			for _, k := range keys {
				t0 := time.Now()
				_, err := l.exec(ctx, "BEGIN; "+pr.feed.lockTimeout()+"; ALTER TABLE "+k.child.Quoted()+" VALIDATE CONSTRAINT "+nopii.QuoteIdent(k.name)+"; COMMIT")
				if err != nil {
					l.exec(context.Background(), "ROLLBACK")
					fail(err, k)
					continue
				}
				pr.feed.log.Debug("twin foreign key validated", "table", k.child.String(), "constraint", k.name, "seconds", time.Since(t0).Seconds())
			}
		}()
	}
	wg.Wait()
}

// streamedExist reports whether the streamed tables among reads exist in
// the twin yet.
func (l *load) streamedExist(ctx context.Context, p nopii.Publication, reads []nopii.TableName, tables map[nopii.TableName]nopii.PublishedTable) (bool, error) {
	for _, r := range reads {
		if !tables[r].Streamed {
			continue
		}
		var ok bool
		if err := l.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", r.Prefixed(p.Prefix).Quoted()).Scan(&ok); err != nil {
			return false, pgconnect.SafeError(err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// publishViews creates the views that read only copied tables (and views
// created before them), and refreshes the materialized ones that exist.
func (l *load) publishViews(ctx context.Context, p nopii.Publication, tables map[nopii.TableName]nopii.PublishedTable, note func(nopii.TableName, string, ...any)) error {
	have := map[nopii.TableName]bool{}
	for n := range tables {
		have[n] = true
	}
	for _, v := range p.Views {
		var missing []string
		var reads []nopii.TableName
		for _, r := range v.Reads {
			if !have[r] {
				missing = append(missing, r.String())
			} else if _, ok := tables[r]; ok {
				reads = append(reads, r)
			}
		}
		tell := func(format string, args ...any) {
			for _, r := range reads[:min(1, len(reads))] {
				note(r, format, args...)
			}
		}
		if len(missing) > 0 {
			tell("view %s left out: it reads %s, which the twin does not have", v.Name, strings.Join(missing, ", "))
			continue
		}
		if ok, err := l.streamedExist(ctx, p, reads, tables); err != nil || !ok {
			// The stream's first copy comes after the run's publish; the
			// stream publishes again once its tables are in.
			if err != nil {
				return err
			}
			continue
		}
		name := v.Name.Prefixed(p.Prefix)
		kind := "VIEW"
		if v.Materialized {
			kind = "MATERIALIZED VIEW"
		}
		var exists bool
		if err := l.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name.Quoted()).Scan(&exists); err != nil {
			return pgconnect.SafeError(err)
		}
		if exists {
			if v.Materialized {
				if err := l.tryExec(ctx, "REFRESH MATERIALIZED VIEW "+name.Quoted()); err != nil {
					tell("materialized view %s not refreshed: %v", v.Name, err)
				}
			}
			have[v.Name] = true
			continue
		}
		if err := l.tryExec(ctx, "CREATE SCHEMA IF NOT EXISTS "+nopii.QuoteIdent(name.Schema)); err != nil {
			return err
		}
		with := ""
		if v.Options != "" {
			with = " WITH (" + v.Options + ")"
		}
		stmts := []string{"CREATE " + kind + " " + name.Quoted() + with + " AS " + v.Def}
		for _, ix := range v.Indexes {
			unique := ""
			if ix.Unique {
				unique = "UNIQUE "
			}
			stmts = append(stmts, "CREATE "+unique+"INDEX "+nopii.QuoteIdent(ix.Name)+" ON "+name.Quoted()+" "+ix.Def)
		}
		if v.Comment != "" {
			stmts = append(stmts, "COMMENT ON "+kind+" "+name.Quoted()+" IS "+quoteLiteral(v.Comment))
		}
		if err := l.tryExec(ctx, strings.Join(stmts, "; ")); err != nil {
			tell("view %s left out: %v", v.Name, err)
			continue
		}
		have[v.Name] = true
	}
	return nil
}
