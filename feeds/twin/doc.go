// Package twin is the digital-twin feed: a PostgreSQL database that gets the
// source's schemas, user types and tables, redacted, plus a
// source_primary_key column on every table.
//
// A full copy happens in one transaction on the twin: create a shadow table,
// COPY … FREEZE the rows into it in binary, build the unique index on
// source_primary_key, then drop the old table and rename the shadow in its
// place. Readers see the old table until the commit and the new one after
// it; a failure or a killed process at any point rolls everything back, so
// the previous copy stays and no shadow table is ever left behind.
package twin
