package nopii

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// SubjectMatch is one identifier of a data subject (SPEC §7): a column
// declared identifying in the config and the value to look for. Its Value
// is personal data: never put it in errors, logs or audit records.
type SubjectMatch struct {
	Column string
	Value  string
}

// ParseSubjectMatch parses column=value, as --match and --requests take it.
// The value is everything after the first '=', kept as written; it must
// not be empty.
func ParseSubjectMatch(s string) (SubjectMatch, error) {
	col, val, ok := strings.Cut(s, "=")
	col = strings.TrimSpace(col)
	switch {
	case !ok:
		return SubjectMatch{}, errors.New("want column=value (e.g. email=a@b.com)")
	case col == "":
		return SubjectMatch{}, errors.New("no column before '=' (want column=value)")
	case val == "":
		return SubjectMatch{}, fmt.Errorf("no value after %s= (want column=value)", col)
	}
	return SubjectMatch{Column: col, Value: val}, nil
}

// SubjectSeed is a table where a subject's rows are looked up directly: the
// table and one of the identifying columns the config declares for it.
type SubjectSeed struct {
	Table  *Table
	Column string
}

// SubjectQuery selects a subject's rows in one source: rows of the seed
// tables whose column equals one of Values, and, through foreign keys,
// the rows that reference them. Tables holds the workflow's tables as
// described, so that keys are computed with the same primary key (config
// overrides included) as the copy computes them.
type SubjectQuery struct {
	Seeds  []SubjectSeed
	Values []string
	Tables []*Table
	// References are virtual foreign keys (the configuration's
	// references:), followed as the catalog's are.
	References []Reference
}

// SubjectRows are the rows of one source table that belong to a subject.
type SubjectRows struct {
	Table TableName
	// Via says how the rows were found: "email" for a seed column, or the
	// foreign-key path, e.g. "public.rental(customer_id) → public.customer".
	Via []string
	// Keys are the rows' primary keys as text, exactly as the copy computes
	// source_primary_key before any hashing; sorted, unique. Nil for a
	// table without a primary key.
	Keys []string
	// Rows is the number of rows matched; TableRows the table's rows in the
	// same snapshot.
	Rows      int64
	TableRows int64
}

// Proportion is Rows / TableRows (0 for an empty table).
func (r SubjectRows) Proportion() float64 {
	if r.TableRows == 0 {
		return 0
	}
	return float64(r.Rows) / float64(r.TableRows)
}

// ForgetTable is one table's share of a forget request in one feed.
type ForgetTable struct {
	Key    StateKey  // workflow, input and source table
	Target TableName // the table's name in the feed
	// Keys are source_primary_key values as the feed holds them (hashed
	// where a key column has a rule).
	Keys []string
	// Forgotten are the keyed hashes of Keys (hex) for the suppression list.
	Forgotten []string
}

// Forget is what one feed must delete for a forget request, in one step
// where the feed can (one transaction in a twin).
type Forget struct {
	Workflow  string
	RequestID string // a UUID
	At        time.Time
	Tables    []ForgetTable
	// Identifiers are the keyed hashes (hex) of the request's identifiers
	// (column and value): the rows of a table copied later, which the
	// request could not find, are kept out by them (the table's
	// identifies columns).
	Identifiers []string
}

// SubjectAudit is one audit record: what one request did to one target
// for one subject. Subject is the keyed hash of the subject's identifiers,
// never the identifiers themselves.
type SubjectAudit struct {
	RequestID   string    `json:"request_id"`
	Subject     string    `json:"subject_hmac"`
	At          time.Time `json:"at"`
	Workflow    string    `json:"workflow"`
	Target      string    `json:"target"` // twin, s3, files, source <input>
	RowsDeleted int64     `json:"rows_deleted"`
	Status      string    `json:"status"` // done, failed, refused (the safeguard: nothing deleted)
	Error       string    `json:"error,omitempty"`
}
