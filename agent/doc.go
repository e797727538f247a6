// Package agent runs workflows: for each input it opens one consistent
// snapshot of the source, resolves the configured tables and patterns
// against the catalog, compiles every column's rule for the column's type,
// and copies each table once, redacting in the stream and fanning the rows
// out to every feed. It knows adapters only through the nopii.Source and
// nopii.Feed interfaces; cmd wires the real ones in.
//
// The life of one row: the source's binary COPY delivers the row as raw
// values; columns without a rule are passed through as the same bytes;
// columns with a rule go through their compiled redact.Func; the source
// primary key (text, computed by the source) is hashed when a key column is
// redacted; every feed's Load gets the row; Commit publishes each table
// atomically per feed.
//
// Tables in mode cdc (cdc.go) are copied once from a replication slot's
// snapshot and then streamed through a Replicator: each change goes
// through the same per-row redaction, is collapsed per key into a batch,
// and batches are applied through nopii.ChangeFeed with the source position
// in each table's state, then confirmed to the source. Runner.CDC says
// whether a run catches up and returns (nopii run), streams until stopped
// (the agent's follower, see Daemon) or leaves those tables out.
package agent
