// Package watchdog keeps test servers from outliving the process that
// started them. A Watchdog is a tiny shell in its own process group, blocked
// reading a pipe whose write end only the starting process holds (Go opens
// every descriptor close-on-exec, so no child inherits it). When that
// process dies without stopping its server — a test binary killed by
// -timeout or SIGKILL — the pipe closes and the shell runs its cleanup.
// SweepStale covers what no watchdog could: a reboot, a killed group.
package watchdog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Watchdog is a running watchdog process.
type Watchdog struct {
	cmd      *exec.Cmd
	lifeline int // write end of the pipe
}

// Start runs `/bin/sh -c script name args…` with the pipe on its standard
// input; the script must begin by reading it (`read -r _`), which returns
// when this process is gone. env is the shell's environment.
func Start(name, script string, env []string, args ...string) (*Watchdog, error) {
	// A raw descriptor, not an *os.File: an os.File's finalizer would close
	// it, and fire the watchdog, as soon as a caller dropped its server
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
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	r := os.NewFile(uintptr(p[0]), name+"-r")
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, name}, args...)...)
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.Env = env
	// Its own process group, so that the Ctrl-C which kills `go test` does
	// not kill the watchdog before it has done its work.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		syscall.Close(p[1])
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	return &Watchdog{cmd: cmd, lifeline: p[1]}, nil
}

// Stop kills the watchdog before it can act: the caller cleans up itself.
// It is safe on a nil Watchdog.
func (w *Watchdog) Stop() {
	if w == nil || w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
	_ = syscall.Close(w.lifeline)
	w.cmd, w.lifeline = nil, -1
}

// SweepStale removes the directories matching pattern (a filepath.Glob)
// last modified before cutoff for which running reports false. Best effort:
// other users' directories, for one, cannot be removed.
func SweepStale(pattern string, cutoff time.Time, running func(dir string) bool) {
	dirs, _ := filepath.Glob(pattern)
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.ModTime().After(cutoff) || running(dir) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// Alive reports whether a process exists; EPERM means it does, as someone
// else's.
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
