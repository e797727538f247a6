package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nopii/nopii/feeds/lake"
)

var _ lake.Store = (*Store)(nil)

// Store keeps a lake's objects as files under a directory. Keys are
// slash-separated paths relative to it.
type Store struct {
	root string
}

// tmpMark is in the name of every file being written.
const tmpMark = ".tmp-"

// NewStore returns a store under dir, creating the directory.
func NewStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("files: no path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("files: create %s: %w", abs, err)
	}
	return &Store{root: abs}, nil
}

// Open returns a lake feed writing under dir, creating the directory.
// o.Kind defaults to "files".
func Open(dir string, o lake.Options) (*lake.Feed, error) {
	st, err := NewStore(dir)
	if err != nil {
		return nil, err
	}
	if o.Kind == "" {
		o.Kind = "files"
	}
	return lake.New(st, o), nil
}

// Describe implements lake.Store.
func (s *Store) Describe() string { return s.root }

// Root returns the directory.
func (s *Store) Root() string { return s.root }

// file maps a key to its file, refusing keys that would leave the root.
func (s *Store) file(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") {
		return "", fmt.Errorf("files: invalid key %q", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Create implements lake.Store.
func (s *Store) Create(ctx context.Context, key string) (lake.ObjectWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := s.file(key)
	if err != nil {
		return nil, err
	}
	// Delete removes folders it empties: one may vanish between MkdirAll
	// and CreateTemp, so try again.
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return nil, fmt.Errorf("files: create %s: %w", key, err)
		}
		f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+tmpMark+"*")
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("files: create %s: %w", key, err)
		}
		return &objectWriter{f: f, name: name, key: key}, nil
	}
}

type objectWriter struct {
	f         *os.File
	name, key string
	done      bool
}

func (w *objectWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("files: write %s: object already finished", w.key)
	}
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("files: write %s: %w", w.key, err)
	}
	return n, err
}

// Commit syncs the temporary file and renames it into place, then syncs the
// directory so that the rename survives a crash.
func (w *objectWriter) Commit() error {
	if w.done {
		return fmt.Errorf("files: commit %s: object already finished", w.key)
	}
	w.done = true
	tmp := w.f.Name()
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("files: commit %s: %w", w.key, err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("files: commit %s: %w", w.key, err)
	}
	if err := os.Rename(tmp, w.name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("files: commit %s: %w", w.key, err)
	}
	if d, err := os.Open(filepath.Dir(w.name)); err == nil {
		d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}

// Abort removes the temporary file; a no-op after Commit.
func (w *objectWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("files: abort %s: %w", w.key, err)
	}
	return nil
}

// Get implements lake.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := s.file(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("files: %s: %w", key, lake.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("files: open %s: %w", key, err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("files: %s: %w", key, lake.ErrNotExist)
	}
	return f, nil
}

// List implements lake.Store: the keys of the files whose key starts with
// prefix, sorted; files still being written are not listed.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Walk the deepest directory the prefix names in full.
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	}
	start := s.root
	if dir != "" {
		var err error
		if start, err = s.file(dir); err != nil {
			return nil, err
		}
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // the directory is gone, or was removed while walking
			}
			return err
		}
		if d.IsDir() || strings.Contains(d.Name(), tmpMark) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("files: list %s: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete implements lake.Store. Directories left empty are removed too, up
// to the root, so that pruned snapshot folders disappear.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dirs := map[string]bool{}
	var errs []error
	for _, key := range keys {
		name, err := s.file(key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("files: delete %s: %w", key, err))
			continue
		}
		dirs[filepath.Dir(name)] = true
	}
	for d := range dirs {
		for d != s.root && strings.HasPrefix(d, s.root+string(filepath.Separator)) {
			if os.Remove(d) != nil { // not empty, or gone: stop there
				break
			}
			d = filepath.Dir(d)
		}
	}
	return errors.Join(errs...)
}
