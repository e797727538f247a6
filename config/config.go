package config

import (
	"time"
)

// Defaults applied by Parse where the file leaves a key out.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultOnUnclassified    = OnUnclassifiedFail
	DefaultFormat            = FormatParquet
	DefaultCompression       = CompressionNone
	DefaultPartSize          = 128 << 20 // bytes
	DefaultRetain            = 2
	DefaultWindowBy          = WindowByCreatedAt
	DefaultSlotWALWarn       = 1 << 30 // bytes

	// MinHMACKeyLen is the shortest hmac_key accepted, in bytes.
	MinHMACKeyLen = 32
)

// Values of Workflow.OnUnclassified.
const (
	OnUnclassifiedFail = "fail"
	OnUnclassifiedWarn = "warn"
	// OnUnclassifiedStrict requires a rule (keep included) for every
	// column of every copied table.
	OnUnclassifiedStrict = "strict"
)

// Values of Table.Mode. An empty Mode means the file did not set one; see
// Table.EffectiveMode.
const (
	ModeFull  = "full"
	ModeDelta = "delta"
	ModeCDC   = "cdc"
)

// Values of Table.WindowBy.
const (
	WindowByCreatedAt = "created_at"
	WindowByUpdatedAt = "updated_at"
	WindowByBoth      = "both"
)

// Values of Feed.Type.
const (
	FeedTwin  = "twin"
	FeedS3    = "s3"
	FeedFiles = "files"
)

// Values of Feed.Schema (twin feeds).
const (
	// SchemaFull gives the twin the source's keys, indexes, constraints,
	// sequences, partitions, comments and views (docs/twin.md).
	SchemaFull = "full"
	// SchemaDataOnly gives it the columns and source_primary_key alone.
	SchemaDataOnly = "data_only"
)

// Values of Feed.Format.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
)

// Values of Feed.Compression.
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionZstd   = "zstd"
	CompressionSnappy = "snappy" // parquet only
)

// Values of Feed.SSE.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Config is a parsed and validated workflow file.
type Config struct {
	File    string // the file name given to Load or Parse
	Version int    // always 1

	// HMACKey seeds every deterministic rule. Empty when the file has no
	// hmac_key, which it may only leave out when no rule needs a key.
	HMACKey Secret

	Dashboard *Dashboard // nil when the file has no dashboard section
	Agent     Agent
	Workflows []Workflow // in file order, at least one
}

// Workflow returns the workflow with the given name, or nil.
func (c *Config) Workflow(name string) *Workflow {
	for i := range c.Workflows {
		if c.Workflows[i].Name == name {
			return &c.Workflows[i]
		}
	}
	return nil
}

// Dashboard is where the agent sends heartbeats and job reports (SPEC §6).
type Dashboard struct {
	URL               string        // http:// or https://
	Token             Secret        // the agent's bearer token
	HeartbeatInterval time.Duration // default DefaultHeartbeatInterval
	Pos               Pos           // of the dashboard section
}

// Agent holds the settings of the long-running agent.
type Agent struct {
	Name   string // defaults to the host name
	Listen string // host:port of /healthz, /readyz and /metrics; default DefaultListen
}

// Workflow is one named pipeline: tables from its inputs, redacted, loaded
// into each of its feeds.
type Workflow struct {
	// Name matches [a-z0-9][a-z0-9_-]*: it names folders in S3/files feeds
	// and replication slots.
	Name string

	// Schedule is a crontab line (5 fields, or a descriptor such as @daily
	// or @every 6h) read in UTC; empty for a workflow run from the CLI only.
	Schedule string

	OnUnclassified string // OnUnclassifiedFail (default), OnUnclassifiedWarn or OnUnclassifiedStrict
	Parallelism    int    // tables copied at once; 0 lets the agent choose

	// LockWait is how long a run waits for another run of the workflow
	// that holds a feed's run lock (docs/reliability.md) before it gives
	// up; 0 (the default) does not wait.
	LockWait time.Duration

	Inputs []Input // at least one, names unique within the workflow
	Feeds  []Feed  // at least one
	Pos    Pos
}

// Input is one source database of a workflow and the tables taken from it.
type Input struct {
	Name string
	DSN  Secret // a libpq connection string or URL; internal/pgconnect.Redact masks it for messages

	// TargetSchemaPrefix is prepended to schema names in the feeds, so
	// that "billing_" puts public.x into billing_public.x.
	TargetSchemaPrefix string

	// SlotWALWarn is the WAL, in bytes, that the input's replication slot
	// (mode cdc) may retain on the source before the stream warns: a slot
	// that stops confirming makes the source keep its WAL until its disk
	// is full. Default DefaultSlotWALWarn.
	SlotWALWarn int64

	Tables []Table // in file order
	Pos    Pos
}

// Table is one entry of an input's table list: a table named explicitly, or
// a pattern such as public.* selecting tables with default options.
type Table struct {
	// Name is the entry as written, e.g. public.customer or "Sales".*.
	Name string

	// Schema and Table are Name split at the first dot outside double
	// quotes. As in psql and pg_dump, parts without quotes are folded to
	// lower case and quoted parts are unquoted and kept as they are. Either
	// may hold the glob characters * ? and [...] when Pattern is set.
	Schema, Table string

	// Pattern reports that Name holds glob characters outside quotes; match
	// Schema and Table against catalog names with path.Match.
	Pattern bool

	Mode string // "" (not set), ModeFull, ModeDelta or ModeCDC

	UpdatedAt string // column marking updates (delta)
	CreatedAt string // column marking inserts (delta, window)

	// Window, when not zero, limits the copy to rows newer than now minus
	// Window, judged by the column(s) WindowBy names.
	Window   time.Duration
	WindowBy string // WindowByCreatedAt (default when Window is set), WindowByUpdatedAt or WindowByBoth; "" without Window

	PrimaryKey []string // overrides the table's primary key
	Identifies []string // columns identifying a data subject (SPEC §7)

	DetectDeletes bool // delta: remove feed rows whose key left the source
	Exclude       bool // leave this table out, typically one a pattern selected

	// Subset, when set, makes the table a root of a referential subset
	// (docs/subsets.md): only its rows that Subset selects, and the rows
	// they need, are copied.
	Subset *Subset

	// References are virtual foreign keys: relations of this table's
	// columns to another table's that the catalog lacks. Subsets and
	// subject requests follow them as they follow foreign keys.
	References []Reference

	Columns []ColumnRule // in file order
	Pos     Pos
	KeyPos  map[string]Pos // of the value of each key the entry sets (updated_at, primary_key …), and of each item of a list ("primary_key[1]")
}

// EffectiveMode returns Mode, or the mode SPEC §1 implies when it is not
// set: delta when UpdatedAt or CreatedAt is set, else full.
func (t *Table) EffectiveMode() string {
	switch {
	case t.Mode != "":
		return t.Mode
	case t.UpdatedAt != "" || t.CreatedAt != "":
		return ModeDelta
	default:
		return ModeFull
	}
}

// Subset selects the root rows of a referential subset. Where and Percent
// may both be set: a row is a root row when it matches Where and falls in
// the share.
type Subset struct {
	// Where is a SQL condition on the table's columns, e.g.
	// "customer_id % 10 = 0" or "country = 'DE'". It runs on the source as
	// written, inside the read-only snapshot.
	Where string

	// Percent, in (0, 100], keeps that share of the rows, chosen by a
	// keyed hash of each row's key: the same rows every run, and not
	// guessable without hmac_key. 0 when not set.
	Percent float64

	// WithChildren (default true) brings along the rows that reference
	// the root rows, transitively (a customer's orders and their items).
	// Rows that included rows reference always come along.
	WithChildren bool

	Pos Pos
}

// Reference is a virtual foreign key: Columns of the entry's table
// reference To of Table.
type Reference struct {
	Columns []string
	// Table is the referenced table as written; Schema and Name are its
	// parts, as SplitTableName reads them. It is looked up in the source
	// at run time.
	Table        string
	Schema, Name string
	// To are the referenced columns, as many as Columns; empty means the
	// referenced table's primary key.
	To  []string
	Pos Pos
}

// ColumnRule is the redaction rule of one column.
type ColumnRule struct {
	Column string
	Rule   string

	// Params holds every key of the column's mapping except rule, decoded
	// to string, int, float64, bool, nil, []any or map[string]any.
	Params map[string]any

	Pos      Pos            // of the column name
	RulePos  Pos            // of the rule's value, or Pos when rule is missing
	ParamPos map[string]Pos // of each key of Params
}

// Feed is one destination of a workflow. Which fields apply depends on Type.
type Feed struct {
	Type string // FeedTwin, FeedS3 or FeedFiles

	// twin
	DSN    Secret // required
	Schema string // SchemaFull (default) or SchemaDataOnly
	// LockTimeout bounds each of the publish's three waits for readers
	// that hold the tables it replaces; 0: the feed's default (10s).
	LockTimeout time.Duration

	// s3
	Bucket      string // required
	Prefix      string
	Region      string
	Endpoint    string // for S3-compatible servers, addressed path-style
	SSE         string // "", SSEAES256 or SSEKMS
	SSEKMSKeyID string // with SSEKMS only
	AccessKeyID string
	// SecretAccessKey goes with AccessKeyID; without both the AWS default
	// credential chain applies.
	SecretAccessKey Secret

	// files
	Path string // required

	// s3 and files
	Format      string // FormatParquet (default), FormatCSV or FormatJSONL
	Compression string // CompressionNone (default), CompressionGzip, CompressionZstd; CompressionSnappy with parquet
	PartSize    int64  // bytes per part before rolling over; default DefaultPartSize
	Retain      int    // snapshots kept per table, at least 1; default DefaultRetain

	Pos Pos
}
