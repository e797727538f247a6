package agent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
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

// VerifyResult is the leak check of one redacted column in one feed.
type VerifyResult struct {
	Input    string   `json:"input"`
	Table    string   `json:"table"`
	Column   string   `json:"column"`
	Rule     string   `json:"rule"`
	Feed     string   `json:"feed"`
	Check    string   `json:"check,omitempty"` // values: no source value anywhere; rows: no row kept its own
	Source   int64    `json:"source_values"`
	Checked  int64    `json:"feed_values"`
	Leaks    int64    `json:"leaks"`
	LeakKeys []string `json:"leak_keys,omitempty"` // source_primary_key of offending feed rows, at most 5
	Skipped  string   `json:"skipped,omitempty"`
}

// Rules whose outputs come from domains so large that any source value in
// the feed is a leak; the others move a value within its domain (a fake
// first name may be another row's real one) and are checked row by row.
var valueChecked = map[string]bool{"redact_email": true, "hash": true, "random_string": true, "mask": true}
var rowChecked = map[string]bool{"fake": true, "shift_date": true, "noise": true}

// Verify proves, for every redacted column of a workflow, that no source
// value of it appears in the feeds: values are compared as keyed hashes
// under a key made for this check alone, so neither side's values are kept
// in memory or printed. Rules that output no source data (destroy, replace,
// keep) need no check.
func (r *Runner) Verify(ctx context.Context, cfg *config.Config, wf *config.Workflow) ([]VerifyResult, error) {
	key := []byte(cfg.HMACKey.Reveal())
	var feeds []nopii.Feed
	defer func() {
		for _, f := range feeds {
			f.Close()
		}
	}()
	for i := range wf.Feeds {
		f, err := r.OpenFeed(ctx, wf, &wf.Feeds[i])
		if err != nil {
			return nil, fmt.Errorf("open %s feed: %w", wf.Feeds[i].Type, err)
		}
		feeds = append(feeds, f)
	}
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
	jobs, err := resolve(ctx, src, in, key)
	if err != nil {
		return nil, err
	}
	h := hmac.New(sha256.New, salt)
	var out []VerifyResult
	for _, j := range jobs {
		if j.err != nil || j.entry == nil {
			continue
		}
		c, err := compile(j, key)
		if err != nil {
			return nil, err
		}
		for _, rule := range j.entry.Columns {
			if !valueChecked[rule.Rule] && !rowChecked[rule.Rule] && rule.Rule != "json" {
				continue
			}
			for _, f := range feeds {
				res := VerifyResult{Input: in.Name, Table: j.table.Name.String(), Column: rule.Column, Rule: rule.Rule, Feed: f.Kind()}
				fr, ok := f.(ColumnReader)
				switch {
				case rule.Rule == "json":
					res.Skipped = "values inside json documents are not checked yet"
				case !ok:
					res.Skipped = "the " + f.Kind() + " feed cannot be read back yet"
				case valueChecked[rule.Rule]:
					res.Check = "values"
					err = checkValues(ctx, sc, fr, j, rule.Column, h, &res)
				default:
					res.Check = "rows"
					err = checkRows(ctx, sc, fr, j, rule.Column, h, c, &res)
				}
				if err != nil {
					return nil, err
				}
				out = append(out, res)
			}
		}
	}
	return out, nil
}

type digest [16]byte

func sum(h hash.Hash, b []byte) digest {
	h.Reset()
	h.Write(b)
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

// checkValues: no non-empty source value of the column appears anywhere in
// the feed's column.
func checkValues(ctx context.Context, sc sourceColumns, fr ColumnReader, j *job, column string, h hash.Hash, res *VerifyResult) error {
	seen := map[digest]struct{}{}
	err := sc.ColumnText(ctx, j.table, column, func(_, v []byte) error {
		if len(v) > 0 {
			seen[sum(h, v)] = struct{}{}
			res.Source++
		}
		return nil
	})
	if err != nil {
		return err
	}
	return fr.ColumnText(ctx, j.target.Name, column, func(k, v []byte) error {
		res.Checked++
		if len(v) > 0 {
			if _, ok := seen[sum(h, v)]; ok {
				res.leak(k)
			}
		}
		return nil
	})
}

// checkRows: no row of the feed kept its own source value.
func checkRows(ctx context.Context, sc sourceColumns, fr ColumnReader, j *job, column string, h hash.Hash, c *compiled, res *VerifyResult) error {
	byKey := map[digest]digest{}
	scratch := make([]byte, 0, 128)
	err := sc.ColumnText(ctx, j.table, column, func(k, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		res.Source++
		if c.keyFn != nil { // the feed holds the hash of a redacted key
			scratch = scratch[:0]
			hk, err := apply(c.keyFn, &scratch, k)
			if err != nil {
				return err
			}
			k = hk
		}
		byKey[sum(h, k)] = sum(h, v)
		return nil
	})
	if err != nil {
		return err
	}
	return fr.ColumnText(ctx, j.target.Name, column, func(k, v []byte) error {
		res.Checked++
		if len(v) > 0 {
			if own, ok := byKey[sum(h, k)]; ok && own == sum(h, v) {
				res.leak(k)
			}
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
