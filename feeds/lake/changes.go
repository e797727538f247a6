package lake

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/nopii/nopii"
)

var _ nopii.ChangeFeed = (*Feed)(nil)

// Changes implements nopii.ChangeFeed: a delta folder whose rows carry
// _nopii_op "upsert" for WriteRow and "delete" for DeleteKey; Truncate adds
// a "delete" row for every key the table held that the load does not
// upsert. The key list follows: the old keys and the upserts, without the
// deleted ones (or just the upserts after a truncate).
func (f *Feed) Changes(ctx context.Context, t nopii.Target) (nopii.ChangeLoad, error) {
	l, err := f.begin(ctx, t, true, false)
	if err != nil {
		return nil, err
	}
	c := &changeLoad{deltaLoad: &deltaLoad{load: l}, gone: &keySorter{dir: f.opts.TempDir}}
	c.merge = c.mergeChanges
	return c, nil
}

type changeLoad struct {
	*deltaLoad
	gone     *keySorter
	truncate bool
}

// Truncate implements nopii.ChangeLoad.
func (c *changeLoad) Truncate() error {
	if c.rows > 0 || c.deletes > 0 {
		return c.errorf("Truncate after rows or keys of the same load")
	}
	c.truncate = true
	return nil
}

// DeleteKey implements nopii.ChangeLoad.
func (c *changeLoad) DeleteKey(key []byte) error {
	if c.done {
		return c.errorf("load already finished")
	}
	if c.failed != nil {
		return c.failed
	}
	if key == nil {
		return c.errorf("NULL key")
	}
	c.deleteRow[len(c.codecs)] = key
	if err := c.write(c.deleteRow, OpDelete); err != nil {
		c.failed = err
		return err
	}
	if err := c.gone.add(key); err != nil {
		c.failed = c.wrap("sort keys", err)
		return c.failed
	}
	c.deletes++
	return nil
}

// Abort implements nopii.Load.
func (c *changeLoad) Abort() {
	c.gone.close()
	c.deltaLoad.Abort()
}

// mergeChanges writes the new key list (and, after a truncate, the delete
// rows of the keys the table held).
func (c *changeLoad) mergeChanges(ctx context.Context, kw *keysWriter) error {
	defer c.gone.close()
	old, err := openKeys(ctx, c.f.store, c.prev.Keys)
	if err != nil {
		return c.wrap("read key list", err)
	}
	defer old.close()
	if c.truncate {
		n := len(c.codecs)
		err := minus(old, c.keys.stream(), func(k []byte) error {
			c.deleteRow[n] = k
			c.deletes++
			return c.write(c.deleteRow, OpDelete)
		})
		if err != nil {
			return err
		}
		if err := copyKeys(kw, c.keys.stream()); err != nil {
			return c.wrap("write key list", err)
		}
		return nil
	}
	if err := minus(merge(old, c.keys.stream()), c.gone.stream(), kw.write); err != nil {
		return c.wrap("write key list", err)
	}
	return nil
}

// minus calls fn for each key of the sorted stream a that the sorted
// stream b does not have.
func minus(a, b keyStream, fn func(k []byte) error) error {
	bk, errB := b.next()
	for {
		ak, err := a.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for errB == nil && bytes.Compare(bk, ak) < 0 {
			bk, errB = b.next()
		}
		if errB != nil && !errors.Is(errB, io.EOF) {
			return errB
		}
		if errB == nil && bytes.Equal(bk, ak) {
			continue
		}
		if err := fn(ak); err != nil {
			return err
		}
	}
}
