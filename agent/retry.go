package agent

import (
	"context"
	"fmt"
	"time"
)

// Retry is how a run tries again the tables whose copy lost a connection to
// the source or a feed (a server restarted, a backend terminated). Each
// retry opens a new snapshot of the input and copies only those tables;
// tables already committed stay as they are. A failed attempt leaves the
// feeds as they were (loads are atomic), so retrying never writes a row
// twice or moves a cursor past unwritten rows.
type Retry struct {
	Attempts int              // retries after the first attempt; 0 retries nothing
	Backoff  time.Duration    // the wait before the first retry, doubled for each next one
	Lost     func(error) bool // reports whether an error means a lost connection; nil: none does
}

// DefaultRetry is what `nopii run` and the agent use: 3 retries, 2 s, 4 s
// and 8 s apart (each new connection has bounded retries of its own).
func DefaultRetry(lost func(error) bool) Retry {
	return Retry{Attempts: 3, Backoff: 2 * time.Second, Lost: lost}
}

func (r *Runner) lost(err error) bool {
	return err != nil && r.Retry.Lost != nil && r.Retry.Lost(err)
}

// retryLost retries, with a new snapshot each time, the tables of reports
// that failed on a lost connection. It returns the reports with the retried
// tables' results in place. An input that could not be opened at all is not
// retried here: opening has bounded connection retries of its own.
func (ir *inputRun) retryLost(ctx context.Context, reports []result, err error, again func(only map[string]bool) ([]result, error)) ([]result, error) {
	r, log := ir.r, ir.log
	if err != nil {
		return reports, err
	}
	wait := r.Retry.Backoff
	var lastErr error // why the last retry could not even open the input
	made := 1         // attempts made, the first included
	for attempt := 1; attempt <= r.Retry.Attempts && ctx.Err() == nil; attempt++ {
		only := map[string]bool{}
		for _, tr := range reports {
			if r.lost(tr.err) {
				only[tr.Table] = true
			}
		}
		if len(only) == 0 {
			return reports, nil
		}
		log.Warn("connection lost; retrying with a new snapshot",
			"tables", len(only), "attempt", attempt+1, "of", r.Retry.Attempts+1, "wait", wait.String())
		select {
		case <-ctx.Done():
			return reports, nil
		case <-time.After(wait):
		}
		wait *= 2
		retried, err := again(only)
		made++
		if err != nil {
			lastErr = err // the tables keep their own errors
			if !r.lost(err) {
				break
			}
			continue
		}
		lastErr = nil
		reports = merge(reports, retried, attempt+1)
	}
	for i := range reports {
		if r.lost(reports[i].err) && r.Retry.Attempts > 0 {
			reports[i].Error += fmt.Sprintf("; gave up after %d attempts", made)
			if lastErr != nil {
				reports[i].Error += " (last: " + lastErr.Error() + ")"
			}
		}
	}
	return reports, nil
}

// merge puts the retried tables' reports in place of the earlier ones.
func merge(reports, retried []result, attempt int) []result {
	byTable := make(map[string]result, len(retried))
	for _, tr := range retried {
		if tr.Error == "" {
			tr.Note = join(tr.Note, fmt.Sprintf("copied on attempt %d, after a lost connection", attempt))
		}
		byTable[tr.Table] = tr
	}
	for i, tr := range reports {
		if n, ok := byTable[tr.Table]; ok {
			reports[i] = n
		}
	}
	return reports
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
