package twin

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// userObjects reads what users made on the old table (oid) that a full
// copy carries to the new one: constraints and indexes that are neither
// the source's (this run's or those the last load built, in its state)
// nor source_primary_key's; triggers; row-level security and its policies;
// comments where the source has none.
func (l *load) userObjects(ctx context.Context, oid uint32, spkConstraint string, k *kept) error {
	ours := map[string]bool{spkConstraint: true}
	if sc := l.target.Table.Schema; sc != nil && l.faithful() {
		for _, c := range sc.Constraints {
			ours[c.Name] = true
		}
		for _, ix := range sc.Indexes {
			ours[ix.Name] = true
		}
	}
	if st := l.target.State; st != nil {
		var js []byte
		err := l.conn.QueryRow(ctx, `SELECT state->'objects' FROM nopii.table_state WHERE workflow = $1 AND input = $2 AND source_table = $3`,
			st.Workflow, st.Input, st.Table.String()).Scan(&js)
		if err == nil && js != nil {
			var names []string
			if json.Unmarshal(js, &names) == nil {
				for _, n := range names {
					ours[n] = true
				}
			}
		}
	}
	var table string
	if err := l.conn.QueryRow(ctx, "SELECT $1::oid::regclass::text", oid).Scan(&table); err != nil {
		return pgconnect.SafeError(err)
	}
	rows, err := l.conn.Query(ctx, `SELECT conname::text, contype::text, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = $1 AND contype IN ('p', 'u', 'x', 'c') AND conislocal ORDER BY conname`, oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	kinds := map[string]nopii.ConstraintKind{"p": nopii.ConstraintPrimaryKey, "u": nopii.ConstraintUnique,
		"x": nopii.ConstraintExclusion, "c": nopii.ConstraintCheck}
	cons, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (nopii.Constraint, error) {
		var c nopii.Constraint
		var kind string
		err := r.Scan(&c.Name, &kind, &c.Def)
		c.Kind = kinds[kind]
		return c, err
	})
	if err != nil {
		return pgconnect.SafeError(err)
	}
	for _, c := range cons {
		if !ours[c.Name] {
			k.constraints = append(k.constraints, c)
		}
	}
	rows, err = l.conn.Query(ctx, `SELECT ic.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
		ORDER BY ic.relname`, oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	idxs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (nopii.Index, error) {
		var x nopii.Index
		return x, r.Scan(&x.Name, &x.Unique, &x.Def)
	})
	if err != nil {
		return pgconnect.SafeError(err)
	}
	for _, ix := range idxs {
		if ours[ix.Name] || strings.HasPrefix(ix.Name, "_nopii_") {
			continue
		}
		if tail, ok := nopii.IndexTail(ix.Def, table); ok {
			ix.Def = tail
			k.indexes = append(k.indexes, ix)
		}
	}
	shadow := l.shadowName()
	rows, err = l.conn.Query(ctx, `SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname`, oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	trigs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return pgconnect.SafeError(err)
	}
	for _, t := range trigs {
		if i := strings.Index(t, " ON "+table+" "); i >= 0 {
			k.onShadow = append(k.onShadow, t[:i]+" ON "+shadow+" "+t[i+len(" ON "+table+" "):])
		}
	}
	rows, err = l.conn.Query(ctx, `SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', p.polname, $2::text,
		       CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
		       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
		       CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE (SELECT string_agg(quote_ident(rolname), ', ') FROM pg_roles WHERE oid = ANY(p.polroles)) END,
		       coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', ''),
		       coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', ''))
		FROM pg_policy p WHERE p.polrelid = $1
		UNION ALL SELECT 'ALTER TABLE ' || $2 || ' ENABLE ROW LEVEL SECURITY' FROM pg_class WHERE oid = $1 AND relrowsecurity
		UNION ALL SELECT 'ALTER TABLE ' || $2 || ' FORCE ROW LEVEL SECURITY' FROM pg_class WHERE oid = $1 AND relforcerowsecurity`, oid, shadow)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	pols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return pgconnect.SafeError(err)
	}
	k.onShadow = append(k.onShadow, pols...)
	// Comments made in the twin, where the source gives none.
	srcComment := map[string]bool{}
	if sc := l.target.Table.Schema; sc != nil && l.faithful() && sc.Comment != "" {
		srcComment[""] = true
	}
	for _, c := range l.target.Table.Columns {
		if c.Comment != "" && l.faithful() {
			srcComment[c.Name] = true
		}
	}
	rows, err = l.conn.Query(ctx, `SELECT '', obj_description($1, 'pg_class') WHERE obj_description($1, 'pg_class') IS NOT NULL
		UNION ALL SELECT attname::text, col_description(attrelid, attnum) FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND col_description(attrelid, attnum) IS NOT NULL`, oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	type comment struct{ col, text string }
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (comment, error) {
		var c comment
		return c, r.Scan(&c.col, &c.text)
	})
	if err != nil {
		return pgconnect.SafeError(err)
	}
	for _, c := range cs {
		if srcComment[c.col] {
			continue
		}
		if c.col == "" {
			k.comments = append(k.comments, "COMMENT ON TABLE %[1]s IS "+quoteLiteral(c.text))
		} else if _, ok := l.target.Table.Column(c.col); ok {
			k.comments = append(k.comments, "COMMENT ON COLUMN %[1]s."+nopii.QuoteIdent(c.col)+" IS "+quoteLiteral(c.text))
		}
	}
	return nil
}

// after renders the statements that follow the swap for what users made:
// their comments, on the table's real name.
func (k *kept) after(name nopii.TableName) []string {
	out := make([]string, len(k.comments))
	for i, c := range k.comments {
		out[i] = strings.ReplaceAll(c, "%[1]s", name.Quoted())
	}
	return out
}
