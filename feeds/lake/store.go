package lake

import (
	"context"
	"errors"
	"io"
)

// ErrNotExist is returned by Store.Get for a key that has no object.
var ErrNotExist = errors.New("object does not exist")

// Store is where a lake keeps its objects: a bucket (feeds/s3) or a local
// directory (feeds/files). Keys are slash-separated paths relative to the
// feed's prefix or path.
type Store interface {
	// Create starts writing an object. Nothing is visible under key until
	// Commit returns nil; Abort (or a failed Commit) leaves no object and
	// no partial upload behind.
	Create(ctx context.Context, key string) (ObjectWriter, error)
	// Get opens an object. Returns ErrNotExist when there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes objects; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Describe names the store for errors and logs: s3://bucket/prefix, /path.
	Describe() string
}

// ObjectWriter is an object being written.
type ObjectWriter interface {
	io.Writer
	// Commit makes the object visible, whole.
	Commit() error
	// Abort discards it; a no-op after Commit.
	Abort() error
}
