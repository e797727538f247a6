package agent

import (
	"time"

	"github.com/nopii/nopii/scanner"
)

// Report is what a run did, per table. It is printed after every run and
// posted to the dashboard.
type Report struct {
	Workflow   string        `json:"workflow"`
	Status     string        `json:"status"` // success | failed
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Seconds    float64       `json:"seconds"`
	Error      string        `json:"error,omitempty"` // a failure before or outside any table
	Tables     []TableReport `json:"tables"`
}

// TableReport is one table's line of a Report.
type TableReport struct {
	Input       string   `json:"input"`
	Table       string   `json:"table"`            // schema.table in the source
	Target      string   `json:"target"`           // schema.table in the feeds
	Mode        string   `json:"mode"`             // full | delta
	Reason      string   `json:"reason,omitempty"` // first run, delta from cursor …, full copy: schema changed (…)
	DriftForced bool     `json:"drift_forced_full_copy,omitempty"`
	Note        string   `json:"note,omitempty"`
	Rows        int64    `json:"rows"`                // read from the source
	Upserted    int64    `json:"upserted"`            // delta: rows inserted or updated in the feeds
	Deleted     int64    `json:"deleted"`             // delta: rows removed (detect_deletes, window)
	Forgotten   int64    `json:"forgotten,omitempty"` // source rows left out: their subject was forgotten (SPEC §7)
	Refetched   int64    `json:"refetched,omitempty"` // cdc: updated rows whose unchanged large values were read again from the source
	Warnings    []string `json:"warnings,omitempty"`
	Bytes       int64    `json:"bytes"`
	Streams     int      `json:"streams,omitempty"` // connections that read the table at once: page ranges of a large table's full copy
	Seconds     float64  `json:"seconds"`
	RowsPerSec  float64  `json:"rows_per_sec"`
	Redacted    []string `json:"redacted_columns,omitempty"`
	Feeds       []string `json:"feeds,omitempty"`
	Error       string   `json:"error,omitempty"`
	// Unclassified are the new columns the drift guard judged PII without
	// a rule; the agent posts them to the dashboard as a scan.
	Unclassified []scanner.ColumnFinding `json:"unclassified,omitempty"`

	// KeysStreamed (a delta with deletes) counts the source keys sent to
	// the feeds' anti-join: none when every bucket's key digest agrees.
	KeysStreamed int64 `json:"keys_streamed,omitempty"`

	err error // the error behind Error, for retry decisions
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

// Observer follows a run as it goes; the CLI draws progress bars with it.
// Methods are called from several goroutines and must return quickly.
type Observer interface {
	TableStarted(input, table string, estRows int64)
	TableProgress(input, table string, rows int64)
	TableFinished(r TableReport)
}

type nopObserver struct{}

func (nopObserver) TableStarted(string, string, int64)  {}
func (nopObserver) TableProgress(string, string, int64) {}
func (nopObserver) TableFinished(TableReport)           {}
