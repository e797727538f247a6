package twin

import (
	"context"
	"errors"
	"fmt"

	"github.com/nopii/nopii"
)

var _ nopii.ChangeFeed = (*Feed)(nil)

// Changes implements nopii.ChangeFeed: upserted rows go to a stage, as a
// delta's do; deleted keys are kept in memory (a batch is bounded by the
// caller). Commit empties the table if asked, deletes, upserts, saves the
// state and commits — one transaction, so the state's LSN never runs ahead
// of the rows.
func (f *Feed) Changes(ctx context.Context, t nopii.Target) (nopii.ChangeLoad, error) {
	l, err := f.begin(ctx, t)
	if err != nil {
		return nil, err
	}
	c := &changeLoad{deltaLoad: &deltaLoad{load: l, ctx: ctx}}
	c.deltaLoad.beforeUpsert = c.beforeUpsert
	return c, nil
}

type changeLoad struct {
	*deltaLoad
	truncate bool
	gone     []string
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
// the delta's transaction.
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
