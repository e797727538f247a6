package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/nopii/nopii"
)

// rowPath is the per-row function of one table's copy: it redacts a
// source row (redactRow, which CDC's stream uses too), drops rows whose key
// was forgotten (SPEC §7), and hands the row to every load. A stream of
// changes checks forgottenSet.has on the redacted key the same way, so a
// forgotten subject comes back by no mode. A rowPath keeps scratch state:
// one per stream.
type rowPath struct {
	c         *compiled
	table     *nopii.Table
	forgotten *forgottenSet    // nil: nothing forgotten in this table
	ids       *identifierCheck // nil: no forgotten identifier to look for
	refs      *forgottenRefs   // nil: no reference to a table with forgotten rows
	loads     []nopii.RowWriter

	out        [][]byte
	scratch    []byte
	rows       int64 // rows handed to the loads
	suppressed int64 // rows dropped because their key (or a NOT NULL reference's) was forgotten
	unlinked   int64 // rows whose references to forgotten rows were set to NULL
}

func newRowPath(c *compiled, t *nopii.Table, forgotten *forgottenSet, loads []nopii.Load) *rowPath {
	ws := make([]nopii.RowWriter, len(loads))
	for i, l := range loads {
		ws[i] = l
	}
	return &rowPath{c: c, table: t, forgotten: forgotten, loads: ws,
		out: make([][]byte, len(t.Columns)+1), scratch: make([]byte, 0, 4096)}
}

// row takes the source's values: the table's columns, then the key text.
func (p *rowPath) row(vals [][]byte) error {
	if p.ids.forgotten(vals) {
		p.suppressed++
		return nil
	}
	if err := p.c.redactRow(p.table, vals, p.out, &p.scratch); err != nil {
		return err
	}
	if p.forgotten.has(p.out[len(p.table.Columns)]) {
		p.suppressed++
		return nil
	}
	if p.refs != nil {
		keep, unlinked, err := p.refs.apply(vals[len(p.table.Columns)+1:], p.out)
		if err != nil {
			return err
		}
		if !keep {
			p.suppressed++
			return nil
		}
		if unlinked {
			p.unlinked++
		}
	}
	for _, l := range p.loads {
		if err := l.WriteRow(p.out); err != nil {
			return err
		}
	}
	p.rows++
	return nil
}

// feedKey returns the key as the feeds hold it: hashed when a key column
// has a rule. The result aliases the path's scratch buffer.
func (p *rowPath) feedKey(k []byte) ([]byte, error) {
	p.scratch = p.scratch[:0]
	return p.c.redactKey(k, &p.scratch)
}

// redactRow is the one per-row redaction path, for copies and streamed
// changes alike: vals are a source row (the table's columns, then the key
// text); out gets the row to load. out aliases vals and *scratch, which it
// resets.
func (c *compiled) redactRow(t *nopii.Table, vals, out [][]byte, scratch *[]byte) error {
	n := len(t.Columns)
	if !c.hasAny && c.keyFn == nil {
		copy(out, vals)
		return nil
	}
	*scratch = (*scratch)[:0]
	for i, f := range c.funcs {
		if f == nil {
			out[i] = vals[i]
			continue
		}
		v, err := apply(f, scratch, vals[i])
		if err != nil {
			return fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
		}
		out[i] = v
	}
	out[n] = vals[n]
	if c.keyFn != nil {
		v, err := c.redactKey(vals[n], scratch)
		if err != nil {
			return err
		}
		out[n] = v
	}
	return nil
}

// redactKey hashes a key text when a key column is redacted.
func (c *compiled) redactKey(k []byte, scratch *[]byte) ([]byte, error) {
	if c.keyFn == nil {
		return k, nil
	}
	v, err := apply(c.keyFn, scratch, k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nopii.SourcePrimaryKeyColumn, err)
	}
	return v, nil
}

// forgottenSet is the suppression list of one table: keyed hashes of the
// source_primary_key values forgotten by subject requests. The feeds keep
// only the hashes, so a row's key is hashed to look it up: one HMAC into a
// fixed buffer and one map lookup, no allocation.
type forgottenSet struct {
	set map[[sha256.Size]byte]struct{}
	key []byte // the derived key of mac
	mac hash.Hash
	sum [sha256.Size]byte
}

// fork returns a set sharing s's hashes with its own hasher, for another
// goroutine.
func (s *forgottenSet) fork() *forgottenSet {
	if s == nil {
		return nil
	}
	return &forgottenSet{set: s.set, key: s.key, mac: hmac.New(sha256.New, s.key)}
}

// Domain separation: the forgotten-key and subject hashes use keys derived
// from hmac_key, never hmac_key itself, so that neither can be compared
// with a hash that a redaction rule put in a feed.
const (
	forgottenKeyLabel = "nopii forgotten source_primary_key v1"
	subjectLabel      = "nopii data subject v1"
	identifierLabel   = "nopii forgotten identifier v1"
)

func derivedKey(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// forgottenHasher returns the function that hashes a feed key for the
// suppression list, as hex.
func forgottenHasher(key []byte) func(k []byte) string {
	m := hmac.New(sha256.New, derivedKey(key, forgottenKeyLabel))
	return func(k []byte) string {
		m.Reset()
		m.Write(k)
		return hex.EncodeToString(m.Sum(nil))
	}
}

// identifierHash is the keyed hash (hex) of a forgotten identifier: a
// column declared identifying and its value, as the row path hashes it.
func identifierHash(key []byte, column, value string) string {
	m := hmac.New(sha256.New, derivedKey(key, identifierLabel))
	m.Write([]byte(column))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// newForgottenSet builds the set of forgotten keys from hex hashes; nil
// when there are none, which makes has a nil check.
func newForgottenSet(key []byte, hashes []string) (*forgottenSet, error) {
	return newHashSet(key, forgottenKeyLabel, hashes)
}

func newHashSet(key []byte, label string, hashes []string) (*forgottenSet, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	dk := derivedKey(key, label)
	s := &forgottenSet{set: make(map[[sha256.Size]byte]struct{}, len(hashes)), key: dk, mac: hmac.New(sha256.New, dk)}
	for _, h := range hashes {
		var d [sha256.Size]byte
		if n, err := hex.Decode(d[:], []byte(h)); err != nil || n != len(d) {
			return nil, fmt.Errorf("a forgotten key hash is malformed (want %d hex digits)", 2*len(d))
		}
		s.set[d] = struct{}{}
	}
	return s, nil
}

func (s *forgottenSet) has(k []byte) bool {
	if s == nil {
		return false
	}
	s.mac.Reset()
	s.mac.Write(k)
	s.mac.Sum(s.sum[:0])
	_, ok := s.set[s.sum]
	return ok
}

// ForgottenLister is a feed that keeps a suppression list (SPEC §7).
type ForgottenLister interface {
	// ForgottenKeys returns the keyed hashes (hex) of a table's forgotten keys.
	ForgottenKeys(ctx context.Context, k nopii.StateKey) ([]string, error)
}

// loadForgotten unites the suppression lists that the feeds keep for a
// table: a key forgotten through any feed stays out of all of them.
func loadForgotten(ctx context.Context, feeds []nopii.Feed, k nopii.StateKey, key []byte) (*forgottenSet, error) {
	var all []string
	for _, f := range feeds {
		fl, ok := f.(ForgottenLister)
		if !ok {
			continue
		}
		hs, err := fl.ForgottenKeys(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read the %s feed's forgotten keys: %w", f.Kind(), err)
		}
		all = append(all, hs...)
	}
	return newForgottenSet(key, all)
}

// IdentifierLister is a feed that keeps the forgotten identifiers of a
// workflow's subject requests (SPEC §7), for tables copied after them.
type IdentifierLister interface {
	// ForgottenIdentifiers returns the keyed hashes of the identifiers
	// (column and value) forgotten in the workflow.
	ForgottenIdentifiers(ctx context.Context, workflow string) ([]string, error)
}

// identifierCheck keeps out the rows of a table with identifies columns
// whose identifier was forgotten: their value, as the source sends it, is
// hashed with the column's name. Only columns whose binary form is their
// text (text, varchar, citext and domains over them) are checked; a match is
// exact, as forget's is for these types.
type identifierCheck struct {
	cols  []int    // indexes of the identifying columns in the row
	names [][]byte // their names, then a 0 byte
	set   *forgottenSet
	buf   []byte
}

// identifiers returns the forgotten-identifier check of a job's table: by
// its identifies columns (none when it declares none).
func (j *job) identifiers(ctx context.Context, feeds []nopii.Feed, workflow string, key []byte) (*identifierCheck, error) {
	if j.entry == nil || len(j.entry.Identifies) == 0 {
		return nil, nil
	}
	return loadIdentifiers(ctx, feeds, workflow, j.table, j.entry.Identifies, key)
}

// loadIdentifiers returns the check for a table, or nil when the table
// declares no identifying column of a text type or nothing was forgotten.
func loadIdentifiers(ctx context.Context, feeds []nopii.Feed, workflow string, t *nopii.Table, identifies []string, key []byte) (*identifierCheck, error) {
	ic := &identifierCheck{}
	for _, name := range identifies {
		for i, c := range t.Columns {
			if c.Name != name || c.Type == nil {
				continue
			}
			switch c.Type.Underlying().Name {
			case "text", "varchar", "citext":
				ic.cols = append(ic.cols, i)
				ic.names = append(ic.names, append([]byte(name), 0))
			}
		}
	}
	if len(ic.cols) == 0 {
		return nil, nil
	}
	var all []string
	for _, f := range feeds {
		il, ok := f.(IdentifierLister)
		if !ok {
			continue
		}
		hs, err := il.ForgottenIdentifiers(ctx, workflow)
		if err != nil {
			return nil, fmt.Errorf("read the %s feed's forgotten identifiers: %w", f.Kind(), err)
		}
		all = append(all, hs...)
	}
	set, err := newHashSet(key, identifierLabel, all)
	if err != nil || set == nil {
		return nil, err
	}
	ic.set = set
	return ic, nil
}

// fork returns a check of its own for another goroutine.
func (ic *identifierCheck) fork() *identifierCheck {
	if ic == nil {
		return nil
	}
	return &identifierCheck{cols: ic.cols, names: ic.names, set: ic.set.fork()}
}

// forgotten reports whether a source row holds a forgotten identifier.
func (ic *identifierCheck) forgotten(vals [][]byte) bool {
	if ic == nil {
		return false
	}
	for i, c := range ic.cols {
		if vals[c] == nil {
			continue
		}
		ic.buf = append(append(ic.buf[:0], ic.names[i]...), vals[c]...)
		if ic.set.has(ic.buf) {
			return true
		}
	}
	return false
}
