package lake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
)

// memStore is a Store in memory with fault injection: failCommit makes
// the Commit of objects whose key contains it fail.
type memStore struct {
	mu         sync.Mutex
	objects    map[string][]byte
	open       int // writers neither committed nor aborted
	failCommit string
	creates    int
}

func newMemStore() *memStore { return &memStore{objects: map[string][]byte{}} }

var errInjected = errors.New("injected failure")

func (s *memStore) Create(ctx context.Context, key string) (ObjectWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open++
	s.creates++
	return &memWriter{s: s, key: key}, nil
}

type memWriter struct {
	s    *memStore
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write after commit or abort")
	}
	return w.buf.Write(p)
}

func (w *memWriter) Commit() error {
	if w.done {
		return errors.New("commit after commit or abort")
	}
	w.done = true
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.open--
	if w.s.failCommit != "" && strings.Contains(w.key, w.s.failCommit) {
		return errInjected
	}
	w.s.objects[w.key] = slices.Clone(w.buf.Bytes())
	return nil
}

func (w *memWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.s.mu.Lock()
	w.s.open--
	w.s.mu.Unlock()
	return nil
}

func (s *memStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[key]
	if !ok {
		return nil, ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memStore) List(ctx context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (s *memStore) Delete(ctx context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.objects, k)
	}
	return nil
}

func (s *memStore) Describe() string { return "mem:" }

func (s *memStore) keys() []string {
	k, _ := s.List(context.Background(), "")
	return k
}
