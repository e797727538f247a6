package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// ReplicationName is the name of the publication and of the slot of a
// workflow input: nopii_<workflow>_<input>, lower-cased, with every character
// outside [a-z0-9_] turned into _, and cut to PostgreSQL's 63 bytes with a
// hash of the full name when it is longer.
func ReplicationName(workflow, input string) string {
	full := "nopii_" + workflow + "_" + input
	var b strings.Builder
	for _, r := range strings.ToLower(full) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) <= 63 {
		return s
	}
	h := sha256.Sum256([]byte(full))
	return s[:63-9] + "_" + hex.EncodeToString(h[:4])
}

// ReplicationOptions configure a Replication.
type ReplicationOptions struct {
	Name    string // the input's name, for errors and logs
	Slot    string // slot and publication name (ReplicationName)
	Logger  *slog.Logger
	Connect pgconnect.Options
	// Idle is how long Next waits for data before it asks the server where
	// it stands and reports ChangeIdle; default 100ms (the consumer may
	// hold a young batch until then).
	Idle time.Duration
	// SlotWait is how long Start waits for a slot that another stream
	// holds (one just killed, say); default 30s.
	SlotWait time.Duration
}

// Replication is a logical replication stream of one input's cdc tables,
// through a publication and a pgoutput slot of the same name.
type Replication struct {
	opts ReplicationOptions
	log  *slog.Logger
	repl *pgconn.PgConn // replication=database
	sql  *pgx.Conn      // catalog queries and key rendering

	tables    map[nopii.TableName]*streamTable
	relations map[uint32]*relation
	inTx      bool
	confirmed nopii.LSN
	walEnd    nopii.LSN
	pending   []nopii.Change // decoded, not yet returned
	lastSent  time.Time
}

type streamTable struct {
	t    *nopii.Table
	keys []int // column indexes of the key
}

type relation struct {
	msg   *pglogrepl.RelationMessage
	table *streamTable // nil: not ours, or drifted and not yet described again
	name  nopii.TableName
}

// OpenReplication connects twice: once for replication, once for queries.
func OpenReplication(ctx context.Context, dsn string, o ReplicationOptions) (*Replication, error) {
	if o.Idle <= 0 {
		o.Idle = 100 * time.Millisecond
	}
	if o.SlotWait <= 0 {
		o.SlotWait = 30 * time.Second
	}
	o.Connect.MinServer, o.Connect.NeededFor = MinServerCDC, "mode cdc"
	cfg, conn, err := connectSource(ctx, dsn, o.Name, &o.Logger, &o.Connect)
	if err != nil {
		return nil, err
	}
	// Said before the slot's creation would fail on it, with the fix.
	var walLevel string
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level')").Scan(&walLevel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("source %s: read wal_level: %w", o.Name, pgconnect.SafeError(err))
	}
	if walLevel != "logical" {
		conn.Close(context.Background())
		return nil, fmt.Errorf("source %s: mode cdc needs wal_level = logical, and the server has %s: ALTER SYSTEM SET wal_level = logical (or set it in postgresql.conf) and restart PostgreSQL", o.Name, walLevel)
	}
	rcfg := cfg.Copy()
	rcfg.RuntimeParams["replication"] = "database"
	rconn, err := pgconnect.ConnectConfig(ctx, rcfg, o.Connect)
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("source %s: replication connection (mode cdc needs a role with the REPLICATION attribute: ALTER ROLE … REPLICATION): %w", o.Name, err)
	}
	return &Replication{opts: o, log: o.Logger, repl: rconn.PgConn(), sql: conn,
		tables: map[nopii.TableName]*streamTable{}, relations: map[uint32]*relation{}}, nil
}

// Close closes both connections. The slot stays, and with it the WAL it
// retains, until DropSlot.
func (r *Replication) Close() error {
	r.repl.Close(context.Background())
	r.sql.Close(context.Background())
	return nil
}

// Ensure makes the publication hold exactly tables (creating it, or setting
// its tables) and creates the slot if it does not exist. Creating the
// publication needs ownership of the tables; the slot needs REPLICATION.
func (r *Replication) Ensure(ctx context.Context, tables []nopii.TableName) (nopii.SlotStart, error) {
	pub := r.opts.Slot
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Quoted()
	}
	var exists bool
	var added []nopii.TableName
	if err := r.sql.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", pub).Scan(&exists); err != nil {
		return nopii.SlotStart{}, fmt.Errorf("source %s: look up publication %s: %w", r.opts.Name, pub, pgconnect.SafeError(err))
	}
	switch {
	case !exists:
		// Partitioned tables publish their changes under the root's name,
		// as they are copied.
		create := "CREATE PUBLICATION " + nopii.QuoteIdent(pub) + " FOR TABLE " + strings.Join(names, ", ") +
			" WITH (publish_via_partition_root = true)"
		if _, err := r.sql.Exec(ctx, create); err != nil {
			return nopii.SlotStart{}, fmt.Errorf("source %s: create publication %s: %w (creating it needs ownership of the tables and CREATE on the database; or have an owner run: %s)",
				r.opts.Name, pub, pgconnect.SafeError(err), create)
		}
	default:
		rows, err := r.sql.Query(ctx, "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = $1", pub)
		if err != nil {
			return nopii.SlotStart{}, fmt.Errorf("source %s: read publication %s: %w", r.opts.Name, pub, pgconnect.SafeError(err))
		}
		have, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nopii.SlotStart{}, fmt.Errorf("source %s: read publication %s: %w", r.opts.Name, pub, pgconnect.SafeError(err))
		}
		want := make([]string, len(tables))
		for i, t := range tables {
			want[i] = quoteIdentMin(t.Schema) + "." + quoteIdentMin(t.Name)
		}
		changed := len(have) != len(want)
		for i, w := range want {
			if !slices.Contains(have, w) {
				added = append(added, tables[i])
				changed = true
			}
		}
		if changed {
			set := "ALTER PUBLICATION " + nopii.QuoteIdent(pub) + " SET TABLE " + strings.Join(names, ", ")
			if _, err := r.sql.Exec(ctx, set); err != nil {
				return nopii.SlotStart{}, fmt.Errorf("source %s: set the tables of publication %s to the configuration's: %w (this needs ownership of the publication and the tables; or have an owner run: %s)",
					r.opts.Name, pub, pgconnect.SafeError(err), set)
			}
		}
	}
	var plugin *string
	err := r.sql.QueryRow(ctx, "SELECT plugin FROM pg_replication_slots WHERE slot_name = $1", r.opts.Slot).Scan(&plugin)
	switch {
	case err == nil && (plugin == nil || *plugin != "pgoutput"):
		return nopii.SlotStart{}, fmt.Errorf("source %s: replication slot %s exists but is not a pgoutput slot; drop it or rename the workflow", r.opts.Name, r.opts.Slot)
	case err == nil:
		return nopii.SlotStart{Added: added}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nopii.SlotStart{}, fmt.Errorf("source %s: look up slot %s: %w", r.opts.Name, r.opts.Slot, pgconnect.SafeError(err))
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, r.repl, r.opts.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return nopii.SlotStart{}, fmt.Errorf("source %s: create replication slot %s: %w", r.opts.Name, r.opts.Slot, pgconnect.SafeError(err))
	}
	lsn, err := nopii.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return nopii.SlotStart{}, fmt.Errorf("source %s: create replication slot %s: %w", r.opts.Name, r.opts.Slot, err)
	}
	r.log.Info("replication slot created", "slot", r.opts.Slot, "lsn", lsn.String())
	return nopii.SlotStart{Created: true, Snapshot: res.SnapshotName, LSN: lsn}, nil
}

// quoteIdentMin quotes an identifier only where PostgreSQL's %I would.
func quoteIdentMin(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return nopii.QuoteIdent(s)
		}
	}
	return s
}

// DropSlot drops the slot and the publication of a workflow input, those
// that exist; a publication another role owns (created for nopii by an
// owner of the tables) stays. The slot must not be in use.
func DropSlot(ctx context.Context, dsn, name string, log *slog.Logger) (dropped []string, err error) {
	conn, err := pgconnect.Connect(ctx, dsn, pgconnect.Options{What: "source", Logger: log})
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tag, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name)
	if err != nil {
		return nil, fmt.Errorf("drop replication slot %s: %w", name, pgconnect.SafeError(err))
	}
	if tag.RowsAffected() > 0 {
		dropped = append(dropped, "replication slot "+name)
	}
	var exists, owned bool
	if err := conn.QueryRow(ctx, "SELECT count(*) > 0, coalesce(bool_and(pg_has_role(pubowner, 'USAGE')), false) FROM pg_publication WHERE pubname = $1", name).Scan(&exists, &owned); err != nil {
		return dropped, fmt.Errorf("look up publication %s: %w", name, pgconnect.SafeError(err))
	}
	if exists && !owned {
		// Created for nopii by an owner of the tables: theirs to drop.
		log.Info("publication left in place: another role owns it", "publication", name)
		return dropped, nil
	}
	if exists {
		if _, err := conn.Exec(ctx, "DROP PUBLICATION "+nopii.QuoteIdent(name)); err != nil {
			return dropped, fmt.Errorf("drop publication %s: %w", name, pgconnect.SafeError(err))
		}
		dropped = append(dropped, "publication "+name)
	}
	return dropped, nil
}

// CheckTable refuses a table whose changes the stream cannot apply: key
// columns outside the replica identity (deletes would not carry them), and
// stored generated columns (pgoutput leaves them out).
func (r *Replication) CheckTable(ctx context.Context, t *nopii.Table) error {
	var ident string
	var idcols []string
	err := r.sql.QueryRow(ctx, `
		SELECT c.relreplident::text,
		       coalesce((SELECT array_agg(a.attname::text) FROM pg_index i
		                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		                 WHERE i.indrelid = c.oid AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))), '{}')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
		t.Name.Schema, t.Name.Name).Scan(&ident, &idcols)
	if err != nil {
		return fmt.Errorf("read replica identity of %s: %w", t.Name, pgconnect.SafeError(err))
	}
	for _, c := range t.Columns {
		if len(c.GeneratedFrom) > 0 {
			return fmt.Errorf("table %s: generated column %s is not carried by logical replication: use mode full or delta for this table", t.Name, c.Name)
		}
	}
	if ident == "f" {
		return nil
	}
	for _, k := range t.PrimaryKey {
		if !slices.Contains(idcols, k) {
			return fmt.Errorf("table %s: key column %s is not in the table's replica identity, so deletes would not say which row went: add a primary key on the key columns, or run ALTER TABLE %s REPLICA IDENTITY FULL", t.Name, k, t.Name.Quoted())
		}
	}
	return nil
}

// CurrentLSN returns the source's current WAL insert position: past every
// transaction committed so far, asynchronous commits included, which
// pg_current_wal_lsn (the write position) may not be yet.
func (r *Replication) CurrentLSN(ctx context.Context) (nopii.LSN, error) {
	var s string
	if err := r.sql.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		return 0, fmt.Errorf("source %s: read the WAL position: %w", r.opts.Name, pgconnect.SafeError(err))
	}
	return nopii.ParseLSN(s)
}

// SlotLag returns the WAL the slot retains (bytes from its restart point to
// the current position) and how far behind its confirmed position is.
func (r *Replication) SlotLag(ctx context.Context) (retained, behind int64, err error) {
	err = r.sql.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn), 0)::int8,
		coalesce(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), confirmed_flush_lsn), 0)::int8
		FROM pg_replication_slots WHERE slot_name = $1`, r.opts.Slot).Scan(&retained, &behind)
	if err != nil {
		return 0, 0, fmt.Errorf("source %s: read slot %s: %w", r.opts.Name, r.opts.Slot, pgconnect.SafeError(err))
	}
	return retained, behind, nil
}

// Register sets (or replaces, after drift) the description that changes
// of a table are decoded with.
func (r *Replication) Register(t *nopii.Table) error {
	st := &streamTable{t: t}
	for _, k := range t.PrimaryKey {
		i := slices.IndexFunc(t.Columns, func(c nopii.Column) bool { return c.Name == k })
		if i < 0 {
			return fmt.Errorf("table %s: key column %s: %w", t.Name, k, nopii.ErrNotFound)
		}
		st.keys = append(st.keys, i)
	}
	r.tables[t.Name] = st
	for _, rel := range r.relations {
		if rel.name == t.Name {
			rel.table = nil
			if matches(rel.msg, t) {
				rel.table = st
			}
		}
	}
	return nil
}

// matches reports whether a relation message has the table's columns.
func matches(m *pglogrepl.RelationMessage, t *nopii.Table) bool {
	if len(m.Columns) != len(t.Columns) {
		return false
	}
	for i, c := range m.Columns {
		tc := t.Columns[i]
		if c.Name != tc.Name || c.DataType != tc.Type.OID || c.TypeModifier != tc.Typmod {
			return false
		}
	}
	return true
}

// Start starts streaming from the slot at from (the server starts at the
// slot's confirmed position if that is later).
func (r *Replication) Start(ctx context.Context, from nopii.LSN) error {
	r.confirmed = from
	// A stream killed a moment ago may still hold the slot until its
	// server process notices.
	for wait := time.Now().Add(r.opts.SlotWait); ; {
		var pid *int32
		err := r.sql.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", r.opts.Slot).Scan(&pid)
		if err != nil {
			return fmt.Errorf("source %s: look up slot %s: %w", r.opts.Name, r.opts.Slot, pgconnect.SafeError(err))
		}
		if pid == nil {
			break
		}
		if time.Now().After(wait) {
			return fmt.Errorf("source %s: replication slot %s is in use by server process %d: is another nopii streaming this workflow?", r.opts.Name, r.opts.Slot, *pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	err := pglogrepl.StartReplication(ctx, r.repl, r.opts.Slot, pglogrepl.LSN(from), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(r.opts.Slot),
			// Values in the binary send format: the bytes COPY BINARY gives,
			// so the compiled rules apply unchanged.
			"binary 'true'"},
	})
	if err != nil {
		return fmt.Errorf("source %s: start replication on slot %s: %w", r.opts.Name, r.opts.Slot, pgconnect.SafeError(err))
	}
	r.lastSent = time.Now()
	return nil
}

// Confirm tells the server that everything up to lsn is applied: the slot
// may free the WAL before it.
func (r *Replication) Confirm(lsn nopii.LSN) error {
	if lsn > r.confirmed {
		r.confirmed = lsn
	}
	return r.status(false)
}

func (r *Replication) status(reply bool) error {
	r.lastSent = time.Now()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), r.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(r.confirmed), ReplyRequested: reply})
	if err != nil {
		return fmt.Errorf("source %s: send standby status: %w", r.opts.Name, err)
	}
	return nil
}

// Next returns the next change. Values are valid until the next call.
func (r *Replication) Next(ctx context.Context) (*nopii.Change, error) {
	for {
		if len(r.pending) > 0 {
			c := r.pending[0]
			r.pending = r.pending[1:]
			return &c, nil
		}
		if time.Since(r.lastSent) > 10*time.Second {
			if err := r.status(false); err != nil {
				return nil, err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, r.opts.Idle)
		msg, err := r.repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if pgconn.Timeout(err) {
				// Quiet: ask where the server stands; its keepalive answers.
				if err := r.status(true); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("source %s: receive: %w", r.opts.Name, pgconnect.SafeError(err))
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return nil, fmt.Errorf("source %s: replication: %w", r.opts.Name, pgconnect.SafeError(pgconn.ErrorResponseToPgError(m)))
		case *pgproto3.CopyData:
			if err := r.handle(ctx, m.Data); err != nil {
				return nil, err
			}
		}
	}
}

func (r *Replication) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("source %s: %w", r.opts.Name, err)
		}
		r.walEnd = max(r.walEnd, nopii.LSN(k.ServerWALEnd))
		if k.ReplyRequested {
			if err := r.status(false); err != nil {
				return err
			}
		}
		if !r.inTx {
			r.pending = append(r.pending, nopii.Change{Kind: nopii.ChangeIdle, LSN: r.walEnd})
		}
		return nil
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("source %s: %w", r.opts.Name, err)
		}
		return r.decode(ctx, x.WALData)
	}
	return nil
}

func (r *Replication) decode(ctx context.Context, wal []byte) error {
	msg, err := pglogrepl.Parse(wal)
	if err != nil {
		return fmt.Errorf("source %s: decode pgoutput: %w", r.opts.Name, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		r.inTx = true
		r.pending = append(r.pending, nopii.Change{Kind: nopii.ChangeBegin, LSN: nopii.LSN(m.FinalLSN), Time: m.CommitTime})
	case *pglogrepl.CommitMessage:
		r.inTx = false
		r.walEnd = max(r.walEnd, nopii.LSN(m.TransactionEndLSN))
		r.pending = append(r.pending, nopii.Change{Kind: nopii.ChangeCommit, LSN: nopii.LSN(m.TransactionEndLSN), Time: m.CommitTime})
	case *pglogrepl.RelationMessage:
		name := nopii.TableName{Schema: m.Namespace, Name: m.RelationName}
		rel := &relation{msg: m, name: name}
		r.relations[m.RelationID] = rel
		st := r.tables[name]
		if st == nil {
			return nil
		}
		if matches(m, st.t) {
			rel.table = st
			return nil
		}
		r.pending = append(r.pending, nopii.Change{Kind: nopii.ChangeDrift, Table: name})
	case *pglogrepl.InsertMessage:
		return r.row(ctx, m.RelationID, 0, nil, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return r.row(ctx, m.RelationID, m.OldTupleType, m.OldTuple, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		rel, st := r.relation(m.RelationID)
		if st == nil {
			return nil
		}
		key, err := r.key(ctx, st, m.OldTuple, rel.name)
		if err != nil {
			return err
		}
		r.pending = append(r.pending, nopii.Change{Kind: nopii.ChangeDelete, Table: rel.name, Key: key})
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if rel, st := r.relation(id); st != nil {
				r.pending = append(r.pending, nopii.Change{Kind: nopii.ChangeTruncate, Table: rel.name})
			}
		}
	}
	return nil
}

// relation returns a relation and, when its changes are ours to decode,
// its table.
func (r *Replication) relation(id uint32) (*relation, *streamTable) {
	rel := r.relations[id]
	if rel == nil {
		return nil, nil
	}
	return rel, rel.table
}

func (r *Replication) row(ctx context.Context, id uint32, oldType uint8, old, tuple *pglogrepl.TupleData) error {
	rel, st := r.relation(id)
	if st == nil || tuple == nil {
		return nil
	}
	n := len(st.t.Columns)
	values := make([][]byte, n)
	var unchanged []int
	for i, c := range tuple.Columns {
		if i >= n {
			break
		}
		switch c.DataType {
		case pglogrepl.TupleDataTypeBinary:
			values[i] = c.Data
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeToast:
			// An unchanged TOASTed value is not sent. With REPLICA IDENTITY
			// FULL the old tuple has it, detoasted; otherwise the consumer
			// reads it again (Refetch).
			switch {
			case oldType == pglogrepl.UpdateMessageTupleTypeOld && old != nil && i < len(old.Columns) &&
				old.Columns[i].DataType == pglogrepl.TupleDataTypeBinary:
				values[i] = old.Columns[i].Data
			case oldType == pglogrepl.UpdateMessageTupleTypeOld && old != nil && i < len(old.Columns) &&
				old.Columns[i].DataType == pglogrepl.TupleDataTypeNull:
			case slices.Contains(st.keys, i):
				return fmt.Errorf("table %s: an update left the large value of key column %s unchanged, and logical replication does not send it: run ALTER TABLE %s REPLICA IDENTITY FULL",
					rel.name, st.t.Columns[i].Name, rel.name.Quoted())
			default:
				unchanged = append(unchanged, i)
			}
		default:
			return fmt.Errorf("table %s: column %s came as text, not binary: its type has no binary send function", rel.name, st.t.Columns[i].Name)
		}
	}
	key, err := r.keyOf(ctx, st, values)
	if err != nil {
		return fmt.Errorf("table %s: %w", rel.name, err)
	}
	c := nopii.Change{Kind: nopii.ChangeUpsert, Table: rel.name, Values: values, Key: key, Unchanged: unchanged}
	if old != nil {
		ok, err := r.key(ctx, st, old, rel.name)
		if err != nil {
			return err
		}
		if string(ok) != string(key) {
			c.OldKey = ok
		}
	}
	r.pending = append(r.pending, c)
	return nil
}

// Refetch reads the source's current values of the columns cols of rows
// (each in the described column order, its key columns set) by key, and
// sets them in place: one pipelined query per row, one round trip in all.
// found[i] is false for a row the source no longer has. It serves
// changes whose unchanged TOASTed values the stream did not send
// (nopii.Change.Unchanged); the values read may be newer than the change,
// which the stream's later changes then also bring.
func (r *Replication) Refetch(ctx context.Context, name nopii.TableName, cols [][]int, rows [][][]byte) (found []bool, err error) {
	st := r.tables[name]
	if st == nil {
		return nil, fmt.Errorf("refetch %s: %w", name, nopii.ErrNotFound)
	}
	var where strings.Builder
	oids := make([]uint32, len(st.keys))
	formats := make([]int16, len(st.keys))
	for n, i := range st.keys {
		if n > 0 {
			where.WriteString(" AND ")
		}
		where.WriteString(nopii.QuoteIdent(st.t.Columns[i].Name) + " = $" + strconv.Itoa(n+1))
		oids[n], formats[n] = st.t.Columns[i].Type.OID, 1
	}
	b := &pgconn.Batch{}
	for i, row := range rows {
		list := make([]string, len(cols[i]))
		for n, c := range cols[i] {
			list[n] = nopii.QuoteIdent(st.t.Columns[c].Name)
		}
		params := make([][]byte, len(st.keys))
		for n, k := range st.keys {
			params[n] = row[k]
		}
		results := make([]int16, len(cols[i]))
		for n := range results {
			results[n] = 1
		}
		b.ExecParams("SELECT "+strings.Join(list, ", ")+" FROM "+from(st.t)+" WHERE "+where.String(), params, oids, formats, results)
	}
	res, err := r.sql.PgConn().ExecBatch(ctx, b).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("source %s: read unchanged values of %s again: %w", r.opts.Name, name, pgconnect.SafeError(err))
	}
	found = make([]bool, len(rows))
	for i, rs := range res {
		if len(rs.Rows) == 0 {
			continue
		}
		found[i] = true
		for n, c := range cols[i] {
			rows[i][c] = rs.Rows[0][n]
		}
	}
	return found, nil
}

// key renders the key of an old tuple (the replica identity's columns, or
// all of them).
func (r *Replication) key(ctx context.Context, st *streamTable, old *pglogrepl.TupleData, name nopii.TableName) ([]byte, error) {
	if old == nil {
		return nil, fmt.Errorf("table %s: a delete without the old key (the table has no replica identity): add a primary key or set REPLICA IDENTITY FULL", name)
	}
	values := make([][]byte, len(st.t.Columns))
	for _, i := range st.keys {
		if i >= len(old.Columns) || old.Columns[i].DataType != pglogrepl.TupleDataTypeBinary {
			return nil, fmt.Errorf("table %s: the old row lacks key column %s: add a primary key on the key columns or set REPLICA IDENTITY FULL", name, st.t.Columns[i].Name)
		}
		values[i] = old.Columns[i].Data
	}
	k, err := r.keyOf(ctx, st, values)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", name, err)
	}
	return k, nil
}

// keyOf renders a row's key exactly as a copy does (CopySQL: col::text, or
// json_build_array(cols…)::text): locally for integer, text and uuid
// columns, by asking the source for every other type.
func (r *Replication) keyOf(ctx context.Context, st *streamTable, values [][]byte) ([]byte, error) {
	if k, ok := KeyText(st.t, values, st.keys); ok {
		return k, nil
	}
	params := make([][]byte, len(st.keys))
	oids := make([]uint32, len(st.keys))
	formats := make([]int16, len(st.keys))
	var q strings.Builder
	q.WriteString("SELECT ")
	if len(st.keys) == 1 {
		q.WriteString("$1::text")
	} else {
		q.WriteString("json_build_array(")
		for i := range st.keys {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("$" + strconv.Itoa(i+1))
		}
		q.WriteString(")::text")
	}
	for i, ci := range st.keys {
		params[i], oids[i], formats[i] = values[ci], st.t.Columns[ci].Type.OID, 1
	}
	res := r.sql.PgConn().ExecParams(ctx, q.String(), params, oids, formats, []int16{0}).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("render the key: %w", pgconnect.SafeError(res.Err))
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || res.Rows[0][0] == nil {
		return nil, errors.New("render the key: no value")
	}
	return res.Rows[0][0], nil
}

// ReferenceKeys renders, for each list of columns refs[i] of a row of the
// table name (its binary values, as the stream sends them), the key text a
// copy renders for the row it references (Selection.References): nil where
// one of the columns is NULL.
func (r *Replication) ReferenceKeys(ctx context.Context, name nopii.TableName, refs [][]int, values [][]byte) ([][]byte, error) {
	st := r.tables[name]
	if st == nil {
		return nil, fmt.Errorf("reference keys of %s: %w", name, nopii.ErrNotFound)
	}
	out := make([][]byte, len(refs))
	for i, cols := range refs {
		null := false
		for _, c := range cols {
			null = null || values[c] == nil
		}
		if null {
			continue
		}
		k, err := r.keyOf(ctx, &streamTable{t: st.t, keys: cols}, values)
		if err != nil {
			return nil, fmt.Errorf("table %s: reference %d: %w", name, i, err)
		}
		out[i] = append([]byte(nil), k...)
	}
	return out, nil
}

// KeyText renders the key text of a row from its binary values without
// asking the source, when every key column is an integer, text, varchar,
// enum or uuid (through domains); ok is false otherwise.
func KeyText(t *nopii.Table, values [][]byte, keys []int) (key []byte, ok bool) {
	var b []byte
	if len(keys) > 1 {
		b = append(b, '[')
	}
	for n, i := range keys {
		v := values[i]
		if v == nil {
			return nil, false
		}
		if n > 0 {
			b = append(b, ", "...)
		}
		ty := t.Columns[i].Type.Underlying()
		name := ty.Name
		if ty.Kind == nopii.TypeEnum {
			name = "text"
		}
		switch name {
		case "int2", "int4", "int8":
			var x int64
			switch len(v) {
			case 2:
				x = int64(int16(binary.BigEndian.Uint16(v)))
			case 4:
				x = int64(int32(binary.BigEndian.Uint32(v)))
			case 8:
				x = int64(binary.BigEndian.Uint64(v))
			default:
				return nil, false
			}
			b = strconv.AppendInt(b, x, 10)
		case "text", "varchar":
			if len(keys) == 1 {
				return v, true
			}
			b = appendJSONString(b, v)
		case "uuid":
			if len(v) != 16 {
				return nil, false
			}
			if len(keys) > 1 {
				b = append(b, '"')
			}
			for g, end := range [...]int{4, 6, 8, 10, 16} {
				if g > 0 {
					b = append(b, '-')
				}
				b = hex.AppendEncode(b, v[[...]int{0, 4, 6, 8, 10}[g]:end])
			}
			if len(keys) > 1 {
				b = append(b, '"')
			}
		default:
			return nil, false
		}
	}
	if len(keys) > 1 {
		b = append(b, ']')
	}
	return b, true
}

// jsonEscapes are the characters escape_json writes as a backslash and a letter.
var jsonEscapes = [...]byte{'"': '"', '\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}

// appendJSONString quotes s as PostgreSQL's escape_json does: those
// escapes, other control characters as \u00XX, everything else (UTF-8
// included) as it is.
func appendJSONString(b, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch {
		case int(c) < len(jsonEscapes) && jsonEscapes[c] != 0:
			b = append(b, '\\', jsonEscapes[c])
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
