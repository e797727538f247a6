package twin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/pgcopy"
)

// The state table lives in schema nopii of the twin. One row per table of
// each workflow input; the state itself is JSON so that later versions can
// add to it without migrations.
const stateDDL = `CREATE SCHEMA IF NOT EXISTS nopii;
CREATE TABLE IF NOT EXISTS nopii.table_state (
    workflow     text NOT NULL,
    input        text NOT NULL,
    source_table text NOT NULL,
    target_table text NOT NULL,
    state        jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, input, source_table)
)`

func ensureStateTable(ctx context.Context, conn *pgx.Conn) error {
	return ensureTables(ctx, conn, stateDDL, "nopii.table_state")
}

// ensureTables runs ddl unless every table it creates exists already (one
// round trip, and no DDL lock, on every run but the first).
func ensureTables(ctx context.Context, conn *pgx.Conn, ddl string, tables ...string) error {
	exists := make([]string, len(tables))
	for i, t := range tables {
		exists[i] = "to_regclass(" + quoteLiteral(t) + ") IS NOT NULL"
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT "+strings.Join(exists, " AND ")).Scan(&ok); err != nil {
		return pgconnect.SafeError(err)
	}
	if ok {
		return nil
	}
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("twin: create %s: %w", strings.Join(tables, " and "), pgconnect.SafeError(err))
	}
	return nil
}

// writeState upserts the state inside the caller's transaction.
func writeState(ctx context.Context, conn *pgx.Conn, target nopii.TableName, st *nopii.TableState) error {
	if st == nil {
		return nil
	}
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `INSERT INTO nopii.table_state (workflow, input, source_table, target_table, state)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (workflow, input, source_table) DO UPDATE
		SET target_table = EXCLUDED.target_table, state = EXCLUDED.state, updated_at = now()`,
		st.Workflow, st.Input, st.Table.String(), target.String(), js)
	if err != nil {
		return fmt.Errorf("save state: %w", pgconnect.SafeError(err))
	}
	return nil
}

// State implements nopii.Feed. A state whose twin table has gone is no
// state: the next run copies the table in full.
func (f *Feed) State(ctx context.Context, k nopii.StateKey) (*nopii.TableState, error) {
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer f.release(conn)
	var js []byte
	var exists bool
	// target_table is "schema.table", split at the first dot (as
	// TableName.String writes it); whether it still exists, in the same
	// round trip.
	err = conn.QueryRow(ctx, `SELECT state, to_regclass(format('%I.%I', split_part(target_table, '.', 1),
		       substr(target_table, strpos(target_table, '.') + 1))) IS NOT NULL
		FROM nopii.table_state WHERE workflow = $1 AND input = $2 AND source_table = $3`,
		k.Workflow, k.Input, k.Table.String()).Scan(&js, &exists)
	var pgErr interface{ SQLState() string }
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case errors.As(err, &pgErr) && pgErr.SQLState() == "42P01": // no state table yet
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("twin: read state of %s: %w", k.Table, pgconnect.SafeError(err))
	}
	if !exists {
		return nil, nil
	}
	var st nopii.TableState
	if err := json.Unmarshal(js, &st); err != nil {
		return nil, fmt.Errorf("twin: decode state of %s: %w", k.Table, err)
	}
	return &st, nil
}

// ColumnText streams every row's source_primary_key and the column's text
// (NULL as nil) from the twin's table, for the leak check.
func (f *Feed) ColumnText(ctx context.Context, target nopii.TableName, column string, row func(key, value []byte) error) error {
	conn, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	defer f.release(conn)
	sql := "COPY (SELECT " + nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn) + ", " + nopii.QuoteIdent(column) + "::text FROM " +
		target.Quoted() + ") TO STDOUT (FORMAT binary)"
	dec := pgcopy.NewDecoder(2, func(v [][]byte) error { return row(v[0], v[1]) })
	if _, err := conn.PgConn().CopyTo(ctx, dec, sql); err != nil {
		return fmt.Errorf("twin: read %s.%s: %w", target, column, pgconnect.SafeError(err))
	}
	return dec.Close()
}
