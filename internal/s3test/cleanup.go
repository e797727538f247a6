package s3test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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
	// A raw descriptor, not an *os.File: an os.File's finalizer would close
	// it, and fire the watchdog, as soon as a caller dropped the *Server
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
	r := os.NewFile(uintptr(p[0]), "s3test-watchdog-r")
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "s3test-watchdog", s.Dir)
	cmd.Stdin = r
	cmd.Dir = "/"
	// Its own process group, so that the Ctrl-C which kills `go test` (and
	// the gateway, which shares its group) does not kill the watchdog
	// before it has removed the directory.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		syscall.Close(p[1])
		return fmt.Errorf("start watchdog: %w", err)
	}
	s.watchdog, s.lifeline = cmd, p[1]
	return nil
}

// stopWatchdog kills the watchdog before it can act; Stop does its work.
// The caller holds s.mu.
func (s *Server) stopWatchdog() {
	if s.watchdog == nil {
		return
	}
	_ = s.watchdog.Process.Kill()
	_ = s.watchdog.Wait()
	_ = syscall.Close(s.lifeline)
	s.watchdog, s.lifeline = nil, -1
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
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.ModTime().After(cutoff) {
			continue
		}
		if pid, ok := readPID(filepath.Join(dir, "pid")); ok && alive(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
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

// alive reports whether a process exists; EPERM means it does, as someone
// else's.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
