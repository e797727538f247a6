package pgcopy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Signature opens every binary COPY stream.
var Signature = []byte("PGCOPY\n\xff\r\n\x00")

// ErrTruncated reports a stream that ended inside a tuple or before the trailer.
var ErrTruncated = errors.New("binary copy stream truncated")

// Decoder parses a binary COPY stream written to it and calls Row once per
// tuple. The values passed to Row alias the decoder's input: they are valid
// only during the call. A nil value is SQL NULL.
type Decoder struct {
	row    func(values [][]byte) error
	ncols  int
	vals   [][]byte
	carry  []byte
	header bool
	done   bool
	bytes  int64
}

// NewDecoder returns a decoder for tuples of ncols columns.
func NewDecoder(ncols int, row func(values [][]byte) error) *Decoder {
	return &Decoder{row: row, ncols: ncols, vals: make([][]byte, ncols)}
}

// Bytes returns the number of stream bytes consumed so far.
func (d *Decoder) Bytes() int64 { return d.bytes }

// Write consumes stream bytes. It returns the first error of Row.
func (d *Decoder) Write(p []byte) (int, error) {
	n := len(p)
	d.bytes += int64(n)
	if d.done {
		if len(p) > 0 {
			return 0, errors.New("binary copy stream: data after trailer")
		}
		return n, nil
	}
	buf := p
	if len(d.carry) > 0 {
		d.carry = append(d.carry, p...)
		buf = d.carry
	}
	used, err := d.parse(buf)
	if err != nil {
		return 0, err
	}
	rest := buf[used:]
	if len(d.carry) > 0 {
		d.carry = d.carry[:copy(d.carry, rest)]
	} else if len(rest) > 0 {
		d.carry = append(d.carry[:0], rest...)
	}
	return n, nil
}

// parse consumes as many whole items (header, tuples, trailer) as buf holds.
func (d *Decoder) parse(buf []byte) (int, error) {
	off := 0
	if !d.header {
		if len(buf) < len(Signature)+8 {
			return 0, nil
		}
		if !bytes.Equal(buf[:len(Signature)], Signature) {
			return 0, errors.New("binary copy stream: bad signature")
		}
		ext := int(binary.BigEndian.Uint32(buf[len(Signature)+4:]))
		hl := len(Signature) + 8 + ext
		if len(buf) < hl {
			return 0, nil
		}
		off = hl
		d.header = true
	}
	for off+2 <= len(buf) {
		nf := int16(binary.BigEndian.Uint16(buf[off:]))
		if nf == -1 {
			d.done = true
			return off + 2, nil
		}
		if int(nf) != d.ncols {
			return 0, fmt.Errorf("binary copy stream: tuple has %d fields, want %d", nf, d.ncols)
		}
		p := off + 2
		complete := true
		for i := 0; i < d.ncols; i++ {
			if p+4 > len(buf) {
				complete = false
				break
			}
			l := int32(binary.BigEndian.Uint32(buf[p:]))
			p += 4
			if l < 0 {
				d.vals[i] = nil
				continue
			}
			if p+int(l) > len(buf) {
				complete = false
				break
			}
			d.vals[i] = buf[p : p+int(l) : p+int(l)]
			p += int(l)
		}
		if !complete {
			break
		}
		if err := d.row(d.vals); err != nil {
			return 0, err
		}
		off = p
	}
	return off, nil
}

// Close reports ErrTruncated unless the trailer was seen.
func (d *Decoder) Close() error {
	if !d.done || len(d.carry) > 0 {
		return ErrTruncated
	}
	return nil
}

// AppendHeader appends the stream header.
func AppendHeader(buf []byte) []byte {
	buf = append(buf, Signature...)
	return append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
}

// AppendTrailer appends the end-of-stream marker.
func AppendTrailer(buf []byte) []byte { return append(buf, 0xff, 0xff) }

// AppendRow appends one tuple of values (nil is NULL).
func AppendRow(buf []byte, values [][]byte) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(values)))
	for _, v := range values {
		buf = AppendValue(buf, v)
	}
	return buf
}

// AppendValue appends one field; nil is NULL.
func AppendValue(buf []byte, v []byte) []byte {
	if v == nil {
		return binary.BigEndian.AppendUint32(buf, 0xffffffff)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
	return append(buf, v...)
}
