package twin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// Data-subject requests (SPEC §7) keep three tables in schema nopii: the
// suppression list of forgotten keys, which every run consults so that
// forgotten rows never come back; the forgotten identifiers, which keep a
// subject's rows out of tables copied after the request; and the audit of
// requests. Neither holds
// an identifier: keys and subjects are keyed hashes (HMAC under hmac_key).
const subjectDDL = `CREATE SCHEMA IF NOT EXISTS nopii;
CREATE TABLE IF NOT EXISTS nopii.forgotten_keys (
    workflow     text NOT NULL,
    input        text NOT NULL,
    source_table text NOT NULL,
    key_hmac     text NOT NULL,
    request_id   uuid NOT NULL,
    forgotten_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, input, source_table, key_hmac)
);
CREATE TABLE IF NOT EXISTS nopii.forgotten_identifiers (
    workflow        text NOT NULL,
    identifier_hmac text NOT NULL,
    request_id      uuid NOT NULL,
    forgotten_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, identifier_hmac)
);
CREATE TABLE IF NOT EXISTS nopii.subject_requests (
    request_id   uuid NOT NULL,
    subject_hmac text NOT NULL,
    requested_at timestamptz NOT NULL,
    workflow     text NOT NULL,
    target       text NOT NULL,
    rows_deleted bigint NOT NULL,
    status       text NOT NULL,
    error        text,
    PRIMARY KEY (request_id, subject_hmac, target)
)`

func ensureSubjectTables(ctx context.Context, conn *pgx.Conn) error {
	return ensureTables(ctx, conn, subjectDDL, "nopii.forgotten_keys", "nopii.forgotten_identifiers", "nopii.subject_requests")
}

func isUndefinedTable(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P01"
}

// ForgottenKeys returns the suppression list of a table: the keyed hashes
// of the keys forgotten, nil when none.
func (f *Feed) ForgottenKeys(ctx context.Context, k nopii.StateKey) ([]string, error) {
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer f.release(conn)
	if !f.forgottenSeen.Load() {
		// Checked rather than queried and caught: a failed query would put
		// an error in the twin's server log at every call (the cdc stream
		// reads the list every few seconds).
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('nopii.forgotten_keys') IS NOT NULL").Scan(&exists); err != nil {
			return nil, fmt.Errorf("twin: read forgotten keys of %s: %w", k.Table, pgconnect.SafeError(err))
		}
		if !exists {
			return nil, nil
		}
		f.forgottenSeen.Store(true)
	}
	rows, err := conn.Query(ctx, `SELECT key_hmac FROM nopii.forgotten_keys WHERE workflow = $1 AND input = $2 AND source_table = $3`,
		k.Workflow, k.Input, k.Table.String())
	if err == nil {
		var keys []string
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err == nil {
			return keys, nil
		}
	}
	if isUndefinedTable(err) {
		return nil, nil
	}
	return nil, fmt.Errorf("twin: read forgotten keys of %s: %w", k.Table, pgconnect.SafeError(err))
}

// ForgottenIdentifiers returns the keyed hashes of the identifiers
// forgotten in a workflow, nil when none.
func (f *Feed) ForgottenIdentifiers(ctx context.Context, workflow string) ([]string, error) {
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer f.release(conn)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('nopii.forgotten_identifiers') IS NOT NULL").Scan(&exists); err != nil || !exists {
		if err != nil {
			return nil, fmt.Errorf("twin: read forgotten identifiers: %w", pgconnect.SafeError(err))
		}
		return nil, nil
	}
	rows, err := conn.Query(ctx, `SELECT identifier_hmac FROM nopii.forgotten_identifiers WHERE workflow = $1`, workflow)
	if err == nil {
		var ids []string
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
			return ids, nil
		}
	}
	return nil, fmt.Errorf("twin: read forgotten identifiers: %w", pgconnect.SafeError(err))
}

// CountKeys returns how many rows of the twin's table have one of keys as
// source_primary_key; 0 when the table is not in the twin.
func (f *Feed) CountKeys(ctx context.Context, target nopii.TableName, keys []string) (int64, error) {
	conn, err := f.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer f.release(conn)
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM "+target.Quoted()+" WHERE "+nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)+" = ANY ($1::text[])", keys).Scan(&n)
	if isUndefinedTable(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("twin: count rows of %s: %w", target, pgconnect.SafeError(err))
	}
	return n, nil
}

// Forget deletes the rows of a forget request and adds their keys to the
// suppression list, all in one transaction: the twin either no longer has
// the rows and will keep them out, or nothing changed. It returns the keys
// deleted per table, in the order of req.Tables.
func (f *Feed) Forget(ctx context.Context, req nopii.Forget) ([][]string, error) {
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer f.release(conn)
	if err := ensureSubjectTables(ctx, conn); err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("twin: forget: %w", pgconnect.SafeError(err))
	}
	defer tx.Rollback(context.Background())
	if len(req.Identifiers) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO nopii.forgotten_identifiers (workflow, identifier_hmac, request_id, forgotten_at)
			SELECT $1, h, $3, $4 FROM unnest($2::text[]) AS h ON CONFLICT DO NOTHING`,
			req.Workflow, req.Identifiers, req.RequestID, req.At); err != nil {
			return nil, fmt.Errorf("twin: record forgotten identifiers: %w", pgconnect.SafeError(err))
		}
	}
	out := make([][]string, len(req.Tables))
	var pending []int // the tables to delete from, in the twin
	// Wait for loads of the tables in flight, all at once, in the order
	// every taker of several uses (tableLocks): a full copy that read the
	// suppression list before this request would swap the rows back.
	targets := make([]nopii.TableName, len(req.Tables))
	for i, t := range req.Tables {
		targets[i] = t.Target
	}
	if _, err := tx.Exec(ctx, tableLocks("pg_advisory_xact_lock", targets)); err != nil {
		return nil, fmt.Errorf("twin: wait for loads of the request's tables: %w", pgconnect.SafeError(err))
	}
	for i, t := range req.Tables {
		if _, err := tx.Exec(ctx, `INSERT INTO nopii.forgotten_keys (workflow, input, source_table, key_hmac, request_id, forgotten_at)
			SELECT $1, $2, $3, k, $5, $6 FROM unnest($4::text[]) AS k ON CONFLICT DO NOTHING`,
			t.Key.Workflow, t.Key.Input, t.Key.Table.String(), t.Forgotten, req.RequestID, req.At); err != nil {
			return nil, fmt.Errorf("twin: record forgotten keys of %s: %w", t.Key.Table, pgconnect.SafeError(err))
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.Target.Quoted()).Scan(&exists); err != nil {
			return nil, fmt.Errorf("twin: look up %s: %w", t.Target, pgconnect.SafeError(err))
		}
		if exists {
			pending = append(pending, i)
		}
		if err := forgetPending(ctx, tx, t.Target, t.Keys); err != nil {
			return nil, err
		}
	}
	if err := f.dropOutsideReferences(ctx, tx, req.Tables, pending); err != nil {
		return nil, err
	}
	if err := deleteReferencedLast(ctx, tx, req.Tables, pending, out); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("twin: forget: %w", pgconnect.SafeError(err))
	}
	return out, nil
}

// outsideRefsSQL lists the twin's foreign keys (NO ACTION or RESTRICT on
// delete) that reference a table, with their columns in order and whether
// every referencing column may be NULL.
const outsideRefsSQL = `SELECT c.conname::text, c.conrelid::regclass::text,
	array_agg(quote_ident(a.attname) ORDER BY k.i), array_agg(quote_ident(p.attname) ORDER BY k.i), bool_and(NOT a.attnotnull)
	FROM pg_constraint c
	CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, fk, i)
	JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.ck
	JOIN pg_attribute p ON p.attrelid = c.confrelid AND p.attnum = k.fk
	WHERE c.contype = 'f' AND c.confrelid = $1::regclass AND c.confdeltype IN ('a', 'r')
	GROUP BY c.oid, c.conname, c.conrelid`

// dropOutsideReferences sets to NULL the references that rows the request
// does not delete (another person's row naming the subject's address as
// its default, say) hold to rows it deletes, where their columns allow
// NULL: the subject's rows go, and the twin's foreign keys still hold.
// Where a column is NOT NULL the delete fails, naming the key.
func (f *Feed) dropOutsideReferences(ctx context.Context, tx pgx.Tx, tables []nopii.ForgetTable, pending []int) error {
	keys := map[string][]string{} // target (regclass text) → the request's keys in it
	for _, i := range pending {
		var rel string
		if err := tx.QueryRow(ctx, "SELECT $1::regclass::text", tables[i].Target.Quoted()).Scan(&rel); err != nil {
			return fmt.Errorf("twin: look up %s: %w", tables[i].Target, pgconnect.SafeError(err))
		}
		keys[rel] = append(keys[rel], tables[i].Keys...)
	}
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	for _, i := range pending {
		t := tables[i]
		rows, err := tx.Query(ctx, outsideRefsSQL, t.Target.Quoted())
		if err != nil {
			return fmt.Errorf("twin: read the foreign keys to %s: %w", t.Target, pgconnect.SafeError(err))
		}
		type ref struct {
			name, child   string
			cols, refCols []string
			nullable      bool
		}
		refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ref, error) {
			var x ref
			return x, r.Scan(&x.name, &x.child, &x.cols, &x.refCols, &x.nullable)
		})
		if err != nil {
			return fmt.Errorf("twin: read the foreign keys to %s: %w", t.Target, pgconnect.SafeError(err))
		}
		for _, r := range refs {
			if !r.nullable {
				continue // the delete will fail on it, and say so
			}
			set := make([]string, len(r.cols))
			for k, c := range r.cols {
				set[k] = c + " = NULL"
			}
			sql := "UPDATE " + r.child + " SET " + strings.Join(set, ", ") +
				" WHERE (" + strings.Join(r.cols, ", ") + ") IN (SELECT " + strings.Join(r.refCols, ", ") + " FROM " + t.Target.Quoted() + " WHERE " + spk + " = ANY ($1::text[]))"
			args := []any{t.Keys}
			if own := keys[r.child]; len(own) > 0 {
				// Rows the request deletes from the child keep theirs. A child
				// the request holds no keys of (or one users made, without
				// source_primary_key) has every referencing row cleared: a
				// NULL key list would match none.
				sql += " AND NOT (" + spk + " = ANY ($2::text[]))"
				args = append(args, own)
			}
			tag, err := tx.Exec(ctx, sql, args...)
			if err != nil {
				return fmt.Errorf("twin: drop references of %s to forgotten rows of %s: %w", r.child, t.Target, pgconnect.SafeError(err))
			}
			if n := tag.RowsAffected(); n > 0 {
				f.log.Warn("rows the request does not match referenced forgotten rows: their references are now NULL",
					"table", r.child, "foreign_key", r.name, "references", t.Target.String(), "rows", n)
			}
		}
	}
	return nil
}

// deleteReferencedLast deletes the keys of each pending table, in an order
// the twin's foreign keys accept: a table whose rows are still referenced
// by rows to be deleted from another waits for a later pass (a savepoint
// undoes its attempt). Deferrable keys (cycles) are checked at commit.
func deleteReferencedLast(ctx context.Context, tx pgx.Tx, tables []nopii.ForgetTable, pending []int, out [][]string) error {
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
		return fmt.Errorf("twin: forget: %w", pgconnect.SafeError(err))
	}
	key := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	for len(pending) > 0 {
		var later []int
		var refused error
		for _, i := range pending {
			t := tables[i]
			if _, err := tx.Exec(ctx, "SAVEPOINT nopii_forget"); err != nil {
				return fmt.Errorf("twin: forget: %w", pgconnect.SafeError(err))
			}
			rows, err := tx.Query(ctx, "DELETE FROM "+t.Target.Quoted()+" WHERE "+key+" = ANY ($1::text[]) RETURNING "+key, t.Keys)
			if err == nil {
				out[i], err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation: referenced still
				if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT nopii_forget"); err != nil {
					return fmt.Errorf("twin: forget: %w", pgconnect.SafeError(err))
				}
				out[i] = nil
				later = append(later, i)
				refused = fmt.Errorf("twin: delete from %s: rows the request does not match reference the subject's rows (add their table to the workflow, or a references: entry, so that the request follows them): %w", t.Target, pgconnect.SafeError(err))
				continue
			}
			if err != nil {
				return fmt.Errorf("twin: delete from %s: %w", t.Target, pgconnect.SafeError(err))
			}
		}
		if len(later) == len(pending) {
			return refused
		}
		pending = later
	}
	return nil
}

// RecordSubjectRequests appends audit records to nopii.subject_requests.
func (f *Feed) RecordSubjectRequests(ctx context.Context, recs []nopii.SubjectAudit) error {
	conn, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	defer f.release(conn)
	if err := ensureSubjectTables(ctx, conn); err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, r := range recs {
		var errText *string
		if r.Error != "" {
			errText = &r.Error
		}
		batch.Queue(`INSERT INTO nopii.subject_requests (request_id, subject_hmac, requested_at, workflow, target, rows_deleted, status, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (request_id, subject_hmac, target) DO UPDATE
			SET rows_deleted = EXCLUDED.rows_deleted, status = EXCLUDED.status, error = EXCLUDED.error`,
			r.RequestID, r.Subject, r.At, r.Workflow, r.Target, r.RowsDeleted, r.Status, errText)
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("twin: record subject requests: %w", pgconnect.SafeError(err))
	}
	return nil
}

// forgetPending deletes the keys from what a run committed for its
// publish (pending.go): the shadow or stage of the table would bring the
// rows back.
func forgetPending(ctx context.Context, tx pgx.Tx, target nopii.TableName, keys []string) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('nopii.pending') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return pgconnect.SafeError(err)
	}
	rows, err := tx.Query(ctx, "SELECT relation FROM nopii.pending WHERE target_table = $1 AND kind IN ($2, $3) AND to_regclass(relation) IS NOT NULL",
		target.String(), pendingShadow, pendingStage)
	if err != nil {
		return fmt.Errorf("twin: look up what a run holds of %s: %w", target, pgconnect.SafeError(err))
	}
	rels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("twin: look up what a run holds of %s: %w", target, pgconnect.SafeError(err))
	}
	for _, r := range rels {
		if _, err := tx.Exec(ctx, "DELETE FROM "+r+" WHERE "+nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)+" = ANY ($1::text[])", keys); err != nil {
			return fmt.Errorf("twin: delete from what a run holds of %s: %w", target, pgconnect.SafeError(err))
		}
	}
	return nil
}
