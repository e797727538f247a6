package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// Pos is a position in a configuration file. Line and Col count from 1; zero
// means unknown.
type Pos struct {
	File      string
	Line, Col int
}

// String returns file:line:col, leaving out the parts that are unknown.
func (p Pos) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
		if p.Col > 0 {
			s += ":" + strconv.Itoa(p.Col)
		}
	}
	return s
}

// compare orders positions by file, line, then column.
func (p Pos) compare(q Pos) int {
	return cmp.Or(cmp.Compare(p.File, q.File), cmp.Compare(p.Line, q.Line), cmp.Compare(p.Col, q.Col))
}

// Error is one problem in a configuration file.
type Error struct {
	Pos   Pos
	Field string // dotted path such as workflows[0].inputs[1].tables[2].mode; empty for the file as a whole
	Err   error
}

// Error returns "file:line:col: field.path: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error, such as one returned by
// Options.CheckRule.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem Parse found in a file, sorted by position. Parse
// returns a non-empty Errors or nil, never an empty one.
type Errors []*Error

// Error returns the errors one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As and errors.Is look at each error.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// maxErrors caps how many errors Parse reports: past a handful, the rest
// are usually consequences of the first ones.
const maxErrors = 20

// sorted returns es ordered by position (stable, so that problems found at
// one position keep the order they were found in), without exact
// duplicates, and cut to maxErrors with a last line saying how many were
// left out.
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *Error) int { return a.Pos.compare(b.Pos) })
	out = slices.CompactFunc(out, func(a, b *Error) bool {
		return a.Pos == b.Pos && a.Field == b.Field && a.Err.Error() == b.Err.Error()
	})
	if n := len(out); n > maxErrors {
		last := out[maxErrors-1].Pos
		out = append(out[:maxErrors], &Error{
			Pos: Pos{File: last.File},
			Err: fmt.Errorf("too many errors (%d more after line %d)", n-maxErrors, last.Line),
		})
	}
	return out
}

// redacted is what a Secret prints.
const redacted = "[redacted]"

// Secret is a string that must not be printed: hmac_key, a DSN (which holds
// a password), a token. Every way of formatting it (fmt verbs, JSON, YAML,
// slog) prints "[redacted]", or nothing when it is empty; Reveal returns the
// value.
type Secret string

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String quoted, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format implements fmt.Formatter so that no verb (%x, %d, %q …) prints the
// value: fmt's own fallbacks for verbs a Stringer does not cover would.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, s.GoString())
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(s.String()))
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalJSON returns "[redacted]" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText returns "[redacted]", for encoders that use
// encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML returns "[redacted]".
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue returns "[redacted]" for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
