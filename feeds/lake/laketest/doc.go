// Package laketest reads a lake back for tests, independently of the code
// that wrote it: Parquet parts with parquet-go's reader and their logical
// types, CSV with a small RFC 4180 parser (encoding/csv cannot tell a NULL
// from an empty string), JSONL with encoding/json. A Reader follows the
// manifest as a lake's user would (snapshot, then each delta's upserts and
// deletes) and checks on the way what the manifest promises: part row
// counts and sizes, columns, operations. It satisfies feedtest.Reader.
package laketest
