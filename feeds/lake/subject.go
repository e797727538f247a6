package lake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"

	"github.com/nopii/nopii"
)

// Data-subject requests (SPEC §7) in a lake:
//
//	<workflow>/_nopii/forgotten.json                     the suppression list: keyed hashes of forgotten keys, per input and table
//	<workflow>/_nopii/subject_requests/<request id>.json the audit records of one request
//
// Forget rewrites every object of the current snapshot and deltas that
// holds a forgotten key: the new object (the same rows but those, the same
// format and compression) is written completely, then the manifest naming
// the new objects, then the old objects are deleted, along with older
// snapshots kept for readers (they hold the rows too).

// ForgottenName is the suppression list of a workflow's lake.
func ForgottenName(workflow string) string { return workflow + "/_nopii/forgotten.json" }

// SubjectRequestName is the audit object of one request.
func SubjectRequestName(workflow, requestID string) string {
	return workflow + "/_nopii/subject_requests/" + requestID + ".json"
}

type forgottenFile struct {
	Version int              `json:"version"`
	Tables  []forgottenEntry `json:"tables"`
	// Identifiers are the keyed hashes of forgotten identifiers (column
	// and value), for tables copied after their requests.
	Identifiers []string `json:"identifier_hmacs,omitempty"`
}

type forgottenEntry struct {
	Input string   `json:"input"`
	Table string   `json:"table"` // in the source
	Keys  []string `json:"key_hmacs"`
}

func (f *Feed) readForgotten(ctx context.Context) (*forgottenFile, error) {
	var ff forgottenFile
	if err := getJSON(ctx, f.store, ForgottenName(f.opts.Workflow), &ff); err != nil && !isNotExist(err) {
		return nil, err
	}
	return &ff, nil
}

func getJSON(ctx context.Context, st Store, key string, v any) error {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// ForgottenKeys returns the keyed hashes of a table's forgotten keys.
func (f *Feed) ForgottenKeys(ctx context.Context, k nopii.StateKey) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	ff, err := f.readForgotten(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.opts.Kind, err)
	}
	for _, e := range ff.Tables {
		if e.Input == k.Input && e.Table == k.Table.String() {
			return e.Keys, nil
		}
	}
	return nil, nil
}

// ForgottenIdentifiers returns the keyed hashes of the identifiers
// forgotten in the lake's workflow.
func (f *Feed) ForgottenIdentifiers(ctx context.Context, workflow string) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	if workflow != f.opts.Workflow {
		return nil, nil
	}
	ff, err := f.readForgotten(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.opts.Kind, err)
	}
	return ff.Identifiers, nil
}

// addForgotten adds hashes to the suppression list (a read-modify-write
// under the state mutex).
func (f *Feed) addForgotten(ctx context.Context, wf string, req nopii.Forget) error {
	tables := req.Tables
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	ff, err := f.readForgotten(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.Key.Workflow != wf {
			continue
		}
		i := slices.IndexFunc(ff.Tables, func(e forgottenEntry) bool { return e.Input == t.Key.Input && e.Table == t.Key.Table.String() })
		if i < 0 {
			ff.Tables = append(ff.Tables, forgottenEntry{Input: t.Key.Input, Table: t.Key.Table.String()})
			i = len(ff.Tables) - 1
		}
		keys := append(ff.Tables[i].Keys, t.Forgotten...)
		slices.Sort(keys)
		ff.Tables[i].Keys = slices.Compact(keys)
	}
	if req.Workflow == wf || req.Workflow == "" {
		ids := append(ff.Identifiers, req.Identifiers...)
		slices.Sort(ids)
		ff.Identifiers = slices.Compact(ids)
	}
	ff.Version = 1
	return putJSON(ctx, f.store, ForgottenName(f.opts.Workflow), ff)
}

// RecordSubjectRequests writes a request's audit records, merged with
// those already written for it.
func (f *Feed) RecordSubjectRequests(ctx context.Context, recs []nopii.SubjectAudit) error {
	if f.err != nil {
		return f.err
	}
	byRequest := map[string][]nopii.SubjectAudit{}
	for _, r := range recs {
		byRequest[r.RequestID] = append(byRequest[r.RequestID], r)
	}
	for id, rs := range byRequest {
		key := SubjectRequestName(f.opts.Workflow, id)
		var doc struct {
			Records []nopii.SubjectAudit `json:"records"`
		}
		if err := getJSON(ctx, f.store, key, &doc); err != nil && !isNotExist(err) {
			return fmt.Errorf("%s: %w", f.opts.Kind, err)
		}
		for _, r := range rs {
			i := slices.IndexFunc(doc.Records, func(x nopii.SubjectAudit) bool { return x.Subject == r.Subject && x.Target == r.Target })
			if i >= 0 {
				doc.Records[i] = r
			} else {
				doc.Records = append(doc.Records, r)
			}
		}
		if err := putJSON(ctx, f.store, key, doc); err != nil {
			return fmt.Errorf("%s: write %s: %w", f.opts.Kind, key, err)
		}
	}
	return nil
}

// CountKeys returns how many rows of the table's current version (the
// snapshot with its deltas applied) have one of keys.
func (f *Feed) CountKeys(ctx context.Context, target nopii.TableName, keys []string) (int64, error) {
	if f.err != nil {
		return 0, f.err
	}
	dir := TableDir(f.opts.Workflow, target)
	m, err := ReadManifest(ctx, f.store, dir)
	if isNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.opts.Kind, err)
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	present := map[string]bool{}
	visit := func(k []byte, op string) bool {
		if want[string(k)] {
			present[string(k)] = op != OpDelete
		}
		return true
	}
	err = m.eachPart(func(p *Part, delta bool) error {
		_, _, err := f.filterPart(ctx, m, dir+p.Path, visit, nil)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%s: read %s: %w", f.opts.Kind, target, err)
	}
	var n int64
	for _, ok := range present {
		if ok {
			n++
		}
	}
	return n, nil
}

// eachPart calls fn for the snapshot's parts, then each delta's, in order.
func (m *Manifest) eachPart(fn func(p *Part, delta bool) error) error {
	if m.Snapshot != nil {
		for i := range m.Snapshot.Parts {
			if err := fn(&m.Snapshot.Parts[i], false); err != nil {
				return err
			}
		}
	}
	for d := range m.Deltas {
		for i := range m.Deltas[d].Parts {
			if err := fn(&m.Deltas[d].Parts[i], true); err != nil {
				return err
			}
		}
	}
	return nil
}

// Forget implements the lake's side of a forget request: first the keys
// go on the suppression list (so that no later run brings the rows back,
// whatever happens next), then each table's objects are rewritten without
// them. It returns the keys removed per table.
func (f *Feed) Forget(ctx context.Context, req nopii.Forget) ([][]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	if err := f.addForgotten(ctx, f.opts.Workflow, req); err != nil {
		return nil, fmt.Errorf("%s: record forgotten keys: %w", f.opts.Kind, err)
	}
	out := make([][]string, len(req.Tables))
	for i, t := range req.Tables {
		if t.Key.Workflow != f.opts.Workflow {
			continue
		}
		deleted, err := f.forgetTable(ctx, t, req.At)
		out[i] = deleted // rows already gone when only the cleanup failed
		if err != nil {
			return out, fmt.Errorf("%s: forget rows of %s: %w", f.opts.Kind, t.Target, err)
		}
	}
	return out, nil
}

func (f *Feed) forgetTable(ctx context.Context, t nopii.ForgetTable, at time.Time) ([]string, error) {
	if !f.claim(t.Target) {
		return nil, errors.New("a load of the table is in progress: try again when it is done")
	}
	defer f.release(t.Target)
	dir := TableDir(f.opts.Workflow, t.Target)
	m, err := ReadManifest(ctx, f.store, dir)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	forget := map[string]bool{}
	for _, k := range t.Keys {
		forget[k] = true
	}
	removed := map[string]bool{}
	var dropped, upserts, deletes int64
	keep := func(k []byte, op string) bool {
		if !forget[string(k)] {
			return true
		}
		removed[string(k)] = true
		dropped++
		if op == OpDelete {
			deletes++
		} else if op != "" {
			upserts++
		}
		return false
	}
	stamp := at.UTC().Format(stampLayout)
	ext := Extension(m.Format, m.Compression)
	var created, replaced []string
	fail := func(err error) ([]string, error) {
		if len(created) > 0 {
			f.store.Delete(context.WithoutCancel(ctx), created...)
		}
		return nil, err
	}
	rewrite := func(p *Part) (int64, error) {
		newPath := strings.TrimSuffix(p.Path, ext) + "-forget" + stamp + ext
		obj, err := f.store.Create(ctx, dir+newPath)
		if err != nil {
			return 0, err
		}
		cw := &countingWriter{w: obj}
		before := dropped
		kept, _, err := f.filterPart(ctx, m, dir+p.Path, keep, cw)
		if err != nil {
			obj.Abort()
			return 0, err
		}
		if dropped == before { // nothing of the subject here: keep the object
			obj.Abort()
			return 0, nil
		}
		if err := obj.Commit(); err != nil {
			return 0, err
		}
		created = append(created, dir+newPath)
		replaced = append(replaced, dir+p.Path)
		*p = Part{Path: newPath, Rows: kept, Bytes: cw.n}
		return dropped - before, nil
	}
	if m.Snapshot != nil {
		for i := range m.Snapshot.Parts {
			n, err := rewrite(&m.Snapshot.Parts[i])
			if err != nil {
				return fail(err)
			}
			m.Snapshot.Rows -= n
		}
	}
	for d := range m.Deltas {
		u0, d0 := upserts, deletes
		for i := range m.Deltas[d].Parts {
			if _, err := rewrite(&m.Deltas[d].Parts[i]); err != nil {
				return fail(err)
			}
		}
		du, dd := upserts-u0, deletes-d0
		m.Deltas[d].Upserts -= du
		m.Deltas[d].Deletes -= dd
		m.Deltas[d].Rows -= du + dd
	}
	// The key list for delete detection lists the subject's keys too.
	oldKeys := m.Keys
	if m.Keys != "" {
		newKeys := f.keysDir(t.Target) + stamp + "-forget.keys.gz"
		if err := rewriteKeys(ctx, f.store, m.Keys, newKeys, forget); err != nil {
			return fail(fmt.Errorf("rewrite key list: %w", err))
		}
		created = append(created, newKeys)
		m.Keys = newKeys
	}
	m.UpdatedAt = f.now().UTC()
	if err := putJSON(ctx, f.store, dir+ManifestName, m); err != nil {
		return fail(fmt.Errorf("write manifest: %w", err))
	}
	// Published. What follows cannot undo it; failures are returned so that
	// the request is reported failed and can be run again.
	var errs []error
	if oldKeys != "" {
		if err := f.dropKeys(ctx, t.Target, m.Keys); err != nil {
			errs = append(errs, fmt.Errorf("delete old key lists: %w", err))
		}
	}
	if err := f.store.Delete(ctx, replaced...); err != nil {
		errs = append(errs, fmt.Errorf("delete the rewritten objects: %w", err))
	}
	if err := f.dropOlder(ctx, dir, m); err != nil {
		errs = append(errs, fmt.Errorf("delete older snapshots: %w", err))
	}
	out := make([]string, 0, len(removed))
	for k := range removed {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, errors.Join(errs...)
}

// dropOlder deletes the snapshot and delta folders older than the
// manifest's snapshot (kept for readers of older manifests, and holding
// the forgotten rows).
func (f *Feed) dropOlder(ctx context.Context, dir string, m *Manifest) error {
	if m.Snapshot == nil {
		return nil
	}
	_, current, _ := strings.Cut(m.Snapshot.Path, "=")
	keys, err := f.store.List(ctx, dir)
	if err != nil {
		return err
	}
	return f.deleteBefore(ctx, dir, keys, current)
}

func rewriteKeys(ctx context.Context, st Store, from, to string, forget map[string]bool) error {
	r, err := openKeys(ctx, st, from)
	if err != nil {
		return err
	}
	defer r.close()
	w, err := newKeysWriter(ctx, st, to)
	if err != nil {
		return err
	}
	for {
		k, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.abort()
			return err
		}
		if forget[string(k)] {
			continue
		}
		if err := w.write(k); err != nil {
			w.abort()
			return err
		}
	}
	return w.commit()
}

// filterPart reads a part and calls keep for every row with its key and
// _nopii_op ("" in a snapshot). With out, the part is written again to out
// with the rows keep accepted: the same format and compression, and for
// CSV and JSONL each kept row's bytes as they were. It returns the rows
// kept and dropped.
func (f *Feed) filterPart(ctx context.Context, m *Manifest, key string, keep func(k []byte, op string) bool, out io.Writer) (kept, dropped int64, err error) {
	rc, err := f.store.Get(ctx, key)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	count := func(ok bool) bool {
		if ok {
			kept++
		} else {
			dropped++
		}
		return ok
	}
	keyCol := len(m.Schema) - 1 // source_primary_key is the schema's last column; _nopii_op follows in deltas
	switch m.Format {
	case FormatParquet:
		err = f.filterParquet(rc, m, keyCol, func(k []byte, op string) bool { return count(keep(k, op)) }, out)
	case FormatCSV, FormatJSONL:
		err = filterText(rc, m, keyCol, func(k []byte, op string) bool { return count(keep(k, op)) }, out)
	default:
		err = fmt.Errorf("unknown format %q", m.Format)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", key, err)
	}
	return kept, dropped, nil
}

func (f *Feed) filterParquet(rc io.Reader, m *Manifest, keyCol int, keep func(k []byte, op string) bool, out io.Writer) error {
	// Parquet is read from its footer: spool the object to a file.
	tmp, err := os.CreateTemp(f.opts.TempDir, "nopii-part-*.parquet")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, rc)
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(tmp, size)
	if err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	schema := pf.Schema()
	kc, ok := schema.Lookup(nopii.SourcePrimaryKeyColumn)
	if !ok {
		return fmt.Errorf("no %s column", nopii.SourcePrimaryKeyColumn)
	}
	opIndex := -1
	if oc, ok := schema.Lookup(OpColumn); ok {
		opIndex = oc.ColumnIndex
	}
	var w *parquet.GenericWriter[any]
	if out != nil {
		w = parquet.NewGenericWriter[any](out, schema, parquet.Compression(parquetCodec(m.Compression)),
			parquet.MaxRowsPerRowGroup(rowGroupRows), parquet.CreatedBy("nopii", "", ""))
	}
	rd := parquet.NewReader(pf)
	defer rd.Close()
	buf := make([]parquet.Row, 256)
	for {
		n, err := rd.ReadRows(buf)
		var keepRows []parquet.Row
		for _, row := range buf[:n] {
			var k []byte
			op := ""
			for _, v := range row {
				switch v.Column() {
				case kc.ColumnIndex:
					k = v.ByteArray()
				case opIndex:
					op = string(v.ByteArray())
				}
			}
			if keep(k, op) && w != nil {
				keepRows = append(keepRows, row)
			}
		}
		if len(keepRows) > 0 {
			if _, err := w.WriteRows(keepRows); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read rows: %w", err)
		}
	}
	if w != nil {
		return w.Close()
	}
	return nil
}

func filterText(rc io.Reader, m *Manifest, keyCol int, keep func(k []byte, op string) bool, out io.Writer) error {
	var in io.Reader = bufio.NewReaderSize(rc, 64<<10)
	switch m.Compression {
	case CompressionGzip:
		gz, err := gzip.NewReader(in)
		if err != nil {
			return err
		}
		defer gz.Close()
		in = gz
	case CompressionZstd:
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return err
		}
		defer zr.Close()
		in = zr
	}
	br := bufio.NewReaderSize(in, 64<<10)
	var sink *textSink
	if out != nil {
		var err error
		if sink, err = newTextSink(out, m.Compression); err != nil {
			return err
		}
	}
	csvFormat := m.Format == FormatCSV
	header := csvFormat
	var rec []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			rec = append(rec, line...)
			// A CSV record ends at a line break outside quotes: an even
			// number of quotes so far (an escaped "" counts two).
			if csvFormat && bytes.Count(rec, []byte{'"'})%2 == 1 && err == nil {
				continue
			}
			ok := true
			if header {
				header = false
			} else {
				k, op, perr := textKey(rec, csvFormat, keyCol)
				if perr != nil {
					return perr
				}
				ok = keep(k, op)
			}
			if ok && sink != nil {
				if _, werr := sink.Write(rec); werr != nil {
					return werr
				}
			}
			rec = rec[:0]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if sink != nil {
		return sink.close()
	}
	return nil
}

// textKey finds a CSV or JSONL row's key and op. Errors never show the row.
func textKey(rec []byte, csvFormat bool, keyCol int) ([]byte, string, error) {
	if csvFormat {
		r := csv.NewReader(bytes.NewReader(rec))
		r.FieldsPerRecord = -1
		fields, err := r.Read()
		if err != nil || len(fields) <= keyCol {
			return nil, "", errors.New("a CSV row without its key column")
		}
		op := ""
		if len(fields) > keyCol+1 {
			op = fields[keyCol+1]
		}
		return []byte(fields[keyCol]), op, nil
	}
	var row struct {
		Key *string `json:"source_primary_key"`
		Op  string  `json:"_nopii_op"`
	}
	if err := json.Unmarshal(rec, &row); err != nil || row.Key == nil {
		return nil, "", errors.New("a JSONL row without its key")
	}
	return []byte(*row.Key), row.Op, nil
}
