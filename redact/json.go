package redact

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONPath is a compiled path into a JSON document: $ followed by steps
// .name, .*, [n], [*] and ['name'] (or ["name"], for keys that are not
// identifiers). [*] matches every array element and .* every object member.
type JSONPath struct {
	text  string
	steps []jsonStep
}

type jsonStepKind uint8

const (
	stepKey jsonStepKind = iota
	stepAnyKey
	stepIndex
	stepAnyIndex
)

type jsonStep struct {
	kind  jsonStepKind
	key   string
	index int
}

// String returns the path as it was written.
func (p JSONPath) String() string { return p.text }

// ParseJSONPath compiles a path such as $.a.b, $.items[*].email, $.a[0] or
// $['odd key'].
func ParseJSONPath(s string) (JSONPath, error) {
	p := JSONPath{text: s}
	if len(s) == 0 || s[0] != '$' {
		return p, errors.New("json path must start with $")
	}
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '*' {
				p.steps = append(p.steps, jsonStep{kind: stepAnyKey})
				i++
				continue
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				if c := s[j]; c == ']' || c == '\'' || c == '"' || c == ' ' || c == '*' {
					return p, fmt.Errorf("json path: unexpected %q at offset %d (quote odd keys as ['key'])", c, j)
				}
				j++
			}
			if j == i {
				return p, fmt.Errorf("json path: empty key at offset %d", i)
			}
			p.steps = append(p.steps, jsonStep{kind: stepKey, key: s[i:j]})
			i = j
		case '[':
			i++
			switch {
			case i < len(s) && s[i] == '*':
				p.steps = append(p.steps, jsonStep{kind: stepAnyIndex})
				i++
			case i < len(s) && (s[i] == '\'' || s[i] == '"'):
				q := s[i]
				var key []byte
				for i++; ; i++ {
					if i >= len(s) {
						return p, errors.New("json path: unterminated quoted key")
					}
					if s[i] == '\\' && i+1 < len(s) {
						i++
						key = append(key, s[i])
						continue
					}
					if s[i] == q {
						i++
						break
					}
					key = append(key, s[i])
				}
				p.steps = append(p.steps, jsonStep{kind: stepKey, key: string(key)})
			default:
				j := i
				for j < len(s) && isDigit(s[j]) {
					j++
				}
				n, err := strconv.Atoi(s[i:j])
				if j == i || err != nil {
					return p, fmt.Errorf("json path: want an index, * or a quoted key at offset %d", i)
				}
				p.steps = append(p.steps, jsonStep{kind: stepIndex, index: n})
				i = j
			}
			if i >= len(s) || s[i] != ']' {
				return p, fmt.Errorf("json path: want ] at offset %d", i)
			}
			i++
		default:
			return p, fmt.Errorf("json path: unexpected %q at offset %d", s[i], i)
		}
	}
	return p, nil
}

// JSONKind is the kind of a JSON scalar.
type JSONKind uint8

// JSON scalar kinds.
const (
	JSONString JSONKind = iota
	JSONNumber
	JSONBool
)

// JSONScalarFunc redacts one JSON scalar of the given kind: text is a
// string's unescaped content or a number's or boolean's literal. It appends
// the replacement as JSON text (a quoted string, a literal, null) to dst.
type JSONScalarFunc func(dst []byte, kind JSONKind, text []byte) ([]byte, error)

// JSONAction is what to do with the values at one path.
type JSONAction struct {
	Path JSONPath
	// Whole, when not nil, is JSON text that replaces the value at the
	// path, whatever it is: destroy (null) and replace.
	Whole []byte
	// Scalar redacts the scalar at the path or, when the path holds an
	// object or array, every scalar under it. JSON null stays null.
	Scalar JSONScalarFunc
}

// JSONRewriter rewrites JSON documents, applying actions at their paths and
// copying everything else byte for byte. Paths that a document lacks are
// skipped. When paths overlap, the one matching closer to the root wins,
// then the first in lexical order. A JSONRewriter keeps scratch state and
// is not safe for concurrent use.
type JSONRewriter struct {
	actions []JSONAction
	src     []byte
	pos     int
	live    []int
	key     []byte
	str     []byte
}

// maxJSONDepth bounds nesting; PostgreSQL's own limit comes from its stack.
const maxJSONDepth = 10000

// NewJSONRewriter returns a JSONRewriter for actions.
func NewJSONRewriter(actions []JSONAction) *JSONRewriter {
	a := slices.Clone(actions)
	slices.SortStableFunc(a, func(x, y JSONAction) int { return strings.Compare(x.Path.text, y.Path.text) })
	return &JSONRewriter{actions: a}
}

// ErrInvalidJSON reports a json or jsonb value that does not parse.
var ErrInvalidJSON = errors.New("invalid JSON")

func (w *JSONRewriter) syntax(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, what, w.pos)
}

// Rewrite appends src, a JSON text, with the actions applied.
func (w *JSONRewriter) Rewrite(dst, src []byte) ([]byte, error) {
	w.src, w.pos = src, 0
	w.live = w.live[:0]
	for i := range w.actions {
		w.live = append(w.live, i)
	}
	start := len(dst)
	dst, err := w.value(dst, 0, w.live)
	if err == nil {
		dst = w.space(dst)
		if w.pos != len(src) {
			err = w.syntax("trailing data")
		}
	}
	w.src = nil
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

func (w *JSONRewriter) space(dst []byte) []byte {
	start := w.pos
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
			continue
		}
		break
	}
	return append(dst, w.src[start:w.pos]...)
}

// value rewrites the value at w.pos; live lists the actions whose first
// depth steps match where it is.
func (w *JSONRewriter) value(dst []byte, depth int, live []int) ([]byte, error) {
	if depth > maxJSONDepth {
		return dst, w.syntax("nesting too deep")
	}
	dst = w.space(dst)
	for _, i := range live {
		if a := &w.actions[i]; len(a.Path.steps) == depth {
			if a.Whole != nil {
				if err := w.skip(depth); err != nil {
					return dst, err
				}
				return append(dst, a.Whole...), nil
			}
			return w.redactAll(dst, depth, a.Scalar)
		}
	}
	if len(live) == 0 {
		start := w.pos
		if err := w.skip(depth); err != nil {
			return dst, err
		}
		return append(dst, w.src[start:w.pos]...), nil
	}
	if w.pos >= len(w.src) {
		return dst, w.syntax("unexpected end")
	}
	switch w.src[w.pos] {
	case '{':
		return w.object(dst, depth, live)
	case '[':
		return w.array(dst, depth, live)
	}
	start := w.pos
	if err := w.skip(depth); err != nil {
		return dst, err
	}
	return append(dst, w.src[start:w.pos]...), nil
}

func (w *JSONRewriter) object(dst []byte, depth int, live []int) ([]byte, error) {
	dst = append(dst, '{')
	w.pos++
	dst = w.space(dst)
	if w.pos < len(w.src) && w.src[w.pos] == '}' {
		w.pos++
		return append(dst, '}'), nil
	}
	for {
		dst = w.space(dst)
		start := w.pos
		escaped, err := w.skipString()
		if err != nil {
			return dst, err
		}
		raw := w.src[start+1 : w.pos-1]
		dst = append(dst, w.src[start:w.pos]...)
		if escaped {
			w.key = unescapeJSON(w.key[:0], raw)
			raw = w.key
		}
		dst = w.space(dst)
		if w.pos >= len(w.src) || w.src[w.pos] != ':' {
			return dst, w.syntax("want :")
		}
		w.pos++
		dst = append(dst, ':')
		var done bool
		if dst, done, err = w.member(dst, depth, live, true, raw, 0, '}'); done || err != nil {
			return dst, err
		}
	}
}

func (w *JSONRewriter) array(dst []byte, depth int, live []int) ([]byte, error) {
	dst = append(dst, '[')
	w.pos++
	dst = w.space(dst)
	if w.pos < len(w.src) && w.src[w.pos] == ']' {
		w.pos++
		return append(dst, ']'), nil
	}
	for n := 0; ; n++ {
		var done bool
		var err error
		if dst, done, err = w.member(dst, depth, live, false, nil, n, ']'); done || err != nil {
			return dst, err
		}
	}
}

// member rewrites the value at w.pos of an object (its key) or an array
// (its index n), with the actions of live whose step at depth matches it,
// then the separator after it; done is true at the closing bracket.
func (w *JSONRewriter) member(dst []byte, depth int, live []int, object bool, key []byte, n int, closing byte) ([]byte, bool, error) {
	mark := len(w.live)
	for _, i := range live {
		if s := w.actions[i].Path.steps; len(s) > depth {
			st := s[depth]
			var match bool
			if object {
				match = st.kind == stepAnyKey || (st.kind == stepKey && string(key) == st.key)
			} else {
				match = st.kind == stepAnyIndex || (st.kind == stepIndex && st.index == n)
			}
			if match {
				w.live = append(w.live, i)
			}
		}
	}
	dst, err := w.value(dst, depth+1, w.live[mark:])
	w.live = w.live[:mark]
	if err != nil {
		return dst, false, err
	}
	dst = w.space(dst)
	if w.pos >= len(w.src) {
		return dst, false, w.syntax("unexpected end")
	}
	switch w.src[w.pos] {
	case ',':
		w.pos++
		return append(dst, ','), false, nil
	case closing:
		w.pos++
		return append(dst, closing), true, nil
	}
	return dst, false, w.syntax("want , or " + string(closing))
}

// redactAll applies f to the scalar at w.pos, or to every scalar under the
// object or array there.
func (w *JSONRewriter) redactAll(dst []byte, depth int, f JSONScalarFunc) ([]byte, error) {
	if depth > maxJSONDepth {
		return dst, w.syntax("nesting too deep")
	}
	dst = w.space(dst)
	if w.pos >= len(w.src) {
		return dst, w.syntax("unexpected end")
	}
	start := w.pos
	switch c := w.src[w.pos]; {
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		dst = append(dst, c)
		w.pos++
		dst = w.space(dst)
		if w.pos < len(w.src) && w.src[w.pos] == closer {
			w.pos++
			return append(dst, closer), nil
		}
		for {
			if c == '{' {
				dst = w.space(dst)
				ks := w.pos
				if _, err := w.skipString(); err != nil {
					return dst, err
				}
				dst = append(dst, w.src[ks:w.pos]...)
				dst = w.space(dst)
				if w.pos >= len(w.src) || w.src[w.pos] != ':' {
					return dst, w.syntax("want :")
				}
				w.pos++
				dst = append(dst, ':')
			}
			var err error
			if dst, err = w.redactAll(dst, depth+1, f); err != nil {
				return dst, err
			}
			dst = w.space(dst)
			if w.pos >= len(w.src) {
				return dst, w.syntax("unexpected end")
			}
			switch w.src[w.pos] {
			case ',':
				w.pos++
				dst = append(dst, ',')
			case closer:
				w.pos++
				return append(dst, closer), nil
			default:
				return dst, w.syntax("want , or " + string(closer))
			}
		}
	case c == '"':
		escaped, err := w.skipString()
		if err != nil {
			return dst, err
		}
		text := w.src[start+1 : w.pos-1]
		if escaped {
			w.str = unescapeJSON(w.str[:0], text)
			text = w.str
		}
		return f(dst, JSONString, text)
	case c == 'n':
		if err := w.skip(depth); err != nil {
			return dst, err
		}
		return append(dst, "null"...), nil
	default:
		if err := w.skip(depth); err != nil {
			return dst, err
		}
		kind := JSONNumber
		if c == 't' || c == 'f' {
			kind = JSONBool
		}
		return f(dst, kind, w.src[start:w.pos])
	}
}

// skip validates and steps over the value at w.pos (after white space).
func (w *JSONRewriter) skip(depth int) error {
	if depth > maxJSONDepth {
		return w.syntax("nesting too deep")
	}
	w.skipSpace()
	if w.pos >= len(w.src) {
		return w.syntax("unexpected end")
	}
	switch c := w.src[w.pos]; c {
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		w.pos++
		w.skipSpace()
		if w.pos < len(w.src) && w.src[w.pos] == closer {
			w.pos++
			return nil
		}
		for {
			if c == '{' {
				w.skipSpace()
				if _, err := w.skipString(); err != nil {
					return err
				}
				w.skipSpace()
				if w.pos >= len(w.src) || w.src[w.pos] != ':' {
					return w.syntax("want :")
				}
				w.pos++
			}
			if err := w.skip(depth + 1); err != nil {
				return err
			}
			w.skipSpace()
			if w.pos >= len(w.src) {
				return w.syntax("unexpected end")
			}
			switch w.src[w.pos] {
			case ',':
				w.pos++
			case closer:
				w.pos++
				return nil
			default:
				return w.syntax("want , or " + string(closer))
			}
		}
	case '"':
		_, err := w.skipString()
		return err
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	default:
		return w.skipNumber()
	}
}

func (w *JSONRewriter) skipSpace() {
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
			continue
		}
		return
	}
}

func (w *JSONRewriter) literal(lit string) error {
	if !bytes.HasPrefix(w.src[w.pos:], []byte(lit)) {
		return w.syntax("invalid literal")
	}
	w.pos += len(lit)
	return nil
}

func (w *JSONRewriter) skipNumber() error {
	s, i := w.src, w.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return w.syntax("invalid value")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return w.syntax("invalid number")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return w.syntax("invalid number")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	w.pos = i
	return nil
}

// skipString steps over the string at w.pos, reporting whether it holds
// escapes.
func (w *JSONRewriter) skipString() (escaped bool, err error) {
	s, i := w.src, w.pos
	if i >= len(s) || s[i] != '"' {
		return false, w.syntax("want a string")
	}
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			w.pos = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(s) {
				break
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) {
					w.pos = i
					return false, w.syntax("invalid \\u escape")
				}
				i += 4
			default:
				w.pos = i
				return false, w.syntax("invalid escape")
			}
		case c < 0x20:
			w.pos = i
			return false, w.syntax("control character in string")
		}
	}
	w.pos = len(s)
	return false, w.syntax("unterminated string")
}

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

func hexVal(c byte) rune {
	if isDigit(c) {
		return rune(c - '0')
	}
	return rune(c|0x20-'a') + 10
}

// unescapeJSON appends the content of a valid JSON string body (without
// quotes) with its escapes resolved; lone surrogates become U+FFFD.
func unescapeJSON(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(s[i+1])<<12 | hexVal(s[i+2])<<8 | hexVal(s[i+3])<<4 | hexVal(s[i+4])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2 := hexVal(s[i+3])<<12 | hexVal(s[i+4])<<8 | hexVal(s[i+5])<<4 | hexVal(s[i+6])
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = append(dst, s[i])
		}
	}
	return dst
}

// AppendJSONString appends s as a quoted JSON string.
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
