package lake_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
)

// TestColumnText: what verify reads back from each format is, value for
// value and key for key, what laketest's independent reader sees.
func TestColumnText(t *testing.T) {
	for _, fc := range [][2]string{{"parquet", "snappy"}, {"csv", "gzip"}, {"jsonl", "zstd"}, {"csv", "none"}} {
		t.Run(fc[0]+"-"+fc[1], func(t *testing.T) {
			st, m, _ := writeKitchen(t, fc[0], fc[1])
			o := lake.Options{Workflow: feedtest.Workflow, Format: fc[0], Compression: fc[1], Logger: quiet}
			want := laketest.NewReader(st, o).Rows(t, feedtest.KitchenSink(t).Name)
			f := lake.New(st, o)
			for i, c := range m.Schema {
				if strings.HasSuffix(c.Type, "[]") || i >= len(feedtest.KitchenSink(t).Columns) {
					continue // arrays; the key
				}
				n := 0
				err := f.ColumnText(context.Background(), feedtest.KitchenSink(t).Name, c.Name, func(k, v []byte) error {
					n++
					w := want[string(k)][i]
					if got := string(v); v == nil && w != feedtest.Null || v != nil && got != w {
						t.Errorf("%s key %s: got %q (nil %t), want %q", c.Name, k, got, v == nil, w)
					}
					return nil
				})
				if err != nil || n != len(want) {
					t.Fatalf("%s: %d rows of %d, %v", c.Name, n, len(want), err)
				}
			}
		})
	}
}
