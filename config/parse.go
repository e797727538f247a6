package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nopii/nopii/internal/didyoumean"
)

// Options tunes Parse. The zero value reads the process environment, checks
// no rule names and assumes every rule but keep, destroy, replace and mask
// needs hmac_key.
type Options struct {
	// Getenv looks up the variables of ${VAR} and ${VAR:-default}. Nil
	// means os.LookupEnv.
	Getenv func(string) (string, bool)

	// CheckRule checks a column's rule name and parameters (every key of
	// the column's mapping but rule). A returned error that has a
	// ParamName() string method is reported at that parameter's position,
	// any other at the rule's. Nil means rules are not checked.
	CheckRule func(rule string, params map[string]any) error

	// RuleNeedsKey reports whether a rule needs hmac_key. Nil means every
	// rule but keep, destroy, replace, mask and json needs it. Whatever
	// RuleNeedsKey says, a json rule also needs the key when a rule under
	// its paths parameter does.
	RuleNeedsKey func(rule string) bool

	// Hostname gives the default agent name. Nil means os.Hostname.
	Hostname func() (string, error)
}

func (o Options) withDefaults() Options {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.RuleNeedsKey == nil {
		o.RuleNeedsKey = defaultRuleNeedsKey
	}
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	return o
}

// defaultRuleNeedsKey knows the keyless rules of SPEC §2. json is among
// them because its need follows from the rules under its paths.
func defaultRuleNeedsKey(rule string) bool {
	switch rule {
	case "keep", "destroy", "replace", "mask", "json":
		return false
	}
	return true
}

// Load reads the workflow file at path and parses it with Parse.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse parses, expands and validates the workflow file data, named file in
// positions. It returns a Config with every default filled in, or nil and
// an Errors listing every problem found, sorted by position.
func Parse(file string, data []byte, opts Options) (*Config, error) {
	d := &decoder{
		file:    file,
		opts:    opts.withDefaults(),
		failed:  make(map[*yaml.Node]bool),
		merging: make(map[*yaml.Node]bool),
	}
	var cfg *Config
	if root := d.parseYAML(data); root != nil {
		var expandErrs Errors
		expand(root, "", d.opts.Getenv, &expandErrs, d.failed, file)
		cfg = d.config(root)
		if d.tooMany {
			// What was found after the walk stopped short is noise, such
			// as required keys that were never reached.
			d.errs = d.errs[:d.errsBeforeTooMany+1]
		}
		d.dropFailed()
		d.errs = append(d.errs, expandErrs...)
	}
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return cfg, nil
}

// decoder walks a yaml.Node tree into a Config, collecting errors.
type decoder struct {
	file string
	opts Options
	errs Errors

	// failed holds the scalars whose ${VAR} could not be expanded.
	failed map[*yaml.Node]bool

	// merging holds the mappings whose << merge keys are being resolved,
	// to stop a mapping that merges itself.
	merging map[*yaml.Node]bool

	// steps counts the nodes visited, so that a small file of aliases to
	// aliases cannot make the walk quadratic or exponential.
	steps             int
	tooMany           bool
	errsBeforeTooMany int // the errors found before steps ran out
	tooDeep           bool
	keyNeed           *keyNeed // the first rule found that needs hmac_key
}

// keyNeed records where a rule that needs hmac_key was first seen.
type keyNeed struct {
	pos   Pos
	rule  string
	field string
}

const (
	maxSteps = 1_000_000 // mapping entries, list items and parameters visited
	maxDepth = 64        // nesting of rule parameters
)

// parseYAML parses data into a node tree and returns its root, or nil
// after recording why there is none.
func (d *decoder) parseYAML(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errAt(Pos{File: d.file, Line: 1, Col: 1}, "", errors.New(emptyFile))
		} else {
			d.yamlError(data, err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorf(&next, "", "a second YAML document starts here: the file must hold one document")
	case !errors.Is(err, io.EOF):
		d.yamlError(data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.errAt(Pos{File: d.file, Line: 1, Col: 1}, "", errors.New(emptyFile))
			return nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == nullTag {
		d.errAt(nodePos(d.file, root), "", errors.New(emptyFile))
		return nil
	}
	return root
}

const emptyFile = "the file is empty: expected version: 1 and a list of workflows"

// yamlError records a syntax error from yaml.v3, whose messages read
// "yaml: line N: problem" and carry no column. For a parser error (a line
// indented wrongly inside a block, say) N is not where the problem is but
// the line before the block that holds it, counted from 0: a key indented
// one space too far on line 14 of a list that starts on line 9 reads
// "line 8". problemLine finds the line itself.
func (d *decoder) yamlError(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: d.file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				pos.Line, msg = n, after
			}
		}
	}
	if pos.Line > 0 {
		pos.Line, pos.Col = problemLine(data, err.Error(), pos.Line)
	}
	d.errAt(pos, "", fmt.Errorf("invalid YAML: %s", msg))
}

// searchBudget bounds the bytes problemLine parses in all, one prefix of
// the file per line: a workflow file of a few hundred lines costs
// milliseconds, and a huge one keeps yaml.v3's line.
const searchBudget = 16 << 20

// problemLine returns the line (and the column of its first character) on
// which the syntax error want first appears: the shortest prefix of whole
// lines, from line from on, that fails with exactly the same message. yaml.v3
// reports the same text for a prefix that ends at the offending line,
// because the block it names started before it; a prefix that stops short
// of it parses, since the end of the text closes every block. It returns
// from and 0 when no prefix fails alike (an error only the end of the file
// shows).
func problemLine(data []byte, want string, from int) (line, col int) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	end, spent := 0, 0
	for i, l := range lines {
		end += len(l)
		n := i + 1
		if n < from {
			continue
		}
		if spent += end; spent > searchBudget {
			break
		}
		if err := syntaxError(data[:end]); err != nil && err.Error() == want {
			if !blockError(want) || len(bytes.TrimSpace(l)) == 0 {
				return n, 0
			}
			return n, len(l) - len(bytes.TrimLeft(l, " \t")) + 1
		}
	}
	return from, 0
}

// blockError reports whether a yaml.v3 error is about the first token of a
// line that fits no block: a key or list item indented wrongly. Only then
// does the line's first character mark the problem's column.
func blockError(msg string) bool {
	return strings.HasSuffix(msg, "did not find expected key") || strings.HasSuffix(msg, "did not find expected '-' indicator")
}

// syntaxError returns the error yaml.v3 meets in data, if any: in its first
// document or in what follows it.
func syntaxError(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// dropFailed removes the errors about values whose expansion failed: their
// text is still ${VAR}, and the expansion error already says why.
func (d *decoder) dropFailed() {
	if len(d.failed) == 0 {
		return
	}
	bad := make(map[Pos]bool, len(d.failed))
	for n := range d.failed {
		bad[nodePos(d.file, n)] = true
	}
	kept := d.errs[:0]
	for _, e := range d.errs {
		if !bad[e.Pos] {
			kept = append(kept, e)
		}
	}
	d.errs = kept
}

func (d *decoder) errAt(pos Pos, field string, err error) {
	d.errs = append(d.errs, &Error{Pos: pos, Field: field, Err: err})
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.errAt(nodePos(d.file, n), field, fmt.Errorf(format, args...))
}

func nodePos(file string, n *yaml.Node) Pos {
	return Pos{File: file, Line: n.Line, Col: n.Column}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// YAML tags, as Node.ShortTag returns them.
const (
	nullTag  = "!!null"
	boolTag  = "!!bool"
	intTag   = "!!int"
	floatTag = "!!float"
	mergeTag = "!!merge"
)

// describe names the kind of a node for "expected X, got Y" messages. It
// never includes the value, which may be a secret.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case nullTag:
			return "nothing"
		case boolTag:
			return "a boolean"
		case intTag, floatTag:
			return "a number"
		}
		return "a string"
	}
	return "something else"
}

// truncate shortens s for quoting in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := range s {
		if i > n {
			return s[:i] + "…"
		}
	}
	return s
}

// spend counts one visited node and reports whether the budget allows
// more; it records the error once when it runs out.
func (d *decoder) spend(n *yaml.Node) bool {
	d.steps++
	if d.steps <= maxSteps {
		return true
	}
	if !d.tooMany {
		d.tooMany = true
		d.errsBeforeTooMany = len(d.errs)
		d.errorf(n, "", "the document is too large: more than %d entries, counting those reached through aliases", maxSteps)
	}
	return false
}

// deref follows aliases to the node they name.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// pair is one key and value of a mapping.
type pair struct {
	name     string
	key, val *yaml.Node
}

// pairs returns the entries of mapping n in file order. Duplicate keys and
// keys that are not scalars are errors. Merge keys (<<: *anchor) are
// resolved: the merged entries take the place of the << key, and the
// mapping's own keys win over merged ones.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	if d.merging[n] {
		d.errorf(n, path, "a << merge includes the mapping it is in")
		return nil
	}
	d.merging[n] = true
	defer delete(d.merging, n)

	own := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.deref(n.Content[i])
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "expected a key name, got %s", describe(k))
			continue
		}
		if first, dup := own[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "duplicate key %q (first at line %d, column %d)", truncate(k.Value, 60), first.Line, first.Column)
			continue
		}
		own[k.Value] = k
	}
	var out []pair
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.deref(n.Content[i]), n.Content[i+1]
		if !d.spend(k) {
			return out
		}
		if isMerge(k) {
			for _, m := range d.mergeSources(v, path) {
				for _, p := range d.pairs(m, path) {
					if own[p.name] == nil && !seen[p.name] {
						seen[p.name] = true
						out = append(out, p)
					}
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode || own[k.Value] != k {
			continue // reported above
		}
		seen[k.Value] = true
		out = append(out, pair{name: k.Value, key: k, val: v})
	}
	return out
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag
}

// mergeSources returns the mappings a << key merges: one mapping or a list
// of them.
func (d *decoder) mergeSources(v *yaml.Node, path string) []*yaml.Node {
	if !d.spend(v) {
		return nil
	}
	v = d.deref(v)
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			c = d.deref(c)
			if c.Kind != yaml.MappingNode {
				d.errorf(c, path, "<< merges mappings, got %s", describe(c))
				continue
			}
			out = append(out, c)
		}
		return out
	}
	d.errorf(v, path, "<< merges a mapping or a list of mappings, got %s", describe(v))
	return nil
}

// key is one accepted key of a mapping and how to decode its value.
type key struct {
	name string
	set  func(v *yaml.Node, path string)
}

func keyNames(keys []key) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

// keySet is what fields found in a mapping.
type keySet struct {
	known   map[string]pair
	order   []pair // known keys in file order
	unknown []pair
}

func (ks keySet) has(name string) bool {
	_, ok := ks.known[name]
	return ok
}

// fields decodes mapping n with keys: it calls each key's set for the
// value found and collects the keys it does not know, for the caller to
// report with reportUnknown once it can name the mapping.
func (d *decoder) fields(n *yaml.Node, path string, keys []key) keySet {
	ks := keySet{known: make(map[string]pair)}
	for _, p := range d.pairs(n, path) {
		var k *key
		for i := range keys {
			if keys[i].name == p.name {
				k = &keys[i]
				break
			}
		}
		if k == nil {
			ks.unknown = append(ks.unknown, p)
			continue
		}
		ks.known[p.name] = p
		ks.order = append(ks.order, p)
		k.set(p.val, joinPath(path, p.name))
	}
	return ks
}

// reportUnknown reports each unknown key of ks, saying where it is (such
// as `in workflow "ml"`) and which keys are valid there.
func (d *decoder) reportUnknown(ks keySet, path, where string, valid []string) {
	for _, p := range ks.unknown {
		d.unknownKey(p, path, where, valid)
	}
}

func (d *decoder) unknownKey(p pair, path, where string, valid []string) {
	msg := fmt.Sprintf("unknown key %q %s (expected one of: %s)", truncate(p.name, 60), where, strings.Join(valid, ", "))
	if s := didyoumean.Closest(p.name, valid); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	d.errAt(nodePos(d.file, p.key), joinPath(path, p.name), errors.New(msg))
}

// mapping reports whether n is a mapping, recording an error saying what
// was expected when it is not.
func (d *decoder) mapping(n *yaml.Node, path, what string) bool {
	if n.Kind == yaml.MappingNode {
		return true
	}
	d.errorf(n, path, "expected %s, got %s", what, describe(n))
	return false
}

// isNull reports whether n is an empty value (key:, ~ or null).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

// list returns the items of a sequence; null is an empty list.
func (d *decoder) list(v *yaml.Node, path, what string) ([]*yaml.Node, bool) {
	v = d.deref(v)
	switch {
	case isNull(v):
		return nil, true
	case v.Kind == yaml.SequenceNode:
		for range v.Content {
			if !d.spend(v) {
				return nil, false
			}
		}
		return v.Content, true
	}
	d.errorf(v, path, "expected %s, got %s", what, describe(v))
	return nil, false
}

// str decodes a scalar as a string; null is "". Any scalar is accepted
// (prefix: 2024 is the string "2024").
func (d *decoder) str(v *yaml.Node, path string) string {
	v = d.deref(v)
	switch {
	case isNull(v):
		return ""
	case v.Kind == yaml.ScalarNode:
		return v.Value
	}
	d.errorf(v, path, "expected a string, got %s", describe(v))
	return ""
}

// secret decodes a scalar as a Secret. Like every decoder here, its
// messages do not include the value.
func (d *decoder) secret(v *yaml.Node, path string) Secret {
	return Secret(d.str(v, path))
}

// boolean decodes true or false.
func (d *decoder) boolean(v *yaml.Node, path string) bool {
	v = d.deref(v)
	var b bool
	if v.Kind == yaml.ScalarNode && v.ShortTag() == boolTag && v.Decode(&b) == nil {
		return b
	}
	d.errorf(v, path, "expected true or false, got %s", describe(v))
	return false
}

// integer decodes an integer; ok is false after an error.
func (d *decoder) integer(v *yaml.Node, path string) (int, bool) {
	v = d.deref(v)
	var i int
	if v.Kind == yaml.ScalarNode && v.ShortTag() == intTag {
		if err := v.Decode(&i); err == nil {
			return i, true
		}
		d.errorf(v, path, "integer out of range")
		return 0, false
	}
	d.errorf(v, path, "expected an integer, got %s", describe(v))
	return 0, false
}

// enum decodes a string that must be one of allowed; it returns "" after an
// error, so that later checks do not pile up on a bad value.
func (d *decoder) enum(v *yaml.Node, path, what string, allowed ...string) string {
	v = d.deref(v)
	if v.Kind != yaml.ScalarNode {
		d.errorf(v, path, "expected %s, got %s", orList(allowed), describe(v))
		return ""
	}
	s := v.Value
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.errorf(v, path, "%q is not %s (expected %s)", truncate(s, 40), what, orList(allowed))
	return ""
}

// orList returns "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// duration decodes a duration in Go syntax plus d for days; it must not
// be negative. ok is false after an error.
func (d *decoder) duration(v *yaml.Node, path string) (time.Duration, bool) {
	v = d.deref(v)
	if v.Kind != yaml.ScalarNode || isNull(v) {
		d.errorf(v, path, "expected a duration such as 30s, 15m, 36h or 90d, got %s", describe(v))
		return 0, false
	}
	dur, err := ParseDuration(v.Value)
	switch {
	case err != nil:
		d.errorf(v, path, "%v", err)
		return 0, false
	case dur < 0:
		d.errorf(v, path, "duration must not be negative")
		return 0, false
	}
	return dur, true
}

// strList decodes a list of non-empty, distinct strings, or one string as
// a list of one.
func (d *decoder) strList(v *yaml.Node, path, what string) []string {
	v = d.deref(v)
	if v.Kind == yaml.ScalarNode && !isNull(v) {
		if v.Value == "" {
			d.errorf(v, path, "expected %s, got an empty string", what)
			return nil
		}
		return []string{v.Value}
	}
	items, ok := d.list(v, path, what)
	if !ok {
		return nil
	}
	var out []string
	seen := make(map[string]bool)
	for i, it := range items {
		it = d.deref(it)
		p := indexPath(path, i)
		if it.Kind != yaml.ScalarNode || isNull(it) || it.Value == "" {
			d.errorf(it, p, "expected a column name, got %s", describeEmpty(it))
			continue
		}
		if seen[it.Value] {
			d.errorf(it, p, "%q is listed twice", truncate(it.Value, 60))
			continue
		}
		seen[it.Value] = true
		out = append(out, it.Value)
	}
	return out
}

func describeEmpty(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Value == "" && !isNull(n) {
		return "an empty string"
	}
	return describe(n)
}

// value decodes a rule parameter to string, int, float64, bool, nil,
// []any or map[string]any.
func (d *decoder) value(v *yaml.Node, path string, depth int) any {
	if !d.spend(v) {
		return nil
	}
	v = d.deref(v)
	if depth > maxDepth {
		if !d.tooDeep {
			d.tooDeep = true
			d.errorf(v, path, "nested more than %d levels deep", maxDepth)
		}
		return nil
	}
	switch v.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(v.Content))
		for i, c := range v.Content {
			out = append(out, d.value(c, indexPath(path, i), depth+1))
		}
		return out
	case yaml.MappingNode:
		out := make(map[string]any)
		for _, p := range d.pairs(v, path) {
			out[p.name] = d.value(p.val, joinPath(path, p.name), depth+1)
		}
		return out
	case yaml.ScalarNode:
		return scalarValue(v)
	}
	return nil
}

// scalarValue returns the Go value of a scalar by its resolved tag:
// timestamps, binary and anything else not a number, boolean or null stay
// the string written.
func scalarValue(v *yaml.Node) any {
	switch v.ShortTag() {
	case nullTag:
		return nil
	case boolTag:
		var b bool
		if v.Decode(&b) == nil {
			return b
		}
	case intTag:
		var i int
		if v.Decode(&i) == nil {
			return i
		}
		var f float64
		if v.Decode(&f) == nil {
			return f
		}
	case floatTag:
		var f float64
		if v.Decode(&f) == nil {
			return f
		}
	}
	return v.Value
}
