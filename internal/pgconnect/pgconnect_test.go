package pgconnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestLost(t *testing.T) {
	pg := func(code, msg string) error { return &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"terminated backend", pg("57P01", "terminating connection due to administrator command"), true},
		{"crash shutdown", pg("57P02", "terminating connection because of crash of another server process"), true},
		{"starting up", pg("57P03", "the database system is starting up"), true},
		{"connection failure", pg("08006", "connection failure"), true},
		{"too many connections", pg("53300", "sorry, too many clients already"), true},
		{"snapshot gone", pg("22023", `invalid snapshot identifier: "00000003-0000001B-1"`), true},
		{"other invalid parameter", pg("22023", "invalid value for parameter"), false},
		{"unique violation", pg("23505", "duplicate key value violates unique constraint"), false},
		{"syntax error", pg("42601", "syntax error"), false},
		{"wrapped terminated backend", fmt.Errorf("copy table public.x: %w", pg("57P01", "terminating")), true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"closed conn", errors.New("conn closed"), true},
		{"cancelled", fmt.Errorf("copy: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"a rule's error", errors.New("column email: rule hash: value too long"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lost(tc.err); got != tc.want {
				t.Errorf("Lost(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
