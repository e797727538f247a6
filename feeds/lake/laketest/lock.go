package laketest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/lake"
)

// RunLease checks the lake's run lock on a store: feedtest.RunLock, then
// that a held lease is renewed (another run stays out past its TTL), that
// an expired lease (a crashed holder's) is taken over, and that a lease
// that cannot be read does not block forever. newStore returns an empty
// store of its own.
func RunLease(t *testing.T, newStore func(t *testing.T) lake.LockStore) {
	open := func(st lake.LockStore, ttl time.Duration) *lake.Feed {
		return lake.New(st, lake.Options{Workflow: feedtest.Workflow, LeaseTTL: ttl, Logger: slog.New(slog.DiscardHandler)})
	}
	t.Run("lock", func(t *testing.T) {
		feedtest.RunLock(t, func(t *testing.T) (a, b feedtest.Locker) {
			st := newStore(t)
			return open(st, 0), open(st, 0)
		})
	})
	ctx := context.Background()
	t.Run("renewed while held", func(t *testing.T) {
		st := newStore(t)
		const ttl = 600 * time.Millisecond
		unlock, err := open(st, ttl).Lock(ctx, feedtest.Workflow)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(ttl / 4) {
			if _, err := open(st, ttl).Lock(ctx, feedtest.Workflow); !errors.Is(err, nopii.ErrLocked) {
				t.Fatalf("lock while held past the TTL: %v, want ErrLocked (the lease is not renewed)", err)
			}
		}
	})
	t.Run("expired lease taken over", func(t *testing.T) {
		st := newStore(t)
		stale, _ := json.Marshal(map[string]any{"workflow": feedtest.Workflow, "pid": 1, "host": "crashed",
			"since": time.Now().Add(-time.Hour), "expires": time.Now().Add(-time.Second)})
		if _, err := st.PutIf(ctx, lake.LockName(feedtest.Workflow), stale, ""); err != nil {
			t.Fatal(err)
		}
		unlock, err := open(st, 0).Lock(ctx, feedtest.Workflow)
		if err != nil {
			t.Fatalf("lock over an expired lease: %v", err)
		}
		unlock()
		if _, _, err := st.ReadVersion(ctx, lake.LockName(feedtest.Workflow)); !errors.Is(err, lake.ErrNotExist) {
			t.Errorf("lease left after unlock: %v", err)
		}
	})
	// Runs starting at once, on an empty store and on a crashed holder's
	// lease: exactly one gets the lock.
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("one of many, stale lease %v", stale), func(t *testing.T) {
			st := newStore(t)
			if stale {
				old, _ := json.Marshal(map[string]any{"pid": 1, "host": "crashed", "expires": time.Now().Add(-time.Second)})
				if _, err := st.PutIf(ctx, lake.LockName(feedtest.Workflow), old, ""); err != nil {
					t.Fatal(err)
				}
			}
			var won, locked atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := open(st, time.Minute).Lock(ctx, feedtest.Workflow) // never unlocked: the winner keeps it
					switch {
					case err == nil:
						won.Add(1)
					case errors.Is(err, nopii.ErrLocked):
						locked.Add(1)
					default:
						t.Errorf("lock: %v", err)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 1 || locked.Load() != 7 {
				t.Errorf("%d runs got the lock and %d were told it is held, want 1 and 7", won.Load(), locked.Load())
			}
		})
	}
	t.Run("unexpired lease of another host", func(t *testing.T) {
		st := newStore(t)
		since := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
		held, _ := json.Marshal(map[string]any{"workflow": feedtest.Workflow, "pid": 4242, "host": "elsewhere",
			"since": since, "expires": time.Now().Add(time.Minute)})
		if _, err := st.PutIf(ctx, lake.LockName(feedtest.Workflow), held, ""); err != nil {
			t.Fatal(err)
		}
		_, err := open(st, 0).Lock(ctx, feedtest.Workflow)
		var le *nopii.LockedError
		if !errors.As(err, &le) || le.PID != 4242 || le.Host != "elsewhere" || !le.Since.Equal(since) {
			t.Fatalf("lock: %v, want held by pid 4242 on elsewhere since %v", err, since)
		}
	})
	t.Run("unreadable lease taken over", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.PutIf(ctx, lake.LockName(feedtest.Workflow), []byte("{half a lea"), ""); err != nil {
			t.Fatal(err)
		}
		unlock, err := open(st, 0).Lock(ctx, feedtest.Workflow)
		if err != nil {
			t.Fatalf("lock over an unreadable lease: %v", err)
		}
		unlock()
	})
	t.Run("conditions", func(t *testing.T) {
		st := newStore(t)
		key := lake.LockName(feedtest.Workflow)
		v1, err := st.PutIf(ctx, key, []byte("one"), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutIf(ctx, key, []byte("two"), ""); !errors.Is(err, lake.ErrConflict) {
			t.Errorf("create over an object: %v, want ErrConflict", err)
		}
		v2, err := st.PutIf(ctx, key, []byte("three"), v1)
		if err != nil || v2 == v1 {
			t.Fatalf("replace at its version: %q, %v", v2, err)
		}
		if _, err := st.PutIf(ctx, key, []byte("four"), v1); !errors.Is(err, lake.ErrConflict) {
			t.Errorf("replace at an old version: %v, want ErrConflict", err)
		}
		if err := st.DeleteIf(ctx, key, v1); !errors.Is(err, lake.ErrConflict) {
			t.Errorf("delete at an old version: %v, want ErrConflict", err)
		}
		if data, v, err := st.ReadVersion(ctx, key); err != nil || string(data) != "three" || v != v2 {
			t.Errorf("read = %q %q %v, want three %q", data, v, err, v2)
		}
		if err := st.DeleteIf(ctx, key, v2); err != nil {
			t.Errorf("delete at its version: %v", err)
		}
		if err := st.DeleteIf(ctx, key, v2); err != nil {
			t.Errorf("delete of nothing: %v", err)
		}
		if keys, err := st.List(ctx, feedtest.Workflow+"/"); err != nil || len(keys) != 0 {
			t.Errorf("objects left: %q %v", keys, err)
		}
	})
}
