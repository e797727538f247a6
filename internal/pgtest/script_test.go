package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallScriptCheck: scripts/install-postgres --check, which make test
// and make demo run first, looks where findBinDir looks and, when that is
// empty, stops with what to do.
func TestInstallScriptCheck(t *testing.T) {
	script, err := filepath.Abs("../../scripts/install-postgres")
	if err != nil {
		t.Fatal(err)
	}
	check := func(binDir string) (int, string) {
		t.Helper()
		c := exec.Command(script, "--check")
		c.Env = append(os.Environ(), EnvBin+"="+binDir)
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}

	empty := t.TempDir()
	if code, out := check(empty); code != 1 || !strings.Contains(out, EnvBin+"="+empty+" holds no initdb and pg_ctl") {
		t.Errorf("--check with an empty %s: exit %d, output %q", EnvBin, code, out)
	}
	if _, err := findBinDir(); err == nil {
		t.Setenv(EnvBin, "")
		if code, out := check(""); code != 0 || out != "" {
			t.Errorf("--check where findBinDir finds binaries: exit %d, output %q", code, out)
		}
	}
	fake := t.TempDir()
	for _, name := range []string{"initdb", "pg_ctl"} {
		if err := os.WriteFile(filepath.Join(fake, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := check(fake); code != 0 || out != "" {
		t.Errorf("--check with %s=%s: exit %d, output %q", EnvBin, fake, code, out)
	}
}
