package redact

import (
	"errors"
	"fmt"
)

// Func redacts one column value in PostgreSQL binary wire format. src is the
// value, nil for SQL NULL. The output is appended to dst (which must not
// overlap src) and returned; null reports an SQL NULL output, in which case
// nothing was appended and out is dst. A non-NULL output is never a nil
// slice, even when it is empty, so callers that slice values out of out
// keep ” apart from NULL. On error out is dst. A Func may keep scratch
// state between calls and is not safe for concurrent use: compile one per
// stream. Errors never contain the value.
type Func func(dst, src []byte) (out []byte, null bool, err error)

// ErrInvalidValue reports a binary value that is not valid for its type. It
// wraps errors about the shape of the input (lengths, headers), never the
// input itself.
var ErrInvalidValue = errors.New("invalid binary value")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidValue}, args...)...)
}

// Const returns a Func that outputs v for every input, SQL NULL included;
// a nil v outputs SQL NULL.
func Const(v []byte) Func {
	if v == nil {
		return func(dst, _ []byte) ([]byte, bool, error) { return dst, true, nil }
	}
	return func(dst, _ []byte) ([]byte, bool, error) { return nonNil(append(dst, v...)), false, nil }
}

// nonNil keeps an empty non-NULL output apart from NULL for callers that
// slice values out of a nil dst; a zero-length make does not allocate.
func nonNil(b []byte) []byte {
	if b == nil {
		return make([]byte, 0)
	}
	return b
}

// NonNull wraps a Func that handles non-NULL values so that SQL NULL passes
// through as NULL without calling it: the rule for everything but replace.
func NonNull(f func(dst, src []byte) ([]byte, error)) Func {
	return func(dst, src []byte) ([]byte, bool, error) {
		if src == nil {
			return dst, true, nil
		}
		out, err := f(dst, src)
		if err != nil {
			return dst, false, err
		}
		return nonNil(out), false, nil
	}
}
