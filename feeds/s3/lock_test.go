package s3_test

import (
	"log/slog"
	"testing"

	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
	"github.com/nopii/nopii/feeds/s3"
	"github.com/nopii/nopii/internal/s3test"
)

// TestLease: the run lock on a real S3 server, with conditional writes.
func TestLease(t *testing.T) {
	laketest.RunLease(t, func(t *testing.T) lake.LockStore {
		srv := s3test.MustServer(t)
		store, err := s3.NewStore(t.Context(), s3.Options{Bucket: s3test.MustBucket(t), Prefix: "lake/", Region: srv.Region,
			Endpoint: srv.Endpoint(), AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return store
	})
}
