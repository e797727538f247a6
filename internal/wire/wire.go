// Package wire holds the messages that cross the process boundary between
// an agent and the dashboard (SPEC §6): heartbeats, job reports and scan
// reports, as JSON. Both sides import it, as pgx's driver and tools share
// pgproto3, so a field added on one side is a field on the other; the
// round-trip tests in package dashboard post every message through the real
// HTTP API and compare what comes back.
//
// The types are plain data: no methods that do I/O, no adapters.
package wire

import (
	"time"

	"github.com/nopii/nopii/scanner"
)

// API paths an agent posts to.
const (
	HeartbeatPath = "/api/v1/heartbeat"
	JobsPath      = "/api/v1/jobs"
	ScansPath     = "/api/v1/scans"
)

// Heartbeat is what the agent posts every heartbeat_interval.
type Heartbeat struct {
	Agent           string           `json:"agent"`
	Version         string           `json:"version"`
	IntervalSeconds float64          `json:"interval_seconds"`
	Workflows       []WorkflowStatus `json:"workflows"`
	ConfigError     string           `json:"config_error,omitempty"`
}

// WorkflowStatus is one workflow's line in a heartbeat.
type WorkflowStatus struct {
	Name       string     `json:"name"`
	Schedule   string     `json:"schedule,omitempty"`
	NextRun    *time.Time `json:"next_run,omitempty"`
	LastRun    *time.Time `json:"last_run,omitempty"`
	LastResult Status     `json:"last_result,omitempty"`
	// A workflow with tables in mode cdc: how far its stream is behind
	// (as an input's stream last reported it).
	CDCLagBytes   int64   `json:"cdc_lag_bytes,omitempty"`
	CDCLagSeconds float64 `json:"cdc_lag_seconds,omitempty"`
	// Inputs are the workflow's cdc streams, one per input, as each last
	// reported how far it is behind.
	Inputs []InputStatus `json:"inputs,omitempty"`
}

// InputStatus is one input's cdc stream in a heartbeat.
type InputStatus struct {
	Name          string  `json:"name"`
	CDCLagBytes   int64   `json:"cdc_lag_bytes"`
	CDCLagSeconds float64 `json:"cdc_lag_seconds"`
	// SlotRetainedBytes is the WAL the input's replication slot keeps on
	// the source; past SlotWALWarnBytes (the input's slot_wal_warn) the
	// agent warns, and the dashboard alerts.
	SlotRetainedBytes int64 `json:"slot_retained_bytes"`
	SlotWALWarnBytes  int64 `json:"slot_wal_warn_bytes"`
}

// Status is a run's state as reported.
type Status string

// The statuses of a run.
const (
	StatusRunning Status = "running"
	StatusSuccess Status = "success"
	StatusFailed  Status = "failed"
)

// Mode is how a table was (or will be) copied.
type Mode string

// The modes of a table's copy. A table configured for mode cdc is copied
// in full once (ModeFull, reason "first run") and then streamed (ModeCDC).
const (
	ModeFull  Mode = "full"
	ModeDelta Mode = "delta"
	ModeCDC   Mode = "cdc"
)

// Outcome is what became of one table in a run.
type Outcome string

// The outcomes of a table.
const (
	OutcomeCopied  Outcome = "copied"  // its rows reached every feed (or streamed, in mode cdc)
	OutcomeFailed  Outcome = "failed"  // an error; the feeds keep their previous version
	OutcomeGuarded Outcome = "guarded" // the guard found columns that look like PII without a rule: nothing was written
)

// Job is a run's report as posted to the dashboard: once when the run
// starts (status running), after each table, and, with the same JobID,
// when it ends.
type Job struct {
	JobID string `json:"job_id"`
	Agent string `json:"agent"`
	Report
}

// Report is what a run did, per table. It is printed after every run and
// posted to the dashboard.
type Report struct {
	Workflow   string        `json:"workflow"`
	Status     Status        `json:"status"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at,omitzero"` // zero (left out) while running
	Seconds    float64       `json:"seconds"`
	Error      string        `json:"error,omitempty"` // a failure before or outside any table
	Tables     []TableReport `json:"tables"`
}

// TableReport is one table's line of a Report.
type TableReport struct {
	Input       string   `json:"input"`
	Table       string   `json:"table"`  // schema.table in the source
	Target      string   `json:"target"` // schema.table in the feeds
	Mode        Mode     `json:"mode"`   // full | delta | cdc
	Outcome     Outcome  `json:"outcome,omitempty"`
	Reason      string   `json:"reason,omitempty"` // first run, delta from cursor …, full copy: schema changed (…)
	DriftForced bool     `json:"drift_forced_full_copy,omitempty"`
	Note        string   `json:"note,omitempty"`
	Rows        int64    `json:"rows"`                // read from the source
	Upserted    int64    `json:"upserted"`            // delta: rows inserted or updated in the feeds
	Deleted     int64    `json:"deleted"`             // delta: rows removed (detect_deletes, window)
	Forgotten   int64    `json:"forgotten,omitempty"` // source rows left out: their subject was forgotten (SPEC §7)
	Refetched   int64    `json:"refetched,omitempty"` // cdc: updated rows whose unchanged large values were read again from the source
	Warnings    []string `json:"warnings,omitempty"`
	// Schema says what a faithful twin left out of the source's schema
	// or created NOT VALID (a constraint, an index, a default, a foreign
	// key, a view), and why.
	Schema     []string `json:"schema,omitempty"`
	Bytes      int64    `json:"bytes"`
	Streams    int      `json:"streams,omitempty"` // connections that read the table at once: page ranges of a large table's full copy
	Seconds    float64  `json:"seconds"`
	RowsPerSec float64  `json:"rows_per_sec"`
	Redacted   []string `json:"redacted_columns,omitempty"`
	Feeds      []string `json:"feeds,omitempty"`
	Error      string   `json:"error,omitempty"`
	// Unclassified are the columns the guard judged PII without a rule;
	// the agent also posts them to the dashboard as a scan.
	Unclassified []scanner.ColumnFinding `json:"unclassified,omitempty"`
	// KeysStreamed (a delta with deletes) counts the source keys sent to
	// the feeds' anti-join: none when every bucket's key digest agrees.
	KeysStreamed int64 `json:"keys_streamed,omitempty"`
}

// Failed reports whether the run or any table failed.
func (r *Report) Failed() bool {
	if r.Error != "" {
		return true
	}
	for _, t := range r.Tables {
		if t.Error != "" {
			return true
		}
	}
	return false
}

// Totals sums rows and bytes over the tables.
func (r *Report) Totals() (rows, bytes int64) {
	for _, t := range r.Tables {
		rows += t.Rows
		bytes += t.Bytes
	}
	return rows, bytes
}

// ScanReport is what the agent and `nopii scan` post: the findings of one
// scan, for the dashboard's scanner page.
type ScanReport struct {
	Agent    string                  `json:"agent"`
	Findings []scanner.ColumnFinding `json:"findings"`
	// Source says what scanned: ScanByScan (`nopii scan --config`: every
	// column of the scanned schemas that the file leaves without a rule)
	// or ScanByGuard (a run's guard: the columns it judged, no others).
	Source ScanSource `json:"source,omitempty"`
	// Schemas are the schema patterns a ScanByScan read; none: every schema.
	Schemas []string `json:"schemas,omitempty"`
}

// ScanSource is what posted a scan report.
type ScanSource string

// The sources of a scan report.
const (
	ScanByScan  ScanSource = "scan"
	ScanByGuard ScanSource = "guard"
)
