package nopii_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps the package layout of STYLE.md true: the root
// package uses the standard library only; only cmd imports adapters;
// adapters do not know each other; nothing imports cmd; config stands
// alone but for internal/didyoumean, a standard-library leaf.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/nopii/nopii"
	adapters := []string{mod + "/source/", mod + "/feeds/"}
	isAdapter := func(p string) bool {
		for _, a := range adapters {
			if strings.HasPrefix(p, a) {
				return true
			}
		}
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			switch {
			case pkg == mod && strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				t.Errorf("root package imports %s: it must use the standard library only", imp)
			case imp == mod+"/cmd" && pkg != mod+"/cmd/nopii" && pkg != mod+"/internal/demo":
				t.Errorf("%s imports cmd", pkg)
			case isAdapter(imp) && !strings.HasPrefix(pkg, mod+"/cmd") && !isAdapter(pkg):
				t.Errorf("%s imports the adapter %s: only cmd wires adapters", pkg, imp)
			case isAdapter(imp) && isAdapter(pkg) && !strings.HasSuffix(imp, "/feedtest") && !strings.HasSuffix(imp, "/lake"):
				t.Errorf("adapter %s imports adapter %s", pkg, imp)
			case pkg == mod+"/internal/didyoumean" && strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				t.Errorf("%s imports %s: it must use the standard library only (config uses it)", pkg, imp)
			case (pkg == mod+"/redact" || pkg == mod+"/config") && strings.HasPrefix(imp, mod):
				if !(pkg == mod+"/redact" && imp == mod) && !(pkg == mod+"/config" && imp == mod+"/internal/didyoumean") {
					t.Errorf("%s imports %s: it should stand alone", pkg, imp)
				}
			}
		}
	}
}
