package twin_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgtest"
)

// TestPublishWaitsForAnotherSwap: a publish that comes while another
// swap or publish of the twin holds the twin's swap lock (another input's
// publish refreshing its materialized views, say) waits for it, however
// long, rather than failing after the lock timeout that bounds the wait
// for readers of the twin.
func TestPublishWaitsForAnotherSwap(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	db := mustConnect(t, dsn)
	ctx := testContext(t)
	f := mustOpen(t, dsn, 200*time.Millisecond)
	full, _ := fullAndDelta(t, f, "w")
	full.Deferred = true
	mustLoad(t, f, full, noteRows(1, 5, "new"))

	other := mustConnect(t, dsn)
	mustExec(t, other, "BEGIN", "SELECT pg_advisory_xact_lock(hashtext('nopii swap'))")
	released := make(chan struct{})
	go func() {
		time.Sleep(2 * time.Second) // ten times the lock timeout
		close(released)
		other.Exec(context.Background(), "COMMIT")
	}()
	_, err := f.Publish(ctx, nopii.Publication{Prefix: prefix, Tables: []nopii.PublishedTable{{Name: full.Table.Name}}})
	<-released
	if err != nil {
		t.Fatalf("publish while another swap ran: %v", err)
	}
	if got := notes(t, db, full.Name); !slices.Equal(got, noteLines(1, 5, "new")) {
		t.Errorf("after the publish: %q", got)
	}
}
