package atomicdir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nopii/nopii/internal/atomicdir"
)

// TestWrite checks the layout a pod sees: the file is a symlink through
// ..data, an update changes what its path reads, and old versions go away.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config")
	for _, content := range []string{"one\n", "two\n", "three\n"} {
		if err := atomicdir.Write(dir, map[string][]byte{"nopii.yaml": []byte(content)}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "nopii.yaml"))
		if err != nil || string(got) != content {
			t.Fatalf("nopii.yaml reads %q, %v; want %q", got, err, content)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "nopii.yaml")); err != nil || target != filepath.Join("..data", "nopii.yaml") {
		t.Errorf("nopii.yaml links to %q (%v), want ..data/nopii.yaml", target, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") && e.Name() != "..data" {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) != 1 {
		t.Errorf("version directories %v, want exactly one (old ones removed)", versions)
	}
}
