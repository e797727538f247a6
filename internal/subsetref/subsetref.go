// Package subsetref computes a referential subset the slow and obvious
// way, for tests: it reads every row's key and reference columns to the
// client and iterates to a fixpoint in Go, independently of the SQL that
// source/postgres generates. The rules are those of docs/subsets.md.
package subsetref

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Table is one table of the subset's input.
type Table struct {
	Name string   // schema-qualified, unquoted: public.customer
	Key  []string // primary key columns
	// Root, when set, is the SQL condition of the root rows.
	Root         string
	WithChildren bool
	// Window, when set, is a SQL condition that the table's root and
	// child rows must meet (referenced rows need not).
	Window string
}

// Ref is a reference (a foreign key or a virtual one).
type Ref struct {
	From   string
	Cols   []string
	To     string
	ToCols []string
}

type row struct {
	key    string
	root   bool
	window bool
	vals   map[string]*string
}

// Closure returns per table the keys (as copies render source_primary_key)
// of the rows in the subset, sorted; tables the subset does not reach are
// left out.
func Closure(ctx context.Context, conn *pgx.Conn, tables []Table, refs []Ref) (map[string][]string, error) {
	by := map[string]*Table{}
	for i := range tables {
		by[tables[i].Name] = &tables[i]
	}
	cols := map[string][]string{}
	for _, r := range refs {
		cols[r.From] = append(cols[r.From], r.Cols...)
		cols[r.To] = append(cols[r.To], r.ToCols...)
	}
	rows := map[string][]*row{}
	for _, t := range tables {
		keyText := quote(t.Key[0]) + "::text"
		if len(t.Key) > 1 {
			qs := make([]string, len(t.Key))
			for i, k := range t.Key {
				qs[i] = quote(k)
			}
			keyText = "json_build_array(" + strings.Join(qs, ", ") + ")::text"
		}
		root, window := "false", "true"
		if t.Root != "" {
			root = "coalesce((" + t.Root + "), false)"
		}
		if t.Window != "" {
			window = "coalesce((" + t.Window + "), false)"
		}
		q := "SELECT " + keyText + ", " + root + ", " + window
		need := slices.Compact(slices.Sorted(slices.Values(cols[t.Name])))
		for _, c := range need {
			q += ", " + quote(c) + "::text"
		}
		schema, name, _ := strings.Cut(t.Name, ".")
		res, err := conn.Query(ctx, q+" FROM "+quote(schema)+"."+quote(name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t.Name, err)
		}
		for res.Next() {
			r := &row{vals: map[string]*string{}}
			dest := []any{&r.key, &r.root, &r.window}
			vs := make([]*string, len(need))
			for i := range vs {
				dest = append(dest, &vs[i])
			}
			if err := res.Scan(dest...); err != nil {
				return nil, err
			}
			for i, c := range need {
				r.vals[c] = vs[i]
			}
			rows[t.Name] = append(rows[t.Name], r)
		}
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", t.Name, err)
		}
	}
	tuple := func(r *row, cs []string) (string, bool) {
		parts := make([]string, len(cs))
		for i, c := range cs {
			v := r.vals[c]
			if v == nil {
				return "", false
			}
			parts[i] = *v
		}
		return strings.Join(parts, "\x00"), true
	}
	// Which tables' rows bring their children: roots with children, and
	// (transitively) the tables referencing them.
	prop := map[string]bool{}
	for _, t := range tables {
		prop[t.Name] = t.Root != "" && t.WithChildren
	}
	for changed := true; changed; {
		changed = false
		for _, r := range refs {
			if prop[r.To] && !prop[r.From] {
				prop[r.From], changed = true, true
			}
		}
	}
	p := map[*row]bool{}
	for _, t := range tables {
		for _, r := range rows[t.Name] {
			if t.Root != "" && t.WithChildren && r.root && r.window {
				p[r] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, ref := range refs {
			if !prop[ref.To] {
				continue
			}
			parents := map[string]bool{}
			for _, r := range rows[ref.To] {
				if k, ok := tuple(r, ref.ToCols); ok && p[r] {
					parents[k] = true
				}
			}
			for _, r := range rows[ref.From] {
				if k, ok := tuple(r, ref.Cols); ok && !p[r] && r.window && parents[k] {
					p[r], changed = true, true
				}
			}
		}
	}
	in := map[*row]bool{}
	for r := range p {
		in[r] = true
	}
	for _, t := range tables {
		for _, r := range rows[t.Name] {
			if t.Root != "" && !t.WithChildren && r.root && r.window {
				in[r] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, ref := range refs {
			children := map[string]bool{}
			for _, r := range rows[ref.From] {
				if k, ok := tuple(r, ref.Cols); ok && in[r] {
					children[k] = true
				}
			}
			for _, r := range rows[ref.To] {
				if k, ok := tuple(r, ref.ToCols); ok && !in[r] && children[k] {
					in[r], changed = true, true
				}
			}
		}
	}
	out := map[string][]string{}
	for _, t := range tables {
		for _, r := range rows[t.Name] {
			if in[r] {
				out[t.Name] = append(out[t.Name], r.key)
			}
		}
		slices.Sort(out[t.Name])
	}
	for n, ks := range out {
		if len(ks) == 0 {
			delete(out, n)
		}
	}
	return out, nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
