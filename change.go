package nopii

import (
	"context"
	"fmt"
	"time"
)

// LSN is a position in a PostgreSQL write-ahead log.
type LSN uint64

// String prints the LSN as PostgreSQL does: 16/B374D848.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// ParseLSN reads an LSN as PostgreSQL prints it.
func ParseLSN(s string) (LSN, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	return LSN(uint64(hi)<<32 | uint64(lo)), nil
}

// ChangeLoad is one feed's load of a batch of streamed changes to a table
// (mode cdc). WriteRow upserts on source_primary_key; DeleteKey removes the
// row with that key, if any. Each key appears at most once per load (the
// caller collapses changes to the last one per key). Truncate, when called,
// comes first and empties the table. Commit applies everything and saves the
// target's state (with its LSN) atomically where the feed can.
type ChangeLoad interface {
	Load
	DeleteKey(key []byte) error
	Truncate() error
}

// ChangeFeed is a Feed that can apply streamed changes (mode cdc).
type ChangeFeed interface {
	Feed
	// Changes starts a load of changes into the feed's existing copy of the
	// table, which must have been fully copied before.
	Changes(ctx context.Context, t Target) (ChangeLoad, error)
}

// ChangeGroup applies several tables' batches of changes in one
// transaction of a feed, so that the foreign keys among them, checked at
// its commit, hold however the source's transaction ordered its rows (a
// customer and her first order, a parent deleted after its children).
// Each table's load is opened by Changes and ended by its Commit, which
// applies it and its state inside the group; the group's Commit makes
// them visible together, and Abort (or any load's) drops them all.
type ChangeGroup interface {
	Changes(ctx context.Context, t Target) (ChangeLoad, error)
	Commit(ctx context.Context) error
	Abort()
}

// SubsetRead reads a referential subset's rows in the source's current
// state, all in one snapshot, for a stream that keeps the subset current
// (mode cdc). Keys are key texts, as in source_primary_key.
type SubsetRead interface {
	// Members returns, of the rows of table whose keys are among keys,
	// those in the subset now: each the table's columns' values (binary,
	// as the stream's rows) followed by its key text.
	Members(ctx context.Context, table TableName, keys []string) ([][][]byte, error)
	// Children returns the keys of r.From's rows that reference r.To's
	// rows of keys.
	Children(ctx context.Context, r Reference, keys []string) ([]string, error)
	// Parents returns the keys of r.To's rows that r.From's rows of keys
	// reference.
	Parents(ctx context.Context, r Reference, keys []string) ([]string, error)
	Close()
}

// SlotStart is where a stream starts. A slot created now comes with a
// snapshot of the source at its consistent point (LSN); Added lists the
// tables that joined the publication now, whose earlier changes the slot
// does not have.
type SlotStart struct {
	Created  bool
	Snapshot string // valid until the stream is next used
	LSN      LSN
	Added    []TableName
}

// ChangeKind says what a Change is.
type ChangeKind uint8

// Change kinds, in the order a logical replication stream has them.
const (
	// ChangeBegin starts a source transaction; LSN is where its commit
	// record starts (everything the transaction did is before it).
	ChangeBegin ChangeKind = iota + 1
	// ChangeUpsert is an insert or an update: Values and Key hold the new
	// row; OldKey is set when an update changed the key.
	ChangeUpsert
	// ChangeDelete removes the row with Key.
	ChangeDelete
	// ChangeTruncate empties Table.
	ChangeTruncate
	// ChangeCommit ends a source transaction: LSN is its end, Time its
	// commit time. Changes before it and after the previous commit belong
	// to it.
	ChangeCommit
	// ChangeDrift says that Table's columns are no longer those it was
	// described with (an ALTER TABLE in the source); the changes that
	// follow for it cannot be applied with the old description.
	ChangeDrift
	// ChangeIdle says the stream has nothing in flight; LSN is the source's
	// WAL end, up to which everything has been delivered.
	ChangeIdle
)

// Change is one decoded message of a logical replication stream.
type Change struct {
	Kind   ChangeKind
	Table  TableName
	Values [][]byte // ChangeUpsert: the row, binary format, in the described column order; valid until the next change
	Key    []byte   // ChangeUpsert, ChangeDelete: the source_primary_key text, as a copy computes it
	OldKey []byte   // ChangeUpsert: the key before the update, when it changed
	// Unchanged lists, for a ChangeUpsert of an UPDATE, the columns whose
	// values the stream did not send (large TOASTed values the update left
	// unchanged, under REPLICA IDENTITY DEFAULT); Values has nil there.
	Unchanged []int
	LSN       LSN
	Time      time.Time
}
