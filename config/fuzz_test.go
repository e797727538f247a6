package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nopii/nopii/config"
)

// FuzzParse checks that Parse never panics and always returns either a
// config or a non-empty, capped list of positioned errors.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\n"))
	f.Add([]byte("version: 1\nworkflows: &w\n  - <<: *w\n"))
	f.Add([]byte("x: ${\n"))
	env := testEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data, MustOptions(t, env))
		if err == nil {
			if cfg == nil || len(cfg.Workflows) == 0 || cfg.Version != 1 {
				t.Fatalf("no error, but config %+v", cfg)
			}
			return
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > 21 {
			t.Fatalf("error %T with %d entries: %v", err, len(errs), err)
		}
		if cfg != nil {
			t.Fatal("config returned with errors")
		}
	})
}
