package scanner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"

	"github.com/nopii/nopii"
)

// ColumnFinding is a column judged to hold personal data (SPEC §5, `nopii
// scan --format json`).
type ColumnFinding struct {
	Schema     string         `json:"schema"`
	Table      string         `json:"table"`
	Column     string         `json:"column"`
	Kind       string         `json:"kind"`
	Confidence float64        `json:"confidence"`
	Evidence   string         `json:"evidence"`
	Rule       map[string]any `json:"rule"`
	RuleYAML   string         `json:"-"`
}

// Options bound a scan.
type Options struct {
	Schemas []string // glob patterns; default every schema
	Sample  int      // values read per column, a bounded LIMIT; default 1000
	// Covered reports columns the workflow already has a rule for; they are
	// left out of the findings.
	Covered func(t nopii.TableName, column string) bool
}

// Scan classifies every column of the tables (and partitioned roots) of the
// chosen schemas from its name and a bounded sample of its values. It never
// reads a whole table.
func Scan(ctx context.Context, src nopii.Source, o Options) ([]ColumnFinding, error) {
	if o.Sample <= 0 {
		o.Sample = 1000
	}
	rels, err := src.Relations(ctx)
	if err != nil {
		return nil, err
	}
	var out []ColumnFinding
	for _, r := range rels {
		if r.Partition || (r.Kind != nopii.RelTable && r.Kind != nopii.RelPartitioned) || !schemaChosen(o.Schemas, r.Name.Schema) {
			continue
		}
		// Sampling needs no key: a table without one is scanned too.
		t, err := src.Describe(ctx, r, nil)
		if err != nil && !(errors.Is(err, nopii.ErrNoPrimaryKey) && t != nil) {
			return nil, fmt.Errorf("scan: %w", err)
		}
		for _, c := range t.Columns {
			if o.Covered != nil && o.Covered(t.Name, c.Name) {
				continue
			}
			f, ok, err := Judge(c, func() ([]string, error) { return src.Sample(ctx, t, c.Name, o.Sample) })
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			out = append(out, ColumnFinding{Schema: t.Name.Schema, Table: t.Name.Name, Column: c.Name, Kind: f.Kind,
				Confidence: f.Confidence, Evidence: f.Evidence, Rule: ruleMap(f.Rule), RuleYAML: f.Rule})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Schema+"."+a.Table != b.Schema+"."+b.Table {
			return a.Schema+"."+a.Table < b.Schema+"."+b.Table
		}
		return false
	})
	return out, nil
}

const ipRule = "{ rule: fake, kind: ipv4 }"

// Judge classifies one column: by its type (inet and cidr hold IP
// addresses), its name, and, for text columns only, the values sample
// returns — a date never holds a phone number, whatever its digits look
// like. The evidence never quotes a value.
func Judge(c nopii.Column, sample func() ([]string, error)) (Finding, bool, error) {
	var values []string
	switch base := c.Type.Underlying(); base.Name {
	case "inet", "cidr":
		return Finding{Kind: "ip", Confidence: 0.9, Evidence: "column type " + base.Name, Rule: ipRule}, true, nil
	case "text", "varchar", "bpchar", "citext", "name", "json", "jsonb":
		var err error
		if values, err = sample(); err != nil {
			return Finding{}, false, err
		}
	}
	f, ok := Classify(c.Name, values)
	if ok {
		f.Evidence = evidence(f, len(values))
	}
	return f, ok, nil
}

func schemaChosen(patterns []string, schema string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, schema); ok {
			return true
		}
	}
	return false
}

func evidence(f Finding, n int) string {
	if f.Evidence == "column name" {
		return "column name"
	}
	return fmt.Sprintf("%.0f%% of %d sampled values", f.Confidence*100, n)
}

// ruleMap turns the suggested rule's YAML flow ({ rule: fake, kind: phone })
// into the JSON object of SPEC §5.
func ruleMap(flow string) map[string]any {
	m := map[string]any{}
	for _, part := range splitFlow(flow) {
		for i := 0; i < len(part); i++ {
			if part[i] == ':' {
				k, v := trim(part[:i]), trim(part[i+1:])
				var n int
				if _, err := fmt.Sscan(v, &n); err == nil && fmt.Sprint(n) == v {
					m[k] = n
				} else {
					m[k] = v
				}
				break
			}
		}
	}
	return m
}

func splitFlow(s string) []string {
	s = trim(s)
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = s[1 : len(s)-1]
	}
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func trim(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
