package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
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
	// A raw descriptor, not an *os.File: an os.File's finalizer would close
	// it, and fire the watchdog, as soon as a caller dropped the *Cluster
	// without stopping it.
	var p [2]int
	syscall.ForkLock.RLock()
	err := syscall.Pipe(p[:])
	if err == nil {
		syscall.CloseOnExec(p[0])
		syscall.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	r := os.NewFile(uintptr(p[0]), "pgtest-watchdog-r")
	name, stopArgs := c.acct.command(filepath.Join(c.binDir, "pg_ctl"),
		"-D", c.DataDir(), "-m", "immediate", "-w", "-t", "30", "stop")
	args := append([]string{"-c", watchdogScript, "pgtest-watchdog", c.Dir, name}, stopArgs...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.Env = childEnv()
	// Its own process group, so that the Ctrl-C which kills `go test` does
	// not kill the watchdog before it has done its work.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		syscall.Close(p[1])
		return fmt.Errorf("start watchdog: %w", err)
	}
	c.watchdog, c.lifeline = cmd, p[1]
	return nil
}

// stopWatchdog kills the watchdog before it can act; Stop does its work.
func (c *Cluster) stopWatchdog() {
	if c.watchdog == nil {
		return
	}
	_ = c.watchdog.Process.Kill()
	_ = c.watchdog.Wait()
	_ = syscall.Close(c.lifeline)
	c.watchdog, c.lifeline = nil, -1
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
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.ModTime().After(cutoff) {
			continue
		}
		if pid, ok := postmasterPID(filepath.Join(dir, "data")); ok && alive(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}
