// Package nopii is the vocabulary of the nopii replication agent: tables,
// columns and their PostgreSQL types, primary keys and schema fingerprints,
// and the two ends of every run, a Source that streams rows out of a
// production database and a Feed that loads redacted rows somewhere safe.
//
// The package depends on the standard library only. Adapters live in their
// own packages (source/postgres, feeds/twin, …) and are wired together by
// cmd; the run itself (extract once, redact, fan out) lives in package agent.
//
// Rows travel as PostgreSQL binary wire values: one []byte per column, nil
// for SQL NULL. Columns without a rule are never decoded; redaction rules
// work on the binary form of the column's type.
package nopii
