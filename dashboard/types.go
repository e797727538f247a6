package dashboard

import (
	"encoding/json"
	"time"
)

// Heartbeat is what an agent posts to /api/v1/heartbeat every interval.
type Heartbeat struct {
	Agent           string           `json:"agent"`
	Version         string           `json:"version"`
	IntervalSeconds float64          `json:"interval_seconds"`
	Workflows       []WorkflowStatus `json:"workflows"`
	ConfigError     string           `json:"config_error,omitempty"`
}

// WorkflowStatus is one workflow's line of a heartbeat.
type WorkflowStatus struct {
	Name       string     `json:"name"`
	Schedule   string     `json:"schedule,omitempty"`
	NextRun    *time.Time `json:"next_run,omitempty"`
	LastResult string     `json:"last_result,omitempty"`
	LastRun    *time.Time `json:"last_run,omitempty"`
}

// Agent is an agent as the dashboard knows it from its last heartbeat.
type Agent struct {
	Name            string           `json:"name"`
	Version         string           `json:"version"`
	LastSeen        time.Time        `json:"last_seen"`
	IntervalSeconds float64          `json:"heartbeat_interval_seconds"`
	Healthy         bool             `json:"healthy"`
	Workflows       []WorkflowStatus `json:"workflows"`
	ConfigError     string           `json:"config_error,omitempty"`
}

// Job statuses.
const (
	StatusRunning = "running"
	StatusSuccess = "success"
	StatusFailed  = "failed"
)

// Job is one run of a workflow: the agent's report plus the agent's name
// and the job's id. An agent posts it when the run starts (status running,
// tables so far) and again, with the same JobID, when it ends.
type Job struct {
	JobID      string        `json:"job_id"`
	Agent      string        `json:"agent"`
	Workflow   string        `json:"workflow"`
	Status     string        `json:"status"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt *time.Time    `json:"finished_at"`
	Seconds    float64       `json:"seconds"`
	Error      string        `json:"error,omitempty"`
	Tables     []TableReport `json:"tables"`
}

// TableReport is one table's line of a job report.
type TableReport struct {
	Input       string   `json:"input"`
	Table       string   `json:"table"`
	Target      string   `json:"target"`
	Mode        string   `json:"mode"`
	Reason      string   `json:"reason,omitempty"`
	DriftForced bool     `json:"drift_forced_full_copy,omitempty"`
	Note        string   `json:"note,omitempty"`
	Rows        int64    `json:"rows"`
	Upserted    int64    `json:"upserted"`
	Deleted     int64    `json:"deleted"`
	Warnings    []string `json:"warnings,omitempty"`
	Bytes       int64    `json:"bytes"`
	Seconds     float64  `json:"seconds"`
	RowsPerSec  float64  `json:"rows_per_sec"`
	Redacted    []string `json:"redacted_columns,omitempty"`
	Feeds       []string `json:"feeds,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Rows sums the rows read over the tables reported so far.
func (j *Job) Rows() int64 {
	var n int64
	for _, t := range j.Tables {
		n += t.Rows
	}
	return n
}

// FailedTables counts the tables with an error.
func (j *Job) FailedTables() int {
	n := 0
	for _, t := range j.Tables {
		if t.Error != "" {
			n++
		}
	}
	return n
}

// ScanReport is what an agent posts to /api/v1/scans.
type ScanReport struct {
	Agent    string    `json:"agent"`
	Findings []Finding `json:"findings"`
}

// Finding is one column the scanner judged to hold PII, as printed by
// `nopii scan --format json`. Rule is the rule to add: {"rule": name,
// params…}.
type Finding struct {
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Column     string          `json:"column"`
	Kind       string          `json:"kind"`
	Confidence float64         `json:"confidence"`
	Evidence   string          `json:"evidence,omitempty"`
	Rule       json.RawMessage `json:"rule,omitempty"`
}

// Scan is one scan report as stored.
type Scan struct {
	Agent      string    `json:"agent"`
	ReceivedAt time.Time `json:"received_at"`
	Findings   []Finding `json:"findings"`
}

// JobFilter narrows Store.Jobs. Zero values select everything.
type JobFilter struct {
	Agent    string
	Workflow string
	Status   string // running, success or failed
	// Before is a page's cursor: the job id after which (older than which)
	// the page starts.
	Before string
	Limit  int // default DefaultJobsLimit, at most MaxJobsLimit
}
