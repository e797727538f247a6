package twin

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/keepalive"
	"github.com/nopii/nopii/internal/pgconnect"
)

// lockApp starts the application_name of a run lock's session, which names
// the holder for the runs that find the lock taken: "nopii-lock PID UNIX HOST".
const lockApp = "nopii-lock"

// lockCheckEvery is how often the lock's session is checked, so that a lock
// lost with its connection (the twin restarted) is noticed and taken again.
var lockCheckEvery = 5 * time.Second

// lockKey is the advisory lock key of a workflow's runs.
func lockKey(workflow string) int64 {
	h := fnv.New64a()
	h.Write([]byte("nopii run " + workflow))
	return int64(h.Sum64())
}

// Lock takes the workflow's run lock in the twin: a session-level advisory
// lock (pg_try_advisory_lock) on a connection of its own, held until unlock.
// Holding it, it drops what an earlier run of the workflow, killed before
// its publish, left in nopii.pending.
// A holder that crashes loses it with its session, at once. It returns a
// *nopii.LockedError naming the holder when another session holds it.
func (f *Feed) Lock(ctx context.Context, workflow string) (unlock func(), err error) {
	host, _ := os.Hostname()
	app := fmt.Sprintf("%s %d %d %s", lockApp, os.Getpid(), time.Now().Unix(), host)
	if len(app) > 63 { // NAMEDATALEN-1: PostgreSQL truncates application_name there
		app = app[:63]
	}
	conn, err := f.tryLock(ctx, workflow, app)
	if err != nil {
		return nil, err
	}
	// What a killed run of the workflow left for its publish (pending.go).
	if n, err := dropLeftovers(ctx, conn, workflow); err != nil {
		f.log.Warn("twin: could not drop what an earlier run left unpublished", "workflow", workflow, "error", err.Error())
	} else if n > 0 {
		f.log.Info("twin: dropped what an earlier run left unpublished", "workflow", workflow, "relations", n)
	}
	return keepalive.Start(lockCheckEvery, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), lockCheckEvery)
		defer cancel()
		_, err := conn.Exec(ctx, "SELECT 1")
		if err == nil {
			return true
		}
		conn.Close(context.Background())
		again, lerr := f.tryLock(ctx, workflow, app)
		if lerr != nil {
			f.log.Error("run lock lost with its connection; another run may start", "workflow", workflow, "error", lerr.Error())
			return false
		}
		conn = again
		f.log.Warn("run lock taken again after its connection was lost", "workflow", workflow, "error", pgconnect.Describe(err))
		return true
	}, func() {
		// Closing the session releases the lock; unlocking first keeps
		// the server log free of a session that ended holding locks.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if !conn.IsClosed() {
			conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", lockKey(workflow))
		}
		conn.Close(ctx)
	}), nil
}

// tryLock opens the lock's session and takes the lock, or returns the
// LockedError of its holder.
func (f *Feed) tryLock(ctx context.Context, workflow, app string) (*pgx.Conn, error) {
	conn, err := pgconnect.ConnectConfig(ctx, f.cfg.Copy(), f.opts.Connect)
	if err != nil {
		return nil, err
	}
	key := lockKey(workflow)
	for attempt := 0; ; attempt++ {
		var got bool
		err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1) FROM set_config('application_name', $2, false)", key, app).Scan(&got)
		if err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("twin: take run lock: %w", pgconnect.SafeError(err))
		}
		if got {
			return conn, nil
		}
		held, found, err := f.lockHolder(ctx, conn, key)
		if err != nil {
			conn.Close(context.Background())
			return nil, err
		}
		if found || attempt >= 2 {
			conn.Close(context.Background())
			held.Workflow = workflow
			return nil, held
		}
		// Released between the two queries: try again.
	}
}

// lockHolder reads who holds the lock from the holder's session.
func (f *Feed) lockHolder(ctx context.Context, conn *pgx.Conn, key int64) (*nopii.LockedError, bool, error) {
	u := uint64(key)
	var app string
	var start time.Time
	err := conn.QueryRow(ctx, `SELECT coalesce(a.application_name, ''), coalesce(a.backend_start, now())
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
		LIMIT 1`, int64(u>>32), int64(u&0xffffffff)).Scan(&app, &start)
	held := &nopii.LockedError{Feed: fmt.Sprintf("twin (db %s on %s:%d)", f.cfg.Database, f.cfg.Host, f.cfg.Port), Since: start, Host: "unknown"}
	if err == pgx.ErrNoRows {
		return held, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("twin: look up the run lock's holder: %w", pgconnect.SafeError(err))
	}
	if f := strings.SplitN(app, " ", 4); len(f) == 4 && f[0] == lockApp {
		held.PID, _ = strconv.Atoi(f[1])
		if sec, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			held.Since = time.Unix(sec, 0)
		}
		held.Host = f[3]
	}
	return held, true, nil
}
