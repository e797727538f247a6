package agent

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

type discardLoad struct{ bytes int }

func (l *discardLoad) WriteRow(v [][]byte) error {
	for _, b := range v {
		l.bytes += len(b)
	}
	return nil
}
func (l *discardLoad) Commit(ctx context.Context) error { return nil }
func (l *discardLoad) Abort()                           {}

// BenchmarkRowPath is the per-row work of the benchmark table (bench/):
// 8 columns, 4 redacted (redact_email, fake full_name, mask, hash), the key
// passed through. It must not allocate.
func BenchmarkRowPath(b *testing.B) {
	typ := func(oid uint32, name string) *nopii.Type {
		return &nopii.Type{OID: oid, Schema: "pg_catalog", Name: name, SQL: name}
	}
	cols := []nopii.Column{
		{Name: "id", Type: typ(20, "int8"), Typmod: -1, TypeSQL: "bigint", NotNull: true},
		{Name: "email", Type: typ(25, "text"), Typmod: -1, TypeSQL: "text", NotNull: true},
		{Name: "full_name", Type: typ(25, "text"), Typmod: -1, TypeSQL: "text"},
		{Name: "phone", Type: typ(25, "text"), Typmod: -1, TypeSQL: "text"},
		{Name: "ssn", Type: typ(25, "text"), Typmod: -1, TypeSQL: "text"},
		{Name: "created_at", Type: typ(1184, "timestamptz"), Typmod: -1, TypeSQL: "timestamp with time zone", NotNull: true},
		{Name: "updated_at", Type: typ(1184, "timestamptz"), Typmod: -1, TypeSQL: "timestamp with time zone", NotNull: true},
		{Name: "payload", Type: typ(3802, "jsonb"), Typmod: -1, TypeSQL: "jsonb"},
	}
	tb := &nopii.Table{Name: nopii.TableName{Schema: "public", Name: "bench"}, PrimaryKey: []string{"id"}, Columns: cols}
	j := &job{table: tb, entry: &config.Table{Columns: []config.ColumnRule{
		{Column: "email", Rule: "redact_email"},
		{Column: "full_name", Rule: "fake", Params: map[string]any{"kind": "full_name"}},
		{Column: "phone", Rule: "mask", Params: map[string]any{"keep_last": 2}},
		{Column: "ssn", Rule: "hash"},
	}}}
	c, err := compile(j, testHMACKey)
	if err != nil {
		b.Fatal(err)
	}
	load := &discardLoad{}
	p := newRowPath(c, tb, nil, []nopii.Load{load})
	ts := binary.BigEndian.AppendUint64(nil, 789_000_000_000_000)
	row := [][]byte{binary.BigEndian.AppendUint64(nil, 123456), []byte("user123456@example.org"), []byte("First456 Last678"),
		[]byte("+1 555 0123456"), []byte("000123456"), ts, ts,
		[]byte("\x01{\"ref\": \"e10adc3949ba59abbe56e057f20f883e\", \"note\": \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\", \"plan\": \"pro\", \"seats\": 6, \"features\": [\"sso\", \"audit\", \"api\"]}"),
		[]byte("123456")}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.row(row); err != nil {
			b.Fatal(err)
		}
	}
}
