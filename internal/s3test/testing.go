package s3test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/fixture"
)

// startWait bounds how long MustServer waits for the shared server. A
// healthy one starts in well under a second, but the first start on a
// machine may have to build versitygw.
const startWait = buildTimeout + time.Minute

var (
	kind = fixture.Kind{Pkg: "s3test", Noun: "server", Wait: startWait}
	// shared is the package's server, started by the first MustServer.
	shared    = fixture.Shared[*Server]{Kind: kind, Start: Start, Stop: (*Server).Stop}
	bucketSeq atomic.Int64
)

// Main runs the tests and then stops the shared server, if any test started
// one. Use it as the whole of TestMain:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
func Main(m *testing.M) { shared.Main(m) }

// MustServer returns the package's shared server, starting it on first use.
// Tests must not stop it; use MustNewServer for a server of their own.
// Without s3test.Main in TestMain, the server is cleaned up by its watchdog
// when the test binary exits.
func MustServer(tb testing.TB) *Server {
	tb.Helper()
	return shared.Get(tb)
}

// MustNewServer starts a private server, for tests that stop or otherwise
// abuse it, and stops it when the test ends.
func MustNewServer(tb testing.TB) *Server {
	tb.Helper()
	return fixture.Private(tb, kind, Start, (*Server).Stop)
}

// MustBucket creates a bucket with a fresh name on the shared server and
// returns the name. Buckets are not removed one by one; they go with the
// server's directory when it stops.
func MustBucket(tb testing.TB) string {
	tb.Helper()
	s := MustServer(tb)
	name := fixture.Name(tb.Name(), '-', bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	if err := s.CreateBucket(ctx, name); err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	return name
}
