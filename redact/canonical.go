package redact

import (
	"strconv"
	"time"
)

// Canon computes the canonical seed input of one non-NULL binary value: the
// bytes that keyed rules hash. It depends on the value only, never on the
// table or column, so that one value redacts alike wherever it appears and
// joins keep working. The result either aliases src or is scratch[:0] with
// the form appended.
type Canon func(scratch, src []byte) ([]byte, error)

// CanonText is the canonical form of text, varchar, name, citext and enum
// values: their UTF-8 bytes.
func CanonText(_, src []byte) ([]byte, error) { return src, nil }

// CanonBpchar is the canonical form of char(n) values: the text without its
// trailing padding, as PostgreSQL compares them.
func CanonBpchar(_, src []byte) ([]byte, error) { return TrimPad(src), nil }

// TrimPad strips the trailing spaces of a char(n) value.
func TrimPad(src []byte) []byte {
	n := len(src)
	for n > 0 && src[n-1] == ' ' {
		n--
	}
	return src[:n]
}

// CanonInt returns the canonical form of size-byte integers: decimal text,
// so that int2, int4 and int8 columns (and text holding the number) agree.
func CanonInt(size int) Canon {
	return func(scratch, src []byte) ([]byte, error) {
		v, err := ReadInt(src, size)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(scratch[:0], v, 10), nil
	}
}

// CanonUUID is the canonical form of uuid values: lowercase hyphenated text.
func CanonUUID(scratch, src []byte) ([]byte, error) {
	if len(src) != UUIDLen {
		return nil, invalidf("uuid of %d bytes", len(src))
	}
	return AppendUUIDText(scratch[:0], src), nil
}

// CanonDate is the canonical form of date values: ISO 8601 text
// (YYYY-MM-DD), or infinity and -infinity.
func CanonDate(scratch, src []byte) ([]byte, error) {
	v, err := ReadInt(src, 4)
	if err != nil {
		return nil, err
	}
	switch v {
	case DateInfinity:
		return append(scratch[:0], "infinity"...), nil
	case DateNegInfinity:
		return append(scratch[:0], "-infinity"...), nil
	}
	return DateTime(v).AppendFormat(scratch[:0], time.DateOnly), nil
}

// CanonTimestamp is the canonical form of timestamp values: ISO text as
// PostgreSQL prints it (2006-01-02 15:04:05.999999).
func CanonTimestamp(scratch, src []byte) ([]byte, error) {
	return canonTimestamp(scratch, src, "2006-01-02 15:04:05.999999")
}

// CanonTimestamptz is the canonical form of timestamptz values: ISO text in
// UTC as PostgreSQL prints it (2006-01-02 15:04:05.999999+00).
func CanonTimestamptz(scratch, src []byte) ([]byte, error) {
	return canonTimestamp(scratch, src, "2006-01-02 15:04:05.999999-07")
}

func canonTimestamp(scratch, src []byte, layout string) ([]byte, error) {
	v, err := ReadInt(src, 8)
	if err != nil {
		return nil, err
	}
	switch v {
	case TimestampInfinity:
		return append(scratch[:0], "infinity"...), nil
	case TimestampNegInfinity:
		return append(scratch[:0], "-infinity"...), nil
	}
	return TimestampTime(v).AppendFormat(scratch[:0], layout), nil
}

// CanonRaw returns the canonical form of values of any other type: the type
// name, a NUL byte (which text never holds) and the raw binary value.
func CanonRaw(typeName string) Canon {
	return func(scratch, src []byte) ([]byte, error) {
		scratch = append(scratch[:0], typeName...)
		scratch = append(scratch, 0)
		return append(scratch, src...), nil
	}
}
