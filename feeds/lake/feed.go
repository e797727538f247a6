package lake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nopii/nopii"
)

var _ nopii.Feed = (*Feed)(nil)

// Log keys.
const (
	logKeyTable = "table"
	logKeyError = "error"
)

// Defaults of Options.
const (
	DefaultPartSize = 128 << 20
	DefaultRetain   = 2
)

// Options configure a lake Feed.
type Options struct {
	// Workflow names the folder that holds the workflow's tables; required.
	Workflow string
	// Format is FormatParquet (the default), FormatCSV or FormatJSONL.
	Format string
	// Compression is CompressionNone (the default), CompressionGzip,
	// CompressionZstd, or CompressionSnappy with Parquet.
	Compression string
	// PartSize is the size in bytes at which a part is closed and the next
	// one begun; approximate (Parquet sizes are estimated before
	// compression). Default DefaultPartSize.
	PartSize int64
	// Retain is how many snapshots of a table are kept, the current one
	// included, so that readers of an older manifest can finish. Default
	// DefaultRetain.
	Retain int
	// TempDir holds spilled key sorts (delete detection); default os.TempDir().
	TempDir string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Kind is what Feed.Kind returns: "s3" or "files".
	Kind string
	// LeaseTTL is how long the run lock (Lock) lasts unless renewed;
	// default DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// Feed is a data lake of redacted tables in a Store (SPEC §4):
//
//	<workflow>/<schema>.<table>/snapshot=<UTC 20060102T150405Z>/part-00000.<ext>
//	<workflow>/<schema>.<table>/delta=<UTC 20060102T150405Z>/part-00000.<ext>
//	<workflow>/<schema>.<table>/_manifest.json
//	<workflow>/_nopii/state.json
//	<workflow>/_nopii/keys/<schema>.<table>/<stamp>.keys.gz
type Feed struct {
	store Store
	opts  Options
	log   *slog.Logger
	err   error // invalid options: every method returns it
	ext   string
	now   func() time.Time

	stateMu sync.Mutex // state.json read-modify-write

	mu   sync.Mutex
	busy map[nopii.TableName]bool // targets with a load in progress
}

// New returns a lake feed writing to store. Invalid options are reported
// by Prepare, FullCopy, Delta and State.
func New(store Store, o Options) *Feed {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Format == "" {
		o.Format = FormatParquet
	}
	if o.Compression == "" {
		o.Compression = CompressionNone
	}
	if o.PartSize <= 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Retain <= 0 {
		o.Retain = DefaultRetain
	}
	if o.Kind == "" {
		o.Kind = "lake"
	}
	f := &Feed{store: store, opts: o, log: o.Logger, now: time.Now, busy: map[nopii.TableName]bool{}}
	f.err = o.validate()
	if f.err != nil {
		f.err = fmt.Errorf("%s: %w", o.Kind, f.err)
	}
	f.ext = Extension(o.Format, o.Compression)
	return f
}

func (o Options) validate() error {
	switch {
	case o.Workflow == "":
		return errors.New("no workflow name")
	case strings.ContainsAny(o.Workflow, "/\\") || o.Workflow == "." || o.Workflow == "..":
		return fmt.Errorf("workflow name %q cannot name a folder", o.Workflow)
	}
	switch o.Format {
	case FormatParquet, FormatCSV, FormatJSONL:
	default:
		return fmt.Errorf("unknown format %q (parquet, csv or jsonl)", o.Format)
	}
	switch o.Compression {
	case CompressionNone, CompressionGzip, CompressionZstd:
	case CompressionSnappy:
		if o.Format != FormatParquet {
			return fmt.Errorf("snappy is for parquet only: %s takes none, gzip or zstd", o.Format)
		}
	default:
		return fmt.Errorf("unknown compression %q (none, gzip, zstd, snappy)", o.Compression)
	}
	return nil
}

// Kind implements nopii.Feed.
func (f *Feed) Kind() string { return f.opts.Kind }

// Prepare implements nopii.Feed: a lake has no schemas or types to create.
func (f *Feed) Prepare(ctx context.Context, targets []nopii.Target) error { return f.err }

// Close implements nopii.Feed. Loads own their objects; nothing is pooled.
func (f *Feed) Close() error { return nil }

// FullCopy implements nopii.Feed: the rows go to a new snapshot folder,
// which the manifest names on Commit.
func (f *Feed) FullCopy(ctx context.Context, t nopii.Target) (nopii.Load, error) {
	l, err := f.begin(ctx, t, false, false)
	if err != nil {
		return nil, err
	}
	return &fullLoad{l}, nil
}

// Delta implements nopii.Feed: the rows go to a new delta folder with
// _nopii_op "upsert"; with deletes, the keys streamed to WriteKey are those
// that remain, and Commit adds a "delete" row for every key the table held
// that is not among them. Returns an error when the table has no snapshot.
func (f *Feed) Delta(ctx context.Context, t nopii.Target, deletes bool) (nopii.DeltaLoad, error) {
	l, err := f.begin(ctx, t, true, deletes)
	if err != nil {
		return nil, err
	}
	return &deltaLoad{load: l}, nil
}

func (f *Feed) claim(t nopii.TableName) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[t] {
		return false
	}
	f.busy[t] = true
	return true
}

func (f *Feed) release(t nopii.TableName) {
	f.mu.Lock()
	delete(f.busy, t)
	f.mu.Unlock()
}

// stamp picks the folder stamp of a new snapshot or delta: now, but after
// everything the manifest names, and not a folder that exists (left by a
// crashed load, or a load in the same second).
func (f *Feed) stamp(ctx context.Context, dir, kind string, prev *Manifest) (time.Time, error) {
	s := f.now().UTC().Truncate(time.Second)
	if prev != nil {
		if last := prev.latest(); !s.After(last) {
			s = last.Add(time.Second)
		}
	}
	for range 1000 {
		keys, err := f.store.List(ctx, dir+kind+"="+s.Format(stampLayout)+"/")
		if err != nil {
			return s, err
		}
		if len(keys) == 0 {
			return s, nil
		}
		s = s.Add(time.Second)
	}
	return s, errors.New("no free folder name")
}

// prune deletes, after a full copy, what no manifest a reader might still
// hold can name: snapshots older than the Retain newest, the deltas before
// the oldest snapshot kept, and old keys objects. Folders newer than the
// current snapshot belong to no one yet and are left alone.
func (f *Feed) prune(ctx context.Context, dir, current string) error {
	keys, err := f.store.List(ctx, dir)
	if err != nil {
		return err
	}
	var snapshots []string
	seen := map[string]bool{}
	for _, k := range keys {
		folder, _, ok := strings.Cut(k[len(dir):], "/")
		if ok && strings.HasPrefix(folder, "snapshot=") && !seen[folder] && folder <= current {
			seen[folder] = true
			snapshots = append(snapshots, folder)
		}
	}
	// snapshots are sorted: List is, and stamps sort as times.
	if len(snapshots) <= f.opts.Retain {
		return nil
	}
	oldestKept := snapshots[len(snapshots)-f.opts.Retain]
	return f.deleteBefore(ctx, dir, keys, strings.TrimPrefix(oldestKept, "snapshot="))
}

// deleteBefore deletes, of keys (a listing of dir), the objects in snapshot
// and delta folders stamped before stamp.
func (f *Feed) deleteBefore(ctx context.Context, dir string, keys []string, stamp string) error {
	var doomed []string
	for _, k := range keys {
		folder, _, ok := strings.Cut(k[len(dir):], "/")
		if !ok {
			continue
		}
		kind, at, _ := strings.Cut(folder, "=")
		if (kind == "snapshot" || kind == "delta") && at < stamp {
			doomed = append(doomed, k)
		}
	}
	if len(doomed) == 0 {
		return nil
	}
	return f.store.Delete(ctx, doomed...)
}

// keysDir is where a table's keys objects live.
func (f *Feed) keysDir(t nopii.TableName) string {
	return f.opts.Workflow + "/_nopii/keys/" + tableSegment(t) + "/"
}

// dropKeys deletes the table's keys objects other than keep.
func (f *Feed) dropKeys(ctx context.Context, t nopii.TableName, keep string) error {
	keys, err := f.store.List(ctx, f.keysDir(t))
	if err != nil {
		return err
	}
	var doomed []string
	for _, k := range keys {
		if k != keep {
			doomed = append(doomed, k)
		}
	}
	if len(doomed) == 0 {
		return nil
	}
	return f.store.Delete(ctx, doomed...)
}
