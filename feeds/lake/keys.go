package lake

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/gzip"
)

// Delete detection needs the keys a table held after its last load. Each
// commit writes them, sorted and unique, to a keys object that the manifest
// names; a delta with deletes merges them with the keys streamed to it.
// Keys are sorted by an external sort: runs of up to sortBufferBytes are
// sorted in memory and spilled to temporary files, then merged.

// sortBufferBytes bounds the memory of one key sorter; tests lower it.
var sortBufferBytes = 32 << 20

// keyStream yields keys in ascending byte order; a key is valid until the
// next call. next returns io.EOF at the end.
type keyStream interface {
	next() ([]byte, error)
}

// keySorter collects keys and yields them sorted and unique.
type keySorter struct {
	dir   string // for spilled runs; "" is os.TempDir()
	arena []byte
	ends  []uint32 // end offset of each key in arena
	runs  []*os.File
}

func (s *keySorter) add(k []byte) error {
	if len(s.arena)+len(k) > sortBufferBytes && len(s.ends) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.arena = append(s.arena, k...)
	s.ends = append(s.ends, uint32(len(s.arena)))
	return nil
}

func (s *keySorter) key(i uint32) []byte {
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.arena[start:s.ends[i]]
}

// sorted returns the indexes of the keys in memory, in key order.
func (s *keySorter) sorted() []uint32 {
	idx := make([]uint32, len(s.ends))
	for i := range idx {
		idx[i] = uint32(i)
	}
	slices.SortFunc(idx, func(a, b uint32) int { return bytes.Compare(s.key(a), s.key(b)) })
	return idx
}

// spill writes the keys in memory, sorted and unique, to a temporary file,
// each after its length as a uvarint.
func (s *keySorter) spill() error {
	f, err := os.CreateTemp(s.dir, "nopii-keys-*")
	if err != nil {
		return fmt.Errorf("spill keys: %w", err)
	}
	s.runs = append(s.runs, f)
	w := bufio.NewWriterSize(f, 256<<10)
	var lenBuf [binary.MaxVarintLen64]byte
	var last []byte
	for i, x := range s.sorted() {
		k := s.key(x)
		if i > 0 && bytes.Equal(k, last) {
			continue
		}
		last = k
		w.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(k)))])
		w.Write(k)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("spill keys: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spill keys: %w", err)
	}
	s.arena, s.ends = s.arena[:0], s.ends[:0]
	return nil
}

// stream merges the spilled runs and the keys in memory. Call it once,
// after the last add.
func (s *keySorter) stream() keyStream {
	streams := []keyStream{&memStream{s: s, idx: s.sorted()}}
	for _, f := range s.runs {
		streams = append(streams, &runStream{r: bufio.NewReaderSize(f, 64<<10)})
	}
	return merge(streams...)
}

// close removes the spilled runs.
func (s *keySorter) close() {
	for _, f := range s.runs {
		f.Close()
		os.Remove(f.Name())
	}
	s.runs = nil
	s.arena, s.ends = nil, nil
}

type memStream struct {
	s   *keySorter
	idx []uint32
}

func (m *memStream) next() ([]byte, error) {
	if len(m.idx) == 0 {
		return nil, io.EOF
	}
	k := m.s.key(m.idx[0])
	m.idx = m.idx[1:]
	return k, nil
}

type runStream struct {
	r   *bufio.Reader
	buf []byte
}

func (r *runStream) next() ([]byte, error) {
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		return nil, err // io.EOF at the end of the run
	}
	r.buf = slices.Grow(r.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return nil, fmt.Errorf("read spilled keys: %w", err)
	}
	return r.buf, nil
}

// merge yields the union of sorted streams, without duplicates.
func merge(streams ...keyStream) keyStream {
	m := &mergeStream{}
	for _, s := range streams {
		m.h = append(m.h, &head{s: s})
	}
	return m
}

type head struct {
	s   keyStream
	key []byte
}

type heads []*head

func (h heads) Len() int           { return len(h) }
func (h heads) Less(i, j int) bool { return bytes.Compare(h[i].key, h[j].key) < 0 }
func (h heads) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *heads) Push(x any)        { *h = append(*h, x.(*head)) }
func (h *heads) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type mergeStream struct {
	h       heads
	started bool
	out     []byte // the last key returned
	has     bool
	err     error
}

func (m *mergeStream) next() ([]byte, error) {
	if m.err != nil {
		return nil, m.err
	}
	if !m.started {
		m.started = true
		live := m.h[:0]
		for _, h := range m.h {
			k, err := h.s.next()
			if errors.Is(err, io.EOF) {
				continue
			}
			if err != nil {
				m.err = err
				return nil, err
			}
			h.key = k
			live = append(live, h)
		}
		m.h = live
		heap.Init(&m.h)
	}
	for len(m.h) > 0 {
		h := m.h[0]
		dup := m.has && bytes.Equal(h.key, m.out)
		if !dup {
			m.out = append(m.out[:0], h.key...)
			m.has = true
		}
		k, err := h.s.next()
		switch {
		case errors.Is(err, io.EOF):
			heap.Pop(&m.h)
		case err != nil:
			m.err = err
			return nil, err
		default:
			h.key = k
			heap.Fix(&m.h, 0)
		}
		if !dup {
			return m.out, nil
		}
	}
	return nil, io.EOF
}

// A keys object is gzip'd text, one key per line, sorted by bytes, with
// "\" and a line break in a key written as `\\` and `\n`.

// keysWriter writes a keys object.
type keysWriter struct {
	obj  ObjectWriter
	gz   *gzip.Writer
	bw   *bufio.Writer
	n    int64
	last []byte
}

func newKeysWriter(ctx context.Context, st Store, key string) (*keysWriter, error) {
	obj, err := st.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	gz, _ := gzip.NewWriterLevel(obj, gzip.BestSpeed)
	return &keysWriter{obj: obj, gz: gz, bw: bufio.NewWriterSize(gz, 64<<10)}, nil
}

func (w *keysWriter) write(k []byte) error {
	if w.n > 0 && bytes.Compare(k, w.last) <= 0 {
		return errors.New("keys out of order") // a bug, not data: the key is not shown
	}
	w.last = append(w.last[:0], k...)
	w.n++
	for _, b := range k {
		switch b {
		case '\\':
			w.bw.WriteString(`\\`)
		case '\n':
			w.bw.WriteString(`\n`)
		default:
			w.bw.WriteByte(b)
		}
	}
	return w.bw.WriteByte('\n')
}

func (w *keysWriter) commit() error {
	if err := w.bw.Flush(); err != nil {
		w.obj.Abort()
		return err
	}
	if err := w.gz.Close(); err != nil {
		w.obj.Abort()
		return err
	}
	return w.obj.Commit()
}

func (w *keysWriter) abort() { w.obj.Abort() }

// keysReader reads a keys object as a keyStream.
type keysReader struct {
	rc  io.ReadCloser
	gz  *gzip.Reader
	br  *bufio.Reader
	buf []byte
}

func openKeys(ctx context.Context, st Store, key string) (*keysReader, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(rc, 64<<10))
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("read keys %s: %w", key, err)
	}
	return &keysReader{rc: rc, gz: gz, br: bufio.NewReaderSize(gz, 64<<10)}, nil
}

func (r *keysReader) next() ([]byte, error) {
	r.buf = r.buf[:0]
	escaped := false
	for {
		line, err := r.br.ReadSlice('\n')
		for _, b := range line {
			switch {
			case escaped:
				if b == 'n' {
					b = '\n'
				}
				r.buf = append(r.buf, b)
				escaped = false
			case b == '\\':
				escaped = true
			case b == '\n':
				return r.buf, nil
			default:
				r.buf = append(r.buf, b)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0 && len(r.buf) == 0 && !escaped:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("read keys: %w", io.ErrUnexpectedEOF)
		case err != nil:
			return nil, fmt.Errorf("read keys: %w", err)
		}
	}
}

func (r *keysReader) close() {
	r.gz.Close()
	r.rc.Close()
}
