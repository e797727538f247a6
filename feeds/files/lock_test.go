package files_test

import (
	"testing"

	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
)

// TestLease: the run lock in a directory.
func TestLease(t *testing.T) {
	laketest.RunLease(t, func(t *testing.T) lake.LockStore {
		st, err := files.NewStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
