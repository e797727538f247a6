package nopii

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Schema is what a table has beyond its columns' names and types, as the
// source's catalog defines it: what a faithful twin recreates (SPEC §3, "A
// faithful twin"; docs/twin.md). SQL text (Def, Bound, PartitionKey) is as
// PostgreSQL's pg_get_*def functions print it, every schema reference
// already renamed by the input's target_schema_prefix; names (TableName
// fields, Name) are the source's, and consumers apply the prefix to them.
type Schema struct {
	Comment string // COMMENT ON TABLE
	// PartitionKey is PARTITION BY's argument (RANGE (created_at)) for a
	// partitioned root; "" for a plain table.
	PartitionKey string
	// PartitionColumns are the columns the partition keys read, of the
	// root and of every partition that is partitioned itself: a rule that
	// changes one of them leaves the partitioning out of the twin (the
	// bounds hold the source's values, which the redacted rows lack).
	PartitionColumns []string
	Partitions       []Partition  // parents before their children
	Constraints      []Constraint // primary key, unique, exclusion, check, foreign keys
	Indexes          []Index      // indexes that back no constraint
	// Sequences are those the column defaults use (serial's, owned by a
	// column, and standalone ones); identity columns' are in Column.Identity.
	Sequences []Sequence
}

// Digest names each object a faithful twin builds from the schema — its
// constraints, indexes, partition key and partitions — "kind name", with a
// digest of its definition: what schema drift compares, so that an index or
// constraint added, dropped or changed in the source is seen, and named.
// nil for a nil Schema.
func (s *Schema) Digest() map[string]string {
	if s == nil {
		return nil
	}
	out := map[string]string{}
	add := func(what, def string) {
		h := sha256.Sum256([]byte(def))
		out[what] = hex.EncodeToString(h[:8])
	}
	if s.PartitionKey != "" {
		add("partition key", s.PartitionKey)
	}
	for _, c := range s.Constraints {
		add(c.Kind.String()+" "+c.Name, c.Def)
	}
	for _, ix := range s.Indexes {
		unique := ""
		if ix.Unique {
			unique = "UNIQUE "
		}
		add("index "+ix.Name, unique+ix.Def)
	}
	for _, p := range s.Partitions {
		add("partition "+p.Name.String(), p.Parent.String()+" "+p.Bound+" "+p.PartitionKey)
	}
	return out
}

// ConstraintKind is a constraint's type, after pg_constraint.contype.
type ConstraintKind uint8

// Constraint kinds.
const (
	ConstraintPrimaryKey ConstraintKind = iota // p
	ConstraintUnique                           // u
	ConstraintExclusion                        // x
	ConstraintCheck                            // c
	ConstraintForeignKey                       // f
)

// String returns the kind as SQL names it.
func (k ConstraintKind) String() string {
	return [...]string{"primary key", "unique constraint", "exclusion constraint", "check constraint", "foreign key"}[k]
}

// Constraint is one table constraint.
type Constraint struct {
	Name string
	Kind ConstraintKind
	Def  string // pg_get_constraintdef: PRIMARY KEY (id), CHECK ((total >= 0)), FOREIGN KEY (user_id) REFERENCES public.users(id)
	// IndexDef is, for a primary key or unique constraint, its index after
	// the table, as Index.Def (USING btree (id)): a twin may build the index
	// on its own and attach it to the constraint (ADD … USING INDEX).
	IndexDef string
	Columns  []string // the table's columns it covers or reads
	// References and RefColumns (a foreign key) name the parent table, as
	// in the source, and its columns.
	References TableName
	RefColumns []string
	Comment    string
	Extensions []string // extensions that own what its index uses (an exclusion constraint's operator classes)
}

// IndexBacked reports whether the constraint builds an index of its own,
// whose name is schema-wide.
func (c Constraint) IndexBacked() bool {
	return c.Kind == ConstraintPrimaryKey || c.Kind == ConstraintUnique || c.Kind == ConstraintExclusion
}

// Index is one index that backs no constraint.
type Index struct {
	Name   string
	Unique bool
	// Def is the index after its table: USING btree (lower(email)) INCLUDE
	// (id) WHERE (deleted_at IS NULL).
	Def        string
	Columns    []string // the table's columns it reads: keys, expressions, INCLUDE, predicate
	Comment    string
	Extensions []string // extensions that own its access method or operator classes
}

// Sequence is a sequence a column default draws from.
type Sequence struct {
	Name    TableName
	Options string // INCREMENT BY 1 MINVALUE 1 MAXVALUE … START WITH 1 CACHE 1 [CYCLE]
	Type    string // AS's type: bigint, integer, smallint
	OwnedBy string // the column that owns it (serial), or "" for a standalone one
	// Last is the source's last_value when it was called, else 0: a
	// standalone sequence starts there in the twin.
	Last int64
}

// Partition is one partition of a partitioned table (at any depth).
type Partition struct {
	Name         TableName
	Parent       TableName
	Bound        string // FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'), DEFAULT
	PartitionKey string // when the partition is partitioned itself
	Comment      string
	// Indexes maps the name of each parent index to the name of the
	// partition's index attached to it.
	Indexes map[string]string
}

// View is a view or materialized view of the source.
type View struct {
	Name         TableName
	Materialized bool
	Def          string      // pg_get_viewdef, without its ';'
	Options      string      // reloptions: security_barrier=true, check_option=local
	Reads        []TableName // the relations (tables and views) it reads, as in the source
	Comment      string
	Indexes      []Index // of a materialized view
}

// Prefixed returns the name in a feed whose schemas carry prefix.
func (n TableName) Prefixed(prefix string) TableName {
	return TableName{Schema: prefix + n.Schema, Name: n.Name}
}

// PrefixSchemas renames, in a SQL text that PostgreSQL printed (a default,
// a constraint, an index, a view), every reference to one of schemas to
// prefix+schema: the qualifier of a name (public.users → billing_public.users)
// and the qualified names of reg* literals ('public.s'::regclass). Quoted
// identifiers and string literals are read as the SQL lexer reads them, so
// a string that only looks like a name is left alone.
func PrefixSchemas(sql, prefix string, schemas map[string]bool) string {
	if prefix == "" || len(schemas) == 0 {
		return sql
	}
	var b strings.Builder
	prevDot := false // the last token was a '.', so an identifier now is not a qualifier
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || ((c == 'E' || c == 'e') && i+1 < len(sql) && sql[i+1] == '\'' && (i == 0 || !identByte(sql[i-1]))):
			start := i
			escapes := c != '\''
			if escapes {
				i++
			}
			i++
			for i < len(sql) {
				if escapes && sql[i] == '\\' {
					i += 2
					continue
				}
				if sql[i] == '\'' {
					if i+1 < len(sql) && sql[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			lit := sql[start:min(i, len(sql))]
			if !escapes && strings.HasPrefix(sql[i:], "::reg") {
				lit = prefixRegLiteral(lit, prefix, schemas)
			}
			b.WriteString(lit)
			prevDot = false
		case c == '"':
			j := i + 1
			for j < len(sql) {
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(sql))
			name := strings.ReplaceAll(sql[i+1:min(j, len(sql))], `""`, `"`)
			writeIdent(&b, sql[i:end], name, end < len(sql) && sql[end] == '.' && !prevDot, prefix, schemas)
			i = end
			prevDot = false
		case identStart(c):
			j := i
			for j < len(sql) && identByte(sql[j]) {
				j++
			}
			word := sql[i:j]
			writeIdent(&b, word, strings.ToLower(word), j < len(sql) && sql[j] == '.' && !prevDot, prefix, schemas)
			i = j
			prevDot = false
		default:
			b.WriteByte(c)
			prevDot = c == '.'
			i++
		}
	}
	return b.String()
}

func writeIdent(b *strings.Builder, raw, name string, qualifier bool, prefix string, schemas map[string]bool) {
	if qualifier && schemas[name] {
		b.WriteString(QuoteIdent(prefix + name))
		return
	}
	b.WriteString(raw)
}

// prefixRegLiteral renames the schema of a qualified name in a reg*
// literal: 'public.orders_id_seq' → 'billing_public.orders_id_seq'.
func prefixRegLiteral(lit, prefix string, schemas map[string]bool) string {
	inner := strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
	out := PrefixSchemas(inner, prefix, schemas)
	if out == inner {
		return lit
	}
	return "'" + strings.ReplaceAll(out, "'", "''") + "'"
}

func identStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func identByte(c byte) bool { return identStart(c) || (c >= '0' && c <= '9') || c == '$' }

// IndexTail cuts what follows the table out of an index definition as
// pg_get_indexdef prints it: CREATE [UNIQUE] INDEX name ON [ONLY] table
// USING … → USING …. table is the table's name as the same session prints
// it (oid::regclass::text).
func IndexTail(def, table string) (string, bool) {
	for _, on := range []string{" ON ONLY " + table + " USING ", " ON " + table + " USING "} {
		if i := strings.Index(def, on); i >= 0 {
			return def[i+len(on)-len("USING "):], true
		}
	}
	return "", false
}

// Publication is what a feed completes once every table of an input's run
// is loaded: the foreign keys among the tables, and the views that read
// only them.
type Publication struct {
	Prefix string // the input's target_schema_prefix
	Tables []PublishedTable
	Views  []View // in an order they can be created in
	// Stream: published by the input's change stream once its tables
	// agree. Only such a publish adds the foreign keys between streamed
	// tables: another (a scheduled run's, while the stream follows) may
	// come while a streamed table copied from a newer snapshot is ahead of
	// the others.
	Stream bool
}

// Published is what a feed's publish step did with one table: the loads
// it made visible (with Target.Deferred), what it left out of the schema.
type Published struct {
	// Notes say what was left out of the schema or made NOT VALID, and why.
	Notes []string
	// Err, when set, says why the table's deferred load was not published
	// (its delta broke a constraint of the twin): the table keeps its
	// previous version and state.
	Err error
	// Applied reports a deferred delta applied at publish, with the rows
	// it upserted (inserted, or updated because they changed) and deleted.
	Applied           bool
	Upserted, Deleted int64
}

// PublishedTable is one table of an input's run.
type PublishedTable struct {
	Name   TableName // in the source
	Schema *Schema
	// Incomplete, when set, says why the feed may lack rows of the table
	// (a window, a subset, a copy that failed): foreign keys to it are NOT
	// VALID, but for those of the tables in CompleteFor.
	Incomplete string
	// CompleteFor names the tables (in the source) whose foreign keys to
	// this one hold whatever Incomplete says: a referential subset holds
	// every row that the subset's tables reference, windowed or not.
	CompleteFor []TableName
	// Failed: the table's copy failed in this run; a load of it that the
	// feed holds for publishing (another feed failed) is dropped.
	Failed bool
	// Incremental: runs change the table's rows in place (mode delta)
	// between full copies. A NOT VALID foreign key is still checked on the
	// rows a delta adds or removes, so one to or from an Incomplete parent
	// that an incremental table is part of is left out.
	Incremental bool
	// Streamed: the input's change stream applies the table (mode cdc), in
	// transactions of its own. Foreign keys hold between two streamed
	// tables (the stream applies their changes together, checked at
	// commit), not between a streamed table and one that runs refresh.
	Streamed bool
}
