package redact

import (
	"encoding/binary"
	"math"
	"time"
)

// Binary wire values of the date and time types: days (date) or
// microseconds (timestamp, timestamptz) since 2000-01-01, with the extremes
// of the range reserved for ±infinity.
const (
	DateInfinity         = math.MaxInt32
	DateNegInfinity      = math.MinInt32
	TimestampInfinity    = math.MaxInt64
	TimestampNegInfinity = math.MinInt64

	// The PostgreSQL epoch, 2000-01-01, in Unix days and seconds.
	pgEpochDays = 10957
	pgEpochSecs = pgEpochDays * 86400
	usPerDay    = MicrosPerDay

	// Limits of PostgreSQL's date and timestamp ranges relative to
	// 2000-01-01 (IS_VALID_DATE, IS_VALID_TIMESTAMP): from 4713-11-24 BC to
	// 5874897-12-31 for dates and to just before 294277-01-01 for
	// timestamps.
	minDate      = -2451545
	maxDate      = 2147483494 - 2451545 - 1
	minTimestamp = int64(minDate) * usPerDay
	maxTimestamp = int64(109203528-2451545)*usPerDay - 1
)

// MicrosPerDay converts date wire values (days) to timestamp ones.
const MicrosPerDay = 86400 * 1000000

// EpochDate and EpochTimestamp are 1970-01-01 as date and timestamp wire
// values: the "empty" date of destroy on NOT NULL columns.
const (
	EpochDate      int32 = -pgEpochDays
	EpochTimestamp int64 = -pgEpochSecs * 1000000
)

// DateInRange reports whether days (relative to 2000-01-01) is a finite date
// PostgreSQL accepts.
func DateInRange(days int64) bool { return days >= minDate && days <= maxDate }

// TimestampInRange reports whether us (relative to 2000-01-01) is a finite
// timestamp PostgreSQL accepts.
func TimestampInRange(us int64) bool { return us >= minTimestamp && us <= maxTimestamp }

// ReadInt decodes a size-byte (2, 4 or 8) big-endian integer.
func ReadInt(src []byte, size int) (int64, error) {
	if len(src) != size {
		return 0, invalidf("integer of %d bytes has %d", size, len(src))
	}
	switch size {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(src))), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(src))), nil
	default:
		return int64(binary.BigEndian.Uint64(src)), nil
	}
}

// AppendInt appends v as a size-byte big-endian integer; v must fit.
func AppendInt(dst []byte, v int64, size int) []byte {
	switch size {
	case 2:
		return binary.BigEndian.AppendUint16(dst, uint16(v))
	case 4:
		return binary.BigEndian.AppendUint32(dst, uint32(v))
	default:
		return binary.BigEndian.AppendUint64(dst, uint64(v))
	}
}

// IntRange returns the range of a size-byte integer type.
func IntRange(size int) (lo, hi int64) {
	switch size {
	case 2:
		return math.MinInt16, math.MaxInt16
	case 4:
		return math.MinInt32, math.MaxInt32
	default:
		return math.MinInt64, math.MaxInt64
	}
}

// ReadFloat decodes a float4 (size 4) or float8 (size 8).
func ReadFloat(src []byte, size int) (float64, error) {
	if len(src) != size {
		return 0, invalidf("float of %d bytes has %d", size, len(src))
	}
	if size == 4 {
		return float64(math.Float32frombits(binary.BigEndian.Uint32(src))), nil
	}
	return math.Float64frombits(binary.BigEndian.Uint64(src)), nil
}

// AppendFloat appends v as a float4 (size 4) or float8 (size 8).
func AppendFloat(dst []byte, v float64, size int) []byte {
	if size == 4 {
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(v)))
	}
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v))
}

// UUIDLen is the size of a binary uuid.
const UUIDLen = 16

// AppendUUIDText appends the canonical lowercase text form of a 16-byte uuid.
func AppendUUIDText(dst, u []byte) []byte {
	for i, b := range u[:UUIDLen] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return dst
}

// DateTime converts a finite date wire value (days) to midnight UTC.
func DateTime(days int64) time.Time { return time.Unix((days+pgEpochDays)*86400, 0).UTC() }

// TimestampTime converts a finite timestamp wire value to a UTC time.Time.
func TimestampTime(us int64) time.Time {
	secs, frac := us/1000000, us%1000000
	if frac < 0 {
		secs, frac = secs-1, frac+1000000
	}
	return time.Unix(secs+pgEpochSecs, frac*1000).UTC()
}

// TimeDate returns t's calendar day (in t's location) as a date wire
// value.
func TimeDate(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()/86400 - pgEpochDays
}

// TimeTimestamp returns t as a timestamp wire value (microseconds).
func TimeTimestamp(t time.Time) int64 {
	return (t.Unix()-pgEpochSecs)*1000000 + int64(t.Nanosecond()/1000)
}

// JSONBVersion is the version byte that prefixes jsonb binary values.
const JSONBVersion = 1

// Inet is a decoded inet or cidr value.
type Inet struct {
	Family byte // 2 for IPv4, 3 for IPv6 (PGSQL_AF_INET, PGSQL_AF_INET6)
	Bits   byte // netmask length
	CIDR   bool
	Addr   []byte // 4 or 16 bytes
}

// Address families of inet and cidr wire values.
const (
	InetFamilyV4 = 2
	InetFamilyV6 = 3
)

// ReadInet decodes an inet or cidr wire value; Addr aliases src.
func ReadInet(src []byte) (Inet, error) {
	if len(src) < 4 {
		return Inet{}, invalidf("inet of %d bytes", len(src))
	}
	v := Inet{Family: src[0], Bits: src[1], CIDR: src[2] != 0}
	n := int(src[3])
	switch {
	case v.Family == InetFamilyV4 && n == 4 && v.Bits <= 32:
	case v.Family == InetFamilyV6 && n == 16 && v.Bits <= 128:
	default:
		return Inet{}, invalidf("inet family %d with %d address bytes", v.Family, n)
	}
	if len(src) != 4+n {
		return Inet{}, invalidf("inet of %d bytes", len(src))
	}
	v.Addr = src[4:]
	return v, nil
}

// AppendInet encodes v.
func AppendInet(dst []byte, v Inet) []byte {
	c := byte(0)
	if v.CIDR {
		c = 1
	}
	dst = append(dst, v.Family, v.Bits, c, byte(len(v.Addr)))
	return append(dst, v.Addr...)
}
