package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nopii/nopii/internal/watchdog"
)

// User is the superuser of every cluster; it authenticates with trust.
const User = "postgres"

// PasswordUser is the one user of every cluster that must give a password
// (scram-sha-256) over TCP. No role of that name exists, so every password
// is wrong: for tests of a failed login.
const PasswordUser = "pgtest_password"

// Options configures a cluster started by Start.
type Options struct {
	// Logical asks for wal_level=logical with room for 10 replication slots
	// and WAL senders. It is documentation at the call site: every cluster
	// is started that way, because nopii reads logical replication and the
	// setting costs nothing measurable. Override through Settings if a test
	// really needs another wal_level.
	Logical bool

	// Settings are extra postgresql.conf parameters, applied after (and so
	// overriding) the defaults. Values are quoted for postgresql.conf.
	Settings map[string]string
}

// Cluster is a running PostgreSQL cluster owned by this process.
// Its methods are safe for concurrent use.
type Cluster struct {
	// Port is the TCP port on 127.0.0.1. It stays the same across Restart.
	Port int
	// Dir holds everything the cluster has: the data directory (data/),
	// the server log (postgres.log) and the Unix socket. Stop removes it.
	Dir string

	binDir string
	acct   account

	mu       sync.Mutex
	stopped  bool
	watchdog *watchdog.Watchdog
}

const (
	dirPrefix    = "nopii-pgtest-"
	confInclude  = "nopii.conf"
	startTimeout = 60 // seconds pg_ctl waits for the server
	portAttempts = 5
	logTailBytes = 4 << 10
)

// DataDir returns the cluster's data directory (PGDATA).
func (c *Cluster) DataDir() string { return filepath.Join(c.Dir, "data") }

// LogPath returns the path of the server log.
func (c *Cluster) LogPath() string { return filepath.Join(c.Dir, "postgres.log") }

// DSN returns a connection URL for database as the superuser over TCP.
func (c *Cluster) DSN(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, c.Port, url.PathEscape(database))
}

// Start creates and starts a new cluster. The caller must Stop it; if the
// process dies first, the cluster's watchdog stops and removes it.
//
// Start returns an error wrapping ErrNoBinaries when the PostgreSQL server
// binaries are missing. When the server does not come up, the error ends
// with the tail of the server log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	conf, err := settingsConf(opts.Settings)
	if err != nil {
		return nil, err
	}
	acct, err := currentAccount()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweepStale(time.Now().Add(-staleAfter)) })

	dir, err := newClusterDir(acct)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, binDir: binDir, acct: acct}
	if err := c.startWatchdog(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := c.create(ctx, conf); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

// newClusterDir creates the cluster's directory where the server's user can
// reach and write it.
func newClusterDir(acct account) (string, error) {
	tmp := os.TempDir()
	if acct.runuser != "" {
		if err := checkTraversable(tmp); err != nil {
			return "", err
		}
	}
	dir, err := os.MkdirTemp(tmp, dirPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("create cluster directory: %w", err)
	}
	// The socket lives here, so clients other than the server's user must
	// be able to traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("create cluster directory: %w", err)
	}
	if err := acct.chown(dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("create cluster directory: hand %s to nobody: %w", dir, err)
	}
	return dir, nil
}

// checkTraversable fails early and clearly when nobody could not reach a
// directory under dir (say TMPDIR=/root/tmp); initdb's own message would be
// a puzzling "permission denied".
func checkTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check temp directory: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("temp directory %s: %s is not traversable by user nobody, who runs the server when tests run as root: set TMPDIR to a world-traversable directory such as /tmp", abs, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// create runs initdb, writes the configuration and starts the server on a
// free port, trying another port when the chosen one was taken meanwhile.
func (c *Cluster) create(ctx context.Context, conf string) error {
	out, err := c.run(ctx, "initdb", "-D", c.DataDir(), "-U", User, "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := c.configure(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		if err := c.writeConf(port, conf); err != nil {
			return err
		}
		logStart := fileSize(c.LogPath())
		err = c.pgctlStart(ctx, "start")
		if err == nil {
			c.Port = port
			return nil
		}
		if attempt < portAttempts && ctx.Err() == nil && portTaken(c.LogPath(), logStart) {
			continue
		}
		return err
	}
}

// configure points postgresql.conf at our include file and replaces
// pg_hba.conf. Files that initdb wrote keep their owner when rewritten.
func (c *Cluster) configure() error {
	hba := `# Written by nopii's pgtest: trust, and only from this machine.
host    all          ` + PasswordUser + `   127.0.0.1/32    scram-sha-256
local   all          all                   trust
host    all          all   127.0.0.1/32    trust
host    all          all   ::1/128         trust
local   replication  all                   trust
host    replication  all   127.0.0.1/32    trust
host    replication  all   ::1/128         trust
`
	if err := os.WriteFile(filepath.Join(c.DataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\ninclude '%s'\n", confInclude)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("configure postgresql.conf: %w", err)
	}
	return nil
}

// writeConf writes the include file: our defaults, the port, then the
// caller's settings, which win because later lines override earlier ones.
func (c *Cluster) writeConf(port int, settings string) error {
	var b strings.Builder
	b.WriteString("# Written by nopii's pgtest; postgresql.conf includes it last.\n")
	for _, kv := range [][2]string{
		{"listen_addresses", "127.0.0.1"},
		{"port", strconv.Itoa(port)},
		{"unix_socket_directories", c.Dir},
		{"wal_level", "logical"},
		{"max_wal_senders", "10"},
		{"max_replication_slots", "10"},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"shared_buffers", "128MB"},
		{"max_connections", "200"},
	} {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], quoteConf(kv[1]))
	}
	b.WriteString(settings)
	path := filepath.Join(c.DataDir(), confInclude)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", confInclude, err)
	}
	if err := c.acct.chown(path); err != nil {
		return fmt.Errorf("write %s: %w", confInclude, err)
	}
	return nil
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// settingsConf renders the caller's settings as postgresql.conf lines in a
// stable order, refusing anything that could break out of its line.
func settingsConf(settings map[string]string) (string, error) {
	names := make([]string, 0, len(settings))
	for name, value := range settings {
		if !settingName.MatchString(name) {
			return "", fmt.Errorf("setting %q: not a parameter name", name)
		}
		if strings.ContainsAny(value, "\n\r\x00") {
			return "", fmt.Errorf("setting %s: value contains a line break or NUL", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%s = %s\n", name, quoteConf(settings[name]))
	}
	return b.String(), nil
}

// quoteConf quotes a postgresql.conf value. Quoted values are accepted for
// parameters of every type; inside quotes, backslash is an escape.
func quoteConf(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// freePort asks the kernel for a free port. Another process may take it
// before the server binds it; create retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// portTaken reports whether the log, from offset on, says the server could
// not bind its port.
func portTaken(logPath string, offset int64) bool {
	f, err := os.Open(logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	b, _ := io.ReadAll(f)
	return bytes.Contains(b, []byte("Address already in use")) ||
		bytes.Contains(b, []byte("could not create any TCP/IP sockets"))
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns the end of the server log, for error messages.
func (c *Cluster) logTail() string {
	f, err := os.Open(c.LogPath())
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	defer f.Close()
	if size := fileSize(c.LogPath()); size > logTailBytes {
		if _, err := f.Seek(size-logTailBytes, io.SeekStart); err != nil {
			return "(server log unreadable: " + err.Error() + ")"
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "(server log unreadable: " + err.Error() + ")"
	}
	return string(bytes.TrimSpace(b))
}

// run runs a PostgreSQL tool as the server's user and returns its output.
func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	name, args := c.acct.command(filepath.Join(c.binDir, tool), args...)
	cmd := exec.CommandContext(ctx, name, args...)
	// The tools want a working directory they can read; ours may be /root.
	cmd.Dir = c.Dir
	cmd.Env = childEnv()
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// pgctlStart runs pg_ctl start or restart and waits until the server
// accepts connections. The postmaster's output goes to the log, not to us.
func (c *Cluster) pgctlStart(ctx context.Context, action string) error {
	args := []string{"-D", c.DataDir(), "-l", c.LogPath(), "-w", "-t", strconv.Itoa(startTimeout)}
	if action == "restart" {
		args = append(args, "-m", "fast")
	}
	out, err := c.run(ctx, "pg_ctl", append(args, action)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s\nserver log (tail):\n%s", action, err, bytes.TrimSpace(out), c.logTail())
	}
	return nil
}

// pgctlStop shuts the server down at once, without a checkpoint: nothing
// here needs to be durable. If pg_ctl fails, the postmaster is killed.
func (c *Cluster) pgctlStop(ctx context.Context) error {
	pid, ok := postmasterPID(c.DataDir())
	if !ok {
		return nil // not running
	}
	out, err := c.run(ctx, "pg_ctl", "-D", c.DataDir(), "-m", "immediate", "-w", "-t", "30", "stop")
	if err == nil {
		return nil
	}
	if !alive(pid) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return nil
		}
	}
	return fmt.Errorf("pg_ctl stop: %w: %s", err, bytes.TrimSpace(out))
}

// Stop shuts the server down immediately and removes Dir. Calling it again
// does nothing and returns nil.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	// Disarm the watchdog first: it would race us to remove Dir.
	c.stopWatchdog()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if err := c.pgctlStop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop cluster %s: %w", c.Dir, err))
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, fmt.Errorf("stop cluster: %w", err))
	}
	return errors.Join(errs...)
}

// Restart restarts the server (pg_ctl restart, fast shutdown) on the same
// port and data directory. Existing connections are closed by the server.
// It also starts a server that StopServer stopped.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("restart cluster: cluster is stopped")
	}
	if err := c.pgctlStart(ctx, "restart"); err != nil {
		return fmt.Errorf("restart cluster: %w", err)
	}
	return nil
}

// StopServer shuts the server down immediately, as a crash would, and
// keeps the data, so that tests can see how clients behave while the
// database is gone. StartServer or Restart brings it back.
func (c *Cluster) StopServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("stop server: cluster is stopped")
	}
	if err := c.pgctlStop(ctx); err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	return nil
}

// StartServer starts a server that StopServer stopped, on the same port
// and data directory, and waits until it accepts connections. It fails if
// another process took the port meanwhile.
func (c *Cluster) StartServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("start server: cluster is stopped")
	}
	if err := c.pgctlStart(ctx, "start"); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	return nil
}

// CreateDatabase creates the database name and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (dsn string, err error) {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

// DropDatabase drops the database name if it exists, even while clients
// are connected: it terminates them, including WAL senders, and drops the
// database's replication slots, which would otherwise block the drop.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	// A slot stays active until its WAL sender has exited; the timeout
	// argument makes pg_terminate_backend wait for that. Retry anyway in
	// case a client reconnects in between.
	for attempt := 1; ; attempt++ {
		_, err = conn.Exec(ctx, `
SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots
 WHERE database = $1 AND active_pid IS NOT NULL`, name)
		if err == nil {
			_, err = conn.Exec(ctx, `
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		}
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if attempt >= 5 || !errors.As(err, &pgErr) || pgErr.Code != "55006" /* object_in_use */ {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop database %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// postmasterPID reads the postmaster's process id from postmaster.pid.
func postmasterPID(dataDir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// alive reports whether a process exists; EPERM means it does, as someone
// else's.
func alive(pid int) bool { return watchdog.Alive(pid) }
