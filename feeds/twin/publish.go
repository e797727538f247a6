package twin

import (
	"context"
	"fmt"
	"strings"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// Publish completes a faithful twin once every table of an input's run is
// in: foreign keys among the copied tables (validated; NOT VALID where the
// parent may lack rows, or where the twin's rows do not satisfy the key;
// left out where the parent is not copied) and the source's views that
// read only copied tables (created, or refreshed when materialized). One
// transaction; the notes say, per source table, what was left out or made
// NOT VALID, and why.
//
// A full copy drops the old table with CASCADE, which takes the foreign
// keys that point at it along: they are made again here.
func (f *Feed) Publish(ctx context.Context, p nopii.Publication) (map[nopii.TableName][]string, error) {
	if f.opts.DataOnly {
		return nil, nil
	}
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	l := &load{feed: f, conn: conn, leftOut: map[string]bool{}}
	notes := map[nopii.TableName][]string{}
	note := func(t nopii.TableName, format string, args ...any) {
		notes[t] = append(notes[t], fmt.Sprintf(format, args...))
	}
	if _, err := l.exec(ctx, fmt.Sprintf("BEGIN; SET LOCAL lock_timeout = '%dms'", f.opts.LockTimeout.Milliseconds())); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("twin: publish: %w", err)
	}
	tables := map[nopii.TableName]nopii.PublishedTable{}
	for _, t := range p.Tables {
		tables[t.Name] = t
	}
	for _, t := range p.Tables {
		if t.Schema == nil {
			continue
		}
		child := t.Name.Prefixed(p.Prefix)
		for _, c := range t.Schema.Constraints {
			if c.Kind != nopii.ConstraintForeignKey {
				continue
			}
			parent, ok := tables[c.References]
			if !ok {
				note(t.Name, "foreign key %s left out: its parent %s is not copied", c.Name, c.References)
				continue
			}
			var exists, ready bool
			err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2),
				to_regclass($1) IS NOT NULL AND to_regclass($3) IS NOT NULL`, child.Quoted(), c.Name, parent.Name.Prefixed(p.Prefix).Quoted()).Scan(&exists, &ready)
			if err != nil {
				l.Abort()
				return nil, fmt.Errorf("twin: publish: look up foreign key %s of %s: %w", c.Name, child, pgconnect.SafeError(err))
			}
			if exists || !ready {
				continue
			}
			add := "ALTER TABLE " + child.Quoted() + " ADD CONSTRAINT " + nopii.QuoteIdent(c.Name) + " " + c.Def
			if parent.Incomplete != "" {
				if err := l.tryExec(ctx, add+" NOT VALID"); err != nil {
					note(t.Name, "foreign key %s left out: %v", c.Name, err)
					continue
				}
				note(t.Name, "foreign key %s is NOT VALID: its parent %s %s", c.Name, c.References, parent.Incomplete)
				continue
			}
			err = l.tryExec(ctx, add)
			if err == nil {
				continue
			}
			if err2 := l.tryExec(ctx, add+" NOT VALID"); err2 != nil {
				note(t.Name, "foreign key %s left out: %v", c.Name, err2)
				continue
			}
			note(t.Name, "foreign key %s is NOT VALID: the twin's rows do not satisfy it (%v)", c.Name, err)
		}
	}
	if err := l.publishViews(ctx, p, tables, note); err != nil {
		l.Abort()
		return nil, fmt.Errorf("twin: publish: %w", err)
	}
	if _, err := l.exec(ctx, "COMMIT"); err != nil {
		l.Abort()
		return nil, fmt.Errorf("twin: publish: %w", err)
	}
	f.release(conn)
	return notes, nil
}

// publishViews creates the views that read only copied tables (and views
// created before them), and refreshes the materialized ones that exist.
func (l *load) publishViews(ctx context.Context, p nopii.Publication, tables map[nopii.TableName]nopii.PublishedTable, note func(nopii.TableName, string, ...any)) error {
	have := map[nopii.TableName]bool{}
	for n := range tables {
		have[n] = true
	}
	for _, v := range p.Views {
		var missing []string
		var reads []nopii.TableName
		for _, r := range v.Reads {
			if !have[r] {
				missing = append(missing, r.String())
			} else if _, ok := tables[r]; ok {
				reads = append(reads, r)
			}
		}
		tell := func(format string, args ...any) {
			for _, r := range reads[:min(1, len(reads))] {
				note(r, format, args...)
			}
		}
		if len(missing) > 0 {
			tell("view %s left out: it reads %s, which the twin does not have", v.Name, strings.Join(missing, ", "))
			continue
		}
		name := v.Name.Prefixed(p.Prefix)
		kind := "VIEW"
		if v.Materialized {
			kind = "MATERIALIZED VIEW"
		}
		var exists bool
		if err := l.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name.Quoted()).Scan(&exists); err != nil {
			return pgconnect.SafeError(err)
		}
		if exists {
			if v.Materialized {
				if err := l.tryExec(ctx, "REFRESH MATERIALIZED VIEW "+name.Quoted()); err != nil {
					tell("materialized view %s not refreshed: %v", v.Name, err)
				}
			}
			have[v.Name] = true
			continue
		}
		if err := l.tryExec(ctx, "CREATE SCHEMA IF NOT EXISTS "+nopii.QuoteIdent(name.Schema)); err != nil {
			return err
		}
		with := ""
		if v.Options != "" {
			with = " WITH (" + v.Options + ")"
		}
		stmts := []string{"CREATE " + kind + " " + name.Quoted() + with + " AS " + v.Def}
		for _, ix := range v.Indexes {
			unique := ""
			if ix.Unique {
				unique = "UNIQUE "
			}
			stmts = append(stmts, "CREATE "+unique+"INDEX "+nopii.QuoteIdent(ix.Name)+" ON "+name.Quoted()+" "+ix.Def)
		}
		if v.Comment != "" {
			stmts = append(stmts, "COMMENT ON "+kind+" "+name.Quoted()+" IS "+quoteLiteral(v.Comment))
		}
		if err := l.tryExec(ctx, strings.Join(stmts, "; ")); err != nil {
			tell("view %s left out: %v", v.Name, err)
			continue
		}
		have[v.Name] = true
	}
	return nil
}
