package twin

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// A deferred load (nopii.Target.Deferred) commits what it loaded where no
// reader looks, and Publish makes every such load of an input visible in
// one transaction (publish.go): a full copy commits its shadow table with
// its indexes and constraints built (_nopii_new_<table>, in the table's
// schema), a delta commits its stage (nopii._nopii_stage_…, unlogged) and
// the keys that detect deletes (nopii._nopii_keys_…).
//
// Each such relation is named in nopii.pending in the transaction that
// commits it, so that none is lost: a run killed before its publish leaves
// them, and the next run of the workflow drops them as soon as it holds its
// run lock (Lock), before any load; a run that does not publish (it was
// cancelled) drops its own (Discard). A data-subject request deletes the
// subject's rows from them too (subject.go), since they hold rows that
// the twin's tables will hold after the publish.
const pendingDDL = `CREATE SCHEMA IF NOT EXISTS nopii;
CREATE TABLE IF NOT EXISTS nopii.pending (
    relation     text PRIMARY KEY,
    kind         text NOT NULL,
    workflow     text NOT NULL,
    target_table text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
)`

// Kinds of pending relations.
const (
	pendingShadow = "shadow" // a full copy's table, rows and all
	pendingStage  = "stage"  // a delta's changed rows
	pendingKeys   = "keys"   // a delta's source keys, for deletes
)

func ensurePendingTable(ctx context.Context, conn *pgx.Conn) error {
	return ensureTables(ctx, conn, pendingDDL, "nopii.pending")
}

// register names a relation the load's transaction commits in
// nopii.pending, in that transaction.
func (l *load) register(ctx context.Context, relation, kind string) error {
	workflow := ""
	if st := l.target.State; st != nil {
		workflow = st.Workflow
	}
	_, err := l.exec(ctx, `INSERT INTO nopii.pending (relation, kind, workflow, target_table) VALUES ($1, $2, $3, $4)
		ON CONFLICT (relation) DO UPDATE SET kind = EXCLUDED.kind, workflow = EXCLUDED.workflow, target_table = EXCLUDED.target_table, created_at = now()`,
		relation, kind, workflow, l.target.Name.String())
	if err != nil {
		return fmt.Errorf("name %s in nopii.pending: %w", relation, err)
	}
	l.registered = true
	return nil
}

// unregister drops relations named in nopii.pending and their rows there,
// in the caller's transaction on conn.
func unregister(ctx context.Context, conn *pgx.Conn, relations ...string) error {
	if len(relations) == 0 {
		return nil
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('nopii.pending') IS NOT NULL").Scan(&exists); err != nil {
		return pgconnect.SafeError(err)
	}
	for _, r := range relations {
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+r); err != nil {
			return fmt.Errorf("drop %s: %w", r, pgconnect.SafeError(err))
		}
	}
	if !exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "DELETE FROM nopii.pending WHERE relation = ANY($1)", relations); err != nil {
		return fmt.Errorf("forget %d pending relations: %w", len(relations), pgconnect.SafeError(err))
	}
	return nil
}

// dropLeftovers drops what runs of the workflow left for a publish that
// never came (a process killed between its loads and its publish). The
// caller holds the workflow's run lock.
func dropLeftovers(ctx context.Context, conn *pgx.Conn, workflow string) (int, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('nopii.pending') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return 0, pgconnect.SafeError(err)
	}
	rows, err := conn.Query(ctx, "SELECT relation FROM nopii.pending WHERE workflow = $1 ORDER BY relation", workflow)
	if err != nil {
		return 0, pgconnect.SafeError(err)
	}
	rels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(rels) == 0 {
		return 0, pgconnect.SafeError(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, pgconnect.SafeError(err)
	}
	defer tx.Rollback(context.Background())
	if err := unregister(ctx, conn, rels...); err != nil {
		return 0, err
	}
	return len(rels), pgconnect.SafeError(tx.Commit(ctx))
}

// deferred is one load waiting for Publish: a full copy's committed shadow,
// or a delta's committed stage (or a delta without changes, which has its
// state to save).
type deferred struct {
	full  *fullLoad
	delta *deltaLoad
	notes int // notes the agent read at Commit
}

func (p *deferred) load() *load {
	if p.full != nil {
		return p.full.load
	}
	return p.delta.load
}

// relations are what the load committed in nopii.pending.
func (p *deferred) relations() []string {
	if p.full != nil {
		return []string{p.full.shadowName()}
	}
	return p.delta.committed
}

// hold keeps a committed load for Publish.
func (f *Feed) hold(p *deferred) {
	p.notes = len(p.load().notes)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deferred == nil {
		f.deferred = map[nopii.TableName]*deferred{}
	}
	f.deferred[p.load().target.Name] = p
}

// take removes and returns the loads held for the targets that keep says
// to, in the targets' order.
func (f *Feed) take(keep func(nopii.TableName) bool) []*deferred {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*deferred
	for name, p := range f.deferred {
		if keep(name) {
			out = append(out, p)
			delete(f.deferred, name)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].load().target.Name.String() < out[j].load().target.Name.String()
	})
	return out
}

// Discard drops the loads held for a publish that will not come (the run
// was cancelled, or failed before its publish step): the twin keeps what
// it had.
func (f *Feed) Discard(ctx context.Context) {
	f.drop(ctx, f.take(func(nopii.TableName) bool { return true }))
}

// drop drops what held loads committed, in one transaction; what it
// cannot drop, the next run of the workflow does.
func (f *Feed) drop(ctx context.Context, ps []*deferred) {
	var rels []string
	for _, p := range ps {
		rels = append(rels, p.relations()...)
	}
	if len(rels) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := func() error {
		conn, err := f.acquire(ctx)
		if err != nil {
			return err
		}
		defer f.release(conn)
		tx, err := conn.Begin(ctx)
		if err != nil {
			return pgconnect.SafeError(err)
		}
		defer tx.Rollback(context.Background())
		if err := unregister(ctx, conn, rels...); err != nil {
			return err
		}
		return pgconnect.SafeError(tx.Commit(ctx))
	}()
	if err != nil {
		f.log.Warn("twin: could not drop the loads of a run that was not published; its next run drops them", "relations", len(rels), "error", err.Error())
	}
}

// stagedName names a deferred delta's committed stage or keys in schema
// nopii after the workflow, input and table, so that a run's next load of
// the table finds (and drops) the one a killed run left.
func stagedName(kind string, st *nopii.TableState, target nopii.TableName) string {
	h := fnv.New64a()
	if st != nil {
		h.Write([]byte(st.Workflow + "\x00" + st.Input + "\x00"))
	}
	h.Write([]byte(target.String()))
	return "nopii." + nopii.QuoteIdent("_nopii_"+kind+"_"+strconv.FormatUint(h.Sum64(), 16))
}
