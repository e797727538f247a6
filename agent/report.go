package agent

import "github.com/nopii/nopii/internal/wire"

// The run's report and its parts are the messages of package wire: what a
// run prints is what the dashboard receives.
type (
	// Report is what a run did, per table.
	Report = wire.Report
	// TableReport is one table's line of a Report.
	TableReport = wire.TableReport
	// Mode is how a table is copied: full, delta or cdc.
	Mode = wire.Mode
	// Status is a run's state: running, success or failed.
	Status = wire.Status
	// Outcome is what became of a table: copied, failed or guarded.
	Outcome = wire.Outcome
)

// The modes, statuses and outcomes, as in package wire.
const (
	ModeFull  = wire.ModeFull
	ModeDelta = wire.ModeDelta
	ModeCDC   = wire.ModeCDC

	StatusRunning = wire.StatusRunning
	StatusSuccess = wire.StatusSuccess
	StatusFailed  = wire.StatusFailed

	OutcomeCopied  = wire.OutcomeCopied
	OutcomeFailed  = wire.OutcomeFailed
	OutcomeGuarded = wire.OutcomeGuarded
)

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
