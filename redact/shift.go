package redact

import "math/bits"

// ShiftOffset returns the day offset that d selects in [-maxDays, -1] ∪
// [1, maxDays]: never zero, so a shifted date never equals its input.
// maxDays must be positive.
func ShiftOffset(d *Digest, maxDays int) int64 {
	m := uint64(maxDays)
	v, _ := bits.Mul64(d.Uint64(), 2*m)
	if v < m {
		return -int64(v + 1)
	}
	return int64(v - m + 1)
}

// ShiftDate returns the date wire value days moved by offset days, or moved
// by -offset if that would leave PostgreSQL's date range. Infinities are
// returned unchanged.
func ShiftDate(days int64, offset int64) int64 {
	if days == DateInfinity || days == DateNegInfinity {
		return days
	}
	if v := days + offset; DateInRange(v) {
		return v
	}
	return days - offset
}

// ShiftTimestamp returns the timestamp wire value us moved by offset days,
// or by -offset if that would leave PostgreSQL's timestamp range.
// Infinities are returned unchanged.
func ShiftTimestamp(us int64, offset int64) int64 {
	if us == TimestampInfinity || us == TimestampNegInfinity {
		return us
	}
	delta := offset * usPerDay
	if TimestampInRange(us) {
		if v := us + delta; TimestampInRange(v) {
			return v
		}
		return us - delta
	}
	// Outside the range PostgreSQL produces: move towards zero so as not
	// to overflow.
	if us > 0 {
		return us - abs64(delta)
	}
	return us + abs64(delta)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
