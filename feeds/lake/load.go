package lake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"

	"github.com/nopii/nopii"
)

// load is what full and delta loads share: the table's codecs, the open
// part, the parts committed so far, the keys seen.
type load struct {
	f      *Feed
	ctx    context.Context
	target nopii.Target
	dir    string // the table's folder
	folder string // snapshot=… or delta=…
	stamp  time.Time
	prev   *Manifest // nil before the first snapshot
	delta  bool

	codecs []*codec
	schema *parquet.Schema
	m      *pgtype.Map

	part  *part
	parts []Part // committed, not yet referenced by a manifest

	rows     int64
	deletes  int64
	warnings int64 // values written NULL because the Parquet type cannot hold them

	keys   *keySorter // full: every key; delta: the upserted keys
	remain *keySorter // delta with deletes: the keys streamed to WriteKey

	deleteRow [][]byte
	done      bool
	failed    error // a write failed: the load can only be aborted
}

// part is an object being written.
type part struct {
	path string // relative to the table's folder
	obj  ObjectWriter
	out  *countingWriter
	enc  encoder
	rows int64
}

func (f *Feed) begin(ctx context.Context, t nopii.Target, delta, deletes bool) (*load, error) {
	if f.err != nil {
		return nil, f.err
	}
	if t.Table == nil {
		return nil, fmt.Errorf("%s: load %s: no table", f.opts.Kind, t.Name)
	}
	for _, c := range t.Table.Columns {
		if c.Name == nopii.SourcePrimaryKeyColumn || c.Name == OpColumn {
			return nil, fmt.Errorf("%s: load %s: column %s clashes with the column nopii adds", f.opts.Kind, t.Name, c.Name)
		}
	}
	if !f.claim(t.Name) {
		return nil, fmt.Errorf("%s: load %s: another load of the table is in progress", f.opts.Kind, t.Name)
	}
	l := &load{f: f, ctx: ctx, target: t, dir: TableDir(f.opts.Workflow, t.Name), delta: delta,
		m: pgtype.NewMap(), keys: &keySorter{dir: f.opts.TempDir}}
	fail := func(err error) (*load, error) {
		f.release(t.Name)
		return nil, fmt.Errorf("%s: load %s: %w", f.opts.Kind, t.Name, err)
	}
	prev, err := ReadManifest(ctx, f.store, l.dir)
	switch {
	case isNotExist(err):
		prev = nil
	case err != nil:
		return fail(err)
	}
	l.prev = prev
	if delta {
		if prev == nil || prev.Snapshot == nil {
			return fail(errors.New("delta without a snapshot: the table needs a full copy first"))
		}
		if !slices.Equal(prev.Schema, manifestSchema(t.Table)) {
			return fail(errors.New("the columns differ from the snapshot's: the table needs a full copy"))
		}
		if deletes {
			if prev.Keys == "" {
				return fail(errors.New("the snapshot has no key list for delete detection: the table needs a full copy"))
			}
			l.remain = &keySorter{dir: f.opts.TempDir}
		}
	}
	kind := "snapshot"
	if delta {
		kind = "delta"
	}
	if l.stamp, err = f.stamp(ctx, l.dir, kind, prev); err != nil {
		return fail(fmt.Errorf("pick a folder: %w", err))
	}
	l.folder = kind + "=" + l.stamp.Format(stampLayout)
	l.codecs = make([]*codec, len(t.Table.Columns))
	for i, c := range t.Table.Columns {
		l.codecs[i] = compileColumn(c)
	}
	if f.opts.Format == FormatParquet {
		l.schema = parquetSchema(t.Table, l.codecs, delta)
	}
	l.deleteRow = make([][]byte, len(t.Table.Columns)+1)
	return l, nil
}

func (l *load) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: load %s: %s", l.f.opts.Kind, l.target.Name, fmt.Sprintf(format, args...))
}

func (l *load) wrap(what string, err error) error {
	return fmt.Errorf("%s: load %s: %s: %w", l.f.opts.Kind, l.target.Name, what, err)
}

// openPart starts the next part object.
func (l *load) openPart() error {
	p := &part{path: fmt.Sprintf("%s/part-%05d%s", l.folder, len(l.parts), l.f.ext)}
	obj, err := l.f.store.Create(l.ctx, l.dir+p.path)
	if err != nil {
		return l.wrap("create part", err)
	}
	p.obj = obj
	p.out = &countingWriter{w: obj}
	switch l.f.opts.Format {
	case FormatParquet:
		p.enc = newParquetEncoder(p.out, l.schema, l.codecs, l.f.opts.Compression, l.m, &l.warnings)
	case FormatCSV, FormatJSONL:
		sink, err := newTextSink(p.out, l.f.opts.Compression)
		if err == nil && l.f.opts.Format == FormatCSV {
			p.enc, err = newCSVEncoder(sink, l.target.Table, l.codecs, l.delta, l.m)
		} else if err == nil {
			p.enc = newJSONLEncoder(sink, l.target.Table, l.codecs, l.m)
		}
		if err != nil {
			obj.Abort()
			return l.wrap("start part", err)
		}
	}
	l.part = p
	return nil
}

// closePart finishes and commits the open part.
func (l *load) closePart() error {
	p := l.part
	l.part = nil
	if err := p.enc.close(); err != nil {
		p.obj.Abort()
		return l.wrap("write part", err)
	}
	if err := p.obj.Commit(); err != nil {
		return l.wrap("commit part", err)
	}
	l.parts = append(l.parts, Part{Path: p.path, Rows: p.rows, Bytes: p.out.n})
	return nil
}

// write writes one row to the open part, starting one if needed and
// closing it when it reached PartSize.
func (l *load) write(values [][]byte, op string) error {
	if l.part == nil {
		if err := l.openPart(); err != nil {
			return err
		}
	}
	if err := l.part.enc.writeRow(values, op); err != nil {
		if errors.Is(err, errMalformed) {
			return l.wrap("encode row", err) // the error names the type, never the value
		}
		return l.wrap("write part", err)
	}
	l.part.rows++
	if l.part.enc.size() >= l.f.opts.PartSize {
		return l.closePart()
	}
	return nil
}

// WriteRow implements nopii.Load.
func (l *load) WriteRow(values [][]byte) error {
	if l.done {
		return l.errorf("load already finished")
	}
	if l.failed != nil {
		return l.failed
	}
	n := len(l.codecs)
	if len(values) != n+1 {
		return l.errorf("row has %d values, want %d columns and the key", len(values), n)
	}
	if values[n] == nil {
		return l.errorf("row without %s", nopii.SourcePrimaryKeyColumn)
	}
	op := ""
	if l.delta {
		op = OpUpsert
	}
	if err := l.write(values, op); err != nil {
		l.failed = err
		return err
	}
	if err := l.keys.add(values[n]); err != nil {
		l.failed = l.wrap("sort keys", err)
		return l.failed
	}
	l.rows++
	return nil
}

// Abort implements nopii.Load: the open part is abandoned and the parts
// already committed are deleted (no manifest names them).
func (l *load) Abort() {
	if l.done {
		return
	}
	l.done = true
	defer l.f.release(l.target.Name)
	l.keys.close()
	if l.remain != nil {
		l.remain.close()
	}
	if l.part != nil {
		l.part.obj.Abort()
		l.part = nil
	}
	if len(l.parts) == 0 {
		return
	}
	// The run's context may be what was cancelled; the cleanup still runs.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), time.Minute)
	defer cancel()
	keys := make([]string, len(l.parts))
	for i, p := range l.parts {
		keys[i] = l.dir + p.Path
	}
	if err := l.f.store.Delete(ctx, keys...); err != nil {
		l.f.log.Warn("could not delete the parts of an aborted load", logKeyTable, l.target.Name.String(), logKeyError, err.Error())
	}
	l.parts = nil
}

// finish ends the load after its manifest is written: what is left to do
// cannot undo the publication, so failures are logged, not returned.
func (l *load) finish(ctx context.Context, keysKey string, full bool) {
	l.done = true
	l.keys.close()
	if l.remain != nil {
		l.remain.close()
	}
	defer l.f.release(l.target.Name)
	log := l.f.log.With(logKeyTable, l.target.Name.String())
	if l.warnings > 0 {
		log.Warn("values the Parquet type cannot hold (NaN in a DECIMAL column, timestamps after 294247-01-10) were written as NULL", "values", l.warnings)
	}
	if err := l.f.dropKeys(ctx, l.target.Name, keysKey); err != nil {
		log.Warn("could not delete old key lists", logKeyError, err.Error())
	}
	if full {
		if err := l.f.prune(ctx, l.dir, l.folder); err != nil {
			log.Warn("could not prune old snapshots", logKeyError, err.Error())
		}
	}
}

// publish writes the manifest, then the state.
func (l *load) publish(ctx context.Context, m *Manifest) (published bool, err error) {
	m.UpdatedAt = l.f.now().UTC()
	if err := putJSON(ctx, l.f.store, l.dir+ManifestName, m); err != nil {
		return false, l.wrap("write manifest", err)
	}
	if err := l.f.saveState(ctx, l.target.Name, l.target.State); err != nil {
		return true, fmt.Errorf("%s: load %s: %w", l.f.opts.Kind, l.target.Name, err)
	}
	return true, nil
}

func (l *load) manifest() *Manifest {
	m := &Manifest{Version: ManifestVersion, Workflow: l.f.opts.Workflow, Target: l.target.Name.String(),
		Table: l.target.Table.Name.String(), Schema: manifestSchema(l.target.Table), PrimaryKey: l.target.Table.PrimaryKey,
		Format: l.f.opts.Format, Compression: l.f.opts.Compression}
	if l.target.State != nil {
		m.Input = l.target.State.Input
	}
	if m.PrimaryKey == nil {
		m.PrimaryKey = []string{}
	}
	return m
}

func (l *load) keysKey() string {
	return l.f.keysDir(l.target.Name) + l.stamp.Format(stampLayout) + ".keys.gz"
}

type fullLoad struct{ *load }

// Commit implements nopii.Load: the last part, the key list, the manifest
// naming the new snapshot (and no deltas), the state; then old snapshots
// beyond Retain are pruned.
func (l *fullLoad) Commit(ctx context.Context) error {
	if l.done {
		return l.errorf("load already finished")
	}
	if l.failed != nil {
		l.Abort()
		return l.failed
	}
	if l.part == nil && len(l.parts) == 0 {
		if err := l.openPart(); err != nil { // an empty table still has a part: its schema
			l.Abort()
			return err
		}
	}
	if l.part != nil {
		if err := l.closePart(); err != nil {
			l.Abort()
			return err
		}
	}
	keysKey := l.keysKey()
	kw, err := newKeysWriter(ctx, l.f.store, keysKey)
	if err != nil {
		l.Abort()
		return l.wrap("write key list", err)
	}
	if err := copyKeys(kw, l.keys.stream()); err != nil {
		kw.abort()
		l.Abort()
		return l.wrap("write key list", err)
	}
	if err := kw.commit(); err != nil {
		l.Abort()
		return l.wrap("write key list", err)
	}
	m := l.manifest()
	m.Snapshot = &Snapshot{Path: l.folder, Rows: l.rows, Parts: l.parts, WrittenAt: l.f.now().UTC()}
	m.Deltas = []Delta{}
	m.Keys = keysKey
	published, err := l.publish(ctx, m)
	if !published {
		l.f.store.Delete(context.WithoutCancel(ctx), keysKey)
		l.Abort()
		return err
	}
	l.finish(ctx, keysKey, true)
	return err
}

func copyKeys(w *keysWriter, s keyStream) error {
	for {
		k, err := s.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.write(k); err != nil {
			return err
		}
	}
}

type deltaLoad struct {
	*load
	// merge, when set, replaces mergeKeys (streamed changes).
	merge func(ctx context.Context, kw *keysWriter) error
}

// WriteKey implements nopii.DeltaLoad.
func (l *deltaLoad) WriteKey(key []byte) error {
	if l.done {
		return l.errorf("load already finished")
	}
	if l.remain == nil {
		return l.errorf("WriteKey on a delta load without deletes")
	}
	if key == nil {
		return l.errorf("NULL key")
	}
	if err := l.remain.add(key); err != nil {
		l.failed = l.wrap("sort keys", err)
		return l.failed
	}
	return nil
}

// Applied returns the rows upserted and deleted by Commit.
func (l *deltaLoad) Applied() (upserted, deleted int64) { return l.rows, l.deletes }

// Commit implements nopii.Load: the delete rows (keys the table held, or
// that this delta upserted, that were not streamed to WriteKey), the last
// part, the new key list, the manifest with the delta appended, the state.
// A delta that changed nothing writes no folder and keeps the manifest; it
// saves the state.
func (l *deltaLoad) Commit(ctx context.Context) error {
	if l.done {
		return l.errorf("load already finished")
	}
	if l.failed != nil {
		l.Abort()
		return l.failed
	}
	keysKey := l.keysKey()
	kw, err := newKeysWriter(ctx, l.f.store, keysKey)
	if err != nil {
		l.Abort()
		return l.wrap("write key list", err)
	}
	merge := l.mergeKeys
	if l.merge != nil {
		merge = l.merge
	}
	if err := merge(ctx, kw); err != nil {
		kw.abort()
		l.Abort()
		return err
	}
	if l.rows == 0 && l.deletes == 0 {
		kw.abort()
		err := l.f.saveState(ctx, l.target.Name, l.target.State)
		l.Abort() // nothing written: this just ends the load
		if err != nil {
			return fmt.Errorf("%s: load %s: %w", l.f.opts.Kind, l.target.Name, err)
		}
		return nil
	}
	if err := kw.commit(); err != nil {
		l.Abort()
		return l.wrap("write key list", err)
	}
	if l.part != nil {
		if err := l.closePart(); err != nil {
			l.f.store.Delete(context.WithoutCancel(ctx), keysKey)
			l.Abort()
			return err
		}
	}
	m := *l.prev
	m.Version, m.Input = ManifestVersion, l.manifest().Input
	m.Deltas = append(slices.Clip(m.Deltas), Delta{Path: l.folder, Rows: l.rows + l.deletes, Upserts: l.rows,
		Deletes: l.deletes, Parts: l.parts, WrittenAt: l.f.now().UTC()})
	m.Keys = keysKey
	published, err := l.publish(ctx, &m)
	if !published {
		l.f.store.Delete(context.WithoutCancel(ctx), keysKey)
		l.Abort()
		return err
	}
	l.finish(ctx, keysKey, false)
	return err
}

// mergeKeys writes the table's new key list and the delete rows. With
// deletes, the keys that remain are those streamed to WriteKey, and every
// key of the old list or of this delta's upserts that is not among them
// gets a delete row. Without, the new list is the old one plus the upserts.
func (l *deltaLoad) mergeKeys(ctx context.Context, kw *keysWriter) error {
	old, err := openKeys(ctx, l.f.store, l.prev.Keys)
	if err != nil {
		return l.wrap("read key list", err)
	}
	defer old.close()
	held := merge(old, l.keys.stream())
	if l.remain == nil {
		if err := copyKeys(kw, held); err != nil {
			return l.wrap("write key list", err)
		}
		return nil
	}
	remain := l.remain.stream()
	h, errH := held.next()
	r, errR := remain.next()
	n := len(l.codecs)
	for {
		if errH != nil && !errors.Is(errH, io.EOF) {
			return l.wrap("read key list", errH)
		}
		if errR != nil && !errors.Is(errR, io.EOF) {
			return l.wrap("sort keys", errR)
		}
		hOK, rOK := errH == nil, errR == nil
		if !hOK && !rOK {
			return nil
		}
		cmp := 0
		switch {
		case !rOK:
			cmp = -1
		case !hOK:
			cmp = 1
		default:
			cmp = bytes.Compare(h, r)
		}
		if cmp < 0 { // held, not remaining: deleted
			l.deleteRow[n] = h
			if err := l.write(l.deleteRow, OpDelete); err != nil {
				return err
			}
			l.deletes++
			h, errH = held.next()
			continue
		}
		if cmp == 0 {
			h, errH = held.next()
		}
		if err := kw.write(r); err != nil {
			return l.wrap("write key list", err)
		}
		r, errR = remain.next()
	}
}
