// Package pgcopy reads and writes PostgreSQL's binary COPY format.
//
// A Decoder is the io.Writer that pgconn's CopyTo writes into: it splits the
// stream into tuples and hands each one to a callback as a slice of raw
// values, without copying them when a tuple arrives whole (PostgreSQL sends
// one CopyData message per row, so that is the common case). An Encoder
// builds the stream that CopyFrom reads. Neither allocates per row.
package pgcopy
