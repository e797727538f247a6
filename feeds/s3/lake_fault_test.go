package s3_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
)

// TestLakeKeepsPreviousSnapshotWhenS3Fails: a full copy through the lake
// whose uploads die mid-body (the connection dropped, every retry) fails,
// leaves no object of the new snapshot and no multipart upload behind, and
// the manifest still names the previous snapshot, whose rows read back whole.
func TestLakeKeepsPreviousSnapshotWhenS3Fails(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	faults := func(r *http.Request, op string, attempt int) *fault {
		if broken.Load() && strings.Contains(r.URL.Path, "/snapshot=") && (op == opPutObject || op == opUploadPart) {
			return &fault{drop: true}
		}
		return nil
	}
	f := newFixture(t, faults, nil)
	o := lake.Options{Workflow: feedtest.Workflow, Format: lake.FormatParquet, Compression: lake.CompressionZstd,
		Logger: slog.New(slog.DiscardHandler), Kind: "s3"}
	feed := lake.New(f.store, o)
	reader := laketest.NewReader(f.store, o)
	tb := feedtest.KitchenSink(t)
	feedtest.MustPrepare(t, feed, tb)
	feedtest.MustFullCopy(t, feed, tb, tb.Rows...)
	first, err := lake.ReadManifest(t.Context(), f.store, lake.TableDir(feedtest.Workflow, tb.Name))
	if err != nil {
		t.Fatal(err)
	}

	broken.Store(true)
	l, err := feed.FullCopy(t.Context(), tb.Target("full", int64(len(tb.Rows))))
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, r := range tb.Rows {
		if werr = l.WriteRow(r.Values); werr != nil {
			break
		}
	}
	cerr := l.Commit(t.Context())
	l.Abort()
	if werr == nil && cerr == nil {
		t.Fatal("the full copy succeeded although every upload of its snapshot failed")
	}
	broken.Store(false)

	now, err := lake.ReadManifest(t.Context(), f.store, lake.TableDir(feedtest.Workflow, tb.Name))
	if err != nil {
		t.Fatal(err)
	}
	if now.Snapshot.Path != first.Snapshot.Path {
		t.Fatalf("manifest moved from %s to %s after a failed copy", first.Snapshot.Path, now.Snapshot.Path)
	}
	keys, err := f.store.List(t.Context(), lake.TableDir(feedtest.Workflow, tb.Name)+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "/snapshot=") && !strings.Contains(k, first.Snapshot.Path) {
			t.Errorf("an object of the failed snapshot is visible: %s", k)
		}
	}
	if got := f.uploads(t); len(got) != 0 {
		t.Errorf("multipart uploads left in progress: %q", got)
	}
	feedtest.CheckRows(t, reader, tb, feedtest.Want(tb.Rows...))
}
