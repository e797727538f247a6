package lake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keepalive"
)

// ErrConflict is returned by a LockStore's conditional writes when the
// object is not in the state the condition names.
var ErrConflict = errors.New("object exists or changed")

// DefaultLeaseTTL is how long a run lock lasts without renewal: how long a
// crashed run blocks the next one at most.
const DefaultLeaseTTL = 2 * time.Minute

// LockStore is a Store that can hold a lake's run lock: it writes a small
// object only if there is none, or only if it is unchanged, so that two
// runs cannot both believe they hold the lock. A Store without it gets no
// run lock (Lock says so in the log).
type LockStore interface {
	Store
	// ReadVersion reads a small object and a version that changes with
	// every write: the version of that content. Returns ErrNotExist when
	// there is none, ErrConflict when it cannot read a consistent pair.
	ReadVersion(ctx context.Context, key string) (data []byte, version string, err error)
	// PutIf writes data under key if the object's version is ifVersion,
	// or, with ifVersion "", if there is no object; it returns the new
	// version, or ErrConflict when the condition does not hold.
	PutIf(ctx context.Context, key string, data []byte, ifVersion string) (version string, err error)
	// DeleteIf removes the object if its version is ifVersion. Returns
	// ErrConflict when it is another; no object is not an error.
	DeleteIf(ctx context.Context, key, ifVersion string) error
}

// LockName is the key of a workflow's run lock in a lake.
func LockName(workflow string) string { return workflow + "/_nopii/run.lock.json" }

// lease is the run lock's object: who holds it, and until when unless it
// is renewed.
type lease struct {
	Workflow string    `json:"workflow"`
	Token    string    `json:"token"` // tells this holder's writes from another's
	PID      int       `json:"pid"`
	Host     string    `json:"host"`
	Since    time.Time `json:"since"`
	Expires  time.Time `json:"expires"`
}

// Lock takes the workflow's run lock: a lease object written only if there
// is none (or, when the one there expired, only if it is still that one),
// renewed every third of Options.LeaseTTL while the run lasts, removed by
// the returned unlock. A crashed holder's lease expires after LeaseTTL.
// Returns a *nopii.LockedError when another run holds an unexpired lease.
// Expiry is judged by the clocks of the runs, which must agree to well
// within the TTL.
func (f *Feed) Lock(ctx context.Context, workflow string) (unlock func(), err error) {
	if f.err != nil {
		return nil, f.err
	}
	ls, ok := f.store.(LockStore)
	if !ok {
		f.log.Warn("this store cannot write conditionally: runs of the workflow are not locked against each other", "feed", f.store.Describe())
		return func() {}, nil
	}
	ttl := f.opts.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	host, _ := os.Hostname()
	mine := lease{Workflow: workflow, Token: newToken(), PID: os.Getpid(), Host: host, Since: f.now().UTC()}
	key := LockName(workflow)
	encode := func() []byte {
		mine.Expires = f.now().UTC().Add(ttl)
		b, _ := json.Marshal(mine)
		return b
	}
	var version string
	for attempt := 0; ; attempt++ {
		version, err = ls.PutIf(ctx, key, encode(), "")
		if err == nil {
			break
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("take run lock %s: %w", key, err)
		}
		data, ver, err := ls.ReadVersion(ctx, key)
		if (errors.Is(err, ErrNotExist) || errors.Is(err, ErrConflict)) && attempt < 3 {
			continue // released, or being written, meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read run lock %s: %w", key, err)
		}
		var held lease
		if err := json.Unmarshal(data, &held); err == nil && f.now().Before(held.Expires) || attempt >= 3 {
			return nil, &nopii.LockedError{Workflow: workflow, Feed: f.store.Describe(), PID: held.PID, Host: held.Host, Since: held.Since}
		}
		f.log.Warn("run lock expired: its holder stopped renewing it; taking it over", "feed", f.store.Describe(),
			"pid", held.PID, "host", held.Host, "since", held.Since, "expired", held.Expires)
		version, err = ls.PutIf(ctx, key, encode(), ver)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("take over run lock %s: %w", key, err)
		}
	}

	// Renew until unlock. A renewal that finds the lease changed means
	// that this run stopped renewing for longer than the TTL and another
	// took over: say so loudly, there is nothing safe to do about it here.
	return keepalive.Start(ttl/3, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		defer cancel()
		v, err := ls.PutIf(ctx, key, encode(), version)
		switch {
		case err == nil:
			version = v
		case errors.Is(err, ErrConflict):
			f.log.Error("run lock lost: another run took it over after it expired", "feed", f.store.Describe(), "workflow", workflow)
			return false
		default:
			f.log.Warn("renew run lock", "feed", f.store.Describe(), logKeyError, err.Error())
		}
		return true
	}, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ls.DeleteIf(ctx, key, version); err != nil && !errors.Is(err, ErrConflict) {
			f.log.Warn("release run lock: it expires by itself", "feed", f.store.Describe(), "ttl", ttl.String(), logKeyError, err.Error())
		}
	}), nil
}

func newToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
