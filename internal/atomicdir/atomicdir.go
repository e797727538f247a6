// Package atomicdir writes a directory the way the kubelet publishes a
// ConfigMap or Secret volume, for tests of what a pod sees when the
// ConfigMap changes.
//
// The kubelet's AtomicWriter (k8s.io/kubernetes/pkg/volume/util) keeps each
// version of the files in a hidden directory named after the time, points
// the symlink ..data at the current one, and exposes every file as a symlink
// through it (nopii.yaml -> ..data/nopii.yaml). An update writes a new
// hidden directory, makes a symlink ..data_tmp to it, renames that over
// ..data (the one atomic step), and removes the old directory. A program
// that re-reads the file by its path sees the old or the new content, never
// a mix; one that watches the file itself (inotify on nopii.yaml) or keeps
// it open sees nothing change; and a subPath mount is a bind mount of one
// version, which never changes at all.
package atomicdir

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	dataLink    = "..data"
	newDataLink = "..data_tmp"
)

// Write publishes files (name → content) as the new version of dir,
// creating dir if needed, with the kubelet's sequence of steps.
func Write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create volume directory: %w", err)
	}
	old, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", dataLink, err)
	}
	version, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("create version directory: %w", err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(version, name), content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	tmp := filepath.Join(dir, newDataLink)
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return fmt.Errorf("link %s: %w", newDataLink, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return fmt.Errorf("swap %s: %w", dataLink, err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
				return fmt.Errorf("link %s: %w", name, err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return fmt.Errorf("remove old version: %w", err)
		}
	}
	return nil
}
