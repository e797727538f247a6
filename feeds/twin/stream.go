package twin

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/nopii/nopii/internal/pgcopy"
)

const bufSize = 256 << 10

// copyStream feeds one binary COPY … FROM STDIN on conn: rows are appended
// to a buffer; full buffers go through a channel to the goroutine running
// pgconn's CopyFrom; two buffers rotate, so memory stays bounded and nothing
// is allocated per row.
type copyStream struct {
	buf    []byte
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	abort  chan struct{}
	once   sync.Once
	ctx    context.Context    // the run's: a stalled twin must not hold up Ctrl-C
	stop   context.CancelFunc // of the copier's own context
	err    error              // of CopyFrom; read after done is closed
	rows   int64
	closed bool
	// skip, when set, leaves out the values of these columns (a faithful
	// twin's generated columns, which it computes).
	skip  []bool
	nskip int
}

// skipping sets the columns whose values row leaves out.
func (s *copyStream) skipping(skip []bool) *copyStream {
	s.skip, s.nskip = skip, 0
	for _, k := range skip {
		if k {
			s.nskip++
		}
	}
	return s
}

func startCopy(ctx context.Context, conn *pgx.Conn, sql string) *copyStream {
	s := &copyStream{full: make(chan []byte, 2), free: make(chan []byte, 3),
		done: make(chan struct{}), abort: make(chan struct{}), ctx: ctx}
	// The copier's context is not the run's: a COPY ends by our trailer or by
	// cancel, which fails it explicitly. Cancelling this context makes
	// pgconn unblock a write stuck on a stalled socket.
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	for range 2 {
		s.free <- make([]byte, 0, bufSize+bufSize/4)
	}
	s.buf = pgcopy.AppendHeader(make([]byte, 0, bufSize+bufSize/4))
	go func() {
		defer close(s.done)
		r := &chanReader{full: s.full, free: s.free, abort: s.abort}
		_, s.err = conn.PgConn().CopyFrom(cctx, r, sql)
	}()
	return s
}

// row appends one tuple; patch, when set, gives per column a twin element
// OID to write into binary array headers.
func (s *copyStream) row(values [][]byte, patch []uint32) error {
	if len(s.buf) >= bufSize {
		if err := s.flush(); err != nil {
			return err
		}
	}
	b := binary.BigEndian.AppendUint16(s.buf, uint16(len(values)-s.nskip))
	for i, v := range values {
		if s.nskip > 0 && i < len(s.skip) && s.skip[i] {
			continue
		}
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		start := len(b)
		b = append(b, v...)
		if patch != nil {
			if p := patch[i]; p != 0 && len(v) >= 12 {
				binary.BigEndian.PutUint32(b[start+8:], p)
			}
		}
	}
	s.buf = b
	s.rows++
	return nil
}

var errCopyEnded = errors.New("copy ended early")

func (s *copyStream) flush() error {
	select {
	case s.full <- s.buf:
	case <-s.done:
		return s.failure()
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	select {
	case b := <-s.free:
		s.buf = b[:0]
	case <-s.done:
		return s.failure()
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	return nil
}

func (s *copyStream) failure() error {
	if s.err != nil {
		return s.err
	}
	return errCopyEnded
}

// finish sends the trailer and waits for PostgreSQL to accept the data.
func (s *copyStream) finish() error {
	if s.closed {
		return errors.New("copy already finished")
	}
	s.closed = true
	s.buf = pgcopy.AppendTrailer(s.buf)
	select {
	case s.full <- s.buf:
		close(s.full)
	case <-s.done:
	}
	<-s.done
	s.stop()
	return s.err
}

// cancel fails the COPY (the reader returns an error, pgconn sends
// CopyFail) and waits for the goroutine.
func (s *copyStream) cancel() {
	s.closed = true
	s.once.Do(func() { close(s.abort) })
	s.stop()
	<-s.done
}

// chanReader turns the stream of filled buffers into the io.Reader that
// pgconn's CopyFrom wants, handing each buffer back once it is drained.
type chanReader struct {
	full  <-chan []byte
	free  chan<- []byte
	abort <-chan struct{}
	cur   []byte
	pos   int
}

var errAborted = errors.New("load aborted")

func (r *chanReader) Read(p []byte) (int, error) {
	for r.pos >= len(r.cur) {
		if r.cur != nil {
			select {
			case r.free <- r.cur[:0]:
			default:
			}
			r.cur = nil
		}
		select {
		case b, ok := <-r.full:
			if !ok {
				return 0, io.EOF
			}
			r.cur, r.pos = b, 0
		case <-r.abort:
			return 0, errAborted
		}
	}
	n := copy(p, r.cur[r.pos:])
	r.pos += n
	return n, nil
}
