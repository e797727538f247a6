package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startWait bounds how long the helpers wait for a cluster to come up; a
// healthy one takes about a second.
const startWait = 2 * time.Minute

// shared is the package's cluster, started by the first MustCluster. Its
// error is kept, so that every later caller fails with the same message
// instead of retrying a broken setup once per test.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

var dbSeq atomic.Int64

// Main runs the tests and then stops the shared cluster, if any test
// started one. Use it as the whole of TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	// Taking the Once both waits for a start in progress and makes later
	// callers fail instead of starting a cluster nobody would stop.
	shared.once.Do(func() { shared.err = errors.New("pgtest: shared cluster requested after pgtest.Main finished") })
	if c := shared.cluster; c != nil {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// MustCluster returns the package's shared cluster, starting it on first
// use. Tests must not restart or stop it; use MustNewCluster for that.
// Without pgtest.Main in TestMain, the cluster is cleaned up by its
// watchdog when the test binary exits.
func MustCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startWait)
		defer cancel()
		shared.cluster, shared.err = Start(ctx, Options{Logical: true})
	})
	if shared.err != nil {
		tb.Fatalf("pgtest: start shared cluster: %v", shared.err)
	}
	return shared.cluster
}

// MustDatabase creates a database with a fresh name on the shared cluster
// and returns its DSN. The database is dropped when the test ends, with its
// replication slots and despite open connections.
func MustDatabase(tb testing.TB) string {
	tb.Helper()
	c := MustCluster(tb)
	name := databaseName(tb.Name(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	dsn, err := c.CreateDatabase(ctx, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// databaseName derives a readable, unique database name from a test name:
// lower case letters, digits and underscores, within PostgreSQL's 63 bytes.
func databaseName(testName string, seq int64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	prefix := b.String()
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return fmt.Sprintf("t_%s_%d", prefix, seq)
}

// MustNewCluster starts a private cluster, for tests that restart, stop or
// otherwise abuse the server, and stops it when the test ends.
func MustNewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	return MustNewClusterOptions(tb, Options{Logical: true})
}

// MustNewClusterOptions is MustNewCluster with options, such as extra
// server settings.
func MustNewClusterOptions(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), startWait)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("pgtest: start cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c
}
