package twin

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/nopii/nopii"
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
func (f *Feed) Changes(ctx context.Context, t nopii.Target) (nopii.ChangeLoad, error) {
	l, err := f.begin(ctx, t)
	if err != nil {
		return nil, err
	}
	c := &changeLoad{deltaLoad: &deltaLoad{load: l, ctx: ctx, stage: stageName(t)}}
	c.deltaLoad.beforeUpsert = c.beforeUpsert
	return c, nil
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
