package files_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/feeds/feedtest"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/lake/laketest"
)

var quiet = slog.New(slog.DiscardHandler)

// TestFeed runs the conformance suite in every format and compression.
func TestFeed(t *testing.T) {
	for _, fc := range []struct{ format, compression string }{
		{lake.FormatParquet, lake.CompressionNone},
		{lake.FormatParquet, lake.CompressionZstd},
		{lake.FormatParquet, lake.CompressionSnappy},
		{lake.FormatParquet, lake.CompressionGzip},
		{lake.FormatCSV, lake.CompressionNone},
		{lake.FormatCSV, lake.CompressionGzip},
		{lake.FormatJSONL, lake.CompressionNone},
		{lake.FormatJSONL, lake.CompressionZstd},
	} {
		t.Run(fc.format+"-"+fc.compression, func(t *testing.T) {
			feedtest.Run(t, func(t *testing.T) (nopii.Feed, feedtest.Reader) {
				o := lake.Options{Workflow: feedtest.Workflow, Format: fc.format, Compression: fc.compression,
					PartSize: 16 << 10, Logger: quiet}
				dir := t.TempDir()
				f, err := files.Open(dir, o)
				if err != nil {
					t.Fatal(err)
				}
				st, err := files.NewStore(dir)
				if err != nil {
					t.Fatal(err)
				}
				return f, laketest.NewReader(st, o)
			})
		})
	}
}

func mustStore(t *testing.T) (*files.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lake", "root")
	st, err := files.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("NewStore did not create %s: %v", dir, err)
	}
	return st, dir
}

func get(t *testing.T, st *files.Store, key string) (string, error) {
	t.Helper()
	rc, err := st.Get(context.Background(), key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func list(t *testing.T, st *files.Store, prefix string) []string {
	t.Helper()
	keys, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestStoreVisibleOnlyWhenCommitted(t *testing.T) {
	st, dir := mustStore(t)
	ctx := context.Background()
	w, err := st.Create(ctx, "wf/t/part-00000.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, st, "wf/t/part-00000.csv"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("Get before Commit: %v, want ErrNotExist", err)
	}
	if keys := list(t, st, ""); len(keys) != 0 {
		t.Errorf("List before Commit: %q", keys)
	}
	tmp, _ := filepath.Glob(filepath.Join(dir, "wf", "t", "part-00000.csv.tmp-*"))
	if len(tmp) != 1 {
		t.Fatalf("temporary files %q, want one <key>.tmp-<random>", tmp)
	}
	w.Write([]byte(" and whole"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, st, "wf/t/part-00000.csv"); err != nil || got != "half and whole" {
		t.Errorf("Get = %q, %v", got, err)
	}
	if _, err := os.Stat(tmp[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the temporary file is still there: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if got, _ := get(t, st, "wf/t/part-00000.csv"); got != "half and whole" {
		t.Error("Abort after Commit removed the object")
	}
	if err := w.Commit(); err == nil {
		t.Error("a second Commit succeeded")
	}

	// Replacing an object: the old one stays whole until Commit.
	w2, _ := st.Create(ctx, "wf/t/part-00000.csv")
	w2.Write([]byte("new"))
	if got, _ := get(t, st, "wf/t/part-00000.csv"); got != "half and whole" {
		t.Errorf("during the rewrite Get = %q", got)
	}
	w2.Commit()
	if got, _ := get(t, st, "wf/t/part-00000.csv"); got != "new" {
		t.Errorf("after the rewrite Get = %q", got)
	}

	// Abort leaves nothing.
	w3, _ := st.Create(ctx, "wf/u/x")
	w3.Write([]byte("gone"))
	if err := w3.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, st, "wf/u/x"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("Get after Abort: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "wf", "u", "*")); len(left) != 0 {
		t.Errorf("Abort left %q", left)
	}
}

func TestStoreListAndDelete(t *testing.T) {
	st, dir := mustStore(t)
	ctx := context.Background()
	keys := []string{"wf/a.b/snapshot=1/part-00000.csv", "wf/a.b/snapshot=1/part-00001.csv", "wf/a.bc/_manifest.json", "wf/a/x", "wf/_nopii/state.json", "top"}
	for _, k := range keys {
		w, err := st.Create(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(k))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	open, _ := st.Create(ctx, "wf/a.b/snapshot=1/part-00002.csv") // being written: not listed
	defer open.Abort()
	for prefix, want := range map[string][]string{
		"":                    {"top", "wf/_nopii/state.json", "wf/a.b/snapshot=1/part-00000.csv", "wf/a.b/snapshot=1/part-00001.csv", "wf/a.bc/_manifest.json", "wf/a/x"},
		"wf/a.b/":             {"wf/a.b/snapshot=1/part-00000.csv", "wf/a.b/snapshot=1/part-00001.csv"},
		"wf/a.b":              {"wf/a.b/snapshot=1/part-00000.csv", "wf/a.b/snapshot=1/part-00001.csv", "wf/a.bc/_manifest.json"},
		"wf/a.b/snapshot=1/p": {"wf/a.b/snapshot=1/part-00000.csv", "wf/a.b/snapshot=1/part-00001.csv"},
		"wf/missing/":         nil,
		"nothing":             nil,
	} {
		if got := list(t, st, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	if err := st.Delete(ctx, "wf/a.b/snapshot=1/part-00000.csv", "wf/a.b/snapshot=1/part-00001.csv", "wf/never/was"); err != nil {
		t.Fatal(err)
	}
	if got := list(t, st, "wf/a.b/"); len(got) != 0 {
		t.Errorf("after Delete: %q", got)
	}
	// The folder still holds the open object's temporary file: it stays.
	if _, err := os.Stat(filepath.Join(dir, "wf", "a.b", "snapshot=1")); err != nil {
		t.Errorf("a folder with a file being written was removed: %v", err)
	}
	open.Abort()
	st.Delete(ctx, "wf/a/x")
	if _, err := os.Stat(filepath.Join(dir, "wf", "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an emptied folder was left: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the root was removed: %v", err)
	}
	for _, bad := range []string{"", "/abs", "../out", "a/../../out", "a//b", "a/./b", "a/"} {
		if _, err := st.Create(ctx, bad); err == nil {
			t.Errorf("Create(%q) accepted a key outside the layout", bad)
		}
		if _, err := st.Get(ctx, bad); err == nil || errors.Is(err, lake.ErrNotExist) {
			t.Errorf("Get(%q) = %v, want an invalid-key error", bad, err)
		}
	}
	if _, err := get(t, st, "wf"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("Get of a folder: %v, want ErrNotExist", err)
	}
	if st.Describe() != dir {
		t.Errorf("Describe() = %q, want %q", st.Describe(), dir)
	}
}

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	f, err := files.Open(dir, lake.Options{Workflow: "wf", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind() != "files" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("Open did not create the directory: %v", err)
	}
	if _, err := files.Open("", lake.Options{Workflow: "wf"}); err == nil {
		t.Error("Open with no path succeeded")
	}
}
