package redact

import (
	"errors"
	"time"
)

// timeLayouts are the ISO 8601 forms ParseTimeText accepts, as PostgreSQL
// prints them and as JSON documents usually carry them. Fractional seconds
// are accepted after the seconds by time.Parse.
var timeLayouts = []struct {
	layout string
	zone   bool
}{
	{time.DateOnly, false},
	{"2006-01-02T15:04:05Z07:00", true},
	{"2006-01-02 15:04:05Z07:00", true},
	{"2006-01-02T15:04:05Z07", true},
	{"2006-01-02 15:04:05Z07", true},
	{"2006-01-02T15:04:05", false},
	{"2006-01-02 15:04:05", false},
	{"2006-01-02T15:04Z07:00", true},
	{"2006-01-02 15:04Z07:00", true},
	{"2006-01-02T15:04", false},
	{"2006-01-02 15:04", false},
}

var errNotTime = errors.New("not an ISO 8601 date or timestamp")

// ParseTimeText parses ISO 8601 date or date-time text (2006-01-02,
// 2006-01-02 15:04:05.999999, with T or a space, with or without a zone
// such as Z, +02, +02:00). zoned reports whether the text had a zone; a
// time without one is read as UTC.
func ParseTimeText(s []byte) (t time.Time, zoned bool, err error) {
	str := string(trimSpace(s))
	for _, l := range timeLayouts {
		if t, err := time.Parse(l.layout, str); err == nil {
			return t, l.zone, nil
		}
	}
	return time.Time{}, false, errNotTime
}

// AppendShiftedDateText appends ISO 8601 date or date-time text (see
// ParseTimeText) moved by offset days, in the same format: only its date
// part changes.
func AppendShiftedDateText(dst, s []byte, offset int64) ([]byte, error) {
	t, _, err := ParseTimeText(s)
	if err != nil || len(s) < 10 || s[4] != '-' {
		return dst, errNotTime
	}
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(offset))
	if day.Year() < 1 || day.Year() > 9999 {
		day = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -int(offset))
	}
	dst = day.AppendFormat(dst, time.DateOnly)
	return append(dst, s[10:]...), nil
}
