package nopii

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrNotFound reports a table, column or type that the source does not have.
	ErrNotFound = errors.New("not found")
	// ErrNoPrimaryKey reports a table without a primary key and without a
	// primary_key override in the configuration.
	ErrNoPrimaryKey = errors.New("table has no primary key: set primary_key in the config")
	// ErrUnsupportedType reports a column type that a rule cannot handle.
	ErrUnsupportedType = errors.New("unsupported type")
)

// SourcePrimaryKeyColumn is the column every feed adds to every table: the
// source row's primary key as text (SPEC §3).
const SourcePrimaryKeyColumn = "source_primary_key"

// TableName is a schema-qualified relation name.
type TableName struct {
	Schema string
	Name   string
}

// String returns schema.name, unquoted, as users write it in the config.
func (n TableName) String() string { return n.Schema + "." + n.Name }

// Quoted returns the SQL identifier "schema"."name".
func (n TableName) Quoted() string { return QuoteIdent(n.Schema) + "." + QuoteIdent(n.Name) }

// QuoteIdent quotes a SQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TypeKind classifies PostgreSQL types by what their values look like.
type TypeKind uint8

// Type kinds, after pg_type.typtype plus arrays.
const (
	TypeBase      TypeKind = iota // a built-in or extension scalar type
	TypeEnum                      // CREATE TYPE … AS ENUM
	TypeDomain                    // CREATE DOMAIN
	TypeComposite                 // CREATE TYPE … AS (…)
	TypeArray                     // an array of Elem
	TypeRange                     // a range type
)

// Type describes a PostgreSQL data type as the source catalog has it.
type Type struct {
	OID    uint32
	Schema string // pg_catalog for built-in types
	Name   string // pg_type.typname: int8, varchar, _text, mood …
	Kind   TypeKind
	SQL    string // format_type(oid, NULL), schema-qualified unless built in

	Elem       *Type    // TypeArray: the element type
	Base       *Type    // TypeDomain: the base type
	BaseTypmod int32    // TypeDomain: the base type's typmod (varchar(20) → 24), -1 if none
	BaseSQL    string   // TypeDomain: the base type as format_type prints it: character varying(20)
	NotNull    bool     // TypeDomain: the domain is NOT NULL
	Checks     []string // TypeDomain: CHECK constraint definitions, as pg_get_constraintdef prints them
	Labels     []string // TypeEnum: labels in sort order
	Attrs      []Column // TypeComposite: attributes
	Extension  string   // the extension that owns the type, if any
}

// BuiltIn reports whether the type lives in pg_catalog.
func (t *Type) BuiltIn() bool { return t.Schema == "pg_catalog" }

// Underlying strips domains: the type whose binary format values use.
func (t *Type) Underlying() *Type {
	for t.Kind == TypeDomain && t.Base != nil {
		t = t.Base
	}
	return t
}

// Column is one column of a table (or one attribute of a composite type).
type Column struct {
	Name    string
	Type    *Type
	Typmod  int32  // pg_attribute.atttypmod; -1 when none
	TypeSQL string // the type as format_type prints it for built-in types: character varying(20)
	NotNull bool
	Comment string // COMMENT ON COLUMN, for the scanner; not part of the fingerprint
	// GeneratedFrom lists the columns a stored generated column is computed
	// from; its stored value carries theirs.
	GeneratedFrom []string
	// Generated is a stored generated column's expression (pg_get_expr),
	// Default a column default's; the input's schema prefix is applied.
	Generated, Default string
	// Identity is 'a' (GENERATED ALWAYS) or 'd' (BY DEFAULT) for an
	// identity column, else 0; IdentitySequence and IdentityOptions are its
	// sequence's name and options.
	Identity         byte
	IdentitySequence TableName
	IdentityOptions  string
	Collation        string // COLLATE's argument when it is not the type's default, e.g. "C", public."de-x-icu"
}

// scalar looks through domains, an array and its element's domains to the
// type whose values the column holds, with the typmod that applies to them:
// the column's own, else the first a domain gives.
func (c Column) scalar() (*Type, int32) {
	t, mod := c.Type, c.Typmod
	strip := func() {
		for t.Kind == TypeDomain && t.Base != nil {
			if mod < 0 {
				mod = t.BaseTypmod
			}
			t = t.Base
		}
	}
	strip()
	if t.Kind == TypeArray && t.Elem != nil {
		t = t.Elem
		strip()
	}
	return t, mod
}

// MaxChars returns the character limit of a varchar(n) or char(n) column
// (or array of them), looking through domains, or 0 when it has none.
func (c Column) MaxChars() int {
	t, mod := c.scalar()
	if (t.Name == "varchar" || t.Name == "bpchar") && mod >= 4 {
		return int(mod - 4)
	}
	return 0
}

// NumericScale returns the declared scale of a numeric(p,s) column, which
// PostgreSQL 15 allows to be negative, or -1 when it declares none.
func (c Column) NumericScale() int {
	t, mod := c.scalar()
	if t.Name == "numeric" && mod >= 4 {
		return int(((mod-4)&0x7ff)^1024) - 1024 // an 11-bit signed number
	}
	return -1
}

// Table is a relation selected for copying, with its columns in source order.
type Table struct {
	Name        TableName
	Columns     []Column
	PrimaryKey  []string // key column names, from the catalog or the config override
	Partitioned bool     // a partitioned root: read through it, load as one table
	View        bool     // a view or materialized view named explicitly
	EstRows     int64    // pg_class.reltuples, for progress; -1 when unknown
	// Schema is the rest of the table's schema (keys, indexes, constraints,
	// partitions …), for a faithful twin; nil when the source did not read it.
	Schema *Schema
	// OmitGenerated: Copy sends NULL for stored generated columns, because
	// every feed computes them from the (redacted) columns they are built from.
	OmitGenerated bool
}

// Column returns the column named name.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Fingerprint is a stable digest of what a table's rows look like: column
// names, types, nullability and key. Drift detection compares fingerprints.
type Fingerprint string

// Fingerprint returns the table's fingerprint.
func (t *Table) Fingerprint() Fingerprint {
	h := sha256.New()
	for _, c := range t.Columns {
		fmt.Fprintf(h, "c\x00%s\x00%s\x00%d\x00%t\n", c.Name, typeKey(c.Type), c.Typmod, c.NotNull)
	}
	fmt.Fprintf(h, "k\x00%s\n", strings.Join(t.PrimaryKey, "\x00"))
	return Fingerprint(hex.EncodeToString(h.Sum(nil))[:32])
}

func typeKey(t *Type) string {
	if t == nil {
		return "?"
	}
	if t.Kind == TypeArray && t.Elem != nil {
		return typeKey(t.Elem) + "[]"
	}
	return t.Schema + "." + t.Name
}

// RowWriter receives rows in PostgreSQL binary format: one value per column
// of the target table, in order, nil for NULL. The values are only valid
// during the call.
type RowWriter interface {
	WriteRow(values [][]byte) error
}

// Load is one feed's load of one table. Rows go in with WriteRow; Commit
// publishes them atomically; Abort discards them and leaves what the feed
// held before. After Commit or Abort the Load is done; Abort after Commit is
// a no-op, so callers may defer it.
type Load interface {
	RowWriter
	Commit(ctx context.Context) error
	Abort()
}

// Target describes where a source table lands in a feed.
type Target struct {
	Table  *Table      // the source table, columns as loaded
	Name   TableName   // the name in the feed (schema prefix applied)
	Prefix string      // the input's target_schema_prefix, applied to user types too
	State  *TableState // committed with the rows, in the same transaction where the feed can
	// Deferred asks a feed that publishes (a twin) to make the load visible
	// only at its Publish, with the input's other tables in one
	// transaction: Commit then readies the rows (a committed shadow table,
	// a committed stage) without touching what readers see. Feeds without
	// a publish step ignore it and publish at Commit.
	Deferred bool
}

// Feed is a destination for redacted tables.
type Feed interface {
	// Kind names the feed type: twin, s3, files.
	Kind() string
	// Prepare readies the feed for the targets of one run: schemas, user
	// types. It is called once, before any load.
	Prepare(ctx context.Context, targets []Target) error
	// FullCopy starts loading a complete new version of a table. The feed's
	// previous version stays visible until Commit.
	FullCopy(ctx context.Context, t Target) (Load, error)
	// Delta starts loading changed rows into the feed's existing copy.
	// deletes says whether keys will be streamed for an anti-join.
	Delta(ctx context.Context, t Target, deletes bool) (DeltaLoad, error)
	// State returns the table's state from the last successful run, or nil.
	// It writes nothing, so plan may call it.
	State(ctx context.Context, k StateKey) (*TableState, error)
	// Close releases the feed's connections.
	Close() error
}

// RelKind is the kind of a relation in the source catalog.
type RelKind uint8

// Relation kinds, after pg_class.relkind.
const (
	RelTable       RelKind = iota // r
	RelPartitioned                // p: a partitioned root
	RelView                       // v
	RelMatView                    // m
	RelForeign                    // f
)

// Relation is a row of the source catalog that a table selector may match.
type Relation struct {
	Name      TableName
	Kind      RelKind
	Partition bool      // a partition of a partitioned table: never selected on its own
	Parent    TableName // the partitioned parent, or the first inheritance parent; zero when none
}

// CopyStats counts what one table copy read from the source.
type CopyStats struct {
	Rows  int64
	Bytes int64 // bytes of the binary COPY stream
}

// Source is a consistent, read-only view of one production database: every
// method sees the same snapshot.
type Source interface {
	// Relations lists the tables, partitioned roots, views and foreign tables
	// outside system schemas.
	Relations(ctx context.Context) ([]Relation, error)
	// Describe locks the relation against schema changes for the rest of the
	// snapshot and returns its columns, types and primary key. primaryKey,
	// when set, overrides the catalog's key. Returns ErrNotFound for a missing
	// relation or key column and ErrNoPrimaryKey for a table without a key;
	// with ErrNoPrimaryKey or a missing primaryKey column the table is
	// returned too, described but keyless (the scanner samples such tables;
	// validation goes on to check its columns; a copy needs a key).
	Describe(ctx context.Context, rel Relation, primaryKey []string) (*Table, error)
	// Copy streams every row of t: the values of t.Columns in order followed
	// by the row's source primary key as text. Values are valid only during
	// the call to row. Copy may be called from several goroutines at once.
	Copy(ctx context.Context, t *Table, row func(values [][]byte) error) (CopyStats, error)
	// CopySelect is Copy narrowed by a Selection; with KeysOnly the row
	// holds just the key text.
	CopySelect(ctx context.Context, t *Table, sel Selection, row func(values [][]byte) error) (CopyStats, error)
	// Max returns the largest value of a column in the snapshot as text, with
	// rows limited to those newer than cursor when given; "" when none.
	Max(ctx context.Context, t *Table, column string, since *Cursor) (string, error)
	// InFlightSince returns the start of the oldest transaction that was
	// writing when the snapshot was taken, or the zero time: rows it stamps
	// may commit after the snapshot.
	InFlightSince() time.Time
	// Indexed reports whether some index of the table leads with column,
	// which a delta cursor needs to be cheap.
	Indexed(ctx context.Context, t *Table, column string) (bool, error)
	// Sample reads a bounded sample of up to n rows of the table (never the
	// whole of a big one) and returns, per column asked for, its non-NULL
	// values as text, in the order of columns. Sample may be called from
	// several goroutines at once.
	Sample(ctx context.Context, t *Table, columns []string, n int) ([][]string, error)
	// Close ends the snapshot and releases connections.
	Close() error
}

// Cursor selects rows whose Column passed After (minus Overlap), for delta
// copies. After is the source's text rendering of a value of the column's type.
type Cursor struct {
	Column  string
	After   string
	Overlap time.Duration
}

// Selection narrows a copy. The zero Selection copies every row.
type Selection struct {
	Since       []Cursor  // OR'ed: rows newer than any cursor
	WindowSince time.Time // with WindowBy: rows whose WindowBy column is at or after this time
	WindowBy    []string  // columns judged for the window; a row is in when any of them is
	KeysOnly    bool      // stream only the key text (one value per row)
	// With KeysOnly and BucketBits > 0: only the keys whose bucket, among
	// 1<<BucketBits (see KeyDigests), is one of Buckets.
	BucketBits int
	Buckets    []uint32
	// Subset, when set and reaching the table, keeps only the table's rows
	// in the referential subset, computed by the source in its snapshot;
	// the table's window is then the subset's (SubsetTable.WindowSince),
	// and WindowSince above does not apply.
	Subset *Subset
	// Resync, with Subset and BucketBits > 0 (not KeysOnly), also selects
	// the subset's rows whose key falls in one of these buckets, whether a
	// cursor selects them or not: the buckets whose rows entered or left
	// the subset since the last run.
	Resync []uint32
	// References (not with KeysOnly) has the copy send, after the key, one
	// more value per entry: the key text that the row's columns of a
	// reference name, as the referenced table's copies render their key (a
	// value's text, or a JSON array's for several columns); NULL when a
	// column is NULL. The agent keeps rows from naming forgotten rows with
	// them (SPEC §7).
	References [][]string
}

// KeyDigests digest a table's key texts per bucket: a delta with
// detect_deletes compares the source's with a feed's and streams only the
// keys of buckets that differ. Digests compare only when their Hasher (the
// hash function and text encoding) is the same.
type KeyDigests struct {
	Hasher  string
	Buckets map[uint32]KeyDigest // non-empty buckets
}

// KeyDigest is one bucket's: how many keys, and the exact sum of their
// 64-bit hashes as decimal text.
type KeyDigest struct {
	Count int64
	Sum   string
}

// TableState is what a feed remembers about a table between runs (SPEC §3).
type TableState struct {
	Workflow    string            `json:"workflow"`
	Input       string            `json:"input"`
	Table       TableName         `json:"table"` // in the source
	Mode        string            `json:"mode"`  // of the last run: full, delta or cdc
	Fingerprint Fingerprint       `json:"fingerprint"`
	Columns     []ColumnShape     `json:"columns"`
	PrimaryKey  []string          `json:"primary_key"`
	Cursors     map[string]string `json:"cursors,omitempty"` // column → high-water mark (source text)
	// LSN (mode cdc) is where the table's stream resumes: every source
	// transaction that ended at or before it is in the feed's copy.
	LSN string `json:"lsn,omitempty"`
	// Subset (a table in a referential subset, mode delta): the digests,
	// per bucket of 1<<SubsetBits, of the keys the subset held when the
	// state was saved; the next delta re-reads the buckets whose digests
	// changed (rows that entered or left the subset).
	SubsetBits    int                  `json:"subset_bits,omitempty"`
	SubsetDigests map[uint32]KeyDigest `json:"subset_digests,omitempty"`
	LastRun       time.Time            `json:"last_run"`
	Rows          int64                `json:"rows"`
	// Objects names the schema objects a feed built from the source's
	// schema (a twin's constraints and indexes), so that its next full
	// copy tells them from the objects users made, which it carries over.
	Objects []string `json:"objects,omitempty"`
	// SchemaDigest is the source's Schema.Digest as the last run loaded
	// it: a faithful twin's next run copies the table in full when the
	// source's indexes or constraints differ from it.
	SchemaDigest map[string]string `json:"schema_digest,omitempty"`
}

// ColumnShape is what drift detection compares of a column.
type ColumnShape struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	NotNull bool   `json:"not_null"`
}

// Shape returns the columns as drift detection sees them.
func (t *Table) Shape() []ColumnShape {
	out := make([]ColumnShape, len(t.Columns))
	for i, c := range t.Columns {
		ty := c.TypeSQL
		if ty == "" {
			ty = typeKey(c.Type)
		}
		out[i] = ColumnShape{Name: c.Name, Type: ty, NotNull: c.NotNull}
	}
	return out
}

// DeltaLoad is one feed's load of the changed rows of a table: WriteRow
// upserts on source_primary_key; when deletes are detected, WriteKey
// receives every key that should remain and Commit removes the others.
type DeltaLoad interface {
	Load
	WriteKey(key []byte) error
}

// StateKey names a table's state in a feed.
type StateKey struct {
	Workflow, Input string
	Table           TableName
}
