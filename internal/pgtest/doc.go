// Package pgtest starts private, throwaway PostgreSQL clusters for tests and
// demos, so that `go test ./...` needs nothing but the PostgreSQL server
// binaries on the machine: no Docker, no shared server, no setup.
//
// A cluster is an initdb'd data directory under os.TempDir()/nopii-pgtest-*,
// a postmaster listening on 127.0.0.1 at a free port with trust
// authentication for the user postgres, and a server log next to the data.
// Every cluster runs with wal_level=logical, because the code under test
// reads logical replication streams, and with durability switched off
// (fsync, synchronous_commit, full_page_writes), because nothing here must
// survive a power cut.
//
// Tests usually share one cluster per package and take a fresh database per
// test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestCopy(t *testing.T) {
//		dsn := pgtest.MustDatabase(t) // dropped when the test ends
//		…
//	}
//
// Tests that restart or kill the server take a cluster of their own with
// MustNewCluster. Programs such as `make demo` call Start and Stop.
//
// The binaries are found through $NOPII_PG_BIN, then PATH, then the Debian
// layout /usr/lib/postgresql/<version>/bin. initdb refuses to run as root,
// so when the process is root the server runs as the user nobody (through
// runuser) in a directory that nobody owns.
//
// A cluster must not outlive its process. Each one has a watchdog, a tiny
// shell in its own process group blocked reading a pipe that only the
// owning process holds; when that process exits for any reason, including
// a test timeout or SIGKILL, the pipe closes and the watchdog stops the
// server and removes the directory. Start also removes directories that
// are hours old and whose server is gone, for the cases the watchdog
// cannot cover (a reboot, a killed process group).
//
// The package is for Unix systems.
package pgtest
