package lake

import (
	"bufio"
	"bytes"
	"io"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/nopii/nopii"
)

// Formats of Options.Format.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
)

// Compressions of Options.Compression. Parquet compresses pages with its
// own codec; CSV and JSONL parts are compressed whole (.gz, .zst).
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionZstd   = "zstd"
	CompressionSnappy = "snappy" // Parquet only
)

// OpColumn is the column that delta parts add after source_primary_key:
// OpUpsert for a changed or new row, OpDelete for a key that left the
// source (with every other column NULL).
const (
	OpColumn = "_nopii_op"
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Extension returns the file extension of parts in a format and
// compression: .parquet, .csv, .csv.gz, .jsonl.zst …
func Extension(format, compression string) string {
	ext := "." + format
	if format == FormatParquet {
		return ext
	}
	switch compression {
	case CompressionGzip:
		ext += ".gz"
	case CompressionZstd:
		ext += ".zst"
	}
	return ext
}

// encoder writes the rows of one part.
type encoder interface {
	// writeRow writes the table's values, then the key; op is "" in a
	// snapshot, else OpUpsert or OpDelete.
	writeRow(values [][]byte, op string) error
	// size estimates the bytes the part holds so far.
	size() int64
	// close flushes everything into the object (but does not commit it).
	close() error
}

// countingWriter counts what reaches the object.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// textSink is the compressed, buffered output of a CSV or JSONL part.
type textSink struct {
	*bufio.Writer
	count *countingWriter
	comp  io.WriteCloser // nil without compression
}

func newTextSink(out io.Writer, compression string) (*textSink, error) {
	s := &textSink{count: &countingWriter{w: out}}
	var w io.Writer = s.count
	switch compression {
	case CompressionGzip:
		gz, err := gzip.NewWriterLevel(s.count, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		s.comp, w = gz, gz
	case CompressionZstd:
		zw, err := zstd.NewWriter(s.count, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		s.comp, w = zw, zw
	}
	s.Writer = bufio.NewWriterSize(w, 64<<10)
	return s, nil
}

// size counts the bytes out of the compressor plus those still buffered
// before it (compressors hold some more: parts come out a little larger
// than PartSize).
func (s *textSink) size() int64 { return s.count.n + int64(s.Buffered()) }

func (s *textSink) close() error {
	if err := s.Flush(); err != nil {
		return err
	}
	if s.comp != nil {
		return s.comp.Close()
	}
	return nil
}

// csvEncoder writes RFC 4180 CSV with a header row and CRLF line ends.
// Values are PostgreSQL's text output, as COPY … (FORMAT csv) writes them:
// NULL is an empty unquoted field, an empty string is "".
type csvEncoder struct {
	*textSink
	codecs []*codec
	m      *pgtype.Map
	buf    []byte
}

func newCSVEncoder(sink *textSink, t *nopii.Table, codecs []*codec, delta bool, m *pgtype.Map) (*csvEncoder, error) {
	e := &csvEncoder{textSink: sink, codecs: codecs, m: m}
	for _, c := range t.Columns {
		e.field([]byte(c.Name))
		e.WriteByte(',')
	}
	e.WriteString(nopii.SourcePrimaryKeyColumn)
	if delta {
		e.WriteString("," + OpColumn)
	}
	_, err := e.WriteString("\r\n")
	return e, err
}

func (e *csvEncoder) writeRow(values [][]byte, op string) error {
	n := len(e.codecs)
	for i, c := range e.codecs {
		if v := values[i]; v != nil {
			if c.kind != kText && c.kind != kJSON {
				var err error
				if e.buf, err = c.appendText(e.buf[:0], v, e.m); err != nil {
					return err
				}
				v = e.buf
			}
			e.field(v)
		}
		e.WriteByte(',')
	}
	e.field(values[n])
	if op != "" {
		e.WriteByte(',')
		e.WriteString(op)
	}
	_, err := e.WriteString("\r\n")
	return err
}

// field writes a non-NULL value, quoted when it is empty or holds a comma,
// a quote or a line break.
func (e *csvEncoder) field(v []byte) {
	quote := len(v) == 0
	for _, b := range v {
		if b == ',' || b == '"' || b == '\n' || b == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		e.Write(v)
		return
	}
	e.WriteByte('"')
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			break
		}
		e.Write(v[:i+1])
		e.WriteByte('"')
		v = v[i+1:]
	}
	e.Write(v)
	e.WriteByte('"')
}

// jsonlEncoder writes one JSON object per line, keys in column order,
// values as PostgreSQL's to_json renders them.
type jsonlEncoder struct {
	*textSink
	codecs  []*codec
	names   [][]byte // `"name":` per column, then the key's and the op's
	m       *pgtype.Map
	buf     []byte
	scratch []byte
}

func newJSONLEncoder(sink *textSink, t *nopii.Table, codecs []*codec, m *pgtype.Map) *jsonlEncoder {
	e := &jsonlEncoder{textSink: sink, codecs: codecs, m: m}
	for _, c := range t.Columns {
		e.names = append(e.names, append(appendJSONString(nil, []byte(c.Name)), ':'))
	}
	e.names = append(e.names, append(appendJSONString(nil, []byte(nopii.SourcePrimaryKeyColumn)), ':'))
	e.names = append(e.names, append(appendJSONString(nil, []byte(OpColumn)), ':'))
	return e
}

func (e *jsonlEncoder) writeRow(values [][]byte, op string) error {
	b := append(e.buf[:0], '{')
	n := len(e.codecs)
	var err error
	for i, c := range e.codecs {
		b = append(b, e.names[i]...)
		if values[i] == nil {
			b = append(b, "null,"...)
			continue
		}
		if b, err = c.appendJSON(b, values[i], e.m, &e.scratch); err != nil {
			e.buf = b
			return err
		}
		b = append(b, ',')
	}
	b = append(b, e.names[n]...)
	b = appendJSONString(b, values[n])
	if op != "" {
		b = append(b, ',')
		b = append(b, e.names[n+1]...)
		b = append(b, '"')
		b = append(b, op...)
		b = append(b, '"')
	}
	b = append(b, '}', '\n')
	e.buf = b
	_, err = e.Write(b)
	return err
}
