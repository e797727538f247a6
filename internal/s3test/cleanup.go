package s3test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nopii/nopii/internal/watchdog"
)

// watchdogScript waits for EOF on stdin, which arrives when the last holder
// of the pipe's write end, the process that started the server, is gone
// (Go opens every descriptor close-on-exec, so no child inherits it). Then
// it kills the gateway named in $1/pid and removes the directory $1. The
// pid file is written right after the gateway starts and removed as soon
// as it has been reaped, so the number it holds is never a stranger's.
const watchdogScript = `dir=$1; read -r _; pid=$(cat "$dir/pid" 2>/dev/null) && kill -KILL "$pid" 2>/dev/null; rm -rf -- "$dir"`

// startWatchdog starts the process that cleans up after us if we die
// without calling Stop: a test binary killed by -timeout, or by SIGKILL.
// The gateway would otherwise live on, holding its port and directory.
func (s *Server) startWatchdog() error {
	w, err := watchdog.Start("s3test-watchdog", watchdogScript, os.Environ(), s.Dir)
	if err != nil {
		return err
	}
	s.watchdog = w
	return nil
}

// stopWatchdog kills the watchdog before it can act; Stop does its work.
// The caller holds s.mu.
func (s *Server) stopWatchdog() {
	s.watchdog.Stop()
	s.watchdog = nil
}

// staleAfter is how old a server directory must be before Start may remove
// it. Only directories whose gateway is gone are removed, so this guards
// directories whose gateway is still starting.
const staleAfter = 3 * time.Hour

var sweepOnce sync.Once

// sweepStale removes server directories, left by processes whose watchdog
// could not run (a reboot, a killed process group), that were last modified
// before cutoff and whose gateway is not running. It is best effort.
func sweepStale(cutoff time.Time) {
	watchdog.SweepStale(filepath.Join(os.TempDir(), dirPrefix+"*"), cutoff, func(dir string) bool {
		pid, ok := readPID(filepath.Join(dir, "pid"))
		return ok && alive(pid)
	})
}

func readPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func alive(pid int) bool { return watchdog.Alive(pid) }
