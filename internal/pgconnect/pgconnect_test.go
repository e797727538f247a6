package pgconnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nopii/nopii/internal/pgtest"
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

// TestConnectRefused: a wrong port says so once, on one line, though pgx
// tries TLS and then plain text (sslmode prefer) and lists both.
func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	dsn := fmt.Sprintf("postgres://u:pw-secret@127.0.0.1:%d/db", addr.Port)
	_, err = Connect(context.Background(), dsn, Options{Attempts: 1, What: "twin"})
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	msg := err.Error()
	refused := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", addr.Port)
	if n := strings.Count(msg, refused); n != 1 || strings.Contains(msg, "\n") || strings.Contains(msg, "pw-secret") {
		t.Errorf("error names the refused dial %d times (want once, on one line, without the password):\n%s", n, msg)
	}
}

func TestOneLinePerAttempt(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain error", "plain error"},
		{"failed to connect to `user=u`:\n\ta: refused\n\ta: refused", "failed to connect to `user=u`: a: refused"},
		{"failed to connect to `user=u`:\n\ta: refused\n\tb: timeout\n\ta: refused", "failed to connect to `user=u`:\n\ta: refused\n\tb: timeout"},
		{"failed to connect to `user=postgres database=prod`:\n\thostname resolving error: lookup nohost.invalid on 10.0.0.53:53: no such host\n\tlookup nohost.invalid on 10.0.0.53:53: no such host",
			"failed to connect to `user=postgres database=prod`: hostname resolving error: lookup nohost.invalid on 10.0.0.53:53: no such host"},
	} {
		if got := oneLinePerAttempt(tc.in); got != tc.want {
			t.Errorf("oneLinePerAttempt(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCheckServer: a server older than nopii supports is refused with its
// version and what needs a newer one.
func TestCheckServer(t *testing.T) {
	for _, tc := range []struct {
		version string
		o       Options
		want    string // "" passes
	}{
		{"15.8 (Debian 15.8-1.pgdg120+1)", Options{What: "source prod", MinServer: 12}, ""},
		{"12.0", Options{What: "source prod", MinServer: 12}, ""},
		{"17devel", Options{What: "twin", MinServer: 12}, ""},
		{"11.22 (Debian 11.22-0+deb10u1)", Options{What: "source prod", MinServer: 12}, "source prod runs PostgreSQL 11.22: nopii needs PostgreSQL 12 or later"},
		{"9.6.24", Options{What: "twin", MinServer: 12}, "twin runs PostgreSQL 9.6.24: nopii needs PostgreSQL 12 or later"},
		{"12.17", Options{What: "source prod", MinServer: 13, NeededFor: "mode cdc"}, "source prod runs PostgreSQL 12.17: mode cdc needs PostgreSQL 13 or later"},
		{"9.6.24", Options{What: "source prod"}, ""},          // no minimum
		{"", Options{What: "source prod", MinServer: 12}, ""}, // cannot tell: let the queries speak
	} {
		err := checkServer(tc.version, tc.o)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("checkServer(%q, %+v) = %v, want %q", tc.version, tc.o, err, tc.want)
		}
	}
}

// TestConnectRefusesOldServer: the check runs on a real connection, once,
// without retries.
func TestConnectRefusesOldServer(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	conn, err := Connect(context.Background(), dsn, Options{What: "source prod", MinServer: 12})
	if err != nil {
		t.Fatalf("PostgreSQL 12 or later refused: %v", err)
	}
	v := conn.PgConn().ParameterStatus("server_version")
	conn.Close(context.Background())
	_, err = Connect(context.Background(), dsn, Options{What: "source prod", MinServer: 99, NeededFor: "a feature from the future"})
	want := fmt.Sprintf("source prod runs PostgreSQL %s: a feature from the future needs PostgreSQL 99 or later", strings.Fields(v)[0])
	if err == nil || err.Error() != want {
		t.Errorf("connect to PostgreSQL %s with MinServer 99: %v, want %q", v, err, want)
	}
}

// TestSafeErrorHidesValues: a data exception's message quotes the value
// it could not take (a row's, through a cast in a subset's where); the
// safe error and Describe say which error it was, never the value, and keep
// the hint and the context.
func TestSafeErrorHidesValues(t *testing.T) {
	dsn := pgtest.MustDatabase(t)
	ctx := context.Background()
	conn, err := Connect(ctx, dsn, Options{What: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, tc := range []struct {
		sql, secret, want string
	}{
		{`SELECT 'ann@example.com'::int`, "ann@example.com", `invalid input syntax for type integer: (value hidden) (SQLSTATE 22P02)`},
		{`SELECT '123456789012345'::int`, "123456789012345", `value (value hidden) is out of range for type integer (SQLSTATE 22003)`},
		{`SELECT 'ann "the boss" smith'::date`, "boss", `invalid input syntax for type date: (value hidden) (SQLSTATE 22007)`},
		{`SELECT convert_from('\x616e6ee9'::bytea, 'UTF8')`, "0x", `invalid byte sequence for encoding (value hidden): (value hidden) (SQLSTATE 22021)`},
		{`SELECT 1/0`, "", `division by zero (SQLSTATE 22012)`},
		{`SELECT * FROM nope`, "", `relation "nope" does not exist (SQLSTATE 42P01)`},
	} {
		_, err := conn.Exec(ctx, tc.sql)
		if err == nil {
			t.Fatalf("%s: no error", tc.sql)
		}
		for _, got := range []string{SafeError(fmt.Errorf("copy public.people: %w", err)).Error(), Describe(err)} {
			if tc.secret != "" && strings.Contains(got, tc.secret) {
				t.Errorf("%s: %q shows the value", tc.sql, got)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("%s: %q, want it to hold %q", tc.sql, got, tc.want)
			}
		}
		if !strings.HasPrefix(SafeError(fmt.Errorf("copy public.people: %w", err)).Error(), "copy public.people: ERROR: ") {
			t.Errorf("%s: the context is lost", tc.sql)
		}
	}
}
