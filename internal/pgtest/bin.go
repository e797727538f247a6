package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBinaries reports that initdb and pg_ctl were found neither through
// $NOPII_PG_BIN, nor on PATH, nor under /usr/lib/postgresql/*/bin.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found (initdb, pg_ctl): run scripts/install-postgres (Debian/Ubuntu: postgresql-15, no cluster left running), or set NOPII_PG_BIN")

// EnvBin names the environment variable that points at a directory holding
// initdb, pg_ctl and postgres. It wins over PATH and the Debian layout.
const EnvBin = "NOPII_PG_BIN"

// debianGlob is where Debian and Ubuntu install server binaries; they are
// not on PATH there.
const debianGlob = "/usr/lib/postgresql/*/bin"

// findBinDir returns the directory that holds initdb and pg_ctl (and, next
// to them, postgres, which pg_ctl looks for in its own directory).
func findBinDir() (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		if !hasBinaries(dir) {
			return "", fmt.Errorf("%w (%s=%s has no initdb and pg_ctl)", ErrNoBinaries, EnvBin, dir)
		}
		return dir, nil
	}

	// On PATH the tools are often symlinks (/usr/local/bin/pg_ctl ->
	// /usr/lib/postgresql/15/bin/pg_ctl); resolve them so that both come
	// from the same installation.
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(initdb); err == nil && hasBinaries(filepath.Dir(resolved)) {
			return filepath.Dir(resolved), nil
		}
	}
	if pgctl, err := exec.LookPath("pg_ctl"); err == nil {
		if resolved, err := filepath.EvalSymlinks(pgctl); err == nil && hasBinaries(filepath.Dir(resolved)) {
			return filepath.Dir(resolved), nil
		}
	}

	dirs, _ := filepath.Glob(debianGlob)
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if hasBinaries(dir) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf returns the major version in /usr/lib/postgresql/<version>/bin,
// or -1, so that 15 sorts above 9.6.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

// account is the user the server runs as: the current one, or nobody when
// the current one is root, since initdb and postgres refuse to run as root.
type account struct {
	runuser  string // path of runuser; empty when no switch is needed
	uid, gid int
}

func currentAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return account{}, fmt.Errorf("running as root, initdb needs an unprivileged user: look up user nobody: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("look up user nobody: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("look up user nobody: gid %q: %w", u.Gid, err)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser"} {
			if _, serr := os.Stat(p); serr == nil {
				runuser, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return account{}, errors.New("running as root, initdb must run as nobody but runuser was not found: apt-get install util-linux, or run as a normal user")
	}
	return account{runuser: runuser, uid: uid, gid: gid}, nil
}

// command builds a command that runs a PostgreSQL tool as the account.
func (a account) command(name string, args ...string) (string, []string) {
	if a.runuser == "" {
		return name, args
	}
	return a.runuser, append([]string{"-u", "nobody", "--", name}, args...)
}

// chown hands a path we created to the account, when that is someone else.
func (a account) chown(path string) error {
	if a.runuser == "" {
		return nil
	}
	return os.Chown(path, a.uid, a.gid)
}

// childEnv is the environment for PostgreSQL tools: ours without PG*
// variables (a stray PGPORT or PGDATA must not reach the server) and with
// the C locale, so that messages we match on are in English.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}
