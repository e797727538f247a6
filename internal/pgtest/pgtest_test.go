package pgtest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/nopii/nopii/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestMustDatabase(t *testing.T) {
	dsnA, dsnB := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	if dsnA == dsnB {
		t.Fatalf("MustDatabase returned %s twice", dsnA)
	}
	a, b := connect(t, dsnA), connect(t, dsnB)
	if nameA, nameB := queryString(t, a, "SELECT current_database()"), queryString(t, b, "SELECT current_database()"); nameA == nameB {
		t.Fatalf("both DSNs reach database %s", nameA)
	}

	for i, conn := range []*pgx.Conn{a, b} {
		if _, err := conn.Exec(t.Context(), "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
			t.Fatalf("create table in database %d: %v", i, err)
		}
		if _, err := conn.Exec(t.Context(), "INSERT INTO people VALUES ($1, $2)", i, fmt.Sprint("person ", i)); err != nil {
			t.Fatalf("insert into database %d: %v", i, err)
		}
	}
	for i, conn := range []*pgx.Conn{a, b} {
		rows, err := conn.Query(t.Context(), "SELECT id, name FROM people ORDER BY id")
		if err != nil {
			t.Fatalf("select from database %d: %v", i, err)
		}
		type person struct {
			ID   int
			Name string
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[person])
		if err != nil {
			t.Fatalf("select from database %d: %v", i, err)
		}
		if want := []person{{i, fmt.Sprint("person ", i)}}; len(got) != 1 || got[0] != want[0] {
			t.Errorf("database %d holds %v, want %v", i, got, want)
		}
	}
}

func TestLogical(t *testing.T) {
	conn := connect(t, pgtest.MustCluster(t).DSN("postgres"))
	for setting, want := range map[string]string{
		"wal_level":             "logical",
		"max_replication_slots": "10",
		"max_wal_senders":       "10",
		"fsync":                 "off",
		"listen_addresses":      "127.0.0.1",
		"server_encoding":       "UTF8",
		"lc_collate":            "C",
	} {
		if got := queryString(t, conn, "SELECT current_setting($1)", setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if v := queryString(t, conn, "SHOW server_version_num"); !strings.HasPrefix(v, "15") {
		t.Logf("server version %s, not 15", v)
	}
}

// A database with a logical slot and a walsender attached cannot be
// dropped plainly; MustDatabase's cleanup must cope.
func TestMustDatabaseDropsSlots(t *testing.T) {
	var name string
	var repl *pgconn.PgConn // closed only after the cleanup, which must end it
	t.Run("slot", func(t *testing.T) {
		dsn := pgtest.MustDatabase(t)
		conn := connect(t, dsn)
		name = queryString(t, conn, "SELECT current_database()")
		if _, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name+"_slot"); err != nil {
			t.Fatalf("create slot: %v", err)
		}
		if _, err := conn.Exec(t.Context(), "CREATE PUBLICATION pub FOR ALL TABLES"); err != nil {
			t.Fatalf("create publication: %v", err)
		}
		// A WAL sender streaming from the slot, as the agent's would be.
		var err error
		repl, err = pgconn.Connect(context.Background(), dsn+"&replication=database")
		if err != nil {
			t.Fatalf("connect for replication: %v", err)
		}
		repl.Frontend().Send(&pgproto3.Query{String: fmt.Sprintf(
			"START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names 'pub')", name+"_slot")})
		if err := repl.Frontend().Flush(); err != nil {
			t.Fatalf("START_REPLICATION: %v", err)
		}
		for {
			msg, err := repl.Frontend().Receive()
			if err != nil {
				t.Fatalf("START_REPLICATION: %v", err)
			}
			if _, ok := msg.(*pgproto3.CopyBothResponse); ok {
				break
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); ok {
				t.Fatalf("START_REPLICATION: %s", e.Message)
			}
		}
		if active := queryString(t, conn, "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", name+"_slot"); active != "true" {
			t.Fatalf("slot active = %s, want true", active)
		}
	})

	if repl == nil {
		return // the subtest failed
	}
	// The cleanup must have ended the WAL sender: the stream ends in an
	// error instead of carrying on with keepalives.
	_ = repl.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		msg, err := repl.Frontend().Receive()
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the WAL sender survived the cleanup")
			break
		}
		if _, ok := msg.(*pgproto3.ErrorResponse); ok || err != nil {
			break
		}
	}
	repl.Close(context.Background())
	conn := connect(t, pgtest.MustCluster(t).DSN("postgres"))
	var dbs, slots int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1),
		(SELECT count(*) FROM pg_replication_slots WHERE database = $1)`, name).Scan(&dbs, &slots); err != nil {
		t.Fatal(err)
	}
	if dbs != 0 || slots != 0 {
		t.Errorf("after cleanup: %d databases named %s, %d slots in it; want none", dbs, name, slots)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	c := pgtest.MustNewCluster(t)
	port := c.Port
	dsn, err := c.CreateDatabase(t.Context(), "restart")
	if err != nil {
		t.Fatal(err)
	}
	before := connect(t, dsn)
	if _, err := before.Exec(t.Context(), "CREATE TABLE kept AS SELECT 42 AS answer"); err != nil {
		t.Fatal(err)
	}

	if err := c.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if c.Port != port {
		t.Errorf("port changed from %d to %d", port, c.Port)
	}
	if err := before.Ping(t.Context()); err == nil {
		t.Errorf("connection from before the restart still works")
	}
	if got := queryString(t, connect(t, dsn), "SELECT answer::text FROM kept"); got != "42" {
		t.Errorf("after restart, kept.answer = %s, want 42", got)
	}

	if err := c.StopServer(t.Context()); err != nil {
		t.Fatalf("StopServer: %v", err)
	}
	if _, err := pgx.Connect(t.Context(), dsn); err == nil {
		t.Fatalf("connected to a stopped server")
	}
	if _, err := os.Stat(c.DataDir()); err != nil {
		t.Fatalf("StopServer lost the data directory: %v", err)
	}
	if err := c.StartServer(t.Context()); err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	// An immediate stop skips the checkpoint; crash recovery brings the table back.
	if got := queryString(t, connect(t, dsn), "SELECT answer::text FROM kept"); got != "42" {
		t.Errorf("after StopServer and StartServer, kept.answer = %s, want 42", got)
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	c, err := pgtest.Start(t.Context(), pgtest.Options{Settings: map[string]string{
		"work_mem":     "5MB",
		"cluster_name": `it's a \ test`,
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	conn := connect(t, c.DSN("postgres"))
	for setting, want := range map[string]string{"work_mem": "5MB", "cluster_name": `it's a \ test`} {
		if got := queryString(t, conn, "SELECT current_setting($1)", setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	conn.Close(t.Context())

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop, stat %s: %v; want it gone", c.Dir, err)
	}
	if nc, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), time.Second); err == nil {
		nc.Close()
		t.Errorf("port %d still answers after Stop", c.Port)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := c.Restart(t.Context()); err == nil {
		t.Errorf("Restart after Stop succeeded")
	}
}

func TestStartFailure(t *testing.T) {
	t.Parallel()
	t.Run("bad name", func(t *testing.T) {
		_, err := pgtest.Start(t.Context(), pgtest.Options{Settings: map[string]string{"work_mem = 1\nfsync": "on"}})
		if err == nil || !strings.Contains(err.Error(), "not a parameter name") {
			t.Errorf("Start with a bad setting name: %v", err)
		}
	})
	t.Run("bad value", func(t *testing.T) {
		c, err := pgtest.Start(t.Context(), pgtest.Options{Settings: map[string]string{"shared_buffers": "lots"}})
		if err == nil {
			c.Stop()
			t.Fatal("Start with shared_buffers=lots succeeded")
		}
		// The server log's tail says what went wrong.
		t.Logf("Start with shared_buffers=lots: %v", err)
		if !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
			t.Errorf("error lacks the server log: %v", err)
		}
	})
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv(pgtest.EnvBin, t.TempDir())
	_, err := pgtest.Start(t.Context(), pgtest.Options{})
	if !errors.Is(err, pgtest.ErrNoBinaries) {
		t.Fatalf("Start without binaries: %v, want ErrNoBinaries", err)
	}
	const want = "PostgreSQL server binaries not found (initdb, pg_ctl): run scripts/install-postgres (Debian/Ubuntu: postgresql-15, no cluster left running), or set NOPII_PG_BIN"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

// TestWatchdog starts a cluster in a child process that exits without
// stopping it, as a test binary killed by -timeout would, and expects the
// cluster to be stopped and removed anyway.
func TestWatchdog(t *testing.T) {
	if os.Getenv("PGTEST_WATCHDOG_CHILD") == "1" {
		c, err := pgtest.Start(context.Background(), pgtest.Options{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println(c.Port, c.Dir)
		os.Exit(0) // no Stop, no deferred cleanup
	}
	t.Parallel()

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWatchdog$")
	cmd.Env = append(os.Environ(), "PGTEST_WATCHDOG_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var port int
	var dir string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	if !sc.Scan() {
		t.Fatalf("child printed nothing")
	}
	if _, err := fmt.Sscan(sc.Text(), &port, &dir); err != nil || !strings.Contains(dir, "nopii-pgtest-") {
		t.Fatalf("child printed %q", out)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		nc, dialErr := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if dialErr == nil {
			nc.Close()
		}
		if errors.Is(statErr, os.ErrNotExist) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after its process exited, cluster %s still exists (stat: %v) or answers on %d (dial: %v)", dir, statErr, port, dialErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
