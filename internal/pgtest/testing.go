package pgtest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/fixture"
)

// startWait bounds how long the helpers wait for a cluster to come up; a
// healthy one takes about a second.
const startWait = 2 * time.Minute

var (
	kind = fixture.Kind{Pkg: "pgtest", Noun: "cluster", Wait: startWait}
	// shared is the package's cluster, started by the first MustCluster.
	shared = fixture.Shared[*Cluster]{Kind: kind,
		Start: func(ctx context.Context) (*Cluster, error) { return Start(ctx, Options{Logical: true}) },
		Stop:  (*Cluster).Stop}
	dbSeq atomic.Int64
)

// Main runs the tests and then stops the shared cluster, if any test
// started one. Use it as the whole of TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) { shared.Main(m) }

// MustCluster returns the package's shared cluster, starting it on first
// use. Tests must not restart or stop it; use MustNewCluster for that.
// Without pgtest.Main in TestMain, the cluster is cleaned up by its
// watchdog when the test binary exits.
func MustCluster(tb testing.TB) *Cluster {
	tb.Helper()
	return shared.Get(tb)
}

// MustDatabase creates a database with a fresh name on the shared cluster
// and returns its DSN. The database is dropped when the test ends, with its
// replication slots and despite open connections.
func MustDatabase(tb testing.TB) string {
	tb.Helper()
	c := MustCluster(tb)
	name := fixture.Name(tb.Name(), '_', dbSeq.Add(1))
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
	return fixture.Private(tb, kind, func(ctx context.Context) (*Cluster, error) { return Start(ctx, opts) }, (*Cluster).Stop)
}
