package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// A stream keeps a referential subset current (docs/subsets.md, "Mode
// cdc") by asking, for the keys a batch changed and those their changes
// reach, which rows are in the subset now: the same conditions a copy
// selects with, narrowed to the keys, in one REPEATABLE READ snapshot on
// the replication's query connection.

// SubsetRead implements the stream's reads of a subset (nopii.SubsetRead).
func (r *Replication) SubsetRead(ctx context.Context, sub *nopii.Subset) (nopii.SubsetRead, error) {
	tx, err := r.sql.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("source %s: read the subset: %w", r.opts.Name, pgconnect.SafeError(err))
	}
	if _, err := tx.Exec(ctx, subsetSettings); err != nil {
		tx.Rollback(context.Background())
		return nil, fmt.Errorf("source %s: read the subset: %w", r.opts.Name, pgconnect.SafeError(err))
	}
	plan := newSubsetPlan(sub)
	plan.correlated = true
	return &subsetRead{r: r, tx: tx, plan: plan}, nil
}

type subsetRead struct {
	r    *Replication
	tx   pgx.Tx
	plan *subsetPlan
}

func (s *subsetRead) Close() { s.tx.Rollback(context.Background()) }

func (s *subsetRead) table(name nopii.TableName) (*nopii.Table, error) {
	st := s.plan.by[name]
	if st == nil {
		return nil, fmt.Errorf("table %s: %w in the subset", name, nopii.ErrNotFound)
	}
	return st.Table, nil
}

// keyIn is the condition that the key of t (as alias) is among the key
// texts in $1: through the key columns' own types, so that their index
// serves, and on the key text itself, so that a key's text decides.
func keyIn(t *nopii.Table, alias string) string {
	key := t.PrimaryKey
	exact := keyText(alias, key) + " = ANY ($1::text[])"
	if len(key) == 1 {
		return col(alias, key[0]) + " = ANY ($1::text[]::" + columnType(t, key[0]) + "[]) AND " + exact
	}
	elems := make([]string, len(key))
	for i, c := range key {
		elems[i] = fmt.Sprintf("(x::json->>%d)::%s", i, columnType(t, c))
	}
	return "(" + cols(alias, key) + ") IN (SELECT " + strings.Join(elems, ", ") + " FROM unnest($1::text[]) AS u(x)) AND " + exact
}

// Members implements nopii.SubsetRead.
func (s *subsetRead) Members(ctx context.Context, name nopii.TableName, keys []string) ([][][]byte, error) {
	t, err := s.table(name)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	results := make([]int16, len(t.Columns)+1)
	for i := range t.Columns {
		results[i] = 1
	}
	res := s.tx.Conn().PgConn().ExecParams(ctx, membersQuery(s.plan, t), [][]byte{textArray(keys)}, []uint32{1009}, []int16{0}, results).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("source %s: read the subset's rows of %s: %w", s.r.opts.Name, name, pgconnect.SafeError(res.Err))
	}
	out := make([][][]byte, len(res.Rows))
	for i, row := range res.Rows {
		out[i] = make([][]byte, len(row))
		for j, v := range row {
			if v != nil {
				out[i][j] = append([]byte(nil), v...)
			}
		}
	}
	return out, nil
}

// membersQuery selects t's columns and key text of the rows whose keys are
// in $1 (text[]) and in the subset.
func membersQuery(plan *subsetPlan, t *nopii.Table) string {
	list := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		list[i] = col("t", c.Name)
	}
	return "SELECT " + strings.Join(list, ", ") + ", " + keyText("t", t.PrimaryKey) + " FROM " + from(t) + " AS t WHERE " +
		keyIn(t, "t") + " AND " + plan.member(setNode{setI, t.Name}, "t")
}

// Children implements nopii.SubsetRead.
func (s *subsetRead) Children(ctx context.Context, r nopii.Reference, keys []string) ([]string, error) {
	return s.linked(ctx, r.From, r.Columns, r.To, r.ToColumns, keys)
}

// Parents implements nopii.SubsetRead.
func (s *subsetRead) Parents(ctx context.Context, r nopii.Reference, keys []string) ([]string, error) {
	return s.linked(ctx, r.To, r.ToColumns, r.From, r.Columns, keys)
}

// linked returns the keys of want's rows whose columns wantCols equal
// those of the rows of by (columns byCols) with keys.
func (s *subsetRead) linked(ctx context.Context, want nopii.TableName, wantCols []string, by nopii.TableName, byCols []string, keys []string) ([]string, error) {
	w, err := s.table(want)
	if err != nil {
		return nil, err
	}
	b, err := s.table(by)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	q := "SELECT DISTINCT " + keyText("w", w.PrimaryKey) + " FROM " + from(w) + " AS w WHERE (" + cols("w", wantCols) + ") IN (SELECT " +
		cols("b", byCols) + " FROM " + from(b) + " AS b WHERE " + keyIn(b, "b") + ")"
	rows, err := s.tx.Query(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("source %s: read the rows of %s linked to %s: %w", s.r.opts.Name, want, by, pgconnect.SafeError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("source %s: read the rows of %s linked to %s: %w", s.r.opts.Name, want, by, pgconnect.SafeError(err))
	}
	return out, nil
}

// textArray renders keys as a text[] literal, in text format: each
// element double-quoted, its double quotes and backslashes escaped.
func textArray(keys []string) []byte {
	var b []byte
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(k); j++ {
			if k[j] == '"' || k[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, k[j])
		}
		b = append(b, '"')
	}
	return append(b, '}')
}
