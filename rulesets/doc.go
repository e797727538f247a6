// Package rulesets is the catalog of named redaction rules (SPEC §2) and
// their compiler.
//
// The configuration names a rule per column, with params:
//
//	email:      { rule: redact_email }
//	first_name: { rule: fake, kind: first_name }
//	birth_date: { rule: shift_date, max_days: 60 }
//
// Check validates such a spec when the configuration loads: unknown rules,
// unknown or ill-typed params and bad json paths are errors there, before
// any database is touched. Once the source's catalog is known, Compile
// turns a column's spec into a redact.Func over the column's binary wire
// values, choosing the implementation by the column's type (domains look
// through to their base type, arrays apply the rule per element) and
// checking what can be checked without data: that the rule can produce the
// type, that its output fits varchar(n) and char(n), that destroy has an
// empty value for a NOT NULL column, that a replace constant casts to the
// type. A misfit fails at compile time, naming table, column and rule in a
// *RuleError, rather than on row one million.
//
// Every keyed rule seeds from the HMAC of a canonical form of the value
// alone (see redact.Canon), so one value redacts alike in every table, run
// and feed, and joins between redacted columns keep working. A redacting
// rule never outputs its input: when a derived output happens to equal it,
// the rule derives again.
package rulesets
