package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nopii/nopii"
)

// ManifestName is the object, in each table's folder, that says which
// snapshot and deltas make up the table. It is written last, so a reader
// that follows it never sees a part that is still being written.
const ManifestName = "_manifest.json"

// ManifestVersion is the version of the manifest format written.
const ManifestVersion = 1

// Manifest describes one table of a lake. Paths are relative to the
// table's folder (the one holding the manifest). To read the table, read
// the snapshot's parts, then apply each delta in order: an upsert row
// replaces the row with the same source_primary_key, a delete row removes
// it.
type Manifest struct {
	Version     int              `json:"version"`
	Workflow    string           `json:"workflow"`
	Input       string           `json:"input,omitempty"`
	Table       string           `json:"table"`  // in the source: schema.table
	Target      string           `json:"target"` // in the lake: schema.table, prefix applied
	Schema      []ManifestColumn `json:"schema"` // the columns of every part, in order
	PrimaryKey  []string         `json:"primary_key"`
	Format      string           `json:"format"`
	Compression string           `json:"compression"`
	Snapshot    *Snapshot        `json:"snapshot"`
	Deltas      []Delta          `json:"deltas"`
	// Keys names the object that lists the table's keys, for delete
	// detection; relative to the lake's root, and not for readers.
	Keys      string    `json:"keys,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ManifestColumn is one column of the parts. Delta parts add OpColumn
// after source_primary_key.
type ManifestColumn struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // the PostgreSQL type: numeric(12,2), text[], public.mood …
	Nullable bool   `json:"nullable"`
}

// Snapshot is a full copy of a table.
type Snapshot struct {
	Path      string    `json:"path"` // snapshot=20240102T030405Z
	Rows      int64     `json:"rows"`
	Parts     []Part    `json:"parts"`
	WrittenAt time.Time `json:"written_at"`
}

// Delta is the rows that changed since the snapshot or the delta before.
type Delta struct {
	Path      string    `json:"path"` // delta=20240102T030405Z
	Rows      int64     `json:"rows"`
	Upserts   int64     `json:"upserts"`
	Deletes   int64     `json:"deletes"`
	Parts     []Part    `json:"parts"`
	WrittenAt time.Time `json:"written_at"`
}

// Part is one object of a snapshot or delta.
type Part struct {
	Path  string `json:"path"` // snapshot=20240102T030405Z/part-00000.parquet
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// stampLayout names snapshot and delta folders: UTC, to the second.
const stampLayout = "20060102T150405Z"

// latest returns the newest stamp that the manifest names.
func (m *Manifest) latest() time.Time {
	var t time.Time
	consider := func(path string) {
		if _, stamp, ok := strings.Cut(path, "="); ok {
			if s, err := time.Parse(stampLayout, stamp); err == nil && s.After(t) {
				t = s
			}
		}
	}
	if m.Snapshot != nil {
		consider(m.Snapshot.Path)
	}
	for _, d := range m.Deltas {
		consider(d.Path)
	}
	return t
}

// manifestSchema lists a table's columns as the parts hold them.
func manifestSchema(t *nopii.Table) []ManifestColumn {
	out := make([]ManifestColumn, 0, len(t.Columns)+1)
	for _, c := range t.Columns {
		ty := c.TypeSQL
		if ty == "" && c.Type != nil {
			if ty = c.Type.SQL; ty == "" {
				ty = c.Type.Name
			}
		}
		out = append(out, ManifestColumn{Name: c.Name, Type: ty, Nullable: !c.NotNull})
	}
	return append(out, ManifestColumn{Name: nopii.SourcePrimaryKeyColumn, Type: "text", Nullable: false})
}

// ReadManifest reads the manifest in a table's folder (TableDir); it
// returns ErrNotExist when there is none.
func ReadManifest(ctx context.Context, st Store, dir string) (*Manifest, error) {
	rc, err := st.Get(ctx, dir+ManifestName)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir+ManifestName, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", dir+ManifestName, err)
	}
	if m.Version > ManifestVersion {
		return nil, fmt.Errorf("%s: manifest version %d is newer than this nopii reads (%d)", dir+ManifestName, m.Version, ManifestVersion)
	}
	return &m, nil
}

// putJSON writes v as one object, whole or not at all.
func putJSON(ctx context.Context, st Store, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	w, err := st.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// TableDir returns the folder of a table in a workflow's lake,
// <workflow>/<schema>.<table>/, with '/', '\', '%' and control characters
// of the names %-escaped so that each name stays one path segment.
func TableDir(workflow string, t nopii.TableName) string {
	return workflow + "/" + tableSegment(t) + "/"
}

func tableSegment(t nopii.TableName) string {
	return escapeSegment(t.Schema) + "." + escapeSegment(t.Name)
}

func escapeSegment(s string) string {
	unsafe := func(c byte) bool { return c == '/' || c == '%' || c == '\\' || c < 0x20 || c == 0x7f }
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x80 && unsafe(byte(r)) }) {
		return s
	}
	const upper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; unsafe(c) {
			b.WriteByte('%')
			b.WriteByte(upper[c>>4])
			b.WriteByte(upper[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isNotExist reports an absent object.
func isNotExist(err error) bool { return errors.Is(err, ErrNotExist) }
