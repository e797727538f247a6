package twin

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// ReferencedKeys returns the source_primary_key of the twin's parent rows
// that the twin's child rows of keys reference now (their cols equal the
// parent's toCols): what a stream that keeps a referential subset current
// asks before it applies a batch, to find the parents that a changed row
// may have been the last to need (docs/subsets.md, "Mode cdc"). The
// columns hold redacted values where rules apply, the same rule on both
// sides of a reference (reconciled), so the join is the source's.
func (f *Feed) ReferencedKeys(ctx context.Context, child, parent nopii.TableName, cols, toCols, keys []string) ([]string, error) {
	return f.linkedKeys(ctx, child, parent, cols, toCols, keys, "p", "c")
}

// ReferencingKeys returns the source_primary_key of the twin's child rows
// that reference the twin's parent rows of keys: the rows a stream that
// keeps a subset current checks too before it deletes those parents, so
// that no row it keeps references a row it deletes.
func (f *Feed) ReferencingKeys(ctx context.Context, child, parent nopii.TableName, cols, toCols, keys []string) ([]string, error) {
	return f.linkedKeys(ctx, child, parent, cols, toCols, keys, "c", "p")
}

// linkedKeys joins child (c) and parent (p) on the reference and returns
// want's keys for the rows of by whose keys are among keys.
func (f *Feed) linkedKeys(ctx context.Context, child, parent nopii.TableName, cols, toCols, keys []string, want, by string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	on := make([]string, len(cols))
	for i := range cols {
		on[i] = "p." + nopii.QuoteIdent(toCols[i]) + " = c." + nopii.QuoteIdent(cols[i])
	}
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	q := "SELECT DISTINCT " + want + "." + spk + " FROM " + parent.Quoted() + " AS p JOIN " + child.Quoted() + " AS c ON " + strings.Join(on, " AND ") +
		" WHERE " + by + "." + spk + " = ANY ($1::text[])"
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer f.release(conn)
	rows, err := conn.Query(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("twin: rows of %s linked to %s: %w", parent, child, pgconnect.SafeError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("twin: rows of %s linked to %s: %w", parent, child, pgconnect.SafeError(err))
	}
	return out, nil
}
