package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Variables are expanded in the values of the parsed node tree, not in the
// file's text as SPEC §1 words it ("before parsing"). The result is the same
// for every value that does not try to write YAML: what differs is that a
// value holding '#', ': ', quotes or newlines (a password, say) stays one
// scalar instead of changing the document's structure or getting cut at a
// comment, and that positions in errors stay those of the file. Keys are not
// expanded, so the set of keys is what the file shows.

// expand replaces ${VAR} and ${VAR:-default} in every scalar value under n
// and reports each failure at its scalar. failed collects the scalars that
// could not be expanded; they keep their text, and later errors about their
// value are dropped, since they would only repeat the first.
func expand(n *yaml.Node, path string, getenv func(string) (string, bool), errs *Errors, failed map[*yaml.Node]bool, file string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expand(c, path, getenv, errs, failed, file)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expand(c, fmt.Sprintf("%s[%d]", path, i), getenv, errs, failed, file)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expand(n.Content[i+1], joinPath(path, n.Content[i].Value), getenv, errs, failed, file)
		}
	case yaml.ScalarNode:
		// Aliases are skipped above (their anchor is expanded where it is
		// defined), so no scalar is expanded twice.
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expandString(n.Value, getenv)
		if err != nil {
			*errs = append(*errs, &Error{Pos: nodePos(file, n), Field: path, Err: err})
			failed[n] = true
			return
		}
		if v == n.Value {
			return
		}
		n.Value = v
		// A plain scalar's tag was resolved from its text before expansion
		// (${PORT} is a string); clear it so that the value resolves again
		// (8080 is an int). Quoted scalars and explicit tags stay as written.
		if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = ""
		}
	}
}

// expandString expands ${VAR} and ${VAR:-default} in s; $$ is a literal $,
// and a $ followed by anything else stays as it is. ${VAR:-default} uses the
// default when VAR is unset or empty, as the shell does. The default is
// taken literally, and expanded values are not expanded again.
func expandString(s string, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ (write $$ for a literal $)")
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			// The text is not echoed: after a typo such as ${X-default} it
			// may hold a default written in the file, and that may be a secret.
			return "", errors.New("invalid variable reference: expected ${NAME} or ${NAME:-default}, NAME made of letters, digits and _ (write $$ for a literal $)")
		}
		v, ok := getenv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set: export it, or write ${%s:-default} for a default", name, name)
		}
		b.WriteString(v)
	}
}

// validVarName reports whether s is a shell variable name.
func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
