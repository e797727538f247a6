package lake

import (
	"context"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nopii/nopii"
)

// discardStore takes objects and forgets them: the benchmark measures
// encoding, not storage.
type discardStore struct{ memStore }

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Commit() error               { return nil }
func (discardWriter) Abort() error                { return nil }

func (s *discardStore) Create(ctx context.Context, key string) (ObjectWriter, error) {
	if len(key) > 15 && key[len(key)-15:] == "_manifest.json" || len(key) > 10 && key[len(key)-10:] == "state.json" {
		return s.memStore.Create(ctx, key)
	}
	return discardWriter{}, nil
}

// BenchmarkWriteRow writes rows of a typical table (bigint key, text,
// numeric(12,2), timestamptz, boolean, integer[]) in each format: the
// per-row cost of a full copy, keys sorted included.
func BenchmarkWriteRow(b *testing.B) {
	numeric := &nopii.Type{OID: pgtype.NumericOID, Schema: "pg_catalog", Name: "numeric"}
	tstz := &nopii.Type{OID: pgtype.TimestamptzOID, Schema: "pg_catalog", Name: "timestamptz"}
	boolT := &nopii.Type{OID: pgtype.BoolOID, Schema: "pg_catalog", Name: "bool"}
	arr := &nopii.Type{OID: pgtype.Int4ArrayOID, Schema: "pg_catalog", Name: "_int4", Kind: nopii.TypeArray, Elem: int4T}
	tb := smallTable("bench")
	tb.Columns = append(tb.Columns,
		nopii.Column{Name: "amount", Type: numeric, Typmod: 12<<16 | 2 + 4, TypeSQL: "numeric(12,2)"},
		nopii.Column{Name: "at", Type: tstz, Typmod: -1, TypeSQL: "timestamp with time zone"},
		nopii.Column{Name: "ok", Type: boolT, Typmod: -1, TypeSQL: "boolean"},
		nopii.Column{Name: "tags", Type: arr, Typmod: -1, TypeSQL: "integer[]"},
	)
	m := pgtype.NewMap()
	enc := func(oid uint32, v any) []byte {
		out, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	var amount pgtype.Numeric
	amount.Scan("1234.56")
	values := [][]byte{nil, []byte("customer@example.com some text"), enc(pgtype.NumericOID, amount),
		binary.BigEndian.AppendUint64(nil, 760000000000000), {1}, enc(pgtype.Int4ArrayOID, []int32{1, 2, 3}), nil}
	for _, format := range []string{FormatParquet, FormatCSV, FormatJSONL} {
		b.Run(format, func(b *testing.B) {
			f := newTestFeed(&discardStore{*newMemStore()}, Options{Format: format, Compression: CompressionNone})
			l, err := f.FullCopy(context.Background(), target(tb))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Abort()
			id := make([]byte, 8)
			key := make([]byte, 0, 20)
			values[0] = id
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint64(id, uint64(i))
				key = strconv.AppendInt(key[:0], int64(i), 10)
				values[len(values)-1] = key
				if err := l.WriteRow(values); err != nil {
					b.Fatal(err)
				}
			}
			if err := l.Commit(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
