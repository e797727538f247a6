// Package redact holds the pure value transformers behind nopii's
// redaction rules: no I/O, no configuration, only bytes in and bytes out.
//
// Rows stream from a binary COPY out of the source to a binary COPY into
// the twin, so every value is a []byte in PostgreSQL's binary wire format
// for its column type, nil for SQL NULL. A Func turns one such value into
// its redacted form, appending to a caller buffer; package rulesets
// compiles one Func per redacted column from the primitives here.
//
// Determinism comes from Keyed: an HMAC-SHA256 under the workflow's key of
// a value's canonical form (Canon), which depends on the value only, never
// on where it sits, so the same e-mail address redacts to the same output
// in every table, run and feed. From a Digest come hex text (AppendHex,
// AppendEmail), single draws (Uint64, ShiftOffset, NoiseInt) and a
// reseedable Source for generators that draw more, gofakeit's among them
// (Faker).
//
// The rest are codecs for the binary formats (integers, floats, numeric as
// Decimal, dates and timestamps, uuid, inet, arrays via MapArray) and the
// value helpers: masking, alphanumeric strings, date shifts, numeric noise
// and JSON path rewriting (JSONRewriter).
//
// The hot path does not allocate: Keyed reuses one hash state, Funcs keep
// their scratch buffers, and for text, integer, uuid and date/time values
// a Func only appends to the caller's buffer. That makes Funcs stateful,
// so they are not safe for concurrent use; compile one per stream. Errors
// describe the shape of a bad input (its length, its header), never its
// content.
package redact
