package s3_test

import (
	"log/slog"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
	"github.com/nopii/nopii/feeds/s3"
	"github.com/nopii/nopii/internal/s3test"
)

// TestConformance runs the suite every feed passes: the lake over a real
// S3 server, in Parquet and in compressed CSV.
func TestConformance(t *testing.T) {
	for _, fc := range []struct{ format, compression string }{
		{lake.FormatParquet, lake.CompressionZstd},
		{lake.FormatCSV, lake.CompressionGzip},
	} {
		t.Run(fc.format+"-"+fc.compression, func(t *testing.T) {
			feedtest.Run(t, func(t *testing.T) (nopii.Feed, feedtest.Reader) {
				srv := s3test.MustServer(t)
				bucket := s3test.MustBucket(t)
				store, err := s3.NewStore(t.Context(), s3.Options{Bucket: bucket, Prefix: "lake/", Region: srv.Region,
					Endpoint: srv.Endpoint(), AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				o := lake.Options{Workflow: feedtest.Workflow, Format: fc.format, Compression: fc.compression,
					PartSize: 16 << 10, Logger: slog.New(slog.DiscardHandler), Kind: "s3"}
				return lake.New(store, o), laketest.NewReader(store, o)
			})
		})
	}
}
