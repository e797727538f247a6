package nopii

import (
	"errors"
	"fmt"
	"time"
)

// ErrLocked reports that another run of the workflow holds a feed's run
// lock. Feeds return it as a *LockedError, which names the holder.
var ErrLocked = errors.New("another run holds the workflow's lock")

// LockedError is a feed's run lock held by another run of the workflow:
// one run at a time writes a workflow's tables into a feed
// (docs/reliability.md).
type LockedError struct {
	Workflow string
	Feed     string    // the feed, as its errors name it: twin (db …), s3://bucket/prefix, /path
	PID      int       // the holder's process; 0 when unknown
	Host     string    // the holder's host name
	Since    time.Time // when the holder took the lock
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another run of workflow %s holds feed %s since %s (pid %d, host %s)",
		e.Workflow, e.Feed, e.Since.UTC().Format(time.RFC3339), e.PID, e.Host)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
