// Package postgres is nopii's source adapter for PostgreSQL.
//
// Open starts one REPEATABLE READ, READ ONLY transaction and exports its
// snapshot with pg_export_snapshot(). Catalog introspection and table locks
// run on that connection; each Copy borrows a reader connection that has
// imported the same snapshot with SET TRANSACTION SNAPSHOT, so tables copied
// in parallel are consistent with each other, as with pg_dump --jobs.
//
// Tables are read with COPY (SELECT …) TO STDOUT (FORMAT binary) and handed
// on as raw binary values: nothing is decoded here.
//
// Replication (replication.go) is the logical replication side, for mode
// cdc: the publication and pgoutput slot of a workflow input (created with
// an exported snapshot, which Open imports through Options.Snapshot), and
// the stream itself, read with pglogrepl in pgoutput's binary format, so
// that values are the bytes a binary COPY gives. Only key columns are
// decoded, to render source_primary_key as a copy does.
package postgres
