package pgtest

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nopii/nopii/internal/watchdog"
)

// watchdogScript waits for EOF on stdin, which arrives when the last holder
// of the pipe's write end, the process that started the cluster, is gone
// (Go opens every descriptor close-on-exec, so no child inherits it). Then
// it stops the server and removes the cluster directory. $1 is the
// directory; the rest is the pg_ctl stop command.
const watchdogScript = `dir=$1; shift; read -r _; "$@" >/dev/null 2>&1; rm -rf -- "$dir"`

// startWatchdog starts the process that cleans up after us if we die
// without calling Stop: a test binary killed by -timeout, a demo killed
// with SIGKILL. The server itself runs in its own session (pg_ctl sees to
// that) and would otherwise live on.
func (c *Cluster) startWatchdog() error {
	name, stopArgs := c.acct.command(filepath.Join(c.binDir, "pg_ctl"),
		"-D", c.DataDir(), "-m", "immediate", "-w", "-t", "30", "stop")
	w, err := watchdog.Start("pgtest-watchdog", watchdogScript, childEnv(), append([]string{c.Dir, name}, stopArgs...)...)
	if err != nil {
		return err
	}
	c.watchdog = w
	return nil
}

// stopWatchdog kills the watchdog before it can act; Stop does its work.
func (c *Cluster) stopWatchdog() {
	c.watchdog.Stop()
	c.watchdog = nil
}

// staleAfter is how old a cluster directory must be before Start may
// remove it. Only directories whose server is gone are removed, so this
// guards directories whose server is still being set up.
const staleAfter = 3 * time.Hour

var sweepOnce sync.Once

// sweepStale removes cluster directories, left by processes whose watchdog
// could not run, that were last modified before cutoff and whose server is
// not running. It is best effort: directories of other users, for one,
// cannot be removed.
func sweepStale(cutoff time.Time) {
	watchdog.SweepStale(filepath.Join(os.TempDir(), dirPrefix+"*"), cutoff, func(dir string) bool {
		pid, ok := postmasterPID(filepath.Join(dir, "data"))
		return ok && alive(pid)
	})
}
