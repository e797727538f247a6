package pgtest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSweepStale(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	old := time.Now().Add(-2 * staleAfter)
	mk := func(name, pid string, mtime time.Time) string {
		t.Helper()
		dir := filepath.Join(os.TempDir(), dirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(dir, "data", "postmaster.pid"), []byte(pid+"\n/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		dir  string
		gone bool
	}{
		{mk("old-no-server", "", old), true},
		{mk("old-dead-server", "999999999", old), true},
		{mk("old-live-server", strconv.Itoa(os.Getpid()), old), false},
		{mk("fresh-no-server", "", time.Now()), false},
	} {
		sweepStale(time.Now().Add(-staleAfter))
		_, err := os.Stat(tc.dir)
		if gone := errors.Is(err, os.ErrNotExist); gone != tc.gone {
			t.Errorf("%s: removed = %v, want %v (stat: %v)", filepath.Base(tc.dir), gone, tc.gone, err)
		}
	}
}
