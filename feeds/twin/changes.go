package twin

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

var _ nopii.ChangeFeed = (*Feed)(nil)

// Changes implements nopii.ChangeFeed: upserted rows go to a stage, as a
// delta's do; deleted keys are kept in memory (a batch is bounded by the
// caller). Commit empties the table if asked, deletes, upserts, saves the
// state and commits — one transaction, so the state's LSN never runs ahead
// of the rows.
//
// A stream applies small batches several times a second, so the stage
// outlives the load: a temporary table per target shape, created once per
// connection and emptied at every commit (ON COMMIT DELETE ROWS), which
// saves the catalog work of creating, analyzing and dropping one per load.
// A batch small next to its table is joined to it by index probes without
// an ANALYZE, as a delta's small stage is.
//
// Its deferrable constraints are checked at commit (SET CONSTRAINTS ALL
// DEFERRED), as in a group: a self-referencing foreign key holds whatever
// the order of the batch's deletes and upserts.
func (f *Feed) Changes(ctx context.Context, t nopii.Target) (nopii.ChangeLoad, error) {
	l, err := f.beginWith(ctx, t, "BEGIN; SET CONSTRAINTS ALL DEFERRED; ")
	if err != nil {
		return nil, err
	}
	c := &changeLoad{deltaLoad: &deltaLoad{load: l, ctx: ctx, stage: stageName(t)}}
	c.deltaLoad.beforeUpsert = c.beforeUpsert
	return c, nil
}

// ChangeGroup implements nopii.ChangeGroup: one transaction on one
// connection, its deferrable constraints deferred to its commit (the
// foreign keys among streamed tables are DEFERRABLE in the twin, publish.go),
// in which each table's changes are applied in turn, as by Changes.
//
// It takes the shared table locks of loads of all the group's tables (the
// twin's names) at once, in the order forget takes its exclusive ones
// (tableLocks), so that a group and a forget never wait on each other.
func (f *Feed) ChangeGroup(ctx context.Context, tables []nopii.TableName) (nopii.ChangeGroup, error) {
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN; SET CONSTRAINTS ALL DEFERRED; "+tableLocks("pg_advisory_xact_lock_shared", tables)); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("twin: begin changes: %w", pgconnect.SafeError(err))
	}
	return &changeGroup{feed: f, conn: conn}, nil
}

type changeGroup struct {
	feed *Feed
	conn *pgx.Conn
	done bool
}

// Changes implements nopii.ChangeGroup.
func (g *changeGroup) Changes(ctx context.Context, t nopii.Target) (nopii.ChangeLoad, error) {
	if g.done {
		return nil, errors.New("twin: changes after the group ended")
	}
	l, err := g.feed.newLoad(t)
	if err != nil {
		return nil, err
	}
	if err := l.on(ctx, g.conn, ""); err != nil {
		g.Abort()
		return nil, err
	}
	l.group = g
	c := &changeLoad{deltaLoad: &deltaLoad{load: l, ctx: ctx, stage: stageName(t)}}
	c.deltaLoad.beforeUpsert = c.beforeUpsert
	return c, nil
}

// Commit implements nopii.ChangeGroup: the deferred foreign keys are
// checked here; one the changes break fails the whole group.
func (g *changeGroup) Commit(ctx context.Context) error {
	if g.done {
		return errors.New("twin: changes already ended")
	}
	g.done = true
	tag, err := g.conn.Exec(ctx, "COMMIT")
	if err == nil && tag.String() != "COMMIT" {
		err = errors.New("the transaction had failed and was rolled back")
	}
	if err != nil {
		g.conn.Close(context.Background())
		return fmt.Errorf("twin: commit changes: %w", pgconnect.SafeError(err))
	}
	g.feed.release(g.conn)
	return nil
}

// Abort implements nopii.ChangeGroup: closing the connection rolls back.
func (g *changeGroup) Abort() {
	if g.done {
		return
	}
	g.done = true
	g.conn.Close(context.Background())
}

// stageName names the stage of a target's changes after its name and
// columns, so that a table whose columns changed gets a new stage.
func stageName(t nopii.Target) string {
	h := fnv.New64a()
	h.Write([]byte(t.Name.String()))
	for _, c := range t.Table.Columns {
		h.Write([]byte{0})
		h.Write([]byte(c.Name + " " + columnType(c, t.Prefix)))
	}
	return "_nopii_changes_" + strconv.FormatUint(h.Sum64(), 16)
}

type changeLoad struct {
	*deltaLoad
	truncate bool
	gone     []string
}

// WriteRow implements nopii.Load: the first row of a load makes sure the
// connection has the stage.
func (c *changeLoad) WriteRow(values [][]byte) error {
	if c.stream == nil {
		if _, err := c.exec(c.ctx, "CREATE TEMP TABLE IF NOT EXISTS "+c.stage+" (LIKE "+c.target.Name.Quoted()+c.likeOptions()+") ON COMMIT DELETE ROWS"); err != nil {
			return fmt.Errorf("twin: changes to %s: create stage: %w", c.target.Name, err)
		}
	}
	return c.deltaLoad.WriteRow(values)
}

// Truncate implements nopii.ChangeLoad.
func (c *changeLoad) Truncate() error {
	if c.staged > 0 || len(c.gone) > 0 {
		return errors.New("twin: Truncate after rows or keys of the same load")
	}
	c.truncate = true
	return nil
}

// DeleteKey implements nopii.ChangeLoad.
func (c *changeLoad) DeleteKey(key []byte) error {
	if key == nil {
		return fmt.Errorf("twin: changes to %s: NULL key", c.target.Name)
	}
	c.gone = append(c.gone, string(key))
	return nil
}

// beforeUpsert empties the table if asked and deletes the keys, inside
// the delta's transaction (the upsert chooses index probes for a small
// batch, as a delta's does).
func (c *changeLoad) beforeUpsert(ctx context.Context) error {
	name := c.target.Name
	if c.truncate {
		// DELETE, not TRUNCATE: readers of the twin keep reading.
		if _, err := c.exec(ctx, "DELETE FROM "+name.Quoted()); err != nil {
			return fmt.Errorf("empty the table: %w", err)
		}
	}
	if len(c.gone) > 0 {
		tag, err := c.exec(ctx, "DELETE FROM "+name.Quoted()+" WHERE "+nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)+" = ANY($1::text[])", c.gone)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		c.deleted = tag.RowsAffected()
	}
	return nil
}
