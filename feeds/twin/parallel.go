package twin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// parallel is a full load whose rows go through several connections at
// once: the shadow table is committed (empty) first, so that they all see
// it; each writer COPYs into it in its own transaction; Commit commits the
// writers, then builds the index and swaps the table in, with the state, in
// one last transaction. Readers of the twin see the old table until then.
// A process that dies on the way leaves a committed shadow behind, which
// the table's next load drops (createShadow: the shadow's name is
// _nopii_new_<table>, never a user's). The table lock that subject
// requests wait for is held on the load's own connection for the session,
// from before the first row to after the swap.
type parallel struct {
	writers []*writer
}

// writer is one connection's COPY into the committed shadow.
type writer struct {
	load   *fullLoad
	conn   *pgx.Conn
	stream *copyStream
}

var _ nopii.RowWriter = (*writer)(nil)

// Writers gives n writers that COPY into the shadow at once (the agent
// uses it for a table read as page ranges). Called before any row: it
// ends the load's own COPY … FREEZE, empty, and commits the shadow.
func (l *fullLoad) Writers(ctx context.Context, n int) ([]nopii.RowWriter, error) {
	if l.par != nil || l.stream.rows > 0 {
		return nil, errors.New("twin: Writers after rows were written")
	}
	if err := l.finishCopy(); err != nil {
		return nil, err
	}
	l.par = &parallel{}
	lock := tableLockKey(l.target.Name)
	if err := l.register(ctx, l.shadowName(), pendingShadow); err != nil {
		return nil, fmt.Errorf("twin: load %s: %w", l.target.Name, err)
	}
	if _, err := l.exec(ctx, "SELECT pg_advisory_lock_shared("+lock+"); COMMIT"); err != nil {
		return nil, fmt.Errorf("twin: load %s: commit the shadow table: %w", l.target.Name, err)
	}
	sql := "COPY " + l.shadowName() + " (" + l.columnList() + ") FROM STDIN (FORMAT binary)"
	out := make([]nopii.RowWriter, n)
	for i := range out {
		conn, err := l.feed.acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("twin: load %s: %w", l.target.Name, err)
		}
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("twin: load %s: %w", l.target.Name, pgconnect.SafeError(err))
		}
		w := &writer{load: l, conn: conn, stream: startCopy(ctx, conn, sql).skipping(l.skip)}
		l.par.writers = append(l.par.writers, w)
		out[i] = w
	}
	return out, nil
}

// WriteRow implements nopii.RowWriter.
func (w *writer) WriteRow(values [][]byte) error {
	if err := w.stream.row(values, w.load.patch); err != nil {
		return fmt.Errorf("twin: copy into %s: %w", w.load.target.Name, pgconnect.SafeError(err))
	}
	return nil
}

func (l *fullLoad) commitParallel(ctx context.Context) error {
	t0 := time.Now()
	var rows int64
	for _, w := range l.par.writers {
		err := w.stream.finish()
		if err == nil {
			_, err = w.conn.Exec(ctx, "COMMIT")
		}
		if err != nil {
			l.Abort()
			return fmt.Errorf("twin: copy into %s: %w", l.target.Name, pgconnect.SafeError(err))
		}
		rows += w.stream.rows
	}
	t1 := time.Now()
	lock := tableLockKey(l.target.Name)
	if _, err := l.exec(ctx, "BEGIN; SELECT pg_advisory_xact_lock_shared("+lock+")"); err != nil {
		l.Abort()
		return fmt.Errorf("twin: swap in %s: %w", l.target.Name, err)
	}
	idx, err := l.build(ctx)
	if err == nil {
		// The session's table lock ends once the shadow is whole:
		// committed for Publish, or swapped in.
		if err = l.finish(ctx); err == nil {
			_, err = l.exec(ctx, "SELECT pg_advisory_unlock_shared("+lock+")")
		}
	}
	if err != nil {
		l.Abort()
		return fmt.Errorf("twin: swap in %s: %w", l.target.Name, err)
	}
	for _, w := range l.par.writers {
		l.feed.release(w.conn)
	}
	l.feed.release(l.conn)
	l.feed.log.Debug("twin table loaded", "deferred", l.target.Deferred, "table", l.target.Name.String(), "rows", rows, "writers", len(l.par.writers),
		"copy_tail_seconds", t1.Sub(t0).Seconds(), "index_seconds", idx.Seconds(), "swap_seconds", time.Since(t1).Seconds()-idx.Seconds())
	return nil
}

// Abort implements nopii.Load. With writers, the shadow is committed: it
// is dropped here, and by the next load if this connection is gone.
func (l *fullLoad) Abort() {
	if l.done || l.par == nil {
		committed := !l.done && l.registered // a shadow committed to build its indexes apart
		l.load.Abort()
		if committed {
			l.feed.drop(context.Background(), []*deferred{{full: l}})
		}
		return
	}
	for _, w := range l.par.writers {
		if !w.stream.closed {
			w.stream.cancel()
		}
		w.conn.Close(context.Background())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, "ROLLBACK; DROP TABLE IF EXISTS "+l.shadowName()); err != nil {
		l.feed.log.Warn("twin: could not drop the shadow table of an aborted load; the next load drops it", "table", l.target.Name.String())
	}
	l.load.Abort() // closes the connection: the session's table lock goes with it
}
