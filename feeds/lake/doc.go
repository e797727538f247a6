// Package lake is the data-lake feed shared by feeds/s3 and feeds/files:
// the object layout of SPEC §4, Parquet, CSV and JSONL encodings of
// PostgreSQL binary rows, part roll-over, pruning, delete detection and
// per-table state. It writes through a Store, so that the files feed is the
// S3 feed on a local disk.
//
// # Layout
//
//	<workflow>/<schema>.<table>/snapshot=20240102T030405Z/part-00000.parquet  a full copy
//	<workflow>/<schema>.<table>/delta=20240102T040000Z/part-00000.parquet     changed rows, with _nopii_op
//	<workflow>/<schema>.<table>/_manifest.json                               the snapshot and the deltas after it
//	<workflow>/_nopii/state.json                                             cursors, fingerprints: one entry per input table
//	<workflow>/_nopii/keys/<schema>.<table>/<stamp>.keys.gz                  the table's keys, for delete detection
//
// Folder stamps are UTC seconds, strictly increasing per table (a load in
// the same second as the last one takes the next second). Every object is
// visible only once whole (Store.Create/Commit); the manifest is written
// last, then the state, so a reader that follows the manifest never meets
// a part being written, and a crash leaves the previous version in place.
// A full copy's manifest has no deltas; after it, snapshots beyond
// Options.Retain (and the deltas before the oldest one kept) are deleted.
// An aborted load deletes the parts it had committed.
//
// Every row carries source_primary_key (text, required) after the table's
// columns, which are all optional. Delta parts add _nopii_op: "upsert" for
// a changed or new row, "delete" for a key that left the source, with every
// other column NULL. Readers apply the snapshot, then each delta in order.
//
// # Values
//
// Rows arrive as PostgreSQL binary values. CSV holds what COPY … (FORMAT
// csv, HEADER) writes with TimeZone UTC: PostgreSQL's text output, NULL an
// empty unquoted field and the empty string "", CRLF line ends. JSONL holds
// what row_to_json writes: numbers, booleans, json and jsonb embedded,
// arrays as JSON arrays, other values as strings (so a jsonb value that is
// JSON null reads like SQL NULL, as with row_to_json). Parquet uses logical
// types: int2/int4 INT32, int8 INT64, float4 FLOAT, float8 DOUBLE, numeric
// with a known precision ≤ 38 DECIMAL (INT32, INT64 or the fewest fixed
// bytes; NaN is written NULL, with a warning) and other numerics STRING,
// date DATE, time TIME(MICROS), timestamp TIMESTAMP(MICROS) and timestamptz
// TIMESTAMP(MICROS, UTC) (±infinity keep PostgreSQL's sentinels; the last
// 29 years PostgreSQL allows, after 294247-01-10 04:00:54.775807 UTC, do not
// fit INT64 microseconds since 1970 and are written NULL, with a warning), uuid UUID,
// json and jsonb JSON, bytea and unknown types BYTE_ARRAY, text types and
// enums STRING, arrays LIST of their element (multi-dimensional arrays
// flattened), domains their base type, everything else its text.
//
// Decoding streams: nothing per row is allocated on the common paths, a
// Parquet row group is flushed at 64k rows or 64 MiB, and keys are sorted
// by an external sort that spills to Options.TempDir.
//
// # Delete detection
//
// A delta with deletes receives (WriteKey) the keys that remain. Commit
// merges them, sorted, with the table's key list (the keys of the snapshot
// and the deltas since, which each commit rewrites); every listed key, or
// key upserted by this delta, that does not remain gets a delete row, and
// the remaining keys become the new list.
package lake
