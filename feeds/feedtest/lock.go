package feedtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii"
)

// Locker is a feed with a run lock (docs/reliability.md).
type Locker interface {
	Lock(ctx context.Context, workflow string) (unlock func(), err error)
}

// RunLock checks a feed's run lock. newPair returns two feeds on the same
// storage (as two runs would open them).
func RunLock(t *testing.T, newPair func(t *testing.T) (a, b Locker)) {
	ctx := testContext(t)
	a, b := newPair(t)
	host, _ := os.Hostname()

	unlockA, err := a.Lock(ctx, Workflow)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	_, err = b.Lock(ctx, Workflow)
	var le *nopii.LockedError
	switch {
	case !errors.As(err, &le) || !errors.Is(err, nopii.ErrLocked):
		t.Fatalf("second lock while the first is held: %v, want a *nopii.LockedError", err)
	case le.PID != os.Getpid() || le.Host != host || le.Workflow != Workflow:
		t.Errorf("holder = pid %d host %q workflow %q, want pid %d host %q workflow %q", le.PID, le.Host, le.Workflow, os.Getpid(), host, Workflow)
	case time.Since(le.Since) > time.Minute || time.Until(le.Since) > 2*time.Second:
		t.Errorf("held since %v, want about now", le.Since)
	case !strings.HasPrefix(err.Error(), "another run of workflow "+Workflow+" holds feed ") || le.Feed == "":
		t.Errorf("message %q", err)
	}

	unlockOther, err := b.Lock(ctx, Workflow+"-other")
	if err != nil {
		t.Fatalf("another workflow's lock: %v", err)
	}
	unlockOther()

	unlockA()
	unlockA() // twice is harmless
	unlockB, err := b.Lock(ctx, Workflow)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlockB()
}
