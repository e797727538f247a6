package agent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sort"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/scanner"
)

// ColumnReader is a feed whose stored values can be read back for the leak
// check: every row's source_primary_key and the column's text, nil for NULL.
type ColumnReader interface {
	ColumnText(ctx context.Context, target nopii.TableName, column string, row func(key, value []byte) error) error
}

// sourceColumns is the source side of the leak check.
type sourceColumns interface {
	ColumnText(ctx context.Context, t *nopii.Table, column string, row func(key, value []byte) error) error
}

// VerifyResult is the leak check of one redacted column (or one path of a
// json column) in one feed.
type VerifyResult struct {
	Input    string   `json:"input"`
	Table    string   `json:"table"`
	Column   string   `json:"column"`
	Path     string   `json:"path,omitempty"` // json rule: the path inside the documents
	Rule     string   `json:"rule"`
	Feed     string   `json:"feed"`
	Check    string   `json:"check,omitempty"` // values: no source value anywhere; rows: no row kept its own
	Source   int64    `json:"source_values"`
	Checked  int64    `json:"feed_values"`
	Leaks    int64    `json:"leaks"`
	LeakKeys []string `json:"leak_keys,omitempty"` // source_primary_key of offending feed rows, at most 5
	Skipped  string   `json:"skipped,omitempty"`
	// A column copied without a rule (check "unruled") that the scanner
	// judges PII on the feed's own values: what it looks like, and the
	// rule to add.
	Kind    string `json:"kind,omitempty"`
	AddRule string `json:"add_rule,omitempty"`
}

// Rules whose outputs come from domains so large that any source value in
// the feed is a leak; the others move a value within its domain (a fake
// first name may be another row's real one) and are checked row by row.
var valueChecked = map[string]bool{"redact_email": true, "hash": true, "random_string": true, "mask": true}
var rowChecked = map[string]bool{"fake": true, "shift_date": true, "noise": true}

// Verify proves, for every redacted column of a workflow, that no source
// value of it appears in the feeds — twin tables and lake objects (the
// latest snapshot and its deltas), and, for json rules, the scalars at each
// redacted path: values are compared as keyed hashes under a key made for
// this check alone, so neither side's values are kept in memory or printed.
// Rules that output no source data (destroy, replace, keep) need no check.
func (r *Runner) Verify(ctx context.Context, cfg *config.Config, wf *config.Workflow) ([]VerifyResult, error) {
	key := []byte(cfg.HMACKey.Reveal())
	feeds, err := r.openFeeds(ctx, wf)
	if err != nil {
		return nil, err
	}
	defer closeFeeds(feeds)
	salt := make([]byte, 32)
	rand.Read(salt)
	var out []VerifyResult
	for i := range wf.Inputs {
		in := &wf.Inputs[i]
		res, err := r.verifyInput(ctx, in, feeds, key, salt)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Name, err)
		}
		out = append(out, res...)
	}
	return out, nil
}

// check is one thing to verify of a column: the column itself (path "")
// or the scalars at one path of its json documents, with the rule that
// redacts them.
type check struct {
	path string
	rule string
	json *redact.JSONRewriter // extracts the scalars at path; nil for the column itself
	got  *[][]byte            // where json collects them, per document
}

// checksOf lists what to verify of a column's rule; nil when its rule
// outputs no source data.
func checksOf(rule config.ColumnRule) ([]check, error) {
	if rule.Rule != "json" {
		if valueChecked[rule.Rule] || rowChecked[rule.Rule] {
			return []check{{rule: rule.Rule}}, nil
		}
		return nil, nil
	}
	paths, _ := rule.Params["paths"].(map[string]any)
	var out []check
	for p, spec := range paths {
		m, _ := spec.(map[string]any)
		name, _ := m["rule"].(string)
		if !valueChecked[name] && !rowChecked[name] {
			continue
		}
		jp, err := redact.ParseJSONPath(p)
		if err != nil {
			return nil, fmt.Errorf("column %s: path %s: %w", rule.Column, p, err)
		}
		got := new([][]byte)
		w := redact.NewJSONRewriter([]redact.JSONAction{{Path: jp, Scalar: func(dst []byte, _ redact.JSONKind, text []byte) ([]byte, error) {
			*got = append(*got, append([]byte(nil), text...))
			return append(dst, "null"...), nil
		}}})
		out = append(out, check{path: p, rule: name, json: w, got: got})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// values calls fn with each value a stored value holds for the check: the
// value itself, or the scalars at the path of a json document (none when
// it is not JSON or lacks the path).
func (c check) values(v []byte, canon func([]byte) []byte, fn func([]byte)) {
	if len(v) == 0 {
		return
	}
	if c.json == nil {
		fn(canon(v))
		return
	}
	*c.got = (*c.got)[:0]
	if _, err := c.json.Rewrite(nil, v); err != nil {
		return
	}
	for _, s := range *c.got {
		if len(s) > 0 {
			fn(s)
		}
	}
}

func (r *Runner) verifyInput(ctx context.Context, in *config.Input, feeds []nopii.Feed, key, salt []byte) ([]VerifyResult, error) {
	src, err := r.OpenSource(ctx, in, 1)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	sc, ok := src.(sourceColumns)
	if !ok {
		return nil, fmt.Errorf("the source cannot stream column values")
	}
	jobs, err := resolve(ctx, src, in, key, false)
	if err != nil {
		return nil, err
	}
	h := hmac.New(sha256.New, salt)
	var out []VerifyResult
	for _, j := range jobs {
		if j.err != nil {
			continue
		}
		res, err := checkUnruled(ctx, in, j, feeds)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
		if j.entry == nil {
			continue
		}
		c, err := compile(j, key)
		if err != nil {
			return nil, err
		}
		for _, rule := range j.entry.Columns {
			checks, err := checksOf(rule)
			if err != nil {
				return nil, err
			}
			col, _ := j.table.Column(rule.Column)
			canon := canonical(col)
			for _, ck := range checks {
				for _, f := range feeds {
					res := VerifyResult{Input: in.Name, Table: j.table.Name.String(), Column: rule.Column, Path: ck.path, Rule: ck.rule, Feed: f.Kind()}
					fr, ok := f.(ColumnReader)
					switch {
					case !ok:
						res.Skipped = "the " + f.Kind() + " feed cannot be read back"
					case valueChecked[ck.rule]:
						res.Check = "values"
						err = checkValues(ctx, sc, fr, j, rule.Column, ck, canon, h, &res)
					default:
						res.Check = "rows"
						err = checkRows(ctx, sc, fr, j, rule.Column, ck, canon, h, c, &res)
					}
					switch {
					case errors.Is(err, nopii.ErrNotFound), errors.Is(err, nopii.ErrUnsupportedType):
						res.Check, res.Skipped, res.Source, res.Checked, res.Leaks, res.LeakKeys = "", skipReason(err), 0, 0, 0, nil
					case err != nil:
						return nil, err
					}
					out = append(out, res)
				}
			}
		}
	}
	return out, nil
}

func skipReason(err error) string {
	if errors.Is(err, nopii.ErrUnsupportedType) {
		return "values of this type are not read back from this feed"
	}
	return "the table is not in this feed yet: run first"
}

// canonical renders a value so that the source's text and a feed's text
// of the same value compare equal: timestamps with time zone as UTC (each
// side prints them in its own session's zone).
func canonical(c nopii.Column) func([]byte) []byte {
	if c.Type == nil || c.Type.Underlying().Name != "timestamptz" {
		return func(v []byte) []byte { return v }
	}
	return func(v []byte) []byte {
		s := string(v)
		for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07:00:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return []byte(t.UTC().Format(time.RFC3339Nano))
			}
		}
		return v
	}
}

type digest [16]byte

func sum(h hash.Hash, parts ...[]byte) digest {
	h.Reset()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

// checkValues: no non-empty source value of the column (or path) appears
// anywhere in the feed's column.
func checkValues(ctx context.Context, sc sourceColumns, fr ColumnReader, j *job, column string, ck check, canon func([]byte) []byte, h hash.Hash, res *VerifyResult) error {
	seen := map[digest]struct{}{}
	err := sc.ColumnText(ctx, j.table, column, func(_, v []byte) error {
		ck.values(v, canon, func(s []byte) {
			seen[sum(h, s)] = struct{}{}
			res.Source++
		})
		return nil
	})
	if err != nil {
		return err
	}
	return fr.ColumnText(ctx, j.target.Name, column, func(k, v []byte) error {
		leaked := false
		ck.values(v, canon, func(s []byte) {
			res.Checked++
			if _, ok := seen[sum(h, s)]; ok {
				leaked = true
			}
		})
		if leaked {
			res.leak(k)
		}
		return nil
	})
}

// checkRows: no row of the feed kept its own source value (at the path).
func checkRows(ctx context.Context, sc sourceColumns, fr ColumnReader, j *job, column string, ck check, canon func([]byte) []byte, h hash.Hash, c *compiled, res *VerifyResult) error {
	own := map[digest]struct{}{} // (feed key, value) pairs of the source
	scratch := make([]byte, 0, 128)
	err := sc.ColumnText(ctx, j.table, column, func(k, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		if c.keyFn != nil { // the feed holds the hash of a redacted key
			scratch = scratch[:0]
			hk, err := apply(c.keyFn, &scratch, k)
			if err != nil {
				return err
			}
			k = hk
		}
		ck.values(v, canon, func(s []byte) {
			own[sum(h, k, s)] = struct{}{}
			res.Source++
		})
		return nil
	})
	if err != nil {
		return err
	}
	return fr.ColumnText(ctx, j.target.Name, column, func(k, v []byte) error {
		leaked := false
		ck.values(v, canon, func(s []byte) {
			res.Checked++
			if _, ok := own[sum(h, k, s)]; ok {
				leaked = true
			}
		})
		if leaked {
			res.leak(k)
		}
		return nil
	})
}

func (r *VerifyResult) leak(key []byte) {
	r.Leaks++
	if len(r.LeakKeys) < 5 {
		r.LeakKeys = append(r.LeakKeys, string(key))
	}
}

// errEnough stops reading a feed's column once the sample is full.
var errEnough = errors.New("sample full")

// checkUnruled is the leak class "copied without a rule": each column of
// the table without a rule, judged by the scanner on the values a feed
// holds (its first guardSample), in every feed that can be read back. A
// column judged PII is a leak: its result names the rule to add.
func checkUnruled(ctx context.Context, in *config.Input, j *job, feeds []nopii.Feed) ([]VerifyResult, error) {
	ruled := map[string]bool{}
	if j.entry != nil {
		for _, r := range j.entry.Columns {
			ruled[r.Column] = true
		}
	}
	var out []VerifyResult
	for _, col := range j.table.Columns {
		if ruled[col.Name] {
			continue
		}
		for _, f := range feeds {
			fr, ok := f.(ColumnReader)
			if !ok {
				continue
			}
			var values []string
			if scanner.NeedsValues(col) {
				err := fr.ColumnText(ctx, j.target.Name, col.Name, func(_, v []byte) error {
					if v != nil {
						values = append(values, string(v))
					}
					if len(values) >= guardSample {
						return errEnough
					}
					return nil
				})
				switch {
				case errors.Is(err, nopii.ErrNotFound), errors.Is(err, nopii.ErrUnsupportedType):
					continue
				case err != nil && !errors.Is(err, errEnough):
					return nil, fmt.Errorf("read %s.%s back from the %s feed: %w", j.target.Name, col.Name, f.Kind(), err)
				}
			}
			fd, ok := scanner.Judge(col, values)
			if !ok {
				continue
			}
			out = append(out, VerifyResult{Input: in.Name, Table: j.table.Name.String(), Column: col.Name, Rule: "none", Feed: f.Kind(),
				Check: "unruled", Checked: int64(len(values)), Leaks: 1, Kind: fd.Kind, AddRule: fd.Rule})
		}
	}
	return out, nil
}
