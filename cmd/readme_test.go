package cmd

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeCommands checks every nopii command line in README.md and
// docs/*.md (in sh blocks and in backticks) against the command tree: the
// subcommand exists and takes every flag the line gives it.
func TestReadmeCommands(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md")
	inline := regexp.MustCompile("`((?:bin/)?nopii [^`]+)`")
	checked := 0
	for _, file := range files {
		text := string(mustRead(t, file))
		var lines []string
		inSh := false
		for _, l := range strings.Split(text, "\n") {
			switch {
			case strings.HasPrefix(l, "```"):
				inSh = strings.TrimPrefix(l, "```") == "sh"
			case inSh:
				lines = append(lines, l)
			default:
				for _, m := range inline.FindAllStringSubmatch(l, -1) {
					lines = append(lines, m[1])
				}
			}
		}
		for _, l := range lines {
			words := commandWords(l)
			if words == nil {
				continue
			}
			root := NewRoot(io.Discard, io.Discard)
			c, _, err := root.Find(words)
			if err != nil {
				t.Errorf("%s: %q: %v", file, l, err)
				continue
			}
			if c == root && len(words) > 0 && !strings.HasPrefix(words[0], "-") {
				t.Errorf("%s: %q: no command %q", file, l, words[0])
				continue
			}
			for _, w := range words {
				if name, ok := strings.CutPrefix(w, "--"); ok {
					name, _, _ = strings.Cut(name, "=")
					if c.Flag(name) == nil {
						t.Errorf("%s: %q: %s takes no --%s", file, l, c.CommandPath(), name)
					}
				}
			}
			checked++
		}
	}
	if checked < 30 {
		t.Errorf("checked %d command lines, want the docs' 30 or more: is the parsing broken?", checked)
	}
}

// commandWords returns the words of a nopii command line after "nopii",
// up to a comment or a pipe; alternatives ("find|export") give their first
// and brackets ("[--connect]") are dropped. Nil when l is no nopii command.
func commandWords(l string) []string {
	fields := strings.Fields(l)
	i := 0
	for i < len(fields) && strings.Contains(fields[i], "=") && !strings.HasPrefix(fields[i], "-") {
		i++ // VAR=value before the command
	}
	if i >= len(fields) || (fields[i] != "nopii" && fields[i] != "bin/nopii") {
		return nil
	}
	words := []string{}
	for _, f := range fields[i+1:] {
		if f == "#" || f == "|" || f == "\\|" {
			break
		}
		f = strings.Trim(f, "[]")
		f, _, _ = strings.Cut(f, `\|`)
		f, _, _ = strings.Cut(f, "|")
		if f != "" {
			words = append(words, f)
		}
	}
	return words
}

// TestReadmeWorkflow runs the README's walk-through workflow on the demo's
// sample shop, as the README says to: validate --connect, run, verify.
func TestReadmeWorkflow(t *testing.T) {
	readme := string(mustRead(t, "../README.md"))
	_, rest, ok := strings.Cut(readme, "```yaml\nversion: 1\n")
	if !ok {
		t.Fatal("README.md has no workflow (a yaml block starting with version: 1)")
	}
	body, _, _ := strings.Cut(rest, "```")
	cfg := filepath.Join(t.TempDir(), "nopii.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	demoDatabases(t)
	for _, args := range [][]string{
		{"validate", "--config", cfg, "--connect"},
		{"run", "--config", cfg},
		{"plan", "--config", cfg},
		{"verify", "--config", cfg},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Errorf("nopii %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
		}
		if args[0] == "plan" && !regexp.MustCompile(`public\.customer\s+.*delta`).MatchString(out) {
			t.Errorf("plan after the first run: public.customer is not a delta, as the README says:\n%s", out)
		}
	}
}
