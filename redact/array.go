package redact

import (
	"encoding/binary"
	"fmt"
	"math"
)

// maxArrayDims is PostgreSQL's MAXDIM.
const maxArrayDims = 6

// ArrayOf returns a Func for an array column that applies elem to every
// non-NULL element (see MapArray). A NULL array stays NULL.
func ArrayOf(elem Func) Func {
	return NonNull(func(dst, src []byte) ([]byte, error) { return MapArray(dst, src, elem) })
}

// MapArray appends the binary array src with elem applied to each non-NULL
// element, keeping its dimensions, lower bounds and element type OID. NULL
// elements stay NULL; an element for which elem outputs NULL becomes NULL.
func MapArray(dst, src []byte, elem Func) ([]byte, error) {
	if len(src) < 12 {
		return dst, invalidf("array of %d bytes", len(src))
	}
	ndim := int32(binary.BigEndian.Uint32(src))
	flags := int32(binary.BigEndian.Uint32(src[4:]))
	if ndim < 0 || ndim > maxArrayDims || (flags != 0 && flags != 1) {
		return dst, invalidf("array header (%d dimensions, flags %d)", ndim, flags)
	}
	hdr := 12 + 8*int(ndim)
	if len(src) < hdr {
		return dst, invalidf("array of %d bytes", len(src))
	}
	n := 1
	if ndim == 0 {
		n = 0
	}
	for i := range int(ndim) {
		l := int32(binary.BigEndian.Uint32(src[12+8*i:]))
		if l < 0 {
			return dst, invalidf("array dimension of length %d", l)
		}
		// Every element takes at least its 4-byte length word.
		if l > 0 && n > (len(src)-hdr)/4/int(l) {
			return dst, invalidf("array dimensions exceed its %d bytes", len(src))
		}
		n *= int(l)
	}
	start := len(dst)
	dst = append(dst, src[:hdr]...)
	hasNull := false
	p := hdr
	for i := range n {
		if len(src)-p < 4 {
			return dst[:start], invalidf("array truncated at element %d", i)
		}
		l := int32(binary.BigEndian.Uint32(src[p:]))
		p += 4
		if l == -1 {
			dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32)
			hasNull = true
			continue
		}
		if l < 0 || int(l) > len(src)-p {
			return dst[:start], invalidf("array element %d of length %d", i, l)
		}
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		out, null, err := elem(dst, src[p:p+int(l)])
		p += int(l)
		if err != nil {
			return dst[:start], fmt.Errorf("array element %d: %w", i, err)
		}
		dst = out
		if null {
			dst = binary.BigEndian.AppendUint32(dst[:at], math.MaxUint32)
			hasNull = true
			continue
		}
		size := len(dst) - at - 4
		if size > math.MaxInt32 {
			return dst[:start], fmt.Errorf("array element %d: output too large", i)
		}
		binary.BigEndian.PutUint32(dst[at:], uint32(size))
	}
	if p != len(src) {
		return dst[:start], invalidf("array has %d trailing bytes", len(src)-p)
	}
	f := uint32(0)
	if hasNull {
		f = 1
	}
	binary.BigEndian.PutUint32(dst[start+4:], f)
	return dst, nil
}

// AppendEmptyArray appends the empty array ('{}') of elements of type elemOID.
func AppendEmptyArray(dst []byte, elemOID uint32) []byte {
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(dst, elemOID)
}

// AppendArray appends a one-dimensional array (lower bound 1) of the given
// binary elements of type elemOID; nil elements are NULL. No elements give
// the empty array.
func AppendArray(dst []byte, elemOID uint32, elems [][]byte) []byte {
	if len(elems) == 0 {
		return AppendEmptyArray(dst, elemOID)
	}
	hasNull := uint32(0)
	for _, e := range elems {
		if e == nil {
			hasNull = 1
		}
	}
	dst = binary.BigEndian.AppendUint32(dst, 1)
	dst = binary.BigEndian.AppendUint32(dst, hasNull)
	dst = binary.BigEndian.AppendUint32(dst, elemOID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(elems)))
	dst = binary.BigEndian.AppendUint32(dst, 1)
	for _, e := range elems {
		if e == nil {
			dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32)
			continue
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e)))
		dst = append(dst, e...)
	}
	return dst
}
