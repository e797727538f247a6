package twin

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/pgcopy"
)

var _ nopii.Feed = (*Feed)(nil)

// Options configure a twin Feed.
type Options struct {
	Logger  *slog.Logger
	Connect pgconnect.Options
	// LockTimeout bounds each attempt to take the old table for the swap
	// (readers of the twin hold it); default 10s, three attempts.
	LockTimeout time.Duration
}

// Feed loads tables into a twin database.
type Feed struct {
	cfg  *pgx.ConnConfig
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	oids map[uint32]uint32 // source type OID → twin type OID, for binary array headers
}

// Open checks that the twin is reachable and returns the feed.
func Open(ctx context.Context, dsn string, o Options) (*Feed, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Connect.What == "" {
		o.Connect.What = "twin"
	}
	o.Connect.Logger = o.Logger
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("twin: parse dsn: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "nopii"
	f := &Feed{cfg: cfg, opts: o, log: o.Logger, oids: map[uint32]uint32{}}
	conn, err := f.connect(ctx)
	if err != nil {
		return nil, err
	}
	conn.Close(context.Background())
	return f, nil
}

func (f *Feed) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgconnect.ConnectConfig(ctx, f.cfg.Copy(), f.opts.Connect)
}

// Kind implements nopii.Feed.
func (f *Feed) Kind() string { return "twin" }

// Close implements nopii.Feed. Loads own their connections; nothing is pooled.
func (f *Feed) Close() error { return nil }

// Prepare creates the schemas and user types the targets need.
func (f *Feed) Prepare(ctx context.Context, targets []nopii.Target) error {
	conn, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
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
			// A label added in the source since the last run.
			for _, l := range t.Labels {
				if _, err := conn.Exec(ctx, "ALTER TYPE "+name+" ADD VALUE IF NOT EXISTS "+quoteLiteral(l)); err != nil {
					return 0, fmt.Errorf("twin: add label to enum %s: %w", name, pgconnect.SafeError(err))
				}
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

const bufSize = 256 << 10

// FullCopy implements nopii.Feed.
func (f *Feed) FullCopy(ctx context.Context, t nopii.Target) (nopii.Load, error) {
	conn, err := f.connect(ctx)
	if err != nil {
		return nil, err
	}
	l := &load{feed: f, conn: conn, target: t,
		shadow: shortName("_nopii_new_"+t.Name.Name, ""),
		full:   make(chan []byte, 2), free: make(chan []byte, 3), done: make(chan struct{}), abort: make(chan struct{})}
	if err := l.begin(ctx); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("twin: load %s: %w", t.Name, err)
	}
	return l, nil
}

type load struct {
	feed   *Feed
	conn   *pgx.Conn
	target nopii.Target
	shadow string
	patch  []uint32 // per column: twin element OID to write into array headers, or 0

	buf     []byte
	full    chan []byte // filled buffers, to the copier
	free    chan []byte // drained buffers, back to WriteRow
	done    chan struct{}
	copyErr error
	abort   chan struct{} // closed by Abort: the copier's reader fails
	once    sync.Once
	cancel  context.CancelFunc
	closed  bool
	rows    int64
}

func (l *load) shadowName() string {
	return nopii.QuoteIdent(l.target.Name.Schema) + "." + nopii.QuoteIdent(l.shadow)
}

func (l *load) begin(ctx context.Context) error {
	t := l.target
	var cols []string
	l.patch = make([]uint32, len(t.Table.Columns)+1)
	for i, c := range t.Table.Columns {
		def := nopii.QuoteIdent(c.Name) + " " + columnType(c, t.Prefix)
		if c.NotNull {
			def += " NOT NULL"
		}
		cols = append(cols, def)
		if u := c.Type.Underlying(); u.Kind == nopii.TypeArray && !u.Elem.BuiltIn() {
			oid, ok := l.feed.oid(u.Elem.OID)
			if !ok {
				return fmt.Errorf("column %s: element type %s was not prepared", c.Name, u.Elem.SQL)
			}
			l.patch[i] = oid
		}
		if u := c.Type.Underlying(); u.Kind == nopii.TypeComposite {
			for _, a := range u.Attrs {
				if !a.Type.BuiltIn() {
					return fmt.Errorf("column %s: composite type %s has attributes of user types: %w", c.Name, u.SQL, nopii.ErrUnsupportedType)
				}
			}
		}
	}
	// COLLATE "C": the key is compared for equality only, and C sorts fastest
	// when the unique index is built.
	cols = append(cols, nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)+` text COLLATE "C" NOT NULL`)
	stmts := []string{
		"BEGIN",
		"DROP TABLE IF EXISTS " + l.shadowName(),
		"CREATE TABLE " + l.shadowName() + " (" + strings.Join(cols, ", ") + ")",
	}
	for _, s := range stmts {
		if _, err := l.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("create shadow table: %w", pgconnect.SafeError(err))
		}
	}
	names := make([]string, 0, len(t.Table.Columns)+1)
	for _, c := range t.Table.Columns {
		names = append(names, nopii.QuoteIdent(c.Name))
	}
	names = append(names, nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn))
	copySQL := "COPY " + l.shadowName() + " (" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary, FREEZE)"

	for range 2 {
		l.free <- make([]byte, 0, bufSize+bufSize/4)
	}
	l.buf = pgcopy.AppendHeader(make([]byte, 0, bufSize+bufSize/4))
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	go func() {
		defer close(l.done)
		r := &chanReader{full: l.full, free: l.free, abort: l.abort}
		_, err := l.conn.PgConn().CopyFrom(cctx, r, copySQL)
		if err != nil {
			l.copyErr = err
		}
	}()
	return nil
}

// WriteRow implements nopii.Load.
func (l *load) WriteRow(values [][]byte) error {
	if len(l.buf) >= bufSize {
		if err := l.flush(); err != nil {
			return err
		}
	}
	b := binary.BigEndian.AppendUint16(l.buf, uint16(len(values)))
	for i, v := range values {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		start := len(b)
		b = append(b, v...)
		if p := l.patch[i]; p != 0 && len(v) >= 12 {
			binary.BigEndian.PutUint32(b[start+8:], p)
		}
	}
	l.buf = b
	l.rows++
	return nil
}

func (l *load) flush() error {
	select {
	case l.full <- l.buf:
	case <-l.done:
		return l.failed()
	}
	select {
	case b := <-l.free:
		l.buf = b[:0]
	case <-l.done:
		return l.failed()
	}
	return nil
}

func (l *load) failed() error {
	if l.copyErr != nil {
		return fmt.Errorf("twin: copy into %s: %w", l.target.Name, pgconnect.SafeError(l.copyErr))
	}
	return fmt.Errorf("twin: copy into %s ended early", l.target.Name)
}

// Commit implements nopii.Load: finish the COPY, index, swap, commit.
func (l *load) Commit(ctx context.Context) error {
	if l.closed {
		return errors.New("twin: load already finished")
	}
	t0 := time.Now()
	l.buf = pgcopy.AppendTrailer(l.buf)
	select {
	case l.full <- l.buf:
		close(l.full)
	case <-l.done:
	}
	<-l.done
	if l.copyErr != nil {
		err := l.failed()
		l.Abort()
		return err
	}
	t1 := time.Now()
	idx, err := l.swap(ctx)
	if err != nil {
		l.Abort()
		return fmt.Errorf("twin: swap in %s: %w", l.target.Name, err)
	}
	l.feed.log.Debug("twin table swapped in", "table", l.target.Name.String(), "rows", l.rows,
		"copy_tail_seconds", t1.Sub(t0).Seconds(), "index_seconds", idx.Seconds(), "swap_seconds", time.Since(t1).Seconds()-idx.Seconds())
	l.closed = true
	l.cancel()
	l.conn.Close(context.Background())
	return nil
}

func (l *load) swap(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var idxTime time.Duration
	err := l.swapTx(ctx, func() { idxTime = time.Since(start) })
	return idxTime, err
}

func (l *load) swapTx(ctx context.Context, indexed func()) error {
	name := l.target.Name
	idx := shortName(l.shadow, "_spk")
	cons := shortName(name.Name, "_source_primary_key_key")
	exec := func(sql string) error {
		_, err := l.conn.Exec(ctx, sql)
		return pgconnect.SafeError(err)
	}
	if err := exec("SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return err
	}
	if err := exec("CREATE UNIQUE INDEX " + nopii.QuoteIdent(idx) + " ON " + l.shadowName() + " (" + nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn) + ")"); err != nil {
		return fmt.Errorf("build unique index on %s: %w", nopii.SourcePrimaryKeyColumn, err)
	}
	indexed()
	// Readers of the twin hold the old table; wait for them a bounded time,
	// a few times, without losing the loaded shadow (savepoint).
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = exec("SAVEPOINT nopii_swap"); err != nil {
			return err
		}
		if err = exec(fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", l.feed.opts.LockTimeout.Milliseconds())); err != nil {
			return err
		}
		err = exec("DROP TABLE IF EXISTS " + name.Quoted())
		if err == nil {
			break
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // lock_not_available
			return fmt.Errorf("drop the previous copy: %w", err)
		}
		l.feed.log.Warn("twin table is busy, retrying the swap", "table", name.String(), "attempt", attempt)
		if err := exec("ROLLBACK TO SAVEPOINT nopii_swap"); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("take the previous copy (readers hold it): %w", err)
	}
	for _, s := range []string{
		"ALTER TABLE " + l.shadowName() + " RENAME TO " + nopii.QuoteIdent(name.Name),
		"ALTER TABLE " + name.Quoted() + " ADD CONSTRAINT " + nopii.QuoteIdent(cons) + " UNIQUE USING INDEX " + nopii.QuoteIdent(idx),
		"COMMIT",
	} {
		if err := exec(s); err != nil {
			return err
		}
	}
	return nil
}

// Abort implements nopii.Load. Closing the connection rolls back the
// transaction that created the shadow table, so nothing is left behind.
func (l *load) Abort() {
	if l.closed {
		return
	}
	l.closed = true
	l.once.Do(func() { close(l.abort) })
	l.cancel()
	<-l.done
	l.conn.Close(context.Background())
}

// chanReader turns the stream of filled buffers into the io.Reader that
// pgconn's CopyFrom wants, handing each buffer back once it is drained.
type chanReader struct {
	full  <-chan []byte
	free  chan<- []byte
	abort <-chan struct{}
	cur   []byte
	pos   int
}

var errAborted = errors.New("load aborted")

func (r *chanReader) Read(p []byte) (int, error) {
	for r.pos >= len(r.cur) {
		if r.cur != nil {
			select {
			case r.free <- r.cur[:0]:
			default:
			}
			r.cur = nil
		}
		select {
		case b, ok := <-r.full:
			if !ok {
				return 0, io.EOF
			}
			r.cur, r.pos = b, 0
		case <-r.abort:
			return 0, errAborted
		}
	}
	n := copy(p, r.cur[r.pos:])
	r.pos += n
	return n, nil
}
