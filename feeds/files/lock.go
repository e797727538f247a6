package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nopii/nopii/feeds/lake"
)

// The run lock's file is created as O_EXCL would (link(2) of a written
// temporary file fails when the name exists, so that nobody reads a half
// written lock); it is replaced and removed under an flock(2) on a guard
// file beside it, so that two runs taking over an expired lock cannot both
// succeed.
var _ lake.LockStore = (*Store)(nil)

// guardMark names the guard file; it holds tmpMark, so List leaves it out.
const guardMark = tmpMark + "guard"

// ReadVersion implements lake.LockStore: the version is a hash of the
// content (every lease differs: it holds a random token).
func (s *Store) ReadVersion(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	name, err := s.file(key)
	if err != nil {
		return nil, "", err
	}
	return readVersion(name, key)
}

func readVersion(name, key string) ([]byte, string, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("files: %s: %w", key, lake.ErrNotExist)
	}
	if err != nil {
		return nil, "", fmt.Errorf("files: read %s: %w", key, err)
	}
	return data, version(data), nil
}

func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// PutIf implements lake.LockStore.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name, err := s.file(key)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return "", fmt.Errorf("files: put %s: %w", key, err)
	}
	tmp, err := writeTemp(name, data)
	if err != nil {
		return "", fmt.Errorf("files: put %s: %w", key, err)
	}
	defer os.Remove(tmp)
	if ifVersion == "" {
		if err := os.Link(tmp, name); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("files: put %s: %w", key, lake.ErrConflict)
			}
			return "", fmt.Errorf("files: put %s: %w", key, err)
		}
		return version(data), nil
	}
	err = s.guarded(name, key, ifVersion, func() error { return os.Rename(tmp, name) })
	if err != nil {
		return "", err
	}
	return version(data), nil
}

// DeleteIf implements lake.LockStore.
func (s *Store) DeleteIf(ctx context.Context, key, ifVersion string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := s.file(key)
	if err != nil {
		return err
	}
	err = s.guarded(name, key, ifVersion, func() error { return os.Remove(name) })
	if errors.Is(err, lake.ErrNotExist) {
		return nil
	}
	return err
}

// guarded runs change while holding the guard of name, if name's version
// is ifVersion.
func (s *Store) guarded(name, key, ifVersion string, change func() error) error {
	g, err := os.OpenFile(name+guardMark, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("files: lock %s: %w", key, err)
	}
	defer g.Close()
	if err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("files: lock %s: %w", key, err)
	}
	defer syscall.Flock(int(g.Fd()), syscall.LOCK_UN)
	_, v, err := readVersion(name, key)
	if errors.Is(err, lake.ErrNotExist) {
		return fmt.Errorf("files: %s: %w", key, errors.Join(lake.ErrConflict, lake.ErrNotExist))
	}
	if err != nil {
		return err
	}
	if v != ifVersion {
		return fmt.Errorf("files: %s: %w", key, lake.ErrConflict)
	}
	if err := change(); err != nil {
		return fmt.Errorf("files: %s: %w", key, err)
	}
	return nil
}

// writeTemp writes data to a synced temporary file beside name.
func writeTemp(name string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+tmpMark+"*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
