package twin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

var _ nopii.Feed = (*Feed)(nil)

// Options configure a twin Feed.
type Options struct {
	Logger  *slog.Logger
	Connect pgconnect.Options
	// LockTimeout bounds each attempt to take the tables a swap or a
	// publish replaces (readers of the twin hold them); default 10s,
	// three attempts.
	LockTimeout time.Duration
	// DataOnly gives the twin the columns and source_primary_key alone
	// (schema: data_only), not the source's schema objects.
	DataOnly bool
	// IndexBuilds is how many indexes the feed's deferred full copies
	// build at once, across tables, each on a connection of its own (the
	// workflow's parallelism); 0 or 1: each load builds its own in turn,
	// in its transaction.
	IndexBuilds int
}

// Feed loads tables into a twin database.
type Feed struct {
	cfg  *pgx.ConnConfig
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	oids   map[uint32]uint32 // source type OID → twin type OID, for binary array headers
	idle   []*pgx.Conn       // connections outside any transaction, for the next caller
	closed bool
	// deferred holds the committed loads of deferred targets until
	// Publish makes them visible (pending.go), by target name.
	deferred map[nopii.TableName]*deferred
	builds   chan struct{} // a slot per index build at once (indexes.go)

	noMerge bool // tests: apply deltas as on PostgreSQL before 15

	// forgottenSeen: nopii.forgotten_keys exists (nopii never drops it), so
	// reading the suppression list needs no check first.
	forgottenSeen atomic.Bool
}

// Open checks that the twin is reachable and returns the feed.
func Open(ctx context.Context, dsn string, o Options) (*Feed, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Connect.What == "" {
		o.Connect.What = "twin"
	}
	if o.Connect.MinServer == 0 {
		// Types, DDL and key digests as on a source of 12 (docs: README,
		// PostgreSQL versions); MERGE from 15, UPDATE and INSERT before.
		o.Connect.MinServer = 12
	}
	o.Connect.Logger = o.Logger
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	cfg, err := pgconnect.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("twin: parse dsn: %w", err)
	}
	f := &Feed{cfg: cfg, opts: o, log: o.Logger, oids: map[uint32]uint32{}, builds: make(chan struct{}, max(1, o.IndexBuilds))}
	conn, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	f.release(conn)
	return f, nil
}

// acquire returns an idle connection, or a new one. A run would otherwise
// open one per state lookup, Prepare and load: on a delta run of a table
// with few changes, connection set-up is much of the cost.
func (f *Feed) acquire(ctx context.Context) (*pgx.Conn, error) {
	f.mu.Lock()
	if n := len(f.idle); n > 0 {
		conn := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return conn, nil
	}
	f.mu.Unlock()
	return pgconnect.ConnectConfig(ctx, f.cfg.Copy(), f.opts.Connect)
}

// release keeps a connection for the next caller when it is healthy and
// outside any transaction; anything else (a failed COPY, a transaction
// left open) is closed, which rolls back what it held.
func (f *Feed) release(conn *pgx.Conn) {
	f.mu.Lock()
	if !f.closed && !conn.IsClosed() && conn.PgConn().TxStatus() == 'I' {
		f.idle = append(f.idle, conn)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	conn.Close(context.Background())
}

// ComputesGenerated reports whether the twin computes stored generated
// columns itself, from the redacted columns (schema: full).
func (f *Feed) ComputesGenerated() bool { return !f.opts.DataOnly }

// Kind implements nopii.Feed.
func (f *Feed) Kind() string { return "twin" }

// Close implements nopii.Feed: it closes the idle connections; loads still
// running close theirs when they end.
func (f *Feed) Close() error {
	f.mu.Lock()
	idle := f.idle
	f.idle, f.closed = nil, true
	f.mu.Unlock()
	for _, c := range idle {
		c.Close(context.Background())
	}
	return nil
}

// Prepare creates the schemas and user types the targets need.
func (f *Feed) Prepare(ctx context.Context, targets []nopii.Target) error {
	conn, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	defer f.release(conn)
	schemas := map[string]bool{}
	var types []*nopii.Type
	seen := map[uint32]bool{}
	prefixOf := map[uint32]string{}
	for _, t := range targets {
		schemas[t.Name.Schema] = true
		for _, c := range t.Table.Columns {
			collectTypes(c.Type, seen, &types)
		}
		for _, ty := range types {
			if _, ok := prefixOf[ty.OID]; !ok {
				prefixOf[ty.OID] = t.Prefix
			}
		}
	}
	for _, ty := range types {
		if ty.Extension == "" && ty.Kind != nopii.TypeArray {
			schemas[prefixOf[ty.OID]+ty.Schema] = true
		}
	}
	for s := range schemas {
		if err := ensureSchema(ctx, conn, s); err != nil {
			return err
		}
	}
	for _, t := range targets {
		if err := f.prepareSchema(ctx, conn, t); err != nil {
			return err
		}
	}
	if err := ensureStateTable(ctx, conn); err != nil {
		return fmt.Errorf("twin: create nopii.table_state: %w", err)
	}
	if err := ensurePendingTable(ctx, conn); err != nil {
		return err
	}
	exts := map[string]bool{}
	for _, ty := range types {
		if ty.Kind == nopii.TypeArray {
			continue
		}
		if ty.Extension != "" {
			if !exts[ty.Extension] {
				exts[ty.Extension] = true
				if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+nopii.QuoteIdent(ty.Extension)); err != nil {
					return fmt.Errorf("twin: create extension %s (for type %s): %w", ty.Extension, ty.SQL, pgconnect.SafeError(err))
				}
			}
			var oid uint32
			if err := conn.QueryRow(ctx, "SELECT $1::regtype::oid", ty.SQL).Scan(&oid); err != nil {
				return fmt.Errorf("twin: find type %s: %w", ty.SQL, pgconnect.SafeError(err))
			}
			f.setOID(ty.OID, oid)
			continue
		}
		oid, err := ensureType(ctx, conn, ty, prefixOf[ty.OID])
		if err != nil {
			return err
		}
		f.setOID(ty.OID, oid)
	}
	return nil
}

func (f *Feed) setOID(src, dst uint32) {
	f.mu.Lock()
	f.oids[src] = dst
	f.mu.Unlock()
}

func (f *Feed) oid(src uint32) (uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.oids[src]
	return o, ok
}

// collectTypes appends the user types t is built from, dependencies first.
func collectTypes(t *nopii.Type, seen map[uint32]bool, out *[]*nopii.Type) {
	if t == nil || t.BuiltIn() || seen[t.OID] {
		return
	}
	seen[t.OID] = true
	collectTypes(t.Elem, seen, out)
	collectTypes(t.Base, seen, out)
	for _, a := range t.Attrs {
		collectTypes(a.Type, seen, out)
	}
	*out = append(*out, t)
}

func ensureSchema(ctx context.Context, conn *pgx.Conn, schema string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("twin: look up schema %s: %w", schema, pgconnect.SafeError(err))
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+nopii.QuoteIdent(schema)); err != nil {
		return fmt.Errorf("twin: create schema %s: %w", schema, pgconnect.SafeError(err))
	}
	return nil
}

// typeName is the twin's name for a user type.
func typeName(t *nopii.Type, prefix string) string {
	if t.Extension != "" {
		return t.SQL
	}
	return nopii.QuoteIdent(prefix+t.Schema) + "." + nopii.QuoteIdent(t.Name)
}

// columnType is the twin's SQL type for a column.
func columnType(c nopii.Column, prefix string) string {
	t := c.Type
	switch {
	case t.BuiltIn() || t.Extension != "":
		return c.TypeSQL
	case t.Kind == nopii.TypeArray && (t.Elem.BuiltIn() || t.Elem.Extension != ""):
		return c.TypeSQL
	case t.Kind == nopii.TypeArray:
		return typeName(t.Elem, prefix) + "[]"
	}
	return typeName(t, prefix)
}

func ensureType(ctx context.Context, conn *pgx.Conn, t *nopii.Type, prefix string) (uint32, error) {
	name := typeName(t, prefix)
	lookup := func() (uint32, bool, error) {
		var oid uint32
		err := conn.QueryRow(ctx, `SELECT t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname = $2`,
			prefix+t.Schema, t.Name).Scan(&oid)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, false, nil
		}
		return oid, err == nil, pgconnect.SafeError(err)
	}
	oid, ok, err := lookup()
	if err != nil {
		return 0, fmt.Errorf("twin: look up type %s: %w", name, err)
	}
	if ok {
		if t.Kind == nopii.TypeEnum {
			if err := addLabels(ctx, conn, name, oid, t.Labels); err != nil {
				return 0, err
			}
		}
		return oid, nil
	}
	var ddl string
	switch t.Kind {
	case nopii.TypeEnum:
		labels := make([]string, len(t.Labels))
		for i, l := range t.Labels {
			labels[i] = quoteLiteral(l)
		}
		ddl = "CREATE TYPE " + name + " AS ENUM (" + strings.Join(labels, ", ") + ")"
	case nopii.TypeDomain:
		base := t.BaseSQL
		if !t.Base.BuiltIn() && t.Base.Extension == "" {
			base = typeName(t.Base, prefix)
		}
		ddl = "CREATE DOMAIN " + name + " AS " + base
		if t.NotNull {
			ddl += " NOT NULL"
		}
		for _, c := range t.Checks {
			ddl += " " + c
		}
	case nopii.TypeComposite:
		attrs := make([]string, len(t.Attrs))
		for i, a := range t.Attrs {
			attrs[i] = nopii.QuoteIdent(a.Name) + " " + columnType(a, prefix)
		}
		ddl = "CREATE TYPE " + name + " AS (" + strings.Join(attrs, ", ") + ")"
	default:
		return 0, fmt.Errorf("twin: type %s: %w (range and base types outside extensions)", t.SQL, nopii.ErrUnsupportedType)
	}
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return 0, fmt.Errorf("twin: create type %s: %w", name, pgconnect.SafeError(err))
	}
	oid, _, err = lookup()
	if err != nil {
		return 0, fmt.Errorf("twin: look up type %s: %w", name, err)
	}
	return oid, nil
}

// addLabels adds the labels the source gained since the enum was created
// in the twin, each in its place (BEFORE its successor), so that the sort
// order stays the source's.
func addLabels(ctx context.Context, conn *pgx.Conn, name string, oid uint32, labels []string) error {
	rows, err := conn.Query(ctx, "SELECT enumlabel FROM pg_enum WHERE enumtypid = $1", oid)
	if err != nil {
		return pgconnect.SafeError(err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return pgconnect.SafeError(err)
	}
	has := map[string]bool{}
	for _, l := range have {
		has[l] = true
	}
	for i := len(labels) - 1; i >= 0; i-- {
		l := labels[i]
		if has[l] {
			continue
		}
		stmt := "ALTER TYPE " + name + " ADD VALUE " + quoteLiteral(l)
		for _, next := range labels[i+1:] {
			if has[next] {
				stmt += " BEFORE " + quoteLiteral(next)
				break
			}
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("twin: add label to enum %s: %w", name, pgconnect.SafeError(err))
		}
		has[l] = true
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// shortName fits name+suffix into PostgreSQL's 63-byte identifiers, keeping
// distinct names distinct with a hash.
func shortName(name, suffix string) string {
	if len(name)+len(suffix) <= 63 {
		return name + suffix
	}
	h := sha256.Sum256([]byte(name))
	keep := 63 - len(suffix) - 9
	for keep > 0 && !utf8Start(name[keep]) {
		keep--
	}
	return name[:keep] + "_" + hex.EncodeToString(h[:4]) + suffix
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
