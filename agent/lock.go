package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nopii/nopii"
)

// Locker is a feed with a run lock: one run of a workflow at a time writes
// into it, across processes and machines (docs/reliability.md). The twin
// holds an advisory lock, a lake a lease object.
type Locker interface {
	// Lock takes the workflow's run lock and returns its release. Returns
	// a *nopii.LockedError when another run holds it; it does not wait.
	Lock(ctx context.Context, workflow string) (unlock func(), err error)
}

// lockPoll is how often a waiting run tries the locks again.
var lockPoll = time.Second

// lockFeeds takes the run lock of every feed that has one. When another
// run holds one, it releases those it took and tries again every lockPoll
// until wait has passed (saying once whom it waits for), then returns the
// *nopii.LockedError. Taking all or none means two runs that wait never
// hold a lock each that the other wants.
func lockFeeds(ctx context.Context, feeds []nopii.Feed, workflow string, wait time.Duration, log *slog.Logger) (unlock func(), err error) {
	deadline := time.Now().Add(wait)
	var waitingFor string
	for {
		unlock, err := lockAll(ctx, feeds, workflow)
		var held *nopii.LockedError
		if !errors.As(err, &held) {
			if err == nil && waitingFor != "" {
				log.Info("run lock taken: the other run ended", "waited", time.Since(deadline.Add(-wait)).Round(time.Millisecond).String())
			}
			return unlock, err
		}
		if !time.Now().Add(lockPoll).Before(deadline) {
			return nil, err
		}
		if msg := held.Error(); msg != waitingFor {
			waitingFor = msg
			log.Warn("waiting for another run of the workflow", "holder_pid", held.PID, "holder_host", held.Host,
				"since", held.Since.UTC().Format(time.RFC3339), "feed", held.Feed, "wait", time.Until(deadline).Round(time.Second).String())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// lockAll takes every feed's lock, or none.
func lockAll(ctx context.Context, feeds []nopii.Feed, workflow string) (func(), error) {
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, f := range feeds {
		l, ok := f.(Locker)
		if !ok {
			continue
		}
		unlock, err := l.Lock(ctx, workflow)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, unlock)
	}
	return release, nil
}
