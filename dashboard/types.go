package dashboard

import (
	"time"

	"github.com/nopii/nopii/internal/wire"
	"github.com/nopii/nopii/scanner"
)

// The messages agents post (heartbeats, jobs, scans) are package wire's:
// one declaration for both sides. The types below are the dashboard's own
// views of what it stored.

// AgentState is how an agent is doing, as its heartbeats tell.
type AgentState string

// The states of an agent.
const (
	// AgentHealthy: heartbeats on time, no workflow's last run failed and
	// the configuration loads.
	AgentHealthy AgentState = "healthy"
	// AgentFailing: heartbeats on time, but a workflow's last run failed
	// or the configuration does not load.
	AgentFailing AgentState = "failing"
	// AgentSilent: no heartbeat for two intervals.
	AgentSilent AgentState = "silent"
)

// Agent is an agent as the dashboard knows it from its last heartbeat.
type Agent struct {
	Name            string    `json:"name"`
	Version         string    `json:"version"`
	LastSeen        time.Time `json:"last_seen"`
	IntervalSeconds float64   `json:"heartbeat_interval_seconds"`
	// Healthy is State == AgentHealthy.
	Healthy     bool                  `json:"healthy"`
	State       AgentState            `json:"state"`
	Workflows   []wire.WorkflowStatus `json:"workflows"`
	ConfigError string                `json:"config_error,omitempty"`
}

// Failing lists the workflows whose last run failed.
func (a Agent) Failing() []string {
	var out []string
	for _, w := range a.Workflows {
		if w.LastResult == wire.StatusFailed {
			out = append(out, w.Name)
		}
	}
	return out
}

// state is an agent's state at now.
func (a Agent) state(now time.Time) AgentState {
	switch {
	case !Fresh(a.LastSeen, a.IntervalSeconds, now):
		return AgentSilent
	case a.ConfigError != "" || len(a.Failing()) > 0:
		return AgentFailing
	}
	return AgentHealthy
}

// jobRows sums the rows read over the tables reported so far.
func jobRows(j wire.Job) int64 {
	rows, _ := j.Totals()
	return rows
}

// failedTables counts a job's tables with an error.
func failedTables(j wire.Job) int {
	n := 0
	for _, t := range j.Tables {
		if t.Error != "" {
			n++
		}
	}
	return n
}

// guarded reports whether the guard stopped the table: columns judged PII
// without a rule, and an error.
func guarded(t wire.TableReport) bool {
	return t.Outcome == wire.OutcomeGuarded || t.Error != "" && len(t.Unclassified) > 0
}

// Scan is one scan report as stored.
type Scan struct {
	ID         int64                   `json:"id"`
	Agent      string                  `json:"agent"`
	ReceivedAt time.Time               `json:"received_at"`
	Source     wire.ScanSource         `json:"source,omitempty"`
	Schemas    []string                `json:"schemas,omitempty"`
	Findings   []scanner.ColumnFinding `json:"findings"`
}

// Finding is one column an agent's scans judged PII, across scans: open
// until a rule covers it (docs/dashboard.md).
type Finding struct {
	Agent string `json:"agent"`
	scanner.ColumnFinding
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Seen counts the scans that reported it.
	Seen int `json:"seen"`
	// CoveredAt is when it stopped being open; nil while open.
	CoveredAt *time.Time `json:"covered_at,omitempty"`
	// CoveredBy says how: "rule" (a job report lists it among the table's
	// redacted columns) or "scan" (a later `nopii scan` of its schema no
	// longer reports it: a keep rule, an excluded table, a dropped column).
	CoveredBy string `json:"covered_by,omitempty"`
	// CoveredJob is the job whose report showed the rule.
	CoveredJob string `json:"covered_job,omitempty"`
}

// Values of Finding.CoveredBy.
const (
	CoveredByRule = "rule"
	CoveredByScan = "scan"
)

// Unruled is one column a run copied without a rule: the guard judged it
// PII and the workflow's on_unclassified: warn let the table through.
type Unruled struct {
	Agent    string `json:"agent"`
	Workflow string `json:"workflow"`
	Input    string `json:"input"`
	Table    string `json:"table"` // schema.table in the source
	scanner.ColumnFinding
	FirstSeen time.Time `json:"first_seen"` // the start of the first run that copied it
	LastSeen  time.Time `json:"last_seen"`  // the start of the last
	Runs      int       `json:"runs"`
	LastJob   string    `json:"last_job"`
	// Warnings are the table's warnings in the last such run.
	Warnings []string `json:"warnings,omitempty"`
}

// JobFilter narrows Store.Jobs. Zero values select everything.
type JobFilter struct {
	Agent    string
	Workflow string
	Status   wire.Status
	// Before is a page's cursor: the job id after which (older than which)
	// the page starts.
	Before string
	Limit  int // default DefaultJobsLimit, at most MaxJobsLimit
}
